// `jebm mnist`: the paper's MNIST run (first 5600 twos, 2800 threes, 1400 sixes; target weights
// 4/7, 2/7, 1/7) with MnistEnergyCNN, Jarzynski or PCD, on the shared image loop of experiments/image_ebm.hpp;
// the per-digit weights of the walkers come from a `jebm mnist-classifier` checkpoint. --downsample 2 trains on
// 2x2-averaged 14x14 digits (the CPU-scale setup). Tested by tests/test_image_ebm.cpp (synthetic IDX
// files: a short run, resume, overwrite refusal, bad --data) and tests/test_mnist_cpu.cpp (--downsample 2
// end to end, classifier mismatches, the experiments/presets/mnist-cpu.ini preset) and
// tests/test_classifier_reject.cpp (the metrics with and without a reject class).
#include <filesystem>
#include <iostream>
#include <memory>
#include <numeric>
#include <string>
#include <vector>

#include "experiments/metric_classifier.hpp"
#include "experiments/cli.hpp"
#include "experiments/datasets.hpp"
#include "experiments/downsample.hpp"
#include "experiments/image_ebm.hpp"
#include "runtime/comm/communicator.hpp"
#include "experiments/metrics.hpp"
#include "models/energy_nets.hpp"
#include "runtime/user_error.hpp"

namespace jebm {

namespace po = boost::program_options;

namespace {

constexpr int64_t kMnistSide = 28;

// The --classifier of a run: an MNIST classifier of the run's digits and image size. The messages name the option,
// the file and both values.
std::shared_ptr<Classifier> load_mnist_run_classifier(const std::string& path, const std::string& digits_s,
                                                      const std::vector<int>& digits, int64_t downsample, int64_t side) {
  JEBM_USER_CHECK(std::filesystem::is_regular_file(path), "--classifier '" << path << "': no such file (train one with "
                                                     "jebm mnist-classifier --digits " << digits_s << " --downsample "
                                                     << downsample << ")");
  auto clf = std::make_shared<Classifier>(load_classifier(path, ClassifierKind::Mnist));
  std::string classes;
  for (size_t k = 0; k < clf->classes.size(); ++k) classes += (k ? "," : "") + std::to_string(clf->classes[k]);
  JEBM_USER_CHECK(clf->classes == digits, "--classifier '" << path << "' tells apart digits " << classes
                                                       << ", but --digits is " << digits_s
                                                       << " (train one with jebm mnist-classifier --digits "
                                                       << digits_s << ")");
  JEBM_USER_CHECK(clf->image_size == side,
             "--classifier '" << path << "' was trained on " << clf->image_size << "x" << clf->image_size
                              << " images, but this run's are " << side << "x" << side << " (--downsample "
                              << downsample << "; train one with jebm mnist-classifier --downsample " << downsample
                              << ")");
  return clf;
}


// The classifier's metrics of the walkers: the weighted digit fractions (p.class_weights) and metrics.csv's
// tv_to_target, confident_frac and, with a reject class, rejected_weight.
void add_classifier_metrics(ImageEbmProblem& p, const std::shared_ptr<Classifier>& clf, const ImageEbmConfig& c) {
  clf->module().to(c.device);  // --device cuda: the per-digit weights are measured on the device too
  // With a reject class the digit fractions are over the weight it does not reject (split_reject).
  p.class_weights = [clf](const Tensor& x, const std::vector<double>& w) {
    return split_reject(class_histogram(predict(*clf, x), w, clf->num_classes()), clf->reject).classes;
  };
  // Two readings of the claim: how far the weighted digit fractions are from 4:2:1, and whether the
  // walkers look like digits at all (fractions of noise mean nothing): the share the classifier labels with
  // probability > 0.9 (unweighted: how many walkers, not how much weight), and with a reject class the share of
  // the weight it rejects.
  p.metric_names = {"tv_to_target", "confident_frac"};
  if (clf->reject) p.metric_names.push_back("rejected_weight");
  const std::vector<double> targets = p.class_targets;
  p.metrics = [clf, targets](const Tensor& x, const std::vector<double>& w) {
    const ClassWeights cw = split_reject(class_histogram(predict(*clf, x), w, clf->num_classes()), clf->reject);
    std::vector<double> m = {total_variation(cw.classes, targets), fraction_above(max_probability(*clf, x), 0.9)};
    if (clf->reject) m.push_back(cw.rejected);
    return m;
  };
  p.metrics_every = c.log_every;
}

}  // namespace


ImageEbmConfig mnist_defaults() {
  // The official code's values (table in docs/experiments.md).
  ImageEbmConfig c;
  c.command = "mnist";
  c.walkers = 1024;
  c.burn_in = 20000;
  c.h = 5e-5;
  c.sigma = 1e-4;
  c.drift_clip = 0.0;
  c.box_revert = false;  // the official code reverts; off here because it breaks the weights
  c.moving_subsets = 6;
  c.moving_batch = 256;
  c.moves_per_update = 30;
  c.gradient_batch = 256;
  c.alpha = 0.01;
  c.lr = 1e-4;
  c.beta1 = 0.0;
  c.beta2 = 0.999;
  c.grad_clip = 1.0;
  c.lr_decay_epochs = 500;
  c.lr_floor = 1e-10;
  c.epochs = 600;
  c.resample = true;
  c.resample_scheme = ResampleScheme::Multinomial;
  c.resample_cv = 1.5;
  c.resample_after_epoch = 150;
  c.data_batch = 128;
  c.data_noise = 0.0;
  return c;
}

int run_mnist(const std::vector<std::string>& args) {
  ImageEbmConfig c = mnist_defaults();
  std::string data_dir, digits_s = "2,3,6", counts_s = "5600,2800,1400", classifier_path;
  int64_t downsample = 1;
  ImageEbmOptionStrings s;
  po::options_description desc(
      "jebm mnist: train MnistEnergyCNN on MNIST digits with Jarzynski-weighted Langevin walkers or PCD\n"
      "(Carbone, Hua, Coste, Vanden-Eijnden, NeurIPS 2023). Defaults are the official code's.\n"
      "Weights: the official code moves with noise std 1e-4 (not sqrt(2h) = 1e-2) but keeps the 1/(4h) factor\n"
      "of the N(., 2h) kernel in the weights. --weight-kernel 2h (the default) does the same: the paper's\n"
      "weights, which are NOT the Jarzynski weights of the chain simulated. --weight-kernel sigma uses the\n"
      "consistent 1/(2 sigma^2); with the cold default noise (the moves sample exp(-U/T), T = sigma^2/(2h) =\n"
      "1e-4) its ESS collapses within an epoch. --noise 0 gives sigma = sqrt(2h), where both coincide.\n"
      "Moves: --moving-subsets 6 fresh random subsets of --moving-batch 256 walkers make --moves-per-update 30\n"
      "moves each, one subset after the other, per parameter update (the official 6 x 30).\n"
      "--downsample 2 trains on 2x2-averaged 14x14 digits (4x fewer pixels; the same energy network), a deviation\n"
      "for CPU-scale runs; --classifier must then come from `jebm mnist-classifier --downsample 2`.\n\nOptions");
  // clang-format off
  desc.add_options()
      ("help,h", "this text")
      ("data", po::value(&data_dir), "directory with MNIST train-images-idx3-ubyte and train-labels-idx1-ubyte (plain or .gz)")
      ("digits", po::value(&digits_s)->default_value(digits_s), "digits of the training set (the official code: 2,3,6)")
      ("counts", po::value(&counts_s)->default_value(counts_s),
       "how many of each digit, the first ones in file order (the official code: 5600,2800,1400, target weights 4/7, 2/7, 1/7)")
      ("classifier", po::value(&classifier_path),
       "classifier checkpoint from `jebm mnist-classifier` (same --digits and --downsample) for the per-digit "
       "weights of the walkers in metrics.csv; without it that metric is skipped. One trained with --reject counts "
       "the weight it does not reject (the digit fractions are renormalised over it) and adds rejected_weight")
      ("downsample", po::value(&downsample)->default_value(downsample),
       "1: the 28x28 digits (the official code's) | 2: the mean of each 2x2 pixel block, 14x14 digits (a deviation for "
       "CPU-scale runs; the walkers are 14x14 too)");
  // clang-format on
  register_image_ebm_options(desc, c, s, "the official MNIST code");
  std::vector<std::pair<std::string, std::string>> saved;
  bool go = true;
  // Under mpirun: the same options give the same error on every rank, printed once.
  agree_on_errors(world(), [&] {
    go = parse_image_ebm_args(args, desc, "usage: jebm mnist --data DIR --out DIR [options]", c, s, saved);
  });
  if (!go) return 0;

  JEBM_USER_CHECK(!data_dir.empty(), "--data DIR is required (the MNIST files; see jebm mnist --help)");
  JEBM_USER_CHECK(std::filesystem::is_directory(data_dir), "--data '" << data_dir << "' is not a directory");
  const std::vector<int64_t> digit_list = parse_int64_list(digits_s, "--digits");
  const std::vector<int64_t> counts = parse_int64_list(counts_s, "--counts");
  JEBM_USER_CHECK(digit_list.size() == counts.size(), "--digits '" << digits_s << "' has " << digit_list.size() << " entries, --counts '"
                                                          << counts_s << "' has " << counts.size());
  for (int64_t d : digit_list) JEBM_USER_CHECK(d >= 0 && d <= 9, "--digits '" << digits_s << "': " << d << " is not a digit");
  const std::vector<int> digits(digit_list.begin(), digit_list.end());
  for (int64_t n : counts) JEBM_USER_CHECK(n >= 1, "--counts '" << counts_s << "': " << n << " must be at least 1");
  check_downsample_factor(downsample, "--downsample");
  const int64_t side = kMnistSide / downsample;

  // The classifier first: a mismatch must stop the run before any work and before the run directory exists.
  std::shared_ptr<Classifier> clf;
  if (!classifier_path.empty()) clf = load_mnist_run_classifier(classifier_path, digits_s, digits, downsample, side);

  const MnistSplit train = load_mnist(data_dir, true);
  const std::vector<int64_t> idx = select_digits(train.labels, digits, counts);
  const int64_t hw = train.rows * train.cols;
  std::vector<uint8_t> px(static_cast<size_t>(static_cast<int64_t>(idx.size()) * hw));
  for (size_t i = 0; i < idx.size(); ++i)
    std::copy_n(train.pixels.begin() + idx[i] * hw, hw, px.begin() + static_cast<int64_t>(i) * hw);
  JEBM_USER_CHECK(train.rows == kMnistSide && train.cols == kMnistSide,
             "--data '" << data_dir << "': MNIST images are " << train.rows << "x" << train.cols << ", want 28x28");

  ImageEbmProblem p;
  p.data = downsampled_images_to_tensor(px, static_cast<int64_t>(idx.size()), 1, train.rows, train.cols, downsample);
  p.make_energy = [](Generator& gen) { return std::make_shared<MnistEnergyCNN>(gen); };
  const double total = static_cast<double>(std::accumulate(counts.begin(), counts.end(), int64_t{0}));
  for (size_t k = 0; k < digits.size(); ++k) {
    p.class_names.push_back(std::to_string(digits[k]));
    p.class_targets.push_back(static_cast<double>(counts[k]) / total);
  }
  if (clf) {
    add_classifier_metrics(p, clf, c);
  } else {
    p.class_names.clear();
    if (world().rank() == 0)
      std::cerr << "jebm mnist: no --classifier: the per-digit weights of the walkers are not measured (train a "
                 "classifier with `jebm mnist-classifier` and pass its classifier.safetensors)\n";
  }
  return run_image_ebm_command(c, p, saved);
}

}  // namespace jebm
