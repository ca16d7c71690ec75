// ConvClassifier (MnistClassifier, CifarClassifier), cross_entropy and argmax_rows. Tested by tests/test_models_classifier.cpp.
#include "models/classifier.hpp"

#include <utility>

namespace jebm {

ConvClassifier::ConvClassifier(const char* name, Shape input, const std::vector<ClassifierConv>& convs,
                               int64_t flat, int64_t feature_dim, int64_t num_classes, Generator& gen, DType dtype)
    : name_(name), input_(std::move(input)), num_classes_(num_classes) {
  JEBM_CHECK(num_classes >= 2, name << ": num_classes " << num_classes << " must be >= 2");
  body_ = register_module("features", std::make_shared<Sequential>());
  for (const ClassifierConv& l : convs) {
    body_->emplace<Conv2d>(l.in, l.out, l.kernel, l.stride, l.pad, gen, true, dtype);
    body_->emplace<ReLU>();
  }
  body_->emplace<Flatten>();
  body_->emplace<Linear>(flat, feature_dim, gen, true, dtype);
  body_->emplace<ReLU>();
  head_ = register_module("head", std::make_shared<Linear>(feature_dim, num_classes, gen, true, dtype));
}

ag::Var ConvClassifier::features(const ag::Var& x) {
  Shape want = input_;
  want.insert(want.begin(), x.dim() > 0 ? x.size(0) : 0);
  JEBM_CHECK(x.shape() == want, name_ << ": input " << shape_str(x.shape()) << ", want [N, " << input_[0] << ", "
                                      << input_[1] << ", " << input_[2] << "]");
  return body_->forward(x);
}

ag::Var ConvClassifier::forward(const ag::Var& x) { return head_->forward(features(x)); }

namespace {

// Output side of a convolution with kernel k, stride s, padding p on a side of n.
int64_t conv_out(int64_t n, int64_t k, int64_t s, int64_t p) { return (n + 2 * p - k) / s + 1; }

int64_t mnist_classifier_flat(int64_t side) {
  JEBM_CHECK(side >= 5, "MnistClassifier: images " << side << "x" << side << " are smaller than its 5x5 kernel");
  const int64_t s = conv_out(conv_out(side, 5, 2, 2), 3, 2, 1);
  return 32 * s * s;
}

}  // namespace

MnistClassifier::MnistClassifier(int64_t num_classes, Generator& gen, DType dtype, int64_t side)
    : ConvClassifier("MnistClassifier", {1, side, side},
                     {{1, 16, 5, 2, 2},     // [N, 16, 14, 14] (S = 28)
                      {16, 32, 3, 2, 1}},   // [N, 32, 7, 7]
                     mnist_classifier_flat(side), kFeatureDim, num_classes, gen, dtype) {}

CifarClassifier::CifarClassifier(int64_t num_classes, Generator& gen, DType dtype)
    : ConvClassifier("CifarClassifier", {3, 32, 32},
                     {{3, 32, 3, 1, 1},     // [N, 32, 32, 32]
                      {32, 64, 4, 2, 1},    // [N, 64, 16, 16]
                      {64, 128, 4, 2, 1},   // [N, 128, 8, 8]
                      {128, 128, 4, 2, 1}}, // [N, 128, 4, 4]
                     128 * 4 * 4, kFeatureDim, num_classes, gen, dtype) {}

// --- loss -----------------------------------------------------------------------------------------------

ag::Var cross_entropy(const ag::Var& logits, const std::vector<int64_t>& labels) {
  JEBM_CHECK(logits.dim() == 2, "cross_entropy: logits " << shape_str(logits.shape()) << ", want [N, C]");
  const int64_t n = logits.size(0), c = logits.size(1);
  JEBM_CHECK(static_cast<int64_t>(labels.size()) == n,
             "cross_entropy: " << labels.size() << " labels for logits " << shape_str(logits.shape()));
  JEBM_CHECK(n > 0, "cross_entropy: empty batch, logits " << shape_str(logits.shape()));
  // One-hot built on the host: a constant of the graph, so no gather kernel or its backward is needed.
  std::vector<double> onehot(static_cast<size_t>(n * c), 0.0);
  for (int64_t i = 0; i < n; ++i) {
    const int64_t y = labels[static_cast<size_t>(i)];
    JEBM_CHECK(y >= 0 && y < c, "cross_entropy: label " << y << " at row " << i << " outside [0, " << c
                                                        << ") for logits " << shape_str(logits.shape()));
    onehot[static_cast<size_t>(i * c + y)] = 1.0;
  }
  const ag::Var mask(Tensor::from_vector(onehot, {n, c}, logits.dtype(), logits.device()));
  const ag::Var log_probs = ag::sub(logits, ag::logsumexp(logits, 1, /*keepdim=*/true));  // [N, C]
  return ag::mul_scalar(ag::sum_all(ag::mul(log_probs, mask)), -1.0 / static_cast<double>(n));
}

ag::Var cross_entropy(const ag::Var& logits, const Tensor& labels) {
  JEBM_CHECK(labels.dtype() == DType::Int64 && labels.dim() == 1,
             "cross_entropy: labels must be Int64 [N], got " << dtype_name(labels.dtype()) << " "
                                                            << shape_str(labels.shape()));
  return cross_entropy(logits, labels.host_vector<int64_t>());
}

std::vector<int64_t> argmax_rows(const Tensor& logits) {
  JEBM_CHECK(logits.dim() == 2, "argmax_rows: logits " << shape_str(logits.shape()) << ", want [N, C]");
  const int64_t n = logits.size(0), c = logits.size(1);
  const std::vector<double> v = logits.to_vector();
  std::vector<int64_t> out(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) {
    int64_t best = 0;
    for (int64_t j = 1; j < c; ++j)
      if (v[static_cast<size_t>(i * c + j)] > v[static_cast<size_t>(i * c + best)]) best = j;
    out[static_cast<size_t>(i)] = best;
  }
  return out;
}

}  // namespace jebm
