// `jebm cifar10`: the paper's CIFAR-10 run (50,000 training images, CifarEnergyCNN, 4096 walkers,
// one subset of 256 x 60 ULA moves per update, gradient walkers = the walkers just moved), Jarzynski or PCD, on
// the shared image loop of experiments/image_ebm.hpp; metric: a Frechet distance on the features of a
// `jebm cifar10-classifier` checkpoint (NOT Inception FID) and that classifier's class histogram of the walkers.
// Tested by tests/test_cifar10.cpp (synthetic CIFAR binaries: a short run, resume, NaN guard, the metric).
#include <algorithm>
#include <filesystem>
#include <iomanip>
#include <iostream>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "experiments/classifier_cmd.hpp"
#include "experiments/datasets.hpp"
#include "experiments/image_ebm.hpp"
#include "runtime/checked_size.hpp"
#include "runtime/comm/communicator.hpp"
#include "experiments/metrics.hpp"
#include "models/energy_nets.hpp"
#include "runtime/user_error.hpp"

namespace jebm {

namespace po = boost::program_options;

namespace {

// CIFAR-10's label names, in label order (the dataset's batches.meta.txt).
const char* const kCifarClassNames[10] = {"airplane", "automobile", "bird", "cat",  "deer",
                                          "dog",      "frog",       "horse", "ship", "truck"};

constexpr const char* kNotFid =
    "this Frechet distance uses the penultimate features of jebm's own CIFAR-10 classifier, NOT Inception-v3: it "
    "is NOT FID and NOT comparable with published FIDs (only with other jebm runs using the same classifier)";

// The first n images of a split as a [-1, 1] float32 tensor [n, 3, 32, 32].
Tensor first_images(const CifarSplit& s, int64_t n) {
  constexpr int64_t kPixels = CifarSplit::kChannels * CifarSplit::kHeight * CifarSplit::kWidth;
  const std::vector<uint8_t> px(s.pixels.begin(), s.pixels.begin() + n * kPixels);
  return images_to_tensor(px, n, CifarSplit::kChannels, CifarSplit::kHeight, CifarSplit::kWidth, DType::Float32);
}

}  // namespace

ImageEbmConfig cifar10_defaults() {
  // The paper and its official CIFAR-10 code; every value is an option of `jebm cifar10`.
  ImageEbmConfig c;
  c.command = "cifar10";
  c.walkers = 4096;
  c.burn_in = 8000;
  c.h = 1.0;
  c.sigma = 0.01;
  c.drift_clip = 0.3;
  c.box_revert = false;  // offered (--box) only with its warning: it breaks the weights
  c.moving_subsets = 1;
  c.moving_batch = 256;
  c.moves_per_update = 60;
  c.gradient_batch = 256;         // only the first update (nothing moved yet) draws a random subset
  c.gradient_walkers_moved = true;
  c.alpha = 0.01;
  c.lr = 1e-4;
  c.beta1 = 0.0;
  c.beta2 = 0.999;
  c.grad_clip = 1000.0;
  c.lr_decay_epochs = 600;
  c.lr_floor = 0.0;  // linear decay to 0 over the 600 epochs
  c.epochs = 600;
  c.resample = true;
  c.resample_scheme = ResampleScheme::Multinomial;
  c.resample_cv = 0.0;
  c.resample_ess = 0.0;
  c.resample_batch_ess = 64.0;
  c.resample_after_epoch = 100;
  c.data_batch = 512;
  c.data_noise = 0.03;
  return c;
}

int run_cifar10(const std::vector<std::string>& args) {
  ImageEbmConfig c = cifar10_defaults();
  std::string data_dir, classifier_path;
  int64_t train_images = 50000, fid_test_images = 2000, fid_every = 10;
  ImageEbmOptionStrings s;
  // fid-test-images >= 2: the Frechet distance needs a covariance.
  const OptionRanges R = {{"train-images", at_least(0)}, {"fid-test-images", at_least(2)}, {"fid-every", at_least(0)}};
  po::options_description desc(
      "jebm cifar10: train CifarEnergyCNN on CIFAR-10 with Jarzynski-weighted Langevin walkers or PCD\n"
      "(Carbone, Hua, Coste, Vanden-Eijnden, NeurIPS 2023). Defaults are the paper's setup.\n"
      "Where jebm differs from the official code:\n"
      " * weights: the official code moves with noise std 0.01 (not sqrt(2h) = 1.41) but keeps the 1/(4h)\n"
      "   factor of the N(., 2h) kernel; --weight-kernel 2h (the default) does the same (not the weights of the\n"
      "   chain simulated); --weight-kernel sigma is the consistent 1/(2 sigma^2), whose ESS collapses with the\n"
      "   cold default noise (T = sigma^2/(2h) = 5e-5). --noise 0 gives sigma = sqrt(2h): both coincide.\n"
      " * the drift clamp (+-0.3 per pixel) is part of the move, so the weights use the clamped drift too.\n"
      " * no [-1,1] box by default (--box: with a warning, it breaks the weight formula).\n"
      " * one network pass per move (the cost rule in docs/method.md), not three.\n"
      "Metric (--classifier): the Frechet distance between the penultimate features of a `jebm cifar10-classifier`\n"
      "of the weighted walkers (PCD: uniform weights) and of --fid-test-images held-out test images, plus that\n"
      "classifier's predicted-class histogram of the weighted walkers (mode coverage). This Frechet distance is\n"
      "NOT Inception FID and NOT comparable with published FIDs.\n"
      "Cost: the paper's 600 epochs took about 36 h (Jarzynski) / 34 h (PCD) on one A100.\n\nOptions");
  // clang-format off
  desc.add_options()
      ("help,h", "this text")
      ("data", po::value(&data_dir),
       "directory with CIFAR-10's data_batch_1..5.bin (and test_batch.bin for the metric), plain or .gz")
      ("train-images", po::value(&train_images)->default_value(train_images),
       R.help("train-images", "use the first this many training images in file order; 0 = all (the paper: all 50,000)").c_str())
      ("classifier", po::value(&classifier_path),
       "classifier checkpoint from `jebm cifar10-classifier` for the Frechet distance and the class histogram of "
       "the walkers in metrics.csv; without it those metrics are skipped")
      ("fid-test-images", po::value(&fid_test_images)->default_value(fid_test_images),
       R.help("fid-test-images", "held-out test images (the first ones of test_batch.bin) for the Frechet distance "
              "(jebm's choice: 2000, enough for 128-dimensional feature moments)").c_str())
      ("fid-every", po::value(&fid_every)->default_value(fid_every),
       R.help("fid-every", "Frechet distance and class histogram every this many epochs, and at the last update; "
              "0 = only at the last (jebm's choice: 10, with the grids)").c_str());
  // clang-format on
  register_image_ebm_options(desc, c, s, "the paper's CIFAR-10 setup");
  std::vector<std::pair<std::string, std::string>> saved;
  bool go = true;
  // Under mpirun: the same options give the same error on every rank, printed once.
  agree_on_errors(world(), [&] {
    go = parse_image_ebm_args(args, desc, "usage: jebm cifar10 --data DIR --out DIR [options]", c, s, saved, R);
  });
  if (!go) return 0;

  JEBM_USER_CHECK(!data_dir.empty(), "--data DIR is required (the CIFAR-10 binaries; see jebm cifar10 --help)");
  JEBM_USER_CHECK(std::filesystem::is_directory(data_dir), "--data '" << data_dir << "' is not a directory");
  if (!classifier_path.empty())
    JEBM_USER_CHECK(std::filesystem::is_regular_file(classifier_path), "--classifier '" << classifier_path << "': no such file");

  const CifarSplit train = load_cifar10(data_dir, true);
  const int64_t m = train_images == 0 ? train.count : train_images;
  JEBM_USER_CHECK(m <= train.count, "--train-images " << train_images << ": --data '" << data_dir << "' holds only "
                                                 << train.count << " training images");
  JEBM_USER_CHECK(m >= c.data_batch, "--train-images " << m << " is fewer than --data-batch " << c.data_batch);

  ImageEbmProblem p;
  p.data = first_images(train, m);
  p.make_energy = [](Generator& gen) { return std::make_shared<CifarEnergyCNN>(gen); };
  if (!classifier_path.empty()) {
    auto clf = std::make_shared<Classifier>(load_classifier(classifier_path, ClassifierKind::Cifar10));
    clf->module().to(c.device);  // --device cuda: features and predictions of the walkers on the device too
    const CifarSplit test = load_cifar10(data_dir, false);
    JEBM_USER_CHECK(fid_test_images <= test.count, "--fid-test-images " << fid_test_images << ": test_batch in --data '"
                                                                    << data_dir << "' holds only " << test.count);
    const auto test_mc = std::make_shared<MeanCov>(weighted_mean_cov(features(*clf, first_images(test, fid_test_images))));
    // The scale of the number: real training images against the same test images.
    const int64_t ref_n = std::min<int64_t>(m, std::max<int64_t>(fid_test_images, 2));
    const double ref = frechet_distance(weighted_mean_cov(features(*clf, p.data.rows(0, ref_n))), *test_mc);
    const auto acc = clf->metadata.find("test_accuracy");
    if (world().rank() == 0)
      std::cerr << "jebm cifar10: note: " << kNotFid << ".\n  classifier " << classifier_path << " (test accuracy "
              << (acc != clf->metadata.end() ? acc->second : std::string("unknown"))
              << "; a weak classifier gives weak features); reference: " << ref_n
              << " real training images vs " << fid_test_images << " test images score " << std::setprecision(4)
              << ref << "\n";
    p.metric_names.push_back("frechet_clf");
    for (int k : clf->classes) p.metric_names.push_back("class_" + std::string(kCifarClassNames[k]));
    p.metrics = [clf, test_mc](const Tensor& x, const std::vector<double>& w) {
      std::vector<double> v = {frechet_distance(weighted_mean_cov(features(*clf, x), w), *test_mc)};
      const std::vector<double> h = class_histogram(predict(*clf, x), w, clf->num_classes());
      v.insert(v.end(), h.begin(), h.end());
      return v;
    };
    p.metrics_every = checked_mul(fid_every, m / c.data_batch, "--fid-every " + std::to_string(fid_every) + " x " +
                                  std::to_string(m / c.data_batch) + " updates per epoch (images / --data-batch)");
  } else {
    if (world().rank() == 0)
      std::cerr << "jebm cifar10: no --classifier: the Frechet distance and class histogram of the walkers are not "
                 "measured (train one with `jebm cifar10-classifier` and pass its classifier.safetensors)\n";
  }
  const int rc = run_image_ebm_command(c, p, saved);
  if (rc == 0 && p.metrics && world().rank() == 0) std::cout << "  note: frechet_clf is NOT Inception FID; not comparable with published FIDs\n";
  return rc;
}

}  // namespace jebm
