// Tests for experiments/image_ebm*.{hpp,cpp} (options, run loop, checkpoint, plots), divergence_guard, box_revert,
// progress and experiments/mnist.cpp on tiny synthetic data: a short `jebm mnist`
// run writes its CSV/PNG/checkpoint (with classifier weights); an interrupted (Ctrl-C) and resumed run ends
// bit-identical to an uninterrupted one (Jarzynski with resampling, and PCD; also from inside the burn-in, and a
// finished run extended by --epochs equals a longer run); the DivergenceGuard names the update and keeps the last
// good checkpoint (NaN energies, --lr 1e39 overflowing the parameters, -inf log-weights); --box reverts only
// coordinates outside [-1, 1]; the progress line of a log file; --out refuses to overwrite without --force; bad
// --data is a clear error; --holdout-walkers / --correction-groups add their columns, leave the training trajectory
// alone (held-out walkers), resume bit-identically and cannot change on resume; a resume refuses every changed
// run-defining option (command line, --config, options missing from an older options.txt) but the documented
// few; the shared options' ranges are checked and shown in --help.
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iostream>
#include <limits>
#include <memory>
#include <random>
#include <sstream>

#include "experiments/box_revert.hpp"
#include "experiments/classifier_cmd.hpp"
#include "experiments/divergence_guard.hpp"
#include "experiments/image_ebm.hpp"
#include "experiments/output.hpp"
#include "experiments/png.hpp"
#include "experiments/progress.hpp"
#include "models/checkpoint.hpp"
#include "models/layers.hpp"
#include "models/optim.hpp"
#include "runtime/file_io.hpp"
#include "tests/helpers.hpp"
#include "tests/run_helpers.hpp"

namespace jebm {
int run_mnist(const std::vector<std::string>& args);
}

namespace fs = std::filesystem;
using jebm::test::TempDir;
using jebm::test::check_identical_checkpoints;
using jebm::test::csv_last;
using jebm::test::csv_rows;
using jebm::test::same_bits;
using jebm::test::with;

namespace {

// train-images-idx3-ubyte / train-labels-idx1-ubyte with `per_digit` images of each of 2, 3, 6, 7, interleaved.
void write_mnist(const fs::path& dir, int per_digit) {
  jebm::test::write_mnist_split(dir, "train", per_digit, 7, {7, 2, 3, 6}, 2, 40);
}

// A tiny but complete `jebm mnist` run: 7 images (4 twos, 2 threes, 1 six), batch 2 -> 3 updates per epoch.
std::vector<std::string> tiny_args(const fs::path& data, const fs::path& out, const std::string& algo) {
  return {"--data", data.string(), "--out", out.string(), "--algo", algo, "--counts", "4,2,1",
          "--walkers", "8", "--burn-in", "3", "--moving-subsets", "2", "--moving-batch", "3",
          "--moves-per-update", "2", "--gradient-batch", "4", "--data-batch", "2", "--epochs", "3",
          // a hot, fast sampler so that the weights spread and resampling fires (the test is about bookkeeping)
          "--h", "0.01", "--noise", "0.05", "--lr", "0.01", "--resample-after-epoch", "0", "--resample-cv", "0.01",
          "--data-noise", "0.03", "--grid-every", "1", "--grid-count", "6", "--no-progress", "--threads", "1"};
}

// A small energy on [N, 1, 8, 8] whose forward returns NaN from its `nan_after`-th call on.
class PoisonedEnergy : public jebm::Module {
 public:
  PoisonedEnergy(jebm::Generator& gen, int64_t nan_after) : nan_after_(nan_after) {
    net_ = register_module("net", std::make_shared<jebm::Sequential>());
    net_->emplace<jebm::Flatten>();
    net_->emplace<jebm::Linear>(64, 8, gen);
    net_->emplace<jebm::SiLU>();
    net_->emplace<jebm::Linear>(8, 1, gen);
  }
  jebm::ag::Var forward(const jebm::ag::Var& x) override {
    jebm::ag::Var u = jebm::ag::reshape((*net_)(x), {x.size(0)});
    if (++calls_ >= nan_after_) u = jebm::ag::mul_scalar(u, std::numeric_limits<double>::quiet_NaN());
    return u;
  }

 private:
  std::shared_ptr<jebm::Sequential> net_;
  int64_t nan_after_, calls_ = 0;
};

jebm::Tensor tiny_patterns(int64_t n) {
  std::vector<float> v(static_cast<size_t>(n * 64));
  for (int64_t i = 0; i < n; ++i)
    for (int64_t k = 0; k < 64; ++k)
      v[static_cast<size_t>(i * 64 + k)] = ((i % 2 == 0 ? k / 8 : k % 8) < 4) ? 0.8f : -0.8f;
  return jebm::Tensor::from_vector(v, {n, 1, 8, 8});
}

}  // namespace

BOOST_AUTO_TEST_CASE(short_mnist_run_writes_csv_png_checkpoint) {
  TempDir data, out;
  write_mnist(data.path, 5);
  // An untrained classifier is enough to check the per-digit weight columns.
  jebm::Classifier clf = jebm::make_classifier(jebm::ClassifierKind::Mnist, {2, 3, 6}, 3);
  const std::string clf_path = (data.path / "clf.safetensors").string();
  jebm::save_classifier(clf_path, clf, {});
  const fs::path run = out.path / "run";
  BOOST_REQUIRE_EQUAL(jebm::run_mnist(with(tiny_args(data.path, run, "jarzynski"), {"--classifier", clf_path})), 0);

  std::vector<std::string> header;
  const auto rows = csv_rows(run / "metrics.csv", &header);
  BOOST_REQUIRE_EQUAL(rows.size(), 9u);  // 3 epochs x 3 updates, --log-every 1
  BOOST_TEST(header[0] == "iteration");
  BOOST_TEST(header.back() == "weight_6");
  for (size_t i = 0; i < rows.size(); ++i) {
    BOOST_TEST(rows[i][0] == static_cast<double>(i));
    const double w = rows[i][rows[i].size() - 3] + rows[i][rows[i].size() - 2] + rows[i].back();
    BOOST_TEST(std::fabs(w - 1.0) < 1e-9, "class weights of row " << i << " sum to " << w);
  }
  BOOST_TEST(csv_last(run / "metrics.csv", "resamplings") > 0,
             "resampling never fired; the resume test below would not cover it");

  const jebm::PngImage png = jebm::read_png((run / "samples_final.png").string());
  BOOST_TEST(png.width > 28 * 2);
  BOOST_TEST(png.height >= 28 * 2);
  for (const char* f : {"data.png", "samples_burnin.png", "samples_epoch1.png", "samples_epoch3.png", "options.txt"})
    BOOST_TEST(fs::exists(run / f), f);
  {  // the metrics plot carries the energy, ESS and per-class panels
    std::ifstream svg(run / "metrics.svg");
    const std::string text((std::istreambuf_iterator<char>(svg)), std::istreambuf_iterator<char>());
    BOOST_TEST(text.find("<svg") != std::string::npos);
    for (const char* series : {"mean U(data)", "CE estimate", "ESS (all walkers)", "weight_2"})
      BOOST_TEST(text.find(series) != std::string::npos, series);
  }

  const jebm::SafeTensors st = jebm::load_safetensors(jebm::image_ebm_checkpoint_path(run.string()));
  BOOST_TEST(st.metadata.at("iteration") == "9");
  BOOST_TEST(st.metadata.at("algo") == "jarzynski");
  BOOST_TEST(st.tensors.count("model.0.weight") == 1u);
  BOOST_TEST(st.tensors.count("optim.step") == 1u);
  BOOST_TEST(jebm::get(st, "walkers.x").shape() == (jebm::Shape{8, 1, 28, 28}));
  BOOST_TEST(jebm::get(st, "walkers.log_w").shape() == (jebm::Shape{8}));
}

BOOST_AUTO_TEST_CASE(interrupted_and_resumed_run_is_bit_identical) {
  TempDir data, out;
  write_mnist(data.path, 5);
  // "rejuvenate": Jarzynski with warm moves after each resampling (--rejuvenation-moves); "tempered": the tempered
  // weight kernel with its own rejuvenation moves and held-out walkers.
  for (const std::string name : {"jarzynski", "pcd", "rejuvenate", "tempered"}) {
    BOOST_TEST_CONTEXT(name) {
      const std::string algo = name == "pcd" ? "pcd" : "jarzynski";
      const std::vector<std::string> extra =
          name == "rejuvenate" ? std::vector<std::string>{"--rejuvenation-moves", "2"}
          : name == "tempered" ? std::vector<std::string>{"--weight-kernel", "tempered", "--rejuvenation-moves", "2",
                                                          "--holdout-walkers", "4"}
                               : std::vector<std::string>{};
      const fs::path full = out.path / ("full-" + name), cut = out.path / ("cut-" + name);
      BOOST_REQUIRE_EQUAL(jebm::run_mnist(with(tiny_args(data.path, full, algo), extra)), 0);
      if (name == "rejuvenate") {  // resampling fired, and the warm moves changed the walkers
        BOOST_TEST(csv_last(full / "metrics.csv", "resamplings") > 0.0);
        const jebm::SafeTensors a = jebm::load_safetensors(jebm::image_ebm_checkpoint_path((out.path / "full-jarzynski").string()));
        const jebm::SafeTensors b = jebm::load_safetensors(jebm::image_ebm_checkpoint_path(full.string()));
        BOOST_TEST(a.tensors.at("walkers.x").to_vector() != b.tensors.at("walkers.x").to_vector());
      }
      if (name == "tempered") {  // recorded, resampled, and not the 2h run's weights
        const jebm::SafeTensors t = jebm::load_safetensors(jebm::image_ebm_checkpoint_path(full.string()));
        BOOST_TEST(t.metadata.at("weight_kernel") == "tempered");
        BOOST_TEST(csv_last(full / "metrics.csv", "resamplings") > 0.0);
        BOOST_TEST(std::isfinite(csv_last(full / "metrics.csv", "holdout_log_z")));
        const jebm::SafeTensors r = jebm::load_safetensors(jebm::image_ebm_checkpoint_path((out.path / "full-rejuvenate").string()));
        BOOST_TEST(t.tensors.at("walkers.log_w").to_vector() != r.tensors.at("walkers.log_w").to_vector());
      }
      // Ctrl-C (a real SIGINT through the handler) after update 4, mid-epoch: checkpoint saved, exit code 130.
      BOOST_REQUIRE_EQUAL(jebm::run_mnist(with(with(tiny_args(data.path, cut, algo), extra), {"--interrupt-at", "4"})), 130);
      const jebm::SafeTensors mid = jebm::load_safetensors(jebm::image_ebm_checkpoint_path(cut.string()));
      BOOST_TEST(mid.metadata.at("iteration") == "5");
      // The resumed run takes its options from cut/options.txt.
      BOOST_REQUIRE_EQUAL(jebm::run_mnist({"--resume", cut.string(), "--no-progress"}), 0);
      check_identical_checkpoints(jebm::image_ebm_checkpoint_path(full.string()),
                                  jebm::image_ebm_checkpoint_path(cut.string()));
      BOOST_TEST(same_bits(csv_rows(full / "metrics.csv"), csv_rows(cut / "metrics.csv")));
    }
  }
}

BOOST_AUTO_TEST_CASE(extending_a_finished_run_equals_a_longer_run) {
  TempDir data, out;
  write_mnist(data.path, 5);
  const fs::path longer = out.path / "longer", run = out.path / "run";
  BOOST_REQUIRE_EQUAL(jebm::run_mnist(with(tiny_args(data.path, longer, "jarzynski"), {"--epochs", "4"})), 0);
  BOOST_REQUIRE_EQUAL(jebm::run_mnist(tiny_args(data.path, run, "jarzynski")), 0);  // 3 epochs
  // Resuming a finished run without more epochs changes nothing.
  const std::string ck = jebm::image_ebm_checkpoint_path(run.string());
  const jebm::SafeTensors before = jebm::load_safetensors(ck);
  BOOST_REQUIRE_EQUAL(jebm::run_mnist({"--resume", run.string(), "--no-progress"}), 0);
  BOOST_TEST(jebm::load_safetensors(ck).metadata.at("iteration") == before.metadata.at("iteration"));
  // One more epoch: the lr schedule depends on --lr-decay-epochs only, so this is the 4-epoch run.
  BOOST_REQUIRE_EQUAL(jebm::run_mnist({"--resume", run.string(), "--epochs", "4", "--no-progress"}), 0);
  check_identical_checkpoints(jebm::image_ebm_checkpoint_path(longer.string()), ck);
  BOOST_TEST(same_bits(csv_rows(longer / "metrics.csv"), csv_rows(run / "metrics.csv")));
}

BOOST_AUTO_TEST_CASE(resume_from_inside_burn_in) {
  TempDir data, out;
  write_mnist(data.path, 5);
  // Also with the held-out walkers, whose burn-in runs beside the walkers', and the log Z correction.
  for (const std::vector<std::string>& extra :
       {std::vector<std::string>{}, std::vector<std::string>{"--holdout-walkers", "3", "--correction-groups", "3"}}) {
    BOOST_TEST_CONTEXT("extra options " << extra.size()) {
      const fs::path full = out.path / ("full" + std::to_string(extra.size())),
                     cut = out.path / ("cut" + std::to_string(extra.size()));
      const auto args = [&](const fs::path& o) {
        return with(with(tiny_args(data.path, o, "jarzynski"), {"--burn-in", "6", "--epochs", "1"}), extra);
      };
      BOOST_REQUIRE_EQUAL(jebm::run_mnist(args(full)), 0);
      BOOST_REQUIRE_EQUAL(jebm::run_mnist(with(args(cut), {"--interrupt-at-burn-in", "2"})), 130);
      const jebm::SafeTensors mid = jebm::load_safetensors(jebm::image_ebm_checkpoint_path(cut.string()));
      BOOST_TEST(mid.metadata.at("burned_in") == "0");
      BOOST_TEST(mid.metadata.at("burnin_done") == "2");
      BOOST_TEST(!fs::exists(cut / "metrics.csv"));
      BOOST_REQUIRE_EQUAL(jebm::run_mnist({"--resume", cut.string(), "--no-progress"}), 0);
      check_identical_checkpoints(jebm::image_ebm_checkpoint_path(full.string()),
                                  jebm::image_ebm_checkpoint_path(cut.string()));
      BOOST_TEST(same_bits(csv_rows(full / "metrics.csv"), csv_rows(cut / "metrics.csv")));
    }
  }
}

BOOST_AUTO_TEST_CASE(divergence_guard_names_the_update_and_keeps_the_last_good_checkpoint) {
  TempDir out;
  jebm::ImageEbmConfig c = jebm::mnist_defaults();
  c.command = "test";
  c.walkers = 6;
  c.burn_in = 2;
  c.h = 0.01;
  c.sigma = 0.05;
  c.moving_subsets = 1;
  c.moving_batch = 0;
  c.moves_per_update = 2;
  c.gradient_batch = 0;
  c.data_batch = 2;
  c.epochs = 20;
  c.lr = 0.01;
  c.progress = false;
  c.out = (out.path / "run").string();
  const jebm::RunDirLock lock = jebm::prepare_run_dir(c.out, false, false);
  jebm::ImageEbmProblem p;
  p.data = tiny_patterns(6);  // 3 updates per epoch
  // Burn-in: 2 calls; each update: ~5 calls. NaN from call 40 on: during epoch 2 or 3.
  p.make_energy = [](jebm::Generator& gen) { return std::make_shared<PoisonedEnergy>(gen, 40); };
  const int64_t bad = jebm::test::check_diverged_run(jebm::run_image_ebm(c, p), c.out, 3);
  BOOST_TEST(bad >= 3);  // after the first epoch's checkpoint
}

BOOST_AUTO_TEST_CASE(divergence_guard_checks_parameters_after_the_optimiser_step) {
  TempDir data, out;
  write_mnist(data.path, 5);
  const fs::path run = out.path / "run";
  std::ostringstream err;
  int rc = 0;
  {
    jebm::test::CerrCapture capture(err);
    rc = jebm::run_mnist(with(tiny_args(data.path, run, "jarzynski"), {"--lr", "1e39", "--grad-clip", "0"}));
  }
  BOOST_TEST_MESSAGE(err.str());
  BOOST_TEST(rc == 3);
  BOOST_TEST(err.str().find("diverged at update 0") != std::string::npos);
  BOOST_TEST(err.str().find("non-finite parameter after the optimiser step") != std::string::npos);
  BOOST_TEST(err.str().find("last good checkpoint") != std::string::npos);
  const jebm::SafeTensors st = jebm::load_safetensors(jebm::image_ebm_checkpoint_path(run.string()));
  BOOST_TEST(st.metadata.at("iteration") == "0");
  BOOST_TEST(st.metadata.at("burned_in") == "1");
  jebm::test::check_all_finite(st);
}

// A -inf largest log-weight (every walker's weight underflowed) is a divergence the guard names, not an internal
// error of the weight statistics; a failure with a healthy state is left to the caller.
BOOST_AUTO_TEST_CASE(divergence_guard_explains_a_failure_by_minus_inf_log_weights) {
  jebm::Generator gen{1, 0};
  jebm::Linear lin(4, 1, gen);
  const std::vector<jebm::ag::Var> params = lin.parameters();
  jebm::Adam adam(params, 1e-3);
  jebm::WalkerPopulation pop = jebm::WalkerPopulation::create(jebm::rand_uniform({3, 4}, -1, 1, gen), 1);
  jebm::DivergenceGuard guard(params, adam, pop, /*weighted=*/true);
  BOOST_TEST(!guard.explains_failure());
  BOOST_TEST(guard.check_parameters_and_optimizer());
  for (int64_t i = 0; i < 3; ++i) pop.log_w.data<double>()[i] = -std::numeric_limits<double>::infinity();
  BOOST_TEST(guard.explains_failure());
  BOOST_TEST(guard.reason().find("non-finite log-weight -inf of walker 0") != std::string::npos, guard.reason());
  guard.clear();
  jebm::Tensor w = params[0].value();  // shares the parameter's storage
  w.data<float>()[1] = std::numeric_limits<float>::quiet_NaN();
  BOOST_TEST(!guard.check_parameters_and_optimizer());
  BOOST_TEST(guard.reason().find("parameter 0, entry 1") != std::string::npos, guard.reason());
}

// experiments/progress.cpp: with stderr going to a file (not a terminal), the progress line is plain text lines,
// never '\r' redraws: the updates within the first interval print nothing, finish() prints one line.
BOOST_AUTO_TEST_CASE(progress_writes_plain_lines_when_stderr_is_not_a_terminal) {
  TempDir dir;
  const fs::path log = dir.path / "stderr.log";
  std::fflush(stderr);
  std::cerr.flush();
  const int saved = ::dup(STDERR_FILENO);
  const int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  BOOST_REQUIRE(saved >= 0 && fd >= 0);
  ::dup2(fd, STDERR_FILENO);
  {
    jebm::Progress prog("label", 3);
    for (int64_t i = 1; i <= 3; ++i) prog.update(i, "extra");
    prog.finish();
  }
  std::cerr.flush();
  ::dup2(saved, STDERR_FILENO);
  ::close(fd);
  ::close(saved);
  std::ifstream in(log);
  const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  BOOST_TEST_MESSAGE(text);
  BOOST_TEST(text.find('\r') == std::string::npos);
  BOOST_TEST(text.find("label 3/3 done in") == 0u);
  BOOST_TEST(std::count(text.begin(), text.end(), '\n') == 1);
}

// experiments/box_revert.cpp (--box): coordinates outside [-1, 1] of the listed walkers go back to x_prev; the
// others stay, and so do the walkers not listed.
BOOST_AUTO_TEST_CASE(box_revert_restores_only_coordinates_outside_the_box) {
  jebm::WalkerPopulation pop = jebm::WalkerPopulation::create(
      jebm::Tensor::from_vector(std::vector<float>{0.5f, 1.5f, -2.0f, 0.25f, 3.0f, -0.5f}, {3, 2}), 1);
  pop.x_prev = jebm::Tensor::from_vector(std::vector<float>{0.1f, 0.2f, 0.3f, 0.4f, 0.6f, 0.7f}, {3, 2});
  jebm::box_revert(pop, {0, 1});
  const std::vector<double> x = pop.x.to_vector();
  BOOST_TEST(x == (std::vector<double>{0.5, 0.2f, 0.3f, 0.25, 3.0, -0.5}), boost::test_tools::per_element());
  jebm::box_revert(pop, {});
  BOOST_TEST(pop.x.to_vector()[4] == 0.6f);
}

BOOST_AUTO_TEST_CASE(out_refuses_to_overwrite_without_force) {
  TempDir data, out;
  write_mnist(data.path, 5);
  const fs::path run = out.path / "run";
  const auto args = with(tiny_args(data.path, run, "pcd"), {"--epochs", "1", "--burn-in", "1"});
  BOOST_REQUIRE_EQUAL(jebm::run_mnist(args), 0);
  BOOST_CHECK_EXCEPTION(jebm::run_mnist(args), jebm::Error, [](const jebm::Error& e) {
    return std::string(e.what()).find("--force") != std::string::npos;
  });
  BOOST_TEST(jebm::run_mnist(with(args, {"--force"})) == 0);
}

BOOST_AUTO_TEST_CASE(bad_data_is_a_clear_error) {
  TempDir data, out;
  const fs::path run = out.path / "run";
  const auto has = [](const std::string& what) {
    return [what](const jebm::Error& e) { return std::string(e.what()).find(what) != std::string::npos; };
  };
  // Not a directory: the message names --data and the path.
  const std::string missing = (data.path / "nope").string();
  BOOST_CHECK_EXCEPTION(jebm::run_mnist(tiny_args(missing, run, "jarzynski")), jebm::Error, has("--data '" + missing));
  // A directory without MNIST files: the loader names the file it looked for.
  BOOST_CHECK_EXCEPTION(jebm::run_mnist(tiny_args(data.path, run, "jarzynski")), jebm::Error, has("train-images"));
  // A truncated image file: named as well.
  write_mnist(data.path, 5);
  fs::resize_file(data.path / "train-images-idx3-ubyte", 1000);
  BOOST_CHECK_EXCEPTION(jebm::run_mnist(tiny_args(data.path, run, "jarzynski")), jebm::Error, has("train-images-idx3-ubyte"));
  // Asking for more images of a digit than there are.
  write_mnist(data.path, 5);
  BOOST_CHECK_EXCEPTION(jebm::run_mnist(with(tiny_args(data.path, run, "jarzynski"), {"--counts", "50,2,1"})),
                        jebm::Error, [](const jebm::Error&) { return true; });
  BOOST_TEST(!fs::exists(run), "a failed start must not create the run directory");
  // A bad option value names the option.
  write_mnist(data.path, 5);
  BOOST_CHECK_EXCEPTION(jebm::run_mnist(with(tiny_args(data.path, run, "jarzynski"), {"--walkers", "0"})), jebm::Error,
                        has("--walkers 0"));
  BOOST_CHECK_EXCEPTION(jebm::run_mnist({"--resume", (out.path / "none").string()}), jebm::Error, has("--resume"));
}

// The log Z diagnostics (docs/method.md) in a tiny run: their columns and plot series, a training trajectory that the
// held-out walkers do not touch, an exact resume with both on, and a resume that changes them refused.
BOOST_AUTO_TEST_CASE(holdout_walkers_and_correction_groups) {
  TempDir data, out;
  write_mnist(data.path, 5);
  const auto has = [](const std::string& what) {
    return [what](const jebm::Error& e) { return std::string(e.what()).find(what) != std::string::npos; };
  };
  const fs::path plain = out.path / "plain", held = out.path / "held", full = out.path / "full", cut = out.path / "cut";
  const auto base = [&](const fs::path& run) { return tiny_args(data.path, run, "jarzynski"); };
  BOOST_REQUIRE_EQUAL(jebm::run_mnist(base(plain)), 0);
  BOOST_REQUIRE_EQUAL(jebm::run_mnist(with(base(held), {"--holdout-walkers", "5"})), 0);
  {  // The held-out walkers never enter the loss: parameters, optimiser state and walkers are those of the plain run.
    const jebm::SafeTensors a = jebm::load_safetensors(jebm::image_ebm_checkpoint_path(plain.string()));
    const jebm::SafeTensors b = jebm::load_safetensors(jebm::image_ebm_checkpoint_path(held.string()));
    for (const auto& [name, t] : a.tensors) {
      BOOST_TEST_CONTEXT("tensor " << name) {
        BOOST_REQUIRE(b.tensors.count(name));
        const jebm::Tensor& u = b.tensors.at(name);
        BOOST_REQUIRE(t.shape() == u.shape());
        BOOST_TEST(std::memcmp(t.raw_data(), u.raw_data(), t.nbytes()) == 0);
      }
    }
    BOOST_TEST(jebm::get(b, "holdout.x").shape() == (jebm::Shape{5, 1, 28, 28}));
    BOOST_TEST(b.metadata.at("holdout_walkers") == "5");
    BOOST_TEST(a.metadata.count("holdout_walkers") == 0u);
    // The plain run's columns are unchanged; the held-out ones are finite, the corrected ones absent.
    std::vector<std::string> ha, hb;
    const auto ra = csv_rows(plain / "metrics.csv", &ha), rb = csv_rows(held / "metrics.csv", &hb);
    BOOST_REQUIRE_EQUAL(ra.size(), rb.size());
    ha.erase(std::remove(ha.begin(), ha.end(), "time_s"), ha.end());
    hb.erase(std::remove(hb.begin(), hb.end(), "time_s"), hb.end());
    for (size_t k = 0; k < ha.size(); ++k) {
      const size_t kb = static_cast<size_t>(std::find(hb.begin(), hb.end(), ha[k]) - hb.begin());
      BOOST_REQUIRE(kb < hb.size());
      for (size_t i = 0; i < ra.size(); ++i) {
        const double x = ra[i][k], y = rb[i][kb];
        BOOST_TEST((x == y || (std::isnan(x) && std::isnan(y))), ha[k] << " of row " << i << ": " << x << " vs " << y);
      }
    }
    for (const char* col : {"holdout_log_z", "holdout_ce_estimate", "holdout_ess"}) {
      const size_t kb = static_cast<size_t>(std::find(hb.begin(), hb.end(), col) - hb.begin());
      BOOST_REQUIRE_MESSAGE(kb < hb.size(), col);
      for (const auto& r : rb) BOOST_TEST(std::isfinite(r[kb]), col);
    }
    BOOST_TEST((std::find(hb.begin(), hb.end(), "log_z_corrected") == hb.end()));
  }
  // Both on: an interrupted and resumed run equals the uninterrupted one (the correction changes the gradient's
  // summation order, so it is compared only with itself).
  const std::vector<std::string> both = {"--holdout-walkers", "5", "--correction-groups", "2"};
  BOOST_REQUIRE_EQUAL(jebm::run_mnist(with(base(full), both)), 0);
  BOOST_REQUIRE_EQUAL(jebm::run_mnist(with(with(base(cut), both), {"--interrupt-at", "4"})), 130);
  BOOST_CHECK_EXCEPTION(jebm::run_mnist({"--resume", cut.string(), "--holdout-walkers", "3", "--no-progress"}),
                        jebm::Error, has("--holdout-walkers 5 (its options.txt), the options say --holdout-walkers 3"));
  BOOST_CHECK_EXCEPTION(jebm::run_mnist({"--resume", cut.string(), "--correction-groups", "0", "--no-progress"}),
                        jebm::Error, has("--correction-groups 2 (its options.txt), the options say --correction-groups 0"));
  BOOST_REQUIRE_EQUAL(jebm::run_mnist({"--resume", cut.string(), "--no-progress"}), 0);
  check_identical_checkpoints(jebm::image_ebm_checkpoint_path(full.string()),
                              jebm::image_ebm_checkpoint_path(cut.string()));
  std::vector<std::string> header;
  const auto rows = csv_rows(full / "metrics.csv", &header);
  BOOST_TEST(same_bits(rows, csv_rows(cut / "metrics.csv")));
  header.erase(std::remove(header.begin(), header.end(), "time_s"), header.end());  // csv_rows drops it
  const size_t lz = static_cast<size_t>(std::find(header.begin(), header.end(), "log_z") - header.begin());
  const size_t lc = static_cast<size_t>(std::find(header.begin(), header.end(), "log_z_corrected") - header.begin());
  BOOST_REQUIRE(lc < header.size());
  BOOST_TEST(rows.front()[lc] == rows.front()[lz]);  // nothing to correct before the first update
  bool corrected = false;
  for (const auto& r : rows) {
    BOOST_TEST(std::isfinite(r[lc]));
    corrected = corrected || r[lc] != r[lz];
  }
  BOOST_TEST(corrected, "the correction never moved the estimate");
  std::ifstream svg(full / "metrics.svg");
  const std::string text((std::istreambuf_iterator<char>(svg)), std::istreambuf_iterator<char>());
  for (const char* series : {"CE estimate, held-out walkers", "CE estimate, corrected", "ESS (held-out walkers)"})
    BOOST_TEST(text.find(series) != std::string::npos, series);
  // Bad values name the option.
  BOOST_CHECK_EXCEPTION(jebm::run_mnist(with(base(out.path / "bad"), {"--correction-groups", "1"})), jebm::Error,
                        has("--correction-groups 1"));
  BOOST_CHECK_EXCEPTION(jebm::run_mnist(with(tiny_args(data.path, out.path / "bad", "pcd"), {"--holdout-walkers", "2"})),
                        jebm::Error, has("--holdout-walkers 2"));
}

// --resume compares every option given (command line or --config) with the run's options.txt,
// not only --algo/--seed/--walkers; only the documented list may change. Used to accept --digits 2,3,7, --counts,
// --data-batch, --h, --noise, ... silently.
BOOST_AUTO_TEST_CASE(resume_refuses_any_changed_run_option) {
  TempDir data, out;
  write_mnist(data.path, 5);
  const auto has = [](const std::string& what) {
    return [what](const jebm::Error& e) {
      BOOST_TEST_MESSAGE(e.what());
      return std::string(e.what()).find(what) != std::string::npos;
    };
  };
  const fs::path cut = out.path / "cut";
  BOOST_REQUIRE_EQUAL(jebm::run_mnist(with(tiny_args(data.path, cut, "jarzynski"), {"--interrupt-at", "4"})), 130);
  const std::string options_before = jebm::read_file((cut / "options.txt").string());
  const auto resume = [&](const std::vector<std::string>& more) {
    return with({"--resume", cut.string(), "--no-progress"}, more);
  };
  const std::vector<std::pair<std::vector<std::string>, std::string>> changed = {
      {{"--digits", "2,3,7"}, "--digits 2,3,6 (its options.txt), the options say --digits 2,3,7"},
      {{"--counts", "4,2,2"}, "--counts 4,2,1 (its options.txt), the options say --counts 4,2,2"},
      {{"--data-batch", "1"}, "--data-batch 2 (its options.txt), the options say --data-batch 1"},
      {{"--h", "0.02"}, "--h 0.01 (its options.txt), the options say --h 0.02"},
      {{"--noise", "0.06"}, "--noise 0.05 (its options.txt), the options say --noise 0.06"},
      {{"--box"}, "--box false (its options.txt), the options say --box true"},
      {{"--resample", "systematic"}, "--resample multinomial (its options.txt), the options say --resample systematic"},
      {{"--weight-kernel", "sigma"}, "--weight-kernel 2h (its options.txt), the options say --weight-kernel sigma"},
      // Adding a classifier would also add columns under the existing header.
      {{"--classifier", "c.safetensors"}, "--classifier (not set) (its options.txt does not name it), the options say --classifier c.safetensors"},
  };
  for (const auto& [args, message] : changed)
    BOOST_TEST_CONTEXT(args.front()) {
      BOOST_CHECK_EXCEPTION(jebm::run_mnist(resume(args)), jebm::Error, has(message));
    }
  // The message lists what may change.
  BOOST_CHECK_EXCEPTION(jebm::run_mnist(resume({"--h", "0.02"})), jebm::Error, has("only --epochs, --threads"));
  // --config on resume is compared too.
  std::ofstream(out.path / "c.ini") << "lr = 0.5\n";
  BOOST_CHECK_EXCEPTION(jebm::run_mnist(resume({"--config", (out.path / "c.ini").string()})), jebm::Error,
                        has("--lr 0.01 (its options.txt), the options say --lr 0.5"));
  // An option the run's options.txt lacks (a run older than the option) counts as its default (mnist: alpha 0.01).
  {
    std::string text = options_before, kept;
    std::istringstream in(text);
    for (std::string line; std::getline(in, line);)
      if (line.rfind("alpha =", 0) != 0) kept += line + "\n";
    jebm::write_file_atomic((cut / "options.txt").string(), kept);
    BOOST_CHECK_EXCEPTION(jebm::run_mnist(resume({"--alpha", "0.5"})), jebm::Error,
                          has("--alpha 0.01 (its options.txt does not name it), the options say --alpha 0.5"));
  }
  BOOST_TEST(jebm::read_file((cut / "options.txt").string()).find("alpha =") == std::string::npos,
             "a refused resume must not rewrite options.txt");
  // Same values (another spelling) and the documented changeable options are accepted.
  BOOST_REQUIRE_EQUAL(jebm::run_mnist(resume({"--h", "1e-2", "--alpha", "0.01", "--threads", "1", "--log-every", "2",
                                              "--grid-count", "4", "--checkpoint-every", "2", "--eval-chunk", "3"})),
                      0);
}

// The shared options' ranges: refused at parse time naming option, value and range, and shown in --help.
BOOST_AUTO_TEST_CASE(image_option_ranges) {
  TempDir data, out;
  write_mnist(data.path, 5);
  const auto has = [](const std::string& what) {
    return [what](const jebm::Error& e) { return std::string(e.what()).find(what) != std::string::npos; };
  };
  const fs::path run = out.path / "run";
  for (const auto& [args, message] : std::vector<std::pair<std::vector<std::string>, std::string>>{
           {{"--data-noise", "inf"}, "--data-noise inf is outside its range (>= 0)"},
           {{"--beta1", "1"}, "--beta1 1 is outside its range (in [0, 1))"},
           {{"--lr-floor", "nan"}, "--lr-floor nan"},
           {{"--drift-clip", "-inf"}, "--drift-clip -inf"},
           {{"--threads", "100000"}, "--threads 100000 is outside its range (in [0, 4096])"},
           {{"--rejuvenation-moves", "-1"}, "--rejuvenation-moves -1 is outside its range (>= 0)"},
           {{"--rejuvenation-moves", "2", "--resample", "none"}, "--rejuvenation-moves 2 needs resampling (got --resample none)"},
           {{"--weight-kernel", "4h"}, "--weight-kernel 4h: expected 2h, sigma or tempered"},
           {{"--weight-kernel", "tempered", "--correction-groups", "3"},
            "--correction-groups 3 is not available with --weight-kernel tempered"}})
    BOOST_TEST_CONTEXT(args.front()) {
      BOOST_CHECK_EXCEPTION(jebm::run_mnist(with(tiny_args(data.path, run, "jarzynski"), args)), jebm::Error, has(message));
    }
  std::ostringstream help;
  auto* old = std::cout.rdbuf(help.rdbuf());
  const int rc = jebm::run_mnist({"--help"});
  std::cout.rdbuf(old);
  BOOST_TEST(rc == 0);
  std::string text;  // Boost wraps long descriptions: compare with the blanks collapsed
  for (char ch : help.str())
    if (!std::isspace(static_cast<unsigned char>(ch)) || (!text.empty() && text.back() != ' ')) text += std::isspace(static_cast<unsigned char>(ch)) ? ' ' : ch;
  for (const char* r : {"(in [0, 1))", "(>= 0)", "(> 0)", "may be given with other values", "--checkpoint-every"})
    BOOST_TEST(text.find(r) != std::string::npos, r);
}
