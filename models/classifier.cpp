// MnistClassifier, CifarClassifier, cross_entropy and argmax_rows. Tested by tests/test_models_classifier.cpp.
#include "models/classifier.hpp"

namespace jebm {

MnistClassifier::MnistClassifier(int64_t num_classes, Generator& gen, DType dtype) : num_classes_(num_classes) {
  JEBM_CHECK(num_classes >= 2, "MnistClassifier: num_classes " << num_classes << " must be >= 2");
  body_ = register_module("features", std::make_shared<Sequential>());
  body_->emplace<Conv2d>(1, 16, 5, 2, 2, gen, true, dtype);   // [N, 16, 14, 14]
  body_->emplace<ReLU>();
  body_->emplace<Conv2d>(16, 32, 3, 2, 1, gen, true, dtype);  // [N, 32, 7, 7]
  body_->emplace<ReLU>();
  body_->emplace<Flatten>();                                   // [N, 1568]
  body_->emplace<Linear>(32 * 7 * 7, kFeatureDim, gen, true, dtype);
  body_->emplace<ReLU>();
  head_ = register_module("head", std::make_shared<Linear>(kFeatureDim, num_classes, gen, true, dtype));
}

ag::Var MnistClassifier::features(const ag::Var& x) {
  JEBM_CHECK(x.dim() == 4 && x.size(1) == 1 && x.size(2) == 28 && x.size(3) == 28,
             "MnistClassifier: input " << shape_str(x.shape()) << ", want [N, 1, 28, 28]");
  return body_->forward(x);
}

ag::Var MnistClassifier::forward(const ag::Var& x) { return head_->forward(features(x)); }

CifarClassifier::CifarClassifier(int64_t num_classes, Generator& gen, DType dtype) : num_classes_(num_classes) {
  JEBM_CHECK(num_classes >= 2, "CifarClassifier: num_classes " << num_classes << " must be >= 2");
  body_ = register_module("features", std::make_shared<Sequential>());
  body_->emplace<Conv2d>(3, 32, 3, 1, 1, gen, true, dtype);    // [N, 32, 32, 32]
  body_->emplace<ReLU>();
  body_->emplace<Conv2d>(32, 64, 4, 2, 1, gen, true, dtype);   // [N, 64, 16, 16]
  body_->emplace<ReLU>();
  body_->emplace<Conv2d>(64, 128, 4, 2, 1, gen, true, dtype);  // [N, 128, 8, 8]
  body_->emplace<ReLU>();
  body_->emplace<Conv2d>(128, 128, 4, 2, 1, gen, true, dtype); // [N, 128, 4, 4]
  body_->emplace<ReLU>();
  body_->emplace<Flatten>();                                    // [N, 2048]
  body_->emplace<Linear>(128 * 4 * 4, kFeatureDim, gen, true, dtype);
  body_->emplace<ReLU>();
  head_ = register_module("head", std::make_shared<Linear>(kFeatureDim, num_classes, gen, true, dtype));
}

ag::Var CifarClassifier::features(const ag::Var& x) {
  JEBM_CHECK(x.dim() == 4 && x.size(1) == 3 && x.size(2) == 32 && x.size(3) == 32,
             "CifarClassifier: input " << shape_str(x.shape()) << ", want [N, 3, 32, 32]");
  return body_->forward(x);
}

ag::Var CifarClassifier::forward(const ag::Var& x) { return head_->forward(features(x)); }

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
