// The metric classifiers of the image experiments: the Classifier (a ConvClassifier with its class list and
// image size), its checkpoint (save/load, validated) and batched inference (predict, max_probability, features,
// accuracy). Trained by `jebm mnist-classifier` / `jebm cifar10-classifier` (experiments/classifier_cmd.cpp).
// Tested by tests/test_classifier_cmd.cpp (synthetic IDX data, reload, bad paths) and
// tests/test_classifier_reject.cpp (the reject class, split_reject).
#pragma once
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "models/classifier.hpp"

namespace jebm {

// Which data set a classifier is for; fixes the architecture and the input shape.
enum class ClassifierKind { Mnist, Cifar10 };
const char* classifier_kind_name(ClassifierKind kind);  // "mnist", "cifar10"

// A trained (or freshly initialised) metric classifier. Class index k stands for the data set's label
// classes[k]: MNIST digits such as {2, 3, 6}, or CIFAR-10's 0..9; with `reject`, one more class, the last
// (index classes.size()), stands for "not one of them" (`jebm mnist-classifier --reject`; metadata classes
// "2,3,6,reject"). Inputs are images in [-1, 1] (the same space
// as the walkers): [N, 1, S, S] for MNIST (S = 28, or 14 for 2x2-downsampled digits), [N, 3, 32, 32] for CIFAR-10.
struct Classifier {
  ClassifierKind kind = ClassifierKind::Mnist;
  std::vector<int> classes;  // the labels, without the reject class
  bool reject = false;
  int64_t image_size = 28;  // S: the side of the square input images (metadata "image_size" = "SxS")
  std::shared_ptr<ConvClassifier> model;  // a MnistClassifier or a CifarClassifier, as `kind` says
  std::map<std::string, std::string> metadata;  // as saved: test_accuracy, epochs, ...

  Module& module();
  int64_t num_classes() const { return static_cast<int64_t>(classes.size()) + (reject ? 1 : 0); }
  int64_t feature_dim() const;
  Shape input_shape() const;  // {1, S, S} or {3, 32, 32} (without N)
  Device device() const;      // where the parameters live (Module::to moves them)
  ag::Var logits(const ag::Var& x);    // [N, C]
  ag::Var features(const ag::Var& x);  // penultimate activations [N, feature_dim()]
};

// The image sides a kind's classifier accepts: MNIST 28 and 14 (--downsample 2), CIFAR-10 32; the first is the
// native one, which checkpoints from before the "image_size" field have.
const std::vector<int64_t>& classifier_image_sizes(ClassifierKind kind);

// Float32 classifier with PyTorch-default initialisation drawn from Generator{seed, 0}, for images of side
// `image_size` (0: the kind's native side; others must be in classifier_image_sizes(kind)), with a reject class
// after `classes` when `reject`.
Classifier make_classifier(ClassifierKind kind, const std::vector<int>& classes, uint64_t seed,
                           int64_t image_size = 0, bool reject = false);

// Writes the parameters and metadata (the given entries plus format, kind, classes, num_classes, feature_dim,
// image_size) atomically to `path` (safetensors).
void save_classifier(const std::string& path, Classifier& c, const std::map<std::string, std::string>& metadata);

// Loads a checkpoint written by save_classifier and validates it: format tag, kind (and `expect_kind` when
// given), class list (and `expect_classes` when non-empty), image size (absent: the kind's native side), every
// parameter's presence, shape and dtype, and no unexpected tensors. Errors are jebm::Error naming the file and the field. The model is on the CPU, in eval mode.
Classifier load_classifier(const std::string& path, std::optional<ClassifierKind> expect_kind = std::nullopt,
                           const std::vector<int>& expect_classes = {});

// Class index (0..C-1, not the data set label) of each image. images: [N, ...input_shape()] on any device,
// float32 or float64; processed `batch_size` rows at a time on the classifier's device, without a graph.
std::vector<int64_t> predict(Classifier& c, const Tensor& images, int64_t batch_size = 500);

// The classifier's confidence in its answer for each image: the largest softmax probability, in (1/C, 1].
// Same batching as predict().
std::vector<double> max_probability(Classifier& c, const Tensor& images, int64_t batch_size = 500);

// Penultimate features of each image as a host Float32 tensor [N, feature_dim()]; same batching as predict().
Tensor features(Classifier& c, const Tensor& images, int64_t batch_size = 500);

// Fraction of images whose predicted class index equals `labels` (class indices, N of them).
double accuracy(Classifier& c, const Tensor& images, const std::vector<int64_t>& labels, int64_t batch_size = 500);

// The name of the reject class in the metadata's class list.
inline constexpr const char* kRejectName = "reject";

// A weighted class histogram (one entry per class index, summing to 1) read as the labels' fractions and the
// rejected share. Without a reject class: the histogram as it is, rejected 0. With one: the labels' entries
// renormalised over the weight not rejected (NaN when all of it is), and the reject entry as `rejected`.
struct ClassWeights {
  std::vector<double> classes;
  double rejected = 0.0;
};
ClassWeights split_reject(const std::vector<double>& histogram, bool reject);

// "2,3,6" for {2, 3, 6}.
std::string class_list_text(const std::vector<int>& classes);
// "2,3,6" -> {2, 3, 6}; `what` names the option or field for the error message.
std::vector<int> parse_class_list(const std::string& text, const std::string& what);
// At least 2 classes, each a label 0..9, none twice; a UserError naming `what` otherwise.
void check_class_list(const std::vector<int>& classes, const std::string& what);

}  // namespace jebm
