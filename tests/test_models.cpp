// Tests for models/module, models/layers and models/energy_nets: parameter names and order, counts from the layer
// formulas, output shapes (MNIST at 28x28 and 14x14), PyTorch-default initialisation (bounds and spread), seeding, train/eval, to(DType),
// and float64 finite-difference gradients of both image energies w.r.t. the input and the parameters.
#include <algorithm>
#include <cmath>
#include <numeric>
#include <string>
#include <vector>

#include "autograd/engine.hpp"
#include "models/energy_nets.hpp"
#include "models/layers.hpp"
#include "tests/helpers.hpp"

using namespace jebm;

namespace {

// Energies summed over the batch, no graph: the scalar whose gradient backward() gives.
double energy_sum(Module& model, const Tensor& x) {
  ag::NoGradGuard no_grad;
  const std::vector<double> u = model(ag::Var(x)).value().to_vector();
  return std::accumulate(u.begin(), u.end(), 0.0);
}

// Conv: (C_in * k * k + 1) * C_out; Linear: (in + 1) * out.
int64_t conv_count(int64_t cin, int64_t cout, int64_t k) { return (cin * k * k + 1) * cout; }
int64_t linear_count(int64_t in, int64_t out) { return (in + 1) * out; }

double dot(const std::vector<double>& a, const std::vector<double>& b) {
  return std::inner_product(a.begin(), a.end(), b.begin(), 0.0);
}

// Float64 finite-difference check of grad_x sum(U) and grad_theta sum(U) for an image energy on a tiny batch:
// directional derivatives along random directions (x, and each parameter tensor: every entry at once) and a few
// single entries.
void check_energy_gradients(Module& model, const Shape& x_shape, uint64_t seed, const std::string& what) {
  Generator gen{seed, 0};
  const Tensor x0 = rand_uniform(x_shape, -1.0, 1.0, gen, DType::Float64);
  ag::Var x(x0.clone(), /*requires_grad=*/true);
  model.zero_grad();
  const ag::Var u = model(x);
  BOOST_TEST(u.shape() == Shape{x_shape[0]});
  ag::backward(ag::sum_all(u));
  const std::vector<double> gx = x.grad().to_vector();
  BOOST_REQUIRE_EQUAL(static_cast<int64_t>(gx.size()), x0.numel());

  // Single entries move few pre-activations: eps = 1e-6 keeps the float64 round-off far below the tolerance.
  // A whole-tensor direction moves every pre-activation at once and, at 1e-6, pushes dozens of them across a
  // (Leaky)ReLU kink (seen as ~1e-3 relative error that shrinks with eps); 1e-8 keeps them on their side while
  // the round-off (~1e-16 / 1e-8) stays ~1e-8.
  const double eps = 1e-6, eps_dir = 1e-8;
  // Directional derivative w.r.t. x.
  {
    const Tensor v = rand_uniform(x_shape, -1.0, 1.0, gen, DType::Float64);
    Tensor xp = x0.clone(), xm = x0.clone();
    add_(xp, v, eps_dir);
    add_(xm, v, -eps_dir);
    const double fd = (energy_sum(model, xp) - energy_sum(model, xm)) / (2 * eps_dir);
    const double an = dot(gx, v.to_vector());
    BOOST_TEST(test::all_close({an}, {fd}, 1e-7, 1e-5, what + " grad_x . v"));
  }
  // A few single input entries.
  for (int64_t i : {int64_t{0}, x0.numel() / 3, x0.numel() - 1}) {
    Tensor xp = x0.clone(), xm = x0.clone();
    xp.data<double>()[i] += eps;
    xm.data<double>()[i] -= eps;
    const double fd = (energy_sum(model, xp) - energy_sum(model, xm)) / (2 * eps);
    BOOST_TEST(test::all_close({gx[static_cast<size_t>(i)]}, {fd}, 1e-7, 1e-4,
                               what + " grad_x[" + std::to_string(i) + "]"));
  }

  // Directional derivative w.r.t. each parameter tensor (a failure names the layer).
  auto params = model.named_parameters();
  for (auto& [name, p] : params) {
    BOOST_REQUIRE_MESSAGE(p.grad().defined(), what << ": no gradient reached " << name);
    const Tensor saved = p.value().clone();
    const Tensor v = rand_uniform(p.shape(), -1.0, 1.0, gen, DType::Float64);
    const double an = dot(p.grad().to_vector(), v.to_vector());
    p.value().copy_(saved);
    add_(p.value(), v, eps_dir);
    const double fp = energy_sum(model, x0);
    p.value().copy_(saved);
    add_(p.value(), v, -eps_dir);
    const double fm = energy_sum(model, x0);
    p.value().copy_(saved);
    BOOST_TEST(test::all_close({an}, {(fp - fm) / (2 * eps_dir)}, 1e-7, 1e-5, what + " d/d " + name + " . v"));
  }

  for (auto& [name, p] : params) {
    const std::vector<double> g = p.grad().to_vector();
    const int64_t i = p.value().numel() / 2;
    double* w = p.value().data<double>();
    const double w0 = w[i];
    w[i] = w0 + eps;
    const double f1 = energy_sum(model, x0);
    w[i] = w0 - eps;
    const double f2 = energy_sum(model, x0);
    w[i] = w0;
    BOOST_TEST(test::all_close({g[static_cast<size_t>(i)]}, {(f1 - f2) / (2 * eps)}, 1e-7, 1e-4,
                               what + " d/d " + name + "[" + std::to_string(i) + "]"));
  }
}

}  // namespace

BOOST_AUTO_TEST_CASE(mnist_energy_names_order_and_count) {
  Generator gen{1, 0};
  MnistEnergyCNN net(gen);
  const auto named = net.named_parameters();
  // Positions of the parametrised layers in the Sequential (activations and Flatten take the others).
  const std::vector<std::string> want_names = {"0.weight", "0.bias", "2.weight", "2.bias", "4.weight", "4.bias",
                                               "6.weight", "6.bias", "9.weight", "9.bias", "11.weight", "11.bias"};
  const std::vector<Shape> want_shapes = {{16, 1, 5, 5}, {16}, {32, 16, 3, 3}, {32}, {64, 32, 3, 3}, {64},
                                          {64, 64, 3, 3}, {64}, {64, 256}, {64}, {1, 64}, {1}};
  BOOST_REQUIRE_EQUAL(named.size(), want_names.size());
  for (size_t i = 0; i < named.size(); ++i) {
    BOOST_TEST(named[i].first == want_names[i]);
    BOOST_TEST(shape_str(named[i].second.shape()) == shape_str(want_shapes[i]));
    BOOST_TEST(named[i].second.requires_grad());
    BOOST_TEST(dtype_name(named[i].second.dtype()) == std::string("float32"));
  }
  const int64_t want = conv_count(1, 16, 5) + conv_count(16, 32, 3) + conv_count(32, 64, 3) +
                       conv_count(64, 64, 3) + linear_count(64 * 2 * 2, 64) + linear_count(64, 1);
  BOOST_TEST(net.parameter_count() == want);
  BOOST_TEST(net.parameters().size() == named.size());
}

BOOST_AUTO_TEST_CASE(cifar_energy_names_and_count) {
  Generator gen{2, 0};
  CifarEnergyCNN net(gen);
  const auto named = net.named_parameters();
  const std::vector<std::string> want_names = {"0.weight", "0.bias", "2.weight", "2.bias", "4.weight",
                                               "4.bias",   "6.weight", "6.bias", "8.weight", "8.bias"};
  BOOST_REQUIRE_EQUAL(named.size(), want_names.size());
  for (size_t i = 0; i < named.size(); ++i) BOOST_TEST(named[i].first == want_names[i]);
  BOOST_TEST(shape_str(named[8].second.shape()) == "[1, 512, 4, 4]");
  const int64_t want = conv_count(3, 64, 3) + conv_count(64, 128, 4) + conv_count(128, 256, 4) +
                       conv_count(256, 512, 4) + conv_count(512, 1, 4);
  BOOST_TEST(net.parameter_count() == want);
}

BOOST_AUTO_TEST_CASE(energy_output_shapes) {
  Generator gen{3, 0};
  MnistEnergyCNN mnist(gen);
  CifarEnergyCNN cifar(gen);
  const ag::Var um = mnist(ag::Var(rand_uniform({5, 1, 28, 28}, -1, 1, gen)));
  BOOST_TEST(shape_str(um.shape()) == "[5]");
  const ag::Var uc = cifar(ag::Var(rand_uniform({3, 3, 32, 32}, -1, 1, gen)));
  BOOST_TEST(shape_str(uc.shape()) == "[3]");
  for (double e : um.value().to_vector()) BOOST_TEST(std::isfinite(e));
  for (double e : uc.value().to_vector()) BOOST_TEST(std::isfinite(e));
  // 14x14 (jebm mnist --downsample 2): the same parameters, spatial 14 -> 9 -> 5 -> 3 -> 2.
  const ag::Var u14 = mnist(ag::Var(rand_uniform({2, 1, 14, 14}, -1, 1, gen)));
  BOOST_TEST(shape_str(u14.shape()) == "[2]");
  for (double e : u14.value().to_vector()) BOOST_TEST(std::isfinite(e));
  // Wrong image sizes are refused with the shape in the message, not a kernel crash.
  BOOST_CHECK_THROW(mnist(ag::Var(Tensor::zeros({2, 1, 32, 32}))), Error);
  jebm::test::expect_error([&] { mnist(ag::Var(Tensor::zeros({2, 1, 20, 20}))); },
                           {"[2, 1, 20, 20]", "[N, 1, 28, 28] or [N, 1, 14, 14]"});
  BOOST_CHECK_THROW(cifar(ag::Var(Tensor::zeros({2, 1, 28, 28}))), Error);
}

// Per image the energy must not depend on the rest of the batch: U(x)[i] == U(x[i:i+1]).
BOOST_AUTO_TEST_CASE(energy_is_per_sample) {
  Generator gen{4, 0};
  MnistEnergyCNN net(gen, DType::Float64);
  const Tensor x = rand_uniform({4, 1, 28, 28}, -1, 1, gen, DType::Float64);
  const std::vector<double> all = net(ag::Var(x)).value().to_vector();
  for (int64_t i = 0; i < 4; ++i) {
    const double one = net(ag::Var(x.rows(i, i + 1))).value().item();
    BOOST_TEST(test::all_close({one}, {all[static_cast<size_t>(i)]}, 1e-12, 1e-12, "per-sample energy"));
  }
}

BOOST_AUTO_TEST_CASE(default_init_bounds_and_spread) {
  Generator gen{5, 0};
  MnistEnergyCNN net(gen);
  // Every weight and bias within 1/sqrt(fan_in) of its layer (fan_in from the weight: all dims but the first).
  const auto named = net.named_parameters();
  for (size_t i = 0; i + 1 < named.size(); i += 2) {
    const Shape& ws = named[i].second.shape();
    const int64_t fan_in = shape_numel(ws) / ws[0];
    const double bound = 1.0 / std::sqrt(static_cast<double>(fan_in));
    for (size_t k : {i, i + 1}) {
      const std::vector<double> v = named[k].second.value().to_vector();
      const double m = *std::max_element(v.begin(), v.end(), [](double a, double b) {
        return std::fabs(a) < std::fabs(b);
      });
      BOOST_TEST(std::fabs(m) <= bound, named[k].first << ": max |w| " << std::fabs(m) << " > " << bound);
    }
  }
  // Spread: U(-b, b) has mean 0 and std b/sqrt(3). 512*512 draws put the sample std within 1% of it.
  Linear big(512, 512, gen);
  const std::vector<double> w = big.weight.value().to_vector();
  const double n = static_cast<double>(w.size());
  const double mean = std::accumulate(w.begin(), w.end(), 0.0) / n;
  double var = 0.0;
  for (double e : w) var += (e - mean) * (e - mean);
  const double sd = std::sqrt(var / (n - 1));
  const double b = 1.0 / std::sqrt(512.0);
  BOOST_TEST(std::fabs(mean) < 0.01 * b);
  BOOST_TEST(std::fabs(sd - b / std::sqrt(3.0)) < 0.01 * b / std::sqrt(3.0));
  BOOST_TEST(*std::max_element(w.begin(), w.end()) > 0.99 * b);  // uses the whole interval
  BOOST_TEST(*std::min_element(w.begin(), w.end()) < -0.99 * b);
}

BOOST_AUTO_TEST_CASE(same_seed_same_init) {
  Generator g1{42, 0}, g2{42, 0}, g3{43, 0};
  MnistEnergyCNN a(g1), b(g2), c(g3);
  const auto pa = a.parameters(), pb = b.parameters(), pc = c.parameters();
  bool any_differs = false;
  for (size_t i = 0; i < pa.size(); ++i) {
    BOOST_TEST(pa[i].value().to_vector() == pb[i].value().to_vector());
    any_differs = any_differs || pa[i].value().to_vector() != pc[i].value().to_vector();
  }
  BOOST_TEST(any_differs);
  BOOST_TEST(g1.offset == g2.offset);
  BOOST_TEST(g1.offset == 12u);  // one draw per weight and per bias
}

BOOST_AUTO_TEST_CASE(linear_matches_hand_computation) {
  Generator gen{6, 0};
  Linear lin(3, 2, gen, true, DType::Float64);
  const std::vector<double> w = lin.weight.value().to_vector(), b = lin.bias.value().to_vector();
  const std::vector<double> x = {0.5, -1.0, 2.0, 1.5, 0.25, -0.75};
  const std::vector<double> y = lin(ag::Var(Tensor::from_vector(x, {2, 3}, DType::Float64))).value().to_vector();
  std::vector<double> want(4);
  for (int n = 0; n < 2; ++n)
    for (int o = 0; o < 2; ++o) {
      want[static_cast<size_t>(n * 2 + o)] = b[static_cast<size_t>(o)];
      for (int i = 0; i < 3; ++i) want[static_cast<size_t>(n * 2 + o)] += x[static_cast<size_t>(n * 3 + i)] * w[static_cast<size_t>(o * 3 + i)];
    }
  BOOST_TEST(test::all_close(y, want, 1e-14, 1e-12, "linear"));
  Linear nobias(3, 2, gen, false);
  BOOST_TEST(nobias.named_parameters().size() == 1u);
  BOOST_TEST(!nobias.bias.defined());
  BOOST_CHECK_THROW(lin(ag::Var(Tensor::zeros({2, 4}, DType::Float64))), Error);
}

BOOST_AUTO_TEST_CASE(sequential_nested_names_and_train_eval) {
  Generator gen{7, 0};
  Sequential outer;
  auto inner = outer.add(std::make_shared<Sequential>());
  inner->emplace<Linear>(4, 3, gen);
  inner->emplace<ReLU>();
  outer.emplace<Linear>(3, 1, gen, false);
  std::vector<std::string> names;
  for (auto& [n, p] : outer.named_parameters()) names.push_back(n);
  BOOST_TEST(names == (std::vector<std::string>{"0.0.weight", "0.0.bias", "1.weight"}));
  BOOST_TEST(outer.size() == 2u);
  BOOST_TEST(outer.is_training());
  outer.eval();
  BOOST_TEST(!outer.is_training());
  BOOST_TEST(!inner->is_training());
  BOOST_TEST(!(*inner)[0]->is_training());
  outer.train();
  BOOST_TEST((*inner)[1]->is_training());
  BOOST_CHECK_THROW(outer[2], Error);
}

BOOST_AUTO_TEST_CASE(zero_grad_clears_parameter_grads) {
  Generator gen{8, 0};
  Sequential net;
  net.emplace<Linear>(4, 2, gen);
  ag::backward(ag::sum_all(net(ag::Var(rand_uniform({3, 4}, -1, 1, gen)))));
  for (auto& p : net.parameters()) BOOST_TEST(p.grad().defined());
  net.zero_grad();
  for (auto& p : net.parameters()) BOOST_TEST(!p.grad().defined());
}

// to(DType) replaces values in place: Vars taken before the cast (as an optimizer holds them) see the new dtype.
BOOST_AUTO_TEST_CASE(to_dtype_keeps_var_identity) {
  Generator gen{9, 0};
  MnistEnergyCNN net(gen);
  const Tensor x = rand_uniform({2, 1, 28, 28}, -1, 1, gen);
  const std::vector<double> u32 = net(ag::Var(x)).value().to_vector();
  const auto before = net.parameters();
  std::vector<std::vector<double>> values;
  for (const auto& p : before) values.push_back(p.value().to_vector());
  net.to(DType::Float64);
  const auto after = net.parameters();
  for (size_t i = 0; i < before.size(); ++i) {
    BOOST_TEST(before[i].impl() == after[i].impl());
    BOOST_TEST(dtype_name(before[i].dtype()) == std::string("float64"));
    BOOST_TEST(before[i].value().to_vector() == values[i]);  // float32 -> float64 is exact
  }
  const ag::Var u64 = net(ag::Var(x.to(DType::Float64)));
  BOOST_TEST(dtype_name(u64.dtype()) == std::string("float64"));
  BOOST_TEST(test::all_close(u64.value().to_vector(), u32, 1e-5, 1e-4, "f64 vs f32 energy"));
  net.to(Device::cpu());  // a no-op move keeps everything usable
  BOOST_TEST(net.parameters()[0].device().str() == "cpu");
}

BOOST_AUTO_TEST_CASE(mnist_energy_finite_difference_gradients) {
  Generator gen{10, 0};
  MnistEnergyCNN net(gen, DType::Float64);
  check_energy_gradients(net, {2, 1, 28, 28}, 11, "mnist");
}

BOOST_AUTO_TEST_CASE(cifar_energy_finite_difference_gradients) {
  Generator gen{12, 0};
  CifarEnergyCNN net(gen, DType::Float64);
  check_energy_gradients(net, {2, 3, 32, 32}, 13, "cifar");
}
