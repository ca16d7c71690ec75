// Errors name their source: a NaN parameter (with valid checksums) is refused at load naming the file and the
// tensor (jebm sample, even at --steps 0; a gmm --resume); an optimizer state that does not fit is refused naming
// the checkpoint (an image run's --resume); an unknown algorithm or resampling scheme names the option and the
// file that gave it (--config, a resumed run's options.txt).
#include "tests/helpers.hpp"

#include <cmath>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <limits>
#include <string>
#include <vector>

#include "models/checkpoint.hpp"
#include "models/energy_nets.hpp"
#include "runtime/ops.hpp"
#include "tests/run_helpers.hpp"

namespace jebm {
int run_sample(const std::vector<std::string>& args);  // experiments/sample.cpp
int run_gmm(const std::vector<std::string>& args);     // experiments/gmm.cpp
int run_mnist(const std::vector<std::string>& args);   // experiments/mnist.cpp
}  // namespace jebm

using namespace jebm;
using jebm::test::slurp;
using jebm::test::expect_error;
using jebm::test::TempDir;
namespace fs = std::filesystem;

namespace {

// `st`'s tensors and metadata saved again (fresh checksums) with tensor `name` changed by `edit`.
template <typename F>
void resave_with(const SafeTensors& st, const std::string& name, F edit) {
  std::vector<std::pair<std::string, Tensor>> t;
  for (const auto& [n, v] : st.tensors) t.emplace_back(n, n == name ? edit(v.clone()) : v);
  save_safetensors(st.path, t, st.metadata);
}

Tensor with_nan(Tensor t) {
  if (t.dtype() == DType::Float32) t.data<float>()[0] = std::numeric_limits<float>::quiet_NaN();
  else t.data<double>()[0] = std::numeric_limits<double>::quiet_NaN();
  return t;
}

}  // namespace

BOOST_AUTO_TEST_CASE(sample_refuses_a_nan_parameter_naming_the_file_and_the_tensor) {
  TempDir dir;
  Generator gen{1, 0};
  MnistEnergyCNN mnist(gen);
  std::vector<std::pair<std::string, Tensor>> t;
  for (const auto& [name, v] : mnist.named_parameters()) t.emplace_back("model." + name, v.value());
  Generator wg{2, 0};
  t.emplace_back("walkers.x", rand_uniform({3, 1, 28, 28}, -1, 1, wg));
  const std::string ck = (dir.path / "mnist.safetensors").string();
  save_safetensors(ck, t, {{"format", "jebm-image-ebm-checkpoint-1"}, {"command", "mnist"}, {"iteration", "7"}});
  const std::string bad = t.front().first;
  resave_with(load_safetensors(ck), bad, with_nan);
  const fs::path grid = dir.path / "g.png";
  for (const char* steps : {"0", "1"}) {
    expect_error([&] { run_sample({"--checkpoint", ck, "--steps", steps, "--out", grid.string(), "--no-progress"}); },
                 {ck, "\"" + bad + "\"", "nan"});
    BOOST_TEST(!fs::exists(grid));
  }
}

BOOST_AUTO_TEST_CASE(gmm_resume_refuses_a_nan_parameter_naming_the_file_and_the_tensor) {
  TempDir tmp;
  const fs::path out = tmp.path / "run";
  BOOST_REQUIRE(run_gmm({"--dim", "2", "--samples", "64", "--walkers", "64", "--iterations", "10", "--algo", "jarzynski",
                         "--no-progress", "--out", out.string()}) == 0);
  const std::string ck = (out / "checkpoint_jarzynski.safetensors").string();
  resave_with(load_safetensors(ck), "gmm.theta.a", with_nan);
  expect_error([&] { run_gmm({"--resume", out.string(), "--iterations", "20", "--no-progress"}); },
               {ck, "\"gmm.theta.a\"", "nan"});
}

BOOST_AUTO_TEST_CASE(an_optimizer_state_that_does_not_fit_names_the_checkpoint) {
  TempDir tmp;
  const fs::path data = tmp.path / "data", out = tmp.path / "run";
  fs::create_directories(data);
  jebm::test::write_mnist_split(data, "train", 4, 1, {2, 3, 6}, 0, 0);
  jebm::test::write_mnist_split(data, "t10k", 1, 2, {2, 3, 6}, 0, 0);
  BOOST_REQUIRE(run_mnist({"--data", data.string(), "--out", out.string(), "--counts", "2,2,2", "--walkers", "4",
                           "--burn-in", "1", "--moving-subsets", "1", "--moving-batch", "0", "--moves-per-update", "1",
                           "--gradient-batch", "0", "--data-batch", "2", "--epochs", "1", "--grid-every", "1",
                           "--grid-count", "2", "--no-progress", "--threads", "1"}) == 0);
  const std::string ck = (out / "checkpoint.safetensors").string();
  resave_with(load_safetensors(ck), "optim.step", [](Tensor) { return Tensor::zeros({2}, DType::Float64); });
  expect_error([&] { run_mnist({"--resume", out.string(), "--epochs", "2", "--no-progress"}); },
               {ck, "optimizer state", "'step'"});
}

BOOST_AUTO_TEST_CASE(an_unknown_name_names_the_option_and_the_file_that_gave_it) {
  TempDir tmp;
  expect_error([&] { run_gmm({"--algo", "5", "--no-progress"}); }, {"--algo 5: unknown algorithm '5'"});
  const fs::path ini = tmp.path / "c.ini";
  std::ofstream(ini) << "resample = nope\n";
  expect_error([&] { run_gmm({"--config", ini.string(), "--no-progress"}); },
               {"--resample nope (from " + ini.string() + "): unknown resampling scheme 'nope'"});
  expect_error([&] { run_mnist({"--config", ini.string(), "--out", (tmp.path / "m").string(), "--no-progress"}); },
               {"--resample nope (from " + ini.string() + "): unknown resampling scheme 'nope'"});
  // A resumed run's options.txt.
  const fs::path out = tmp.path / "run";
  BOOST_REQUIRE(run_gmm({"--dim", "2", "--samples", "64", "--walkers", "64", "--iterations", "4", "--algo", "pcd",
                         "--no-progress", "--out", out.string()}) == 0);
  const std::string text = slurp(out / "options.txt");
  const size_t at = text.find("algo = pcd");
  BOOST_REQUIRE(at != std::string::npos);
  std::ofstream(out / "options.txt") << text.substr(0, at) << "algo = 5" << text.substr(at + 10);
  expect_error([&] { run_gmm({"--resume", out.string(), "--iterations", "8", "--no-progress"}); },
               {"--algo 5 (from " + (out / "options.txt").string() + "): unknown algorithm '5'"});
}
