// `jebm mnist-classifier` and `jebm cifar10-classifier`: train the metric classifiers of the image experiments
// (>= 98 % on the three MNIST digits; the features of the CIFAR-10 Frechet distance), plus
// the checkpoint and batched-inference helpers of classifier_cmd.hpp. Tested by tests/test_classifier_cmd.cpp.
#include "experiments/classifier_cmd.hpp"

#include <boost/program_options.hpp>
#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <limits>
#include <numeric>
#include <set>
#include <sstream>

#include "autograd/engine.hpp"
#include "experiments/cli.hpp"
#include "experiments/cli_options.hpp"
#include "experiments/datasets.hpp"
#include "experiments/downsample.hpp"
#include "experiments/module_io.hpp"
#include "experiments/output.hpp"
#include "experiments/version.hpp"
#include "models/checkpoint.hpp"
#include "models/optim.hpp"
#include "runtime/checked_size.hpp"
#include "runtime/cuda_api.hpp"
#include "runtime/philox.hpp"
#include "runtime/shuffle.hpp"
#include "runtime/user_error.hpp"

namespace jebm {

// --- Classifier ----------------------------------------------------------------------------------------------

namespace {

constexpr const char* kFormat = "jebm-classifier-v1";

std::string join_ints(const std::vector<int>& v) {
  std::string s;
  for (size_t i = 0; i < v.size(); ++i) s += (i ? "," : "") + std::to_string(v[i]);
  return s;
}

// "2,3,6" -> {2, 3, 6}; `what` names the option or field for the error message.
std::vector<int> parse_ints(const std::string& text, const std::string& what) {
  std::vector<int> out;
  for (int64_t v : parse_int64_list(text, what)) {
    JEBM_USER_CHECK(v >= std::numeric_limits<int>::min() && v <= std::numeric_limits<int>::max(),
               what << " '" << text << "': " << v << " is out of range");
    out.push_back(static_cast<int>(v));
  }
  return out;
}

void check_classes(const std::vector<int>& classes, const std::string& what) {
  JEBM_USER_CHECK(classes.size() >= 2, what << ": " << classes.size() << " classes (" << join_ints(classes)
                                       << "), need at least 2");
  std::set<int> seen;
  for (int c : classes) {
    JEBM_USER_CHECK(c >= 0 && c <= 9, what << ": class " << c << " is not a label 0..9");
    JEBM_USER_CHECK(seen.insert(c).second, what << ": class " << c << " listed twice in '" << join_ints(classes) << "'");
  }
}

std::string image_size_text(int64_t side) { return std::to_string(side) + "x" + std::to_string(side); }

}  // namespace

const char* classifier_kind_name(ClassifierKind kind) {
  return kind == ClassifierKind::Mnist ? "mnist" : "cifar10";
}

const std::vector<int64_t>& classifier_image_sizes(ClassifierKind kind) {
  static const std::vector<int64_t> mnist = {28, 14}, cifar = {32};
  return kind == ClassifierKind::Mnist ? mnist : cifar;
}

Module& Classifier::module() {
  JEBM_CHECK(model, "Classifier: no model (default-constructed?)");
  return *model;
}

int64_t Classifier::feature_dim() const {
  return kind == ClassifierKind::Mnist ? MnistClassifier::kFeatureDim : CifarClassifier::kFeatureDim;
}

Shape Classifier::input_shape() const {
  return kind == ClassifierKind::Mnist ? Shape{1, image_size, image_size} : Shape{3, 32, 32};
}

Device Classifier::device() const {
  JEBM_CHECK(model, "Classifier: no model (default-constructed?)");
  const auto params = model->parameters();
  return params.empty() ? Device::cpu() : params.front().device();
}

ag::Var Classifier::logits(const ag::Var& x) { return static_cast<ConvClassifier&>(module()).forward(x); }
ag::Var Classifier::features(const ag::Var& x) { return static_cast<ConvClassifier&>(module()).features(x); }

Classifier make_classifier(ClassifierKind kind, const std::vector<int>& classes, uint64_t seed, int64_t image_size) {
  check_classes(classes, "make_classifier");
  const std::vector<int64_t>& sizes = classifier_image_sizes(kind);
  if (image_size == 0) image_size = sizes.front();
  JEBM_USER_CHECK(std::find(sizes.begin(), sizes.end(), image_size) != sizes.end(),
             "make_classifier: a " << classifier_kind_name(kind) << " classifier of " << image_size_text(image_size)
                                   << " images is not offered");
  Classifier c;
  c.kind = kind;
  c.classes = classes;
  c.image_size = image_size;
  Generator gen{seed, 0};
  const auto n = static_cast<int64_t>(classes.size());
  if (kind == ClassifierKind::Mnist)
    c.model = std::make_shared<MnistClassifier>(n, gen, DType::Float32, image_size);
  else
    c.model = std::make_shared<CifarClassifier>(n, gen);
  return c;
}

void save_classifier(const std::string& path, Classifier& c, const std::map<std::string, std::string>& metadata) {
  std::vector<std::pair<std::string, Tensor>> tensors;
  for (const auto& [name, var] : c.module().named_parameters()) tensors.emplace_back(name, var.value());
  std::map<std::string, std::string> meta = metadata;
  meta["format"] = kFormat;
  meta["kind"] = classifier_kind_name(c.kind);
  meta["classes"] = join_ints(c.classes);
  meta["num_classes"] = std::to_string(c.num_classes());
  meta["feature_dim"] = std::to_string(c.feature_dim());
  meta["image_size"] = image_size_text(c.image_size);
  save_safetensors(path, tensors, meta);
  c.metadata = meta;
}

Classifier load_classifier(const std::string& path, std::optional<ClassifierKind> expect_kind,
                           const std::vector<int>& expect_classes) {
  JEBM_USER_CHECK(std::filesystem::is_regular_file(path), "load_classifier: no classifier checkpoint at '" << path
                                                         << "' (train one with jebm mnist-classifier / cifar10-classifier)");
  const SafeTensors st = reading_user_file([&] { return load_safetensors(path); });
  auto field = [&](const std::string& key) -> const std::string& {
    const auto it = st.metadata.find(key);
    JEBM_USER_CHECK(it != st.metadata.end(), "load_classifier: '" << path << "' has no metadata field '" << key
                                                             << "' (not a jebm classifier checkpoint?)");
    return it->second;
  };
  JEBM_USER_CHECK(field("format") == kFormat, "load_classifier: '" << path << "' metadata format is '" << field("format")
                                                              << "', want '" << kFormat << "'");
  const std::string& kind_name = field("kind");
  JEBM_USER_CHECK(kind_name == "mnist" || kind_name == "cifar10",
             "load_classifier: '" << path << "' metadata kind is '" << kind_name << "', want mnist or cifar10");
  const ClassifierKind kind = kind_name == "mnist" ? ClassifierKind::Mnist : ClassifierKind::Cifar10;
  JEBM_USER_CHECK(!expect_kind || *expect_kind == kind, "load_classifier: '" << path << "' is a " << kind_name
                                                   << " classifier, want " << classifier_kind_name(*expect_kind));
  const std::vector<int> classes = parse_ints(field("classes"), "load_classifier: '" + path + "' metadata classes");
  check_classes(classes, "load_classifier: '" + path + "' metadata classes");
  JEBM_USER_CHECK(field("num_classes") == std::to_string(classes.size()),
             "load_classifier: '" << path << "' metadata num_classes " << field("num_classes") << " but classes are "
                                  << join_ints(classes));
  JEBM_USER_CHECK(expect_classes.empty() || expect_classes == classes,
             "load_classifier: '" << path << "' classifies " << join_ints(classes) << ", want "
                                  << join_ints(expect_classes));

  // Checkpoints from before the field existed were all of the kind's native size.
  int64_t image_size = classifier_image_sizes(kind).front();
  if (const auto it = st.metadata.find("image_size"); it != st.metadata.end()) {
    image_size = 0;
    for (int64_t s : classifier_image_sizes(kind))
      if (it->second == image_size_text(s)) image_size = s;
    JEBM_USER_CHECK(image_size > 0, "load_classifier: '" << path << "' metadata image_size is '" << it->second
                                                    << "', not one a " << kind_name << " classifier takes");
  }
  Classifier c = make_classifier(kind, classes, 0, image_size);
  std::set<std::string> expected;
  for (const auto& [name, var] : c.module().named_parameters()) expected.insert(name);
  load_module_parameters(c.module(), st, "");  // names file, tensor, shapes
  for (const auto& [name, t] : st.tensors)
    JEBM_USER_CHECK(expected.count(name), "load_classifier: '" << path << "' holds unexpected tensor '" << name << "' "
                                                          << shape_str(t.shape()) << " for a " << kind_name
                                                          << " classifier");
  c.metadata = st.metadata;
  c.module().eval();
  return c;
}

namespace {

// Runs `fn` on each batch of rows (moved to the classifier's device, float32), without a graph, in eval mode.
template <typename Fn> void for_each_batch(Classifier& c, const Tensor& images, int64_t batch_size, Fn fn) {
  Shape want = c.input_shape();
  want.insert(want.begin(), images.dim() > 0 ? images.size(0) : 0);
  JEBM_CHECK(images.shape() == want, classifier_kind_name(c.kind) << " classifier: images " << shape_str(images.shape())
                                                                  << ", want " << shape_str(want));
  JEBM_CHECK(batch_size >= 1, "classifier: batch_size " << batch_size << " must be >= 1");
  const bool was_training = c.module().is_training();
  c.module().eval();
  ag::NoGradGuard no_grad;
  const Device dev = c.device();
  for (int64_t b = 0; b < images.size(0); b += batch_size) {
    const Tensor x = images.rows(b, std::min(b + batch_size, images.size(0))).to(dev).to(DType::Float32);
    fn(ag::Var(x));
  }
  c.module().train(was_training);
}

}  // namespace

std::vector<int64_t> predict(Classifier& c, const Tensor& images, int64_t batch_size) {
  std::vector<int64_t> out;
  out.reserve(static_cast<size_t>(images.dim() > 0 ? images.size(0) : 0));
  for_each_batch(c, images, batch_size, [&](const ag::Var& x) {
    const std::vector<int64_t> p = argmax_rows(c.logits(x).value());
    out.insert(out.end(), p.begin(), p.end());
  });
  return out;
}

std::vector<double> max_probability(Classifier& c, const Tensor& images, int64_t batch_size) {
  std::vector<double> out;
  out.reserve(static_cast<size_t>(images.dim() > 0 ? images.size(0) : 0));
  for_each_batch(c, images, batch_size, [&](const ag::Var& x) {
    const Tensor logits = c.logits(x).value();
    const int64_t rows = logits.size(0), cols = logits.size(1);
    const std::vector<double> l = logits.to_vector();
    for (int64_t i = 0; i < rows; ++i) {
      const double* li = l.data() + i * cols;
      const double m = *std::max_element(li, li + cols);
      double s = 0.0;
      for (int64_t j = 0; j < cols; ++j) s += std::exp(li[j] - m);
      out.push_back(1.0 / s);  // softmax at the largest logit: e^0 / sum_j e^(l_j - m)
    }
  });
  return out;
}

Tensor features(Classifier& c, const Tensor& images, int64_t batch_size) {
  std::vector<Tensor> parts;
  for_each_batch(c, images, batch_size,
                 [&](const ag::Var& x) { parts.push_back(c.features(x).value().to(Device::cpu()).clone()); });
  if (parts.empty()) return Tensor::zeros({0, c.feature_dim()});
  return parts.size() == 1 ? parts.front() : concat(parts, 0);
}

double accuracy(Classifier& c, const Tensor& images, const std::vector<int64_t>& labels, int64_t batch_size) {
  const std::vector<int64_t> p = predict(c, images, batch_size);
  JEBM_CHECK(p.size() == labels.size(), "accuracy: " << labels.size() << " labels for " << p.size() << " images");
  JEBM_CHECK(!p.empty(), "accuracy: no images");
  int64_t right = 0;
  for (size_t i = 0; i < p.size(); ++i) right += p[i] == labels[i];
  return static_cast<double>(right) / static_cast<double>(p.size());
}

// --- training ------------------------------------------------------------------------------------------------

namespace {

// A labelled image set kept as uint8 (CIFAR-10 as float would be 600 MB); batches are converted on the fly,
// downsampled by `downsample` (block means, experiments/downsample.hpp) on the way.
struct ImageSet {
  int64_t count = 0, channels = 0, height = 0, width = 0;  // as stored
  int64_t downsample = 1;
  std::vector<uint8_t> pixels;  // [count, channels, height, width]
  std::vector<int64_t> labels;  // class indices 0..C-1
  int64_t image_bytes() const { return channels * height * width; }
  int64_t out_height() const { return height / downsample; }
  int64_t out_width() const { return width / downsample; }
};

// Keeps the images whose label is one of `classes` (relabelled to the class index), at most `limit` of them
// (0: all), in file order.
ImageSet select(const std::vector<uint8_t>& pixels, const std::vector<uint8_t>& labels, int64_t c, int64_t h,
                int64_t w, const std::vector<int>& classes, int64_t limit) {
  ImageSet s;
  s.channels = c;
  s.height = h;
  s.width = w;
  std::vector<int> index_of(256, -1);
  for (size_t k = 0; k < classes.size(); ++k) index_of[static_cast<size_t>(classes[k])] = static_cast<int>(k);
  const int64_t bytes = c * h * w;
  for (size_t i = 0; i < labels.size(); ++i) {
    if (limit > 0 && s.count >= limit) break;
    const int k = index_of[labels[i]];
    if (k < 0) continue;
    s.pixels.insert(s.pixels.end(), pixels.begin() + static_cast<int64_t>(i) * bytes,
                    pixels.begin() + static_cast<int64_t>(i + 1) * bytes);
    s.labels.push_back(k);
    ++s.count;
  }
  return s;
}

// Images idx (flipped left-right where flip[i]) as a float32 [B, C, H/f, W/f] tensor in [-1, 1] on `device`,
// scaled as the image experiments scale their data (downsampled_images_to_tensor), so that the classifier sees
// the walkers' space exactly.
Tensor make_batch(const ImageSet& s, const std::vector<int64_t>& idx, const std::vector<bool>& flip, Device device) {
  const auto b = static_cast<int64_t>(idx.size());
  const int64_t oh = s.out_height(), ow = s.out_width(), out_numel = s.channels * oh * ow;
  Tensor t = Tensor::empty({b, s.channels, oh, ow});
  float* p = t.data<float>();
  for (int64_t i = 0; i < b; ++i) {
    float* dst = p + i * out_numel;
    downsample_to_unit_range(s.pixels.data() + idx[static_cast<size_t>(i)] * s.image_bytes(), s.channels, s.height,
                             s.width, s.downsample, dst);
    if (!flip.empty() && flip[static_cast<size_t>(i)])
      for (int64_t r = 0; r < s.channels * oh; ++r) std::reverse(dst + r * ow, dst + (r + 1) * ow);
  }
  return t.to(device);
}

struct TrainOptions {
  std::string data, out, device = "cpu";
  bool force = false;
  std::string digits = "2,3,6";
  int64_t epochs = 0, batch_size = 0, limit = 0;
  double lr = 0.0;
  uint64_t seed = 1;
  int threads = 0;
  bool no_progress = false;
  std::string config;
  bool flip = false;
  int64_t downsample = 1;  // mnist-classifier only
};

struct TrainResult {
  double test_accuracy = 0.0;
  int64_t train_count = 0, test_count = 0;
  double seconds = 0.0;
};

std::string fmt(double v, const char* f = "%.6g") {
  char buf[64];
  std::snprintf(buf, sizeof buf, f, v);
  return buf;
}

// Adam on cross-entropy with the learning rate decayed linearly to 0 over all steps (a short run ends at a low
// lr, which is worth a few tenths of a percent of accuracy over a constant lr). Writes metrics.csv per epoch.
TrainResult train_and_save(const TrainOptions& o, Classifier& c, const ImageSet& train, const ImageSet& test,
                           const std::filesystem::path& out_dir, const std::string& title) {
  const Device dev = device_from_name(o.device);
  c.module().to(dev);
  c.module().train();
  Adam adam(c.module().parameters(), o.lr);
  const int64_t steps_per_epoch = ceil_div(train.count, o.batch_size);
  const int64_t total_steps = checked_mul(steps_per_epoch, o.epochs, "--epochs " + std::to_string(o.epochs) + " x " +
                                          std::to_string(steps_per_epoch) + " steps per epoch (images / --batch-size)");
  const LinearDecayLR schedule(o.lr, total_steps, 0.0);
  CsvWriter csv(out_dir / "metrics.csv", {"epoch", "train_loss", "train_accuracy", "test_accuracy", "lr", "seconds"});

  std::vector<int64_t> test_idx(static_cast<size_t>(test.count));
  std::iota(test_idx.begin(), test_idx.end(), 0);
  const Tensor test_images = make_batch(test, test_idx, {}, Device::cpu());

  TrainResult r;
  r.train_count = train.count;
  r.test_count = test.count;
  const auto start = std::chrono::steady_clock::now();
  int64_t step = 0;
  std::cout << title << ": " << train.count << " training images, " << test.count << " test images ("
            << shape_str(c.input_shape()) << " each), classes "
            << join_ints(c.classes) << ", " << o.epochs << " epochs of " << steps_per_epoch << " steps (batch "
            << o.batch_size << "), Adam lr " << o.lr << " -> 0, " << dev.str() << ", "
            << omp_get_max_threads() << " threads\n";
  for (int64_t epoch = 0; epoch < o.epochs; ++epoch) {
    const std::vector<int64_t> order = philox_permutation(train.count, o.seed, static_cast<uint64_t>(epoch));
    Progress progress("epoch " + std::to_string(epoch + 1) + "/" + std::to_string(o.epochs), steps_per_epoch,
                      !o.no_progress);
    double loss_sum = 0.0;
    int64_t right = 0;
    for (int64_t s = 0; s < steps_per_epoch; ++s, ++step) {
      const int64_t b0 = s * o.batch_size, b1 = std::min(b0 + o.batch_size, train.count);
      std::vector<int64_t> idx(order.begin() + b0, order.begin() + b1), labels;
      std::vector<bool> flip;
      for (int64_t i : idx) {
        labels.push_back(train.labels[static_cast<size_t>(i)]);
        // Stream 2^40 + i keeps the flip draws apart from the shuffle's streams 0..N-1.
        if (o.flip) flip.push_back(philox_block(o.seed, (uint64_t{1} << 40) + static_cast<uint64_t>(i),
                                                static_cast<uint64_t>(epoch)).v[0] & 1u);
      }
      const ag::Var x(make_batch(train, idx, flip, dev));
      adam.set_lr(schedule.lr_at(step));
      adam.zero_grad();
      const ag::Var logits = c.logits(x);
      const ag::Var loss = cross_entropy(logits, labels);
      ag::backward(loss);
      adam.step();
      const double l = loss.value().item();
      JEBM_USER_CHECK(std::isfinite(l), title << ": training loss is " << l << " at epoch " << epoch + 1 << " step "
                                         << s + 1 << " (lower --lr, now " << o.lr << ")");
      loss_sum += l * static_cast<double>(idx.size());
      const std::vector<int64_t> p = argmax_rows(logits.value());
      for (size_t i = 0; i < p.size(); ++i) right += p[i] == labels[i];
      progress.update(s + 1, "loss " + fmt(loss_sum / static_cast<double>(b1), "%.4f"));
    }
    progress.finish();
    r.test_accuracy = accuracy(c, test_images, test.labels);
    c.module().train();
    r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    const double train_acc = static_cast<double>(right) / static_cast<double>(train.count);
    csv.row({static_cast<double>(epoch + 1), loss_sum / static_cast<double>(train.count), train_acc, r.test_accuracy,
             adam.lr(), r.seconds});
    std::cout << "epoch " << epoch + 1 << ": train loss " << fmt(loss_sum / static_cast<double>(train.count), "%.4f")
              << ", train accuracy " << fmt(100 * train_acc, "%.2f") << "%, test accuracy "
              << fmt(100 * r.test_accuracy, "%.2f") << "% (" << fmt(r.seconds, "%.1f") << " s)\n";
  }
  c.module().to(Device::cpu());
  c.module().eval();
  const std::filesystem::path ckpt = out_dir / "classifier.safetensors";
  std::map<std::string, std::string> meta = {{"test_accuracy", fmt(r.test_accuracy, "%.6f")},
                                             {"test_count", std::to_string(r.test_count)},
                                             {"train_count", std::to_string(r.train_count)},
                                             {"epochs", std::to_string(o.epochs)},
                                             {"batch_size", std::to_string(o.batch_size)},
                                             {"lr", fmt(o.lr)},
                                             {"seed", std::to_string(o.seed)},
                                             {"train_seconds", fmt(r.seconds, "%.1f")},
                                             {"data", o.data}};
  if (c.kind == ClassifierKind::Mnist) meta["digits"] = join_ints(c.classes);  // same as "classes"; for readers
  for (const auto& [k, v] : run_provenance(1)) meta[k] = v;  // what made it (jebm.version, ...)
  save_classifier(ckpt.string(), c, meta);
  std::cout << title << ": test accuracy " << fmt(100 * r.test_accuracy, "%.2f") << "% on " << r.test_count
            << " test images of classes " << join_ints(c.classes) << " after " << fmt(r.seconds, "%.1f")
            << " s; saved " << ckpt.string() << "\n";
  return r;
}

namespace po = boost::program_options;

// Shared options; the defaults differ per data set (see the two entry points).
// The valid range of every numeric option (--help shows it; parse() checks it).
const OptionRanges& classifier_ranges() {
  static const OptionRanges r = {{"epochs", within(1, 1000000)}, {"batch-size", at_least(1)}, {"lr", above(0)},
                                 {"seed", any_value()},   {"limit", at_least(0)},      {"threads", within(0, 4096)},
                                 // mnist-classifier only: 1 = 28x28 digits, 2 = 14x14 block means.
                                 {"downsample", within(1, 2)}};
  return r;
}

// epochs_note: what the command's default --epochs gives, measured (each data set its own).
po::options_description common_options(TrainOptions& o, const TrainOptions& defaults, const std::string& epochs_note) {
  o = defaults;
  const OptionRanges& R = classifier_ranges();
  po::options_description d;
  shared_option::help(d);
  shared_option::version(d);
  d.add_options()("data", po::value(&o.data), "directory holding the data set files (plain or .gz; required)");
  shared_option::out(d, o.out, "options.txt, metrics.csv, classifier.safetensors (required)");
  shared_option::force(d, o.force);
  d.add_options()
      ("epochs", po::value(&o.epochs)->default_value(defaults.epochs), R.help("epochs", "passes over the training images (" + epochs_note + ")").c_str())
      ("batch-size", po::value(&o.batch_size)->default_value(defaults.batch_size), R.help("batch-size", "images per Adam step (a common choice for small CNNs)").c_str())
      ("lr", po::value(&o.lr)->default_value(defaults.lr), R.help("lr", "Adam learning rate at the start, decayed linearly to 0 (PyTorch's Adam default 1e-3)").c_str())
      ("limit", po::value(&o.limit)->default_value(defaults.limit), R.help("limit", "use only the first N training images of the chosen classes (0: all; for tests and quick runs)").c_str())
      ;
  shared_option::seed(d, o.seed);
  shared_option::threads(d, o.threads);
  shared_option::device(d, o.device, "where the classifier trains");
  shared_option::no_progress(d, o.no_progress);
  shared_option::config(d, o.config);
  return d;
}

// Parses and validates; returns false when --help was asked (the text is printed).
bool parse(const std::vector<std::string>& args, po::options_description& desc, const std::string& usage,
           TrainOptions& o) {
  po::variables_map vm;
  try {
    po::store(po::command_line_parser(args).options(desc).run(), vm);
    if (vm.count("help")) {
      std::cout << usage << "\n" << help_text(desc);
      return false;
    }
    if (vm.count("config")) {  // after the command line, which wins
      const std::string file = vm["config"].as<std::string>();
      std::ifstream f(file);
      JEBM_USER_CHECK(f, "--config " << file << ": cannot read the file");
      try {
        po::store(po::parse_config_file(f, desc), vm);
      } catch (const po::error& e) {
        JEBM_USER_FAIL("--config " << file << ": " << option_error_text(e, desc) << " (see " << usage << ")");
      }
    }
    po::notify(vm);
  } catch (const po::error& e) {
    JEBM_USER_FAIL(option_error_text(e, desc) << " (see " << usage << ")");
  }
  JEBM_USER_CHECK(!o.data.empty(), "--data DIR is required (see " << usage << ")");
  JEBM_USER_CHECK(!o.out.empty(), "--out DIR is required (see " << usage << ")");
  classifier_ranges().check(vm);
  JEBM_USER_CHECK(std::filesystem::is_directory(o.data), "--data '" << o.data << "' is not a directory");
  const Device dev = device_from_name(o.device);
  if (dev.is_cuda()) cuda_api::require("--device cuda");
  apply_threads(o.threads);
  return true;
}

std::vector<std::pair<std::string, std::string>> resolved(const TrainOptions& o, const std::string& classes) {
  // Option names, so that --config options.txt repeats the run; resolved.* lines are reports (comments).
  return {{"data", o.data},
          {"epochs", std::to_string(o.epochs)},
          {"batch-size", std::to_string(o.batch_size)},
          {"lr", short_double(o.lr)},
          {"seed", std::to_string(o.seed)},
          {"limit", std::to_string(o.limit)},
          {"threads", std::to_string(o.threads)},
          {"device", o.device},
          {"resolved.classes", classes}};
}

}  // namespace

int run_mnist_classifier(const std::vector<std::string>& args) {
  TrainOptions defaults;
  defaults.epochs = 3;  // measured: 99.47 % on 2/3/6 in ~2 min on 2 shared cores (>= 98 % asked)
  defaults.batch_size = 64;
  defaults.lr = 1e-3;
  TrainOptions o;
  po::options_description desc =
      common_options(o, defaults, "the default reaches >= 98 % test accuracy on 2,3,6 in about 2 min on 2 CPU cores");
  desc.add_options()("digits", po::value(&o.digits)->default_value(defaults.digits),
                     "comma-separated digits to tell apart (the MNIST experiment's 2,3,6)");
  desc.add_options()("downsample", po::value(&o.downsample)->default_value(defaults.downsample),
                     "1: the 28x28 digits | 2: 2x2 block means, 14x14 digits (for `jebm mnist --downsample 2`, "
                     "which needs a classifier of its own image size)");
  if (!parse(args, desc, "usage: jebm mnist-classifier --data DIR --out DIR [options]", o)) return 0;
  const std::vector<int> digits = parse_ints(o.digits, "--digits");
  check_classes(digits, "--digits");
  check_downsample_factor(o.downsample, "--downsample");

  const MnistSplit train_split = load_mnist(o.data, true), test_split = load_mnist(o.data, false);
  ImageSet train = select(train_split.pixels, train_split.labels, 1, train_split.rows, train_split.cols, digits, o.limit);
  ImageSet test = select(test_split.pixels, test_split.labels, 1, test_split.rows, test_split.cols, digits, 0);
  for (const MnistSplit* split : {&train_split, &test_split})
    JEBM_USER_CHECK(split->rows == 28 && split->cols == 28,
               "--data '" << o.data << "': MNIST images are " << split->rows << "x" << split->cols << ", want 28x28");
  train.downsample = test.downsample = o.downsample;
  JEBM_USER_CHECK(train.count > 0, "--data '" << o.data << "': no training images of digits " << o.digits);
  JEBM_USER_CHECK(test.count > 0, "--data '" << o.data << "': no test images of digits " << o.digits);

  const RunDirLock run_lock = prepare_run_dir(o.out, o.force, false);
  auto options = resolved(o, join_ints(digits));
  options.emplace_back("digits", o.digits);
  options.emplace_back("downsample", std::to_string(o.downsample));
  write_options(o.out, options);
  Classifier c = make_classifier(ClassifierKind::Mnist, digits, o.seed, train.out_height());
  train_and_save(o, c, train, test, o.out, "mnist-classifier");
  return 0;
}

int run_cifar10_classifier(const std::vector<std::string>& args) {
  TrainOptions defaults;
  defaults.epochs = 3;  // ~13 min on 2 shared cores, the budget of the dev machine; more epochs help
  defaults.batch_size = 64;
  defaults.lr = 1e-3;
  defaults.flip = true;
  TrainOptions o;
  po::options_description desc =
      common_options(o, defaults, "the default takes about 13 min on 2 CPU cores; more epochs help");
  desc.add_options()("flip", po::value(&o.flip)->default_value(defaults.flip),
                     "random left-right flips of training images (the standard CIFAR-10 augmentation)");
  if (!parse(args, desc, "usage: jebm cifar10-classifier --data DIR --out DIR [options]", o)) return 0;
  const std::vector<int> classes = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9};

  const CifarSplit train_split = load_cifar10(o.data, true), test_split = load_cifar10(o.data, false);
  const int64_t c = CifarSplit::kChannels, h = CifarSplit::kHeight, w = CifarSplit::kWidth;
  const ImageSet train = select(train_split.pixels, train_split.labels, c, h, w, classes, o.limit);
  const ImageSet test = select(test_split.pixels, test_split.labels, c, h, w, classes, 0);

  const RunDirLock run_lock = prepare_run_dir(o.out, o.force, false);
  auto options = resolved(o, join_ints(classes));
  options.emplace_back("flip", o.flip ? "true" : "false");
  write_options(o.out, options);
  Classifier model = make_classifier(ClassifierKind::Cifar10, classes, o.seed);
  train_and_save(o, model, train, test, o.out, "cifar10-classifier");
  return 0;
}

}  // namespace jebm
