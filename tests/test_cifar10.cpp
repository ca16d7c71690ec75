// Tests for experiments/cifar10.cpp on tiny synthetic CIFAR-10 binaries written here
// (plain and gzip): the loader; a short `jebm cifar10` run writes CSV (Frechet + class histogram)/PNG/checkpoint
// and an interrupted + resumed run is bit-identical; the Trainer options it relies on (gradient walkers = the
// walkers just moved, resampling on the batch ESS); the divergence guard on an injected NaN; `jebm sample` on the
// run's checkpoint (grid size; its own tests are in tests/test_sample.cpp); the Frechet distance of identical
// feature sets is ~0.
#include <zlib.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <limits>
#include <memory>
#include <sstream>

#include "experiments/classifier_cmd.hpp"
#include "experiments/datasets.hpp"
#include "experiments/image_ebm.hpp"
#include "experiments/metrics.hpp"
#include "experiments/output.hpp"
#include "experiments/png.hpp"
#include "models/checkpoint.hpp"
#include "models/energy_nets.hpp"
#include "models/layers.hpp"
#include "runtime/cuda_api.hpp"
#include "samplers/trainer.hpp"
#include "tests/helpers.hpp"
#include "tests/run_helpers.hpp"

namespace jebm {
int run_cifar10(const std::vector<std::string>& args);
int run_sample(const std::vector<std::string>& args);
}  // namespace jebm

namespace fs = std::filesystem;
using jebm::test::TempDir;
using jebm::test::check_identical_checkpoints;
using jebm::test::csv_rows;
using jebm::test::same_bits;
using jebm::test::with;

namespace {

using jebm::test::Bytes;
using jebm::test::cifar_records;
using jebm::test::write_cifar;

std::vector<std::string> tiny_args(const fs::path& data, const fs::path& out, const std::string& algo) {
  // 8 images, batch 4: 2 updates per epoch; 6 walkers, subsets of 3 making 2 moves. A hot sampler so that the
  // weights spread and resampling (batch ESS < 2.9 of 3) fires: the test is about bookkeeping, not quality.
  return {"--data", data.string(), "--out", out.string(), "--algo", algo, "--train-images", "8",
          "--data-batch", "4", "--walkers", "6", "--burn-in", "2", "--moving-batch", "3", "--gradient-batch", "3",
          "--moves-per-update", "2", "--epochs", "2", "--h", "0.01", "--noise", "0.05", "--lr", "0.01",
          "--resample-after-epoch", "0", "--resample-batch-ess", "2.9", "--grid-every", "1", "--grid-count", "4",
          "--fid-every", "1", "--fid-test-images", "5", "--no-progress", "--threads", "1"};
}

auto has(const std::string& what) {
  return [what](const jebm::Error& e) {
    const bool ok = std::string(e.what()).find(what) != std::string::npos;
    if (!ok) std::cerr << "message \"" << e.what() << "\" lacks \"" << what << "\"\n";
    return ok;
  };
}

std::string untrained_classifier(const fs::path& dir) {
  jebm::Classifier clf = jebm::make_classifier(jebm::ClassifierKind::Cifar10, {0, 1, 2, 3, 4, 5, 6, 7, 8, 9}, 3);
  const std::string path = (dir / "clf.safetensors").string();
  jebm::save_classifier(path, clf, {});
  return path;
}

// The CIFAR energy, but its forward returns NaN from its `nan_after`-th call on.
class PoisonedCifarEnergy : public jebm::Module {
 public:
  PoisonedCifarEnergy(jebm::Generator& gen, int64_t nan_after) : nan_after_(nan_after) {
    net_ = register_module("net", std::make_shared<jebm::CifarEnergyCNN>(gen));
  }
  jebm::ag::Var forward(const jebm::ag::Var& x) override {
    jebm::ag::Var u = (*net_)(x);
    if (++calls_ >= nan_after_) u = jebm::ag::mul_scalar(u, std::numeric_limits<double>::quiet_NaN());
    return u;
  }

 private:
  std::shared_ptr<jebm::CifarEnergyCNN> net_;
  int64_t nan_after_, calls_ = 0;
};

}  // namespace

BOOST_AUTO_TEST_CASE(cifar_loader_reads_plain_and_gzip_batches) {
  TempDir data;
  write_cifar(data.path, 3, 4);
  const jebm::CifarSplit train = jebm::load_cifar10(data.path.string(), true);
  BOOST_REQUIRE_EQUAL(train.count, 15);  // 5 batches x 3, in batch order (gzip and plain mixed)
  const Bytes want = cifar_records(0, 15);
  for (int64_t i = 0; i < 15; ++i) {
    BOOST_TEST(train.labels[static_cast<size_t>(i)] == want[static_cast<size_t>(i * 3073)]);
    BOOST_TEST(std::equal(train.pixels.begin() + i * 3072, train.pixels.begin() + (i + 1) * 3072,
                          want.begin() + i * 3073 + 1));
  }
  const jebm::CifarSplit test = jebm::load_cifar10(data.path.string(), false);
  BOOST_TEST(test.count == 4);
  const jebm::Tensor t = jebm::images_to_tensor(train.pixels, 15, 3, 32, 32);
  const std::vector<double> v = t.to_vector();
  BOOST_TEST(*std::min_element(v.begin(), v.end()) >= -1.0);
  BOOST_TEST(*std::max_element(v.begin(), v.end()) <= 1.0);
  BOOST_TEST(v[0] == 2.0 * want[1] / 255.0 - 1.0, boost::test_tools::tolerance(1e-6));
  // A record cut short: the message names the file.
  fs::resize_file(data.path / "data_batch_3.bin", 3073 * 2 + 10);
  BOOST_CHECK_EXCEPTION(jebm::load_cifar10(data.path.string(), true), jebm::Error, has("data_batch_3.bin"));
}

BOOST_AUTO_TEST_CASE(short_cifar10_run_writes_outputs_and_resumes_bit_identically) {
  TempDir data, out;
  write_cifar(data.path, 3, 6);
  const std::string clf = untrained_classifier(data.path);
  for (const std::string algo : {"jarzynski", "pcd"}) {
    BOOST_TEST_CONTEXT("--algo " << algo) {
      const fs::path full = out.path / ("full-" + algo), cut = out.path / ("cut-" + algo);
      BOOST_REQUIRE_EQUAL(jebm::run_cifar10(with(tiny_args(data.path, full, algo), {"--classifier", clf})), 0);
      std::vector<std::string> header;
      const auto rows = csv_rows(full / "metrics.csv", &header);
      BOOST_REQUIRE_EQUAL(rows.size(), 4u);  // 2 epochs x 2 updates
      const auto col = [&](const std::string& name) {
        const auto it = std::find(header.begin(), header.end(), name);
        BOOST_REQUIRE_MESSAGE(it != header.end(), "no column " << name);
        return static_cast<size_t>(it - header.begin()) - (it > std::find(header.begin(), header.end(), "time_s") ? 1 : 0);
      };
      const size_t fr = col("frechet_clf"), c0 = col("class_airplane"), c9 = col("class_truck"), be = col("batch_ess");
      BOOST_TEST(c9 == c0 + 9);
      for (size_t i = 0; i < rows.size(); ++i) {
        BOOST_TEST_CONTEXT("row " << i) {
          BOOST_TEST(rows[i][be] >= 1.0 - 1e-9);
          BOOST_TEST(rows[i][be] <= 3.0 + 1e-9);  // the 3 gradient walkers
          // --fid-every 1: the first update of each epoch (rows 0 and 2) and the last one carry the metric.
          if (i == 1) {
            BOOST_TEST(std::isnan(rows[i][fr]));
            continue;
          }
          BOOST_TEST(std::isfinite(rows[i][fr]));
          BOOST_TEST(rows[i][fr] >= 0.0);
          double s = 0;
          for (size_t k = c0; k <= c9; ++k) s += rows[i][k];
          BOOST_TEST(std::fabs(s - 1.0) < 1e-9, "class histogram sums to " << s);
        }
      }
      if (algo == "jarzynski") {
        BOOST_TEST(rows.back()[col("resamplings")] > 0, "resampling never fired; the resume would not cover it");
      } else {
        BOOST_TEST(rows.back()[col("resamplings")] == 0);
        for (const auto& r : rows) BOOST_TEST(r[be] == 3.0, boost::test_tools::tolerance(1e-12));
      }
      for (const char* f : {"data.png", "samples_burnin.png", "samples_epoch1.png", "samples_final.png", "options.txt"})
        BOOST_TEST(fs::exists(full / f), f);
      const jebm::PngImage png = jebm::read_png((full / "samples_final.png").string());
      BOOST_TEST(png.channels == 3);
      BOOST_TEST(png.width == 2 * 34 + 2);  // 4 walkers, 2 columns, 2 pixels of padding
      const jebm::SafeTensors st = jebm::load_safetensors(jebm::image_ebm_checkpoint_path(full.string()));
      BOOST_TEST(st.metadata.at("command") == "cifar10");
      BOOST_TEST(st.metadata.at("iteration") == "4");
      BOOST_TEST(jebm::get(st, "walkers.x").shape() == (jebm::Shape{6, 3, 32, 32}));
      BOOST_TEST(jebm::get(st, "model.0.weight").shape() == (jebm::Shape{64, 3, 3, 3}));

      // Ctrl-C after update 0 (mid-epoch), then --resume from its options.txt: bit-identical.
      BOOST_REQUIRE_EQUAL(jebm::run_cifar10(with(tiny_args(data.path, cut, algo), {"--classifier", clf, "--interrupt-at", "0"})), 130);
      BOOST_TEST(jebm::load_safetensors(jebm::image_ebm_checkpoint_path(cut.string())).metadata.at("iteration") == "1");
      BOOST_REQUIRE_EQUAL(jebm::run_cifar10({"--resume", cut.string(), "--no-progress"}), 0);
      check_identical_checkpoints(jebm::image_ebm_checkpoint_path(full.string()), jebm::image_ebm_checkpoint_path(cut.string()));
      BOOST_TEST(same_bits(csv_rows(full / "metrics.csv"), csv_rows(cut / "metrics.csv")));

      // jebm sample on the run's checkpoint: 5 samples -> 3 columns x 2 rows of 32x32 RGB tiles.
      if (algo == "jarzynski") {
        const fs::path sampled = out.path / "sampled", grid = sampled / "samples.png";
        BOOST_REQUIRE_EQUAL(jebm::run_sample({"--checkpoint", jebm::image_ebm_checkpoint_path(full.string()), "--steps",
                                              "2", "--n", "5", "--out", sampled.string(), "--no-progress", "--threads",
                                              "1"}),
                            0);
        const jebm::PngImage g = jebm::read_png(grid.string());
        BOOST_TEST(g.channels == 3);
        BOOST_TEST(g.width == 3 * 34 + 2);
        BOOST_TEST(g.height == 2 * 34 + 2);
        BOOST_TEST(!fs::exists(grid.string() + ".tmp"));
      }
    }
  }
}

BOOST_AUTO_TEST_CASE(bad_cifar10_options_are_clear_errors) {
  TempDir data, out;
  const fs::path run = out.path / "run";
  const std::string missing = (data.path / "nope").string();
  BOOST_CHECK_EXCEPTION(jebm::run_cifar10(tiny_args(missing, run, "jarzynski")), jebm::Error, has("--data '" + missing));
  BOOST_CHECK_EXCEPTION(jebm::run_cifar10(tiny_args(data.path, run, "jarzynski")), jebm::Error, has("data_batch_1.bin"));
  write_cifar(data.path, 1, 2);  // 5 training images
  BOOST_CHECK_EXCEPTION(jebm::run_cifar10(tiny_args(data.path, run, "jarzynski")), jebm::Error, has("--train-images 8"));
  BOOST_CHECK_EXCEPTION(jebm::run_cifar10(with(tiny_args(data.path, run, "jarzynski"), {"--gradient-walkers", "all"})),
                        jebm::Error, has("--gradient-walkers all"));
  BOOST_CHECK_EXCEPTION(jebm::run_cifar10(with(tiny_args(data.path, run, "jarzynski"), {"--classifier", missing})),
                        jebm::Error, has("--classifier '" + missing));
  BOOST_TEST(!fs::exists(run), "a failed start must not create the run directory");
}

// The two Trainer options behind the CIFAR-10 loop: the loss uses the walkers whose moves were just completed, and the
// resampling trigger is their (renormalised) ESS.
BOOST_AUTO_TEST_CASE(gradient_walkers_are_the_walkers_just_moved) {
  jebm::Generator gen{5, 0};
  auto net = std::make_shared<jebm::Sequential>();
  net->emplace<jebm::Flatten>();
  net->emplace<jebm::Linear>(4, 1, gen);
  struct Energy : jebm::Module {
    std::shared_ptr<jebm::Sequential> s;
    explicit Energy(std::shared_ptr<jebm::Sequential> n) { s = register_module("s", std::move(n)); }
    jebm::ag::Var forward(const jebm::ag::Var& x) override { return jebm::ag::reshape((*s)(x), {x.size(0)}); }
  } energy(net);
  for (const double threshold : {0.5, 1e9}) {
    jebm::Generator wg{7, 0};
    jebm::WalkerPopulation pop = jebm::WalkerPopulation::create(jebm::rand_uniform({10, 4}, -1, 1, wg), 11);
    jebm::TrainerOptions to;
    to.ula.h = 0.05;
    to.ula.sigma = 0.2;
    to.moving_batch = 4;
    to.moves_per_update = 2;
    to.gradient_batch = 3;  // the first step only: nothing has moved yet
    to.gradient_walkers_moved = true;
    to.resample_batch_ess = threshold;
    jebm::Trainer tr(energy, pop, to);
    tr.data_batch = [](int64_t) { return jebm::Tensor::from_vector(std::vector<float>(8, 0.5f), {2, 4}); };
    tr.optimizer_step = [&](int64_t) {
      for (auto& p : energy.parameters()) jebm::add_(p.value(), p.grad(), -0.1);
    };
    std::vector<int64_t> moved;
    double want = -1;
    tr.weights_ready = [&](const jebm::WalkerPopulation& w, const jebm::TrainerStepInfo&) {
      if (moved.empty()) return;
      std::vector<double> lw;
      for (int64_t i : moved) lw.push_back(w.log_w.data<double>()[i]);
      double s2 = 0;
      for (double v : jebm::normalized_weights(lw)) s2 += v * v;
      want = 1.0 / s2;
    };
    for (int step = 0; step < 4; ++step) {
      moved = tr.state().walkers.last_moved;
      const jebm::TrainerStepInfo info = tr.step();
      if (step == 0) {
        BOOST_TEST(moved.empty());
        BOOST_TEST(info.batch_ess <= 3.0 + 1e-12);  // the random subset of 3
        continue;
      }
      BOOST_REQUIRE_EQUAL(moved.size(), 4u);
      BOOST_TEST(info.batch_ess == want, boost::test_tools::tolerance(1e-12));
      BOOST_TEST(info.batch_ess < 4.0);  // the moves spread the weights
      BOOST_TEST(info.resampled == (threshold > 1.0));
    }
  }
}

BOOST_AUTO_TEST_CASE(divergence_guard_triggers_on_injected_nan) {
  TempDir out;
  jebm::ImageEbmConfig c = jebm::cifar10_defaults();
  c.walkers = 4;
  c.burn_in = 1;
  c.h = 0.01;
  c.sigma = 0.05;
  c.drift_clip = 0.3;
  c.moving_subsets = 1;
  c.moving_batch = 2;
  c.moves_per_update = 1;
  c.gradient_batch = 2;
  c.gradient_walkers_moved = true;
  c.resample_batch_ess = 1.5;
  c.resample_after_epoch = 0;
  c.data_batch = 2;
  c.epochs = 10;
  c.lr = 0.01;
  c.progress = false;
  c.out = (out.path / "run").string();
  const jebm::RunDirLock lock = jebm::prepare_run_dir(c.out, false, false);
  jebm::ImageEbmProblem p;
  jebm::Generator dg{3, 0};
  p.data = jebm::rand_uniform({4, 3, 32, 32}, -1, 1, dg);  // 2 updates per epoch
  // Burn-in: 1 call; first update: 4 (all walkers, data, gradient walkers, move), then 4 each (complete, others'
  // parameter change, data, gradient walkers, move = 5 minus the skipped ones). NaN from call 12: update 2 or 3.
  p.make_energy = [](jebm::Generator& gen) { return std::make_shared<PoisonedCifarEnergy>(gen, 12); };
  const int64_t bad = jebm::test::check_diverged_run(jebm::run_image_ebm(c, p), c.out, 2);
  BOOST_TEST(bad >= 2);
}

BOOST_AUTO_TEST_CASE(frechet_of_identical_feature_sets_is_zero) {
  // The run's metric path: classifier features of images, weighted moments, Frechet distance.
  jebm::Classifier clf = jebm::make_classifier(jebm::ClassifierKind::Cifar10, {0, 1, 2, 3, 4, 5, 6, 7, 8, 9}, 3);
  const Bytes rec = cifar_records(0, 12);
  Bytes px;
  for (int64_t i = 0; i < 12; ++i) px.insert(px.end(), rec.begin() + i * 3073 + 1, rec.begin() + (i + 1) * 3073);
  const jebm::Tensor x = jebm::images_to_tensor(px, 12, 3, 32, 32);
  const jebm::Tensor f = jebm::features(clf, x);
  const jebm::MeanCov a = jebm::weighted_mean_cov(f), b = jebm::weighted_mean_cov(jebm::features(clf, x, 5));
  double scale = 0;
  for (int64_t j = 0; j < a.cov.n; ++j) scale += a.cov(j, j);
  BOOST_REQUIRE(scale > 0);
  BOOST_TEST(jebm::frechet_distance(a, b) < 1e-6 * scale);
  // Equal weights written out explicitly are the same set.
  const std::vector<double> w(12, 1.0 / 12);
  BOOST_TEST(jebm::frechet_distance(jebm::weighted_mean_cov(f, w), a) < 1e-6 * scale);
  // A different set is not at distance 0.
  const jebm::MeanCov half = jebm::weighted_mean_cov(f.rows(0, 6));
  BOOST_TEST(jebm::frechet_distance(half, a) > 1e-3 * scale);
}
