// The Classifier, its checkpoint and batched inference (see metric_classifier.hpp). Tested by
// tests/test_classifier_cmd.cpp.
#include "experiments/metric_classifier.hpp"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <limits>
#include <set>

#include "autograd/engine.hpp"
#include "experiments/cli.hpp"
#include "experiments/module_io.hpp"
#include "models/checkpoint.hpp"
#include "runtime/philox.hpp"
#include "runtime/user_error.hpp"

namespace jebm {

namespace {

constexpr const char* kFormat = "jebm-classifier-v1";

std::string image_size_text(int64_t side) { return std::to_string(side) + "x" + std::to_string(side); }

}  // namespace

std::string class_list_text(const std::vector<int>& v) {
  std::string s;
  for (size_t i = 0; i < v.size(); ++i) s += (i ? "," : "") + std::to_string(v[i]);
  return s;
}

std::vector<int> parse_class_list(const std::string& text, const std::string& what) {
  std::vector<int> out;
  for (int64_t v : parse_int64_list(text, what)) {
    JEBM_USER_CHECK(v >= std::numeric_limits<int>::min() && v <= std::numeric_limits<int>::max(),
               what << " '" << text << "': " << v << " is out of range");
    out.push_back(static_cast<int>(v));
  }
  return out;
}

void check_class_list(const std::vector<int>& classes, const std::string& what) {
  JEBM_USER_CHECK(classes.size() >= 2, what << ": " << classes.size() << " classes (" << class_list_text(classes)
                                       << "), need at least 2");
  std::set<int> seen;
  for (int c : classes) {
    JEBM_USER_CHECK(c >= 0 && c <= 9, what << ": class " << c << " is not a label 0..9");
    JEBM_USER_CHECK(seen.insert(c).second, what << ": class " << c << " listed twice in '" << class_list_text(classes) << "'");
  }
}

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

Classifier make_classifier(ClassifierKind kind, const std::vector<int>& classes, uint64_t seed, int64_t image_size,
                           bool reject) {
  check_class_list(classes, "make_classifier");
  const std::vector<int64_t>& sizes = classifier_image_sizes(kind);
  if (image_size == 0) image_size = sizes.front();
  JEBM_USER_CHECK(std::find(sizes.begin(), sizes.end(), image_size) != sizes.end(),
             "make_classifier: a " << classifier_kind_name(kind) << " classifier of " << image_size_text(image_size)
                                   << " images is not offered");
  Classifier c;
  c.kind = kind;
  c.classes = classes;
  c.reject = reject;
  c.image_size = image_size;
  Generator gen{seed, 0};
  const int64_t n = c.num_classes();
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
  meta["classes"] = class_list_text(c.classes) + (c.reject ? std::string(",") + kRejectName : "");
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
  // A last class "reject" is the reject class of `mnist-classifier --reject`; the others are labels.
  std::string class_field = field("classes");
  const std::string reject_tail = std::string(",") + kRejectName;
  const bool reject = class_field.size() > reject_tail.size() &&
                      class_field.compare(class_field.size() - reject_tail.size(), reject_tail.size(), reject_tail) == 0;
  if (reject) class_field.erase(class_field.size() - reject_tail.size());
  const std::vector<int> classes = parse_class_list(class_field, "load_classifier: '" + path + "' metadata classes");
  check_class_list(classes, "load_classifier: '" + path + "' metadata classes");
  JEBM_USER_CHECK(field("num_classes") == std::to_string(classes.size() + (reject ? 1 : 0)),
             "load_classifier: '" << path << "' metadata num_classes " << field("num_classes") << " but classes are "
                                  << field("classes"));
  JEBM_USER_CHECK(expect_classes.empty() || expect_classes == classes,
             "load_classifier: '" << path << "' classifies " << class_list_text(classes) << ", want "
                                  << class_list_text(expect_classes));

  // Checkpoints from before the field existed were all of the kind's native size.
  int64_t image_size = classifier_image_sizes(kind).front();
  if (const auto it = st.metadata.find("image_size"); it != st.metadata.end()) {
    image_size = 0;
    for (int64_t s : classifier_image_sizes(kind))
      if (it->second == image_size_text(s)) image_size = s;
    JEBM_USER_CHECK(image_size > 0, "load_classifier: '" << path << "' metadata image_size is '" << it->second
                                                    << "', not one a " << kind_name << " classifier takes");
  }
  Classifier c = make_classifier(kind, classes, 0, image_size, reject);
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

ClassWeights split_reject(const std::vector<double>& histogram, bool reject) {
  ClassWeights w;
  if (!reject) {
    w.classes = histogram;  // as they are: no renormalisation, not one bit changed
    return w;
  }
  JEBM_CHECK(histogram.size() >= 2, "split_reject: " << histogram.size() << " classes, want the labels and reject");
  w.rejected = histogram.back();
  w.classes.assign(histogram.begin(), histogram.end() - 1);
  double kept = 0.0;
  for (double v : w.classes) kept += v;
  for (double& v : w.classes) v = kept > 0.0 ? v / kept : std::numeric_limits<double>::quiet_NaN();
  return w;
}

}  // namespace jebm
