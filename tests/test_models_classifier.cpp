// Tests for models/classifier: cross_entropy against a hand computation (value and gradient), label checks,
// argmax_rows, feature/logit shapes (MNIST at 28x28 and 14x14), and a few Adam steps reducing the loss on a tiny synthetic 2-class problem.
#include <cmath>
#include <vector>

#include "autograd/engine.hpp"
#include "models/classifier.hpp"
#include "models/optim.hpp"
#include "tests/helpers.hpp"

using namespace jebm;

BOOST_AUTO_TEST_CASE(cross_entropy_matches_hand_computation) {
  const std::vector<double> z = {1.0, 2.0, 0.5, -1.0, 0.0, 3.0, 2.0, 2.0, -4.0};  // [3, 3]
  const std::vector<int64_t> y = {1, 2, 0};
  ag::Var logits(Tensor::from_vector(z, {3, 3}, DType::Float64), true);
  const ag::Var loss = cross_entropy(logits, y);
  BOOST_TEST(loss.value().numel() == 1);

  double want = 0.0;
  std::vector<double> want_grad(9);
  for (size_t n = 0; n < 3; ++n) {
    double s = 0.0;
    for (size_t c = 0; c < 3; ++c) s += std::exp(z[n * 3 + c]);
    want -= (z[n * 3 + static_cast<size_t>(y[n])] - std::log(s)) / 3.0;
    // d/dz of the mean loss: (softmax - onehot) / N.
    for (size_t c = 0; c < 3; ++c)
      want_grad[n * 3 + c] = (std::exp(z[n * 3 + c]) / s - (static_cast<int64_t>(c) == y[n] ? 1.0 : 0.0)) / 3.0;
  }
  BOOST_TEST(test::all_close({loss.value().item()}, {want}, 1e-14, 1e-13, "cross entropy"));
  ag::backward(loss);
  BOOST_TEST(test::all_close(logits.grad().to_vector(), want_grad, 1e-14, 1e-13, "cross entropy grad"));

  // The Int64-tensor overload agrees; bad labels are refused.
  const ag::Var loss2 = cross_entropy(ag::Var(logits.value()), Tensor::from_vector(y, {3}));
  BOOST_TEST(loss2.value().item() == loss.value().item());
  BOOST_CHECK_THROW(cross_entropy(logits, std::vector<int64_t>{0, 3, 1}), Error);
  BOOST_CHECK_THROW(cross_entropy(logits, std::vector<int64_t>{0, 1}), Error);
}

// Large logits must not overflow: the log-sum-exp shift keeps the loss finite and exact.
BOOST_AUTO_TEST_CASE(cross_entropy_is_stable_for_large_logits) {
  const ag::Var logits(Tensor::from_vector(std::vector<double>{1000.0, 0.0}, {1, 2}, DType::Float64));
  BOOST_TEST(std::fabs(cross_entropy(logits, std::vector<int64_t>{0}).value().item()) < 1e-12);
  BOOST_TEST(std::fabs(cross_entropy(logits, std::vector<int64_t>{1}).value().item() - 1000.0) < 1e-9);
}

BOOST_AUTO_TEST_CASE(argmax_rows_picks_the_largest) {
  const Tensor z = Tensor::from_vector(std::vector<double>{0.1, 0.7, 0.2, 5.0, -1.0, 4.0}, {2, 3});
  BOOST_TEST(argmax_rows(z) == (std::vector<int64_t>{1, 0}));
}

BOOST_AUTO_TEST_CASE(classifier_shapes_and_names) {
  Generator gen{1, 0};
  MnistClassifier mnist(3, gen);
  CifarClassifier cifar(10, gen);
  const ag::Var xm(rand_uniform({4, 1, 28, 28}, -1, 1, gen));
  const ag::Var xc(rand_uniform({2, 3, 32, 32}, -1, 1, gen));
  BOOST_TEST(shape_str(mnist(xm).shape()) == "[4, 3]");
  BOOST_TEST(shape_str(mnist.features(xm).shape()) == "[4, 64]");
  BOOST_TEST(shape_str(cifar(xc).shape()) == "[2, 10]");
  BOOST_TEST(shape_str(cifar.features(xc).shape()) == "[2, 128]");
  const auto named = mnist.named_parameters();
  BOOST_TEST(named.front().first == "features.0.weight");
  BOOST_TEST(named.back().first == "head.bias");
  // Conv (C_in*k*k + 1)*C_out and Linear (in + 1)*out.
  BOOST_TEST(mnist.parameter_count() == (25 + 1) * 16 + (16 * 9 + 1) * 32 + (1568 + 1) * 64 + (64 + 1) * 3);
  BOOST_CHECK_THROW(mnist(xc), Error);
  // 14x14 digits (--downsample 2): spatial 14 -> 7 -> 4, so only the first linear layer changes (32*4*4 inputs).
  MnistClassifier small(3, gen, DType::Float32, 14);
  const ag::Var xs(rand_uniform({4, 1, 14, 14}, -1, 1, gen));
  BOOST_TEST(shape_str(small(xs).shape()) == "[4, 3]");
  BOOST_TEST(small.parameter_count() == (25 + 1) * 16 + (16 * 9 + 1) * 32 + (512 + 1) * 64 + (64 + 1) * 3);
  BOOST_CHECK_THROW(small(xm), Error);
}

// Class 0: the top half of the image is bright, class 1: the bottom half; plus uniform noise. A few Adam steps
// must cut the loss and classify the training batch correctly.
BOOST_AUTO_TEST_CASE(few_adam_steps_reduce_cross_entropy) {
  Generator gen{2, 0};
  const int64_t n = 32;
  Tensor x = rand_uniform({n, 1, 28, 28}, -0.5, 0.5, gen);
  std::vector<int64_t> y(static_cast<size_t>(n));
  float* px = x.data<float>();
  for (int64_t i = 0; i < n; ++i) {
    y[static_cast<size_t>(i)] = i % 2;
    const int64_t row0 = (i % 2 == 0) ? 0 : 14;
    for (int64_t r = row0; r < row0 + 14; ++r)
      for (int64_t c = 0; c < 28; ++c) px[i * 784 + r * 28 + c] += 0.5f;
  }
  MnistClassifier net(2, gen);
  Adam opt(net.parameters(), 1e-3);
  const ag::Var xv(x);
  double first = 0.0, last = 0.0;
  for (int step = 0; step < 30; ++step) {
    opt.zero_grad();
    const ag::Var loss = cross_entropy(net(xv), y);
    (step == 0 ? first : last) = loss.value().item();
    ag::backward(loss);
    opt.step();
  }
  last = cross_entropy(net(xv), y).value().item();
  BOOST_TEST(last < 0.5 * first, "loss " << first << " -> " << last);
  BOOST_TEST(argmax_rows(net(xv).value()) == y);
}
