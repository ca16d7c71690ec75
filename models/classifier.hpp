// Small classifiers jebm trains itself for the experiments' metrics (MNIST class weights, the CIFAR-10 Frechet
// distance on penultimate features), and the cross-entropy loss they train with, built from autograd ops only.
// Tested by tests/test_models_classifier.cpp (loss vs a hand computation, a few Adam steps reduce it).
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "models/layers.hpp"

namespace jebm {

// One convolution of a classifier body: in -> out channels, kernel k, stride, padding.
struct ClassifierConv {
  int64_t in, out, kernel, stride, pad;
};

// The metric classifiers' shape: convolutions with ReLU after each, flatten, linear -> feature_dim, ReLU (the
// features) | linear -> C (the head). Strided convolutions instead of pooling (no pooling op in the runtime).
class ConvClassifier : public Module {
 public:
  // input: {C, H, W} of one image; flat: the flattened size after the last convolution.
  ConvClassifier(const char* name, Shape input, const std::vector<ClassifierConv>& convs, int64_t flat,
                 int64_t feature_dim, int64_t num_classes, Generator& gen, DType dtype);
  ag::Var forward(const ag::Var& x) override;  // logits [N, C]
  ag::Var features(const ag::Var& x);          // penultimate activations [N, feature_dim]
  int64_t num_classes() const { return num_classes_; }

 private:
  const char* name_;
  Shape input_;
  int64_t num_classes_;
  std::shared_ptr<Sequential> body_;
  std::shared_ptr<Linear> head_;
};

// x: [N, 1, S, S] -> logits [N, C]: conv 5x5 s2 p2 (1->16), conv 3x3 s2 p1 (16->32), ReLU after each,
// flatten, linear ->64, ReLU | linear ->C. S = 28: spatial 28 -> 14 -> 7, flatten 32*7*7; S = 14 (2x2-downsampled
// digits): 14 -> 7 -> 4, flatten 32*4*4. Only the first linear layer's shape depends on S.
class MnistClassifier : public ConvClassifier {
 public:
  static constexpr int64_t kFeatureDim = 64;
  explicit MnistClassifier(int64_t num_classes, Generator& gen, DType dtype = DType::Float32, int64_t side = 28);
};

// x: [N, 3, 32, 32] -> logits [N, C]: conv 3x3 s1 p1 (3->32), conv 4x4 s2 p1 (->64), conv 4x4 s2 p1 (->128),
// conv 4x4 s2 p1 (->128), ReLU after each; spatial 32 -> 32 -> 16 -> 8 -> 4; flatten (2048), linear ->128, ReLU |
// linear ->C.
class CifarClassifier : public ConvClassifier {
 public:
  static constexpr int64_t kFeatureDim = 128;
  explicit CifarClassifier(int64_t num_classes, Generator& gen, DType dtype = DType::Float32);
};

// Mean over the batch of -log softmax(logits)[label]. logits: [N, C]; labels: N values in [0, C).
// log-softmax = logits - logsumexp(logits, 1); the label entries are picked by a one-hot multiply and sum.
ag::Var cross_entropy(const ag::Var& logits, const std::vector<int64_t>& labels);
ag::Var cross_entropy(const ag::Var& logits, const Tensor& labels);  // labels: Int64 [N]

// Row-wise argmax of logits [N, C] (host-side; for accuracies and the per-class walker weights).
std::vector<int64_t> argmax_rows(const Tensor& logits);

}  // namespace jebm
