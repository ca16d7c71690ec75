// Tests for experiments/sample.cpp (`jebm sample`): the energy is detected from a run checkpoint, the grid has the
// asked size, --steps 0 from the checkpoint's walkers reproduces them, and missing, corrupt, foreign or incomplete
// checkpoints and bad options are clear errors. (A real cifar10 run's checkpoint is sampled in
// tests/test_cifar10.cpp.)
#include <fstream>
#include <string>
#include <vector>

#include "experiments/classifier_cmd.hpp"
#include "experiments/png.hpp"
#include "models/checkpoint.hpp"
#include "runtime/file_io.hpp"
#include "models/energy_nets.hpp"
#include "runtime/cuda_api.hpp"
#include "runtime/ops.hpp"
#include "tests/helpers.hpp"
#include "tests/run_helpers.hpp"

namespace jebm {
int run_sample(const std::vector<std::string>& args);
}  // namespace jebm

namespace fs = std::filesystem;
using jebm::test::expect_error;
using jebm::test::TempDir;
using jebm::test::with;

BOOST_AUTO_TEST_CASE(sample_detects_the_energy_and_fails_clearly) {
  TempDir dir;
  // A hand-made MNIST run checkpoint: the energy's parameters, 3 walkers and the metadata jebm sample reads.
  jebm::Generator gen{1, 0};
  jebm::MnistEnergyCNN mnist(gen);
  std::vector<std::pair<std::string, jebm::Tensor>> t;
  for (const auto& [name, v] : mnist.named_parameters()) t.emplace_back("model." + name, v.value());
  jebm::Generator wg{2, 0};
  t.emplace_back("walkers.x", jebm::rand_uniform({3, 1, 28, 28}, -1, 1, wg));
  const std::string ck = (dir.path / "mnist.safetensors").string();
  jebm::save_safetensors(ck, t, {{"format", "jebm-image-ebm-checkpoint-1"}, {"command", "mnist"}, {"iteration", "7"}});
  // --out is a run directory (made as needed); --force: each call below replaces the previous one's files.
  const fs::path run = dir.path / "sub" / "run", grid = run / "samples.png";
  const std::vector<std::string> base = {"--checkpoint", ck, "--out", run.string(), "--no-progress", "--threads", "1",
                                         "--force"};
  BOOST_REQUIRE_EQUAL(jebm::run_sample(with(base, {"--steps", "1", "--n", "4", "--columns", "4"})), 0);
  jebm::PngImage g = jebm::read_png(grid.string());
  BOOST_TEST(jebm::read_file((run / "options.txt").string()).find("steps = 1\n") != std::string::npos);
  // Like every run directory, it is not overwritten without --force.
  expect_error([&] { jebm::run_sample({"--checkpoint", ck, "--out", run.string(), "--steps", "1", "--no-progress"}); },
               {"is not empty", "--force"});
  BOOST_TEST(g.channels == 1);
  BOOST_TEST(g.width == 4 * 30 + 2);
  BOOST_TEST(g.height == 30 + 2);
  // --steps 0 from the saved walkers reproduces them exactly.
  BOOST_REQUIRE_EQUAL(jebm::run_sample(with(base, {"--steps", "0", "--n", "3", "--from", "checkpoint-walkers"})), 0);
  const fs::path direct = dir.path / "direct.png";
  jebm::write_image_grid(direct.string(), t.back().second, 2);
  BOOST_TEST(jebm::read_png(grid.string()).pixels == jebm::read_png(direct.string()).pixels);
  expect_error([&] { jebm::run_sample(with(base, {"--steps", "0", "--n", "4", "--from", "checkpoint-walkers"})); },
               {"only 3 walkers"});
  expect_error([&] { jebm::run_sample(with(base, {"--n", "2"})); }, {"--steps K is required"});
  // Ranges: checked at parse time, naming option, value and range.
  expect_error([&] { jebm::run_sample(with(base, {"--steps", "1", "--n", "0"})); }, {"--n 0 is outside its range (>= 1)"});
  expect_error([&] { jebm::run_sample(with(base, {"--steps", "-2"})); }, {"--steps -2", "(in [0, 1000000000])"});
  expect_error([&] { jebm::run_sample(with(base, {"--steps", "1", "--h", "inf"})); }, {"--h inf", "(> 0)"});
  expect_error([&] { jebm::run_sample(with(base, {"--steps", "1", "--noise", "-1"})); }, {"--noise -1", "(>= 0)"});
  expect_error([&] { jebm::run_sample(with(base, {"--steps", "1", "--device", "tpu"})); }, {"unknown device 'tpu'"});
  if (!jebm::cuda_api::available())  // no GPU here: asking for one is a clear error, not a crash
    expect_error([&] { jebm::run_sample(with(base, {"--steps", "1", "--device", "cuda"})); },
                 {"jebm sample --device cuda"});

  // Missing, corrupt, foreign and inconsistent checkpoints.
  const std::string missing = (dir.path / "none.safetensors").string();
  expect_error([&] { jebm::run_sample({"--checkpoint", missing, "--steps", "1", "--out", grid.string()}); },
               {"--checkpoint '" + missing + "': no such file"});
  const fs::path corrupt = dir.path / "corrupt.safetensors";
  std::ofstream(corrupt, std::ios::binary) << std::string(100, 'Z');
  expect_error([&] { jebm::run_sample({"--checkpoint", corrupt.string(), "--steps", "1", "--out", grid.string()}); },
               {corrupt.string()});
  jebm::Classifier clf = jebm::make_classifier(jebm::ClassifierKind::Cifar10, {0, 1, 2, 3, 4, 5, 6, 7, 8, 9}, 3);
  const std::string clf_path = (dir.path / "clf.safetensors").string();
  jebm::save_classifier(clf_path, clf, {});
  expect_error([&] { jebm::run_sample({"--checkpoint", clf_path, "--steps", "1", "--out", grid.string()}); },
               {"not a jebm mnist/cifar10 run checkpoint"});
  jebm::save_safetensors(ck, t, {{"format", "jebm-image-ebm-checkpoint-1"}, {"command", "cifar10"}});
  expect_error([&] { jebm::run_sample(with(base, {"--steps", "1"})); }, {"metadata says command \"cifar10\""});
  t.erase(t.begin() + 1);  // drop model.0.bias
  jebm::save_safetensors(ck, t, {{"format", "jebm-image-ebm-checkpoint-1"}, {"command", "mnist"}});
  expect_error([&] { jebm::run_sample(with(base, {"--steps", "1"})); }, {"no tensor \"model.0.bias\""});
}

