// Tests of autograd/: the gradient harness checks every op of autograd/ops.hpp (its value against the runtime op it
// wraps, its float64 gradients against central finite differences, backward() against grad()) on the rows of the
// shared op-case table (tests/op_cases.cpp) plus the autograd-only forms (operators, linear, reshape) and small
// networks; then the engine's contracts: accumulation, NoGradGuard, graph release, grad() leaving .grad() alone,
// pruning, errors.
#include <cmath>
#include <functional>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "autograd/engine.hpp"
#include "autograd/ops.hpp"
#include "runtime/ops.hpp"
#include "tests/helpers.hpp"
#include "tests/op_cases.hpp"

using namespace jebm;
using ag::Var;

namespace {

using Vars = std::vector<Var>;
using Tensors = std::vector<Tensor>;

// Inputs are drawn with magnitudes in [lo, hi]; with random_sign the sign is flipped at random, which keeps ops
// with a kink at 0 (relu, leaky_relu, abs) away from it while still testing both sides.
struct Range {
  double lo = -1.0, hi = 1.0;
  bool random_sign = false;
};
const Range kSym{-1.0, 1.0, false};
const Range kPos{0.5, 2.0, false};

struct Case {
  std::string name;
  std::vector<Shape> shapes;
  Range range;
  std::function<Var(const Vars&)> build;
  std::function<Tensor(const Tensors&)> ref;  // the runtime op wrapped (value check); empty for composites
};

Tensor random_tensor(const Shape& shape, const Range& r, std::mt19937_64& rng) {
  std::uniform_real_distribution<double> u(r.lo, r.hi);
  std::vector<double> v(static_cast<size_t>(shape_numel(shape)));
  for (double& x : v) {
    x = u(rng);
    if (r.random_sign && (rng() & 1)) x = -x;
  }
  return Tensor::from_vector(v, shape, DType::Float64);
}

double dot(const std::vector<double>& a, const std::vector<double>& b) {
  double s = 0.0;
  for (size_t i = 0; i < a.size(); ++i) s += a[i] * b[i];
  return s;
}

Tensor idx_tensor(const std::vector<int64_t>& v) { return Tensor::from_vector(v, {static_cast<int64_t>(v.size())}); }

Conv2dParams conv_params(int64_t stride, int64_t padding) {
  Conv2dParams p;
  p.stride = stride;
  p.padding = padding;
  return p;
}

std::vector<Case> all_cases() {
  using V = const Vars&;
  using T = const Tensors&;
  std::vector<Case> c;
  // The named ops (ag::exp, ag::add, ag::sum, ag::matmul, ag::conv2d, ag::gather_rows, ag::concat, ...) are
  // gradient-checked on the op-case table's rows (table_ops_match_finite_differences). Here: the other ways in.
  // --- operators and the generic entries ---
  c.push_back({"operator- (unary)", {{5}}, kSym, [](V v) { return -v[0]; }, [](T t) { return neg(t[0]); }});
  c.push_back({"unary(Tanh)", {{6}}, kSym, [](V v) { return ag::unary(UnaryOp::Tanh, v[0]); },
               [](T t) { return unary(UnaryOp::Tanh, t[0]); }});
  c.push_back({"operator+ [3,4]+[3,4]", {{3, 4}, {3, 4}}, kSym, [](V v) { return v[0] + v[1]; },
               [](T t) { return add(t[0], t[1]); }});
  c.push_back({"operator+ [4]+[2,3,4]", {{4}, {2, 3, 4}}, kSym, [](V v) { return v[0] + v[1]; },
               [](T t) { return add(t[0], t[1]); }});
  c.push_back({"operator- [3,1]-[1,4]", {{3, 1}, {1, 4}}, kSym, [](V v) { return v[0] - v[1]; },
               [](T t) { return sub(t[0], t[1]); }});
  c.push_back({"operator* [3,1]*[1,4]", {{3, 1}, {1, 4}}, kSym, [](V v) { return v[0] * v[1]; },
               [](T t) { return mul(t[0], t[1]); }});
  c.push_back({"mul x*x (same input twice)", {{5}}, kSym, [](V v) { return v[0] * v[0]; },
               [](T t) { return mul(t[0], t[0]); }});
  c.push_back({"operator/ [3,4]/[4]", {{3, 4}, {4}}, kPos, [](V v) { return v[0] / v[1]; },
               [](T t) { return div(t[0], t[1]); }});
  c.push_back({"binary(Mul)", {{2, 3}, {2, 3}}, kSym, [](V v) { return ag::binary(BinaryOp::Mul, v[0], v[1]); },
               [](T t) { return binary(BinaryOp::Mul, t[0], t[1]); }});
  c.push_back({"reduce(LogSumExp) [2,5]", {{2, 5}}, {-3, 3}, [](V v) { return ag::reduce(ReduceOp::LogSumExp, v[0], 1); },
               [](T t) { return reduce(ReduceOp::LogSumExp, t[0], 1); }});
  // --- linear, with and without bias ---
  c.push_back({"linear", {{5, 3}, {4, 3}, {4}}, kSym, [](V v) { return ag::linear(v[0], v[1], v[2]); },
               [](T t) { return add(matmul(t[0], t[1], false, true), t[2]); }});
  c.push_back({"linear without bias", {{5, 3}, {4, 3}}, kSym, [](V v) { return ag::linear(v[0], v[1], Var()); },
               [](T t) { return matmul(t[0], t[1], false, true); }});
  // --- shapes ---
  c.push_back({"reshape", {{3, 4}}, kSym, [](V v) { return ag::reshape(v[0], {2, -1, 3}); },
               [](T t) { return t[0].reshape({2, -1, 3}); }});
  c.push_back({"flatten", {{2, 3, 2, 2}}, kSym, [](V v) { return ag::flatten(v[0]); },
               [](T t) { return t[0].reshape({2, 12}); }});
  const Conv2dParams p11 = conv_params(1, 1);
  // --- small networks end to end: gradients w.r.t. the input AND the parameters from one backward ---
  c.push_back({"mlp energy", {{4, 3}, {8, 3}, {8}, {8, 8}, {8}, {1, 8}, {1}}, kSym,
               [](V v) {
                 Var h = ag::silu(ag::linear(v[0], v[1], v[2]));
                 h = ag::softplus(ag::linear(h, v[3], v[4]));
                 return ag::add(ag::sum(ag::linear(h, v[5], v[6]), 1), ag::mul_scalar(ag::sum(ag::square(v[0]), 1), 0.5));
               },
               nullptr});
  const Conv2dParams p21 = conv_params(2, 1);
  c.push_back({"conv net energy", {{2, 2, 6, 6}, {3, 2, 3, 3}, {3}, {4, 3, 3, 3}, {4}, {1, 36}, {1}}, kSym,
               [p11, p21](V v) {
                 Var h = ag::silu(ag::conv2d(v[0], v[1], v[2], p11));     // [2, 3, 6, 6]
                 h = ag::leaky_relu(ag::conv2d(h, v[3], v[4], p21), 0.2);  // [2, 4, 3, 3]
                 return ag::linear(ag::flatten(h), v[5], v[6]);            // [2, 1]
               },
               nullptr});
  c.push_back({"log-sum-exp of negative energies", {{6, 2}, {3, 2}}, kSym,
               [](V v) {  // -log sum_k exp(-|x - mu_k|^2 / 2), a Gaussian-mixture energy built from the ops
                 std::vector<Var> terms;
                 for (int64_t k = 0; k < 3; ++k) {
                   Var mu = ag::reshape(ag::gather_rows(v[1], idx_tensor({k})), {2});
                   terms.push_back(ag::mul_scalar(ag::sum(ag::square(v[0] - mu), 1, true), -0.5));
                 }
                 return ag::neg(ag::logsumexp(ag::concat(terms, 1), 1));
               },
               nullptr});
  return c;
}

}  // namespace

namespace {

// Value == the runtime op (when given); analytic gradient (one backward over all inputs) == central finite
// differences in float64; grad() == backward() and leaves .grad() alone.
//
// Tolerance: with eps = 1e-6, the central difference's truncation error is ~eps^2 |f'''| / 6 ~ 1e-12 (1e-7 for
// x^-1.5 at 0.1, the steepest table row), and its rounding error ~ 1e-16 |L| / eps ~ 1e-7 for the |L| <= 1000 of
// these cases; atol 1e-6 + rtol 1e-5 leaves a margin over that while still catching any wrong term (those are
// O(0.01) or larger at these input scales).
void check_gradients(const std::string& name, const Tensors& values, const std::function<Var(const Vars&)>& build,
                     const std::function<Tensor(const Tensors&)>& ref, std::mt19937_64& rng) {
  constexpr double kEps = 1e-6, kAtol = 1e-6, kRtol = 1e-5;
  Vars vars;
  for (const Tensor& t : values) vars.emplace_back(t.clone(), true);

  Var out = build(vars);
  BOOST_TEST(out.requires_grad());
  if (ref) BOOST_TEST(test::all_close(out.value(), ref(values), 0.0, 1e-14, name + " value"));

  // L = sum(out * r) with a fixed random r: every output element contributes with a distinct weight.
  const Tensor r = random_tensor(out.shape(), kSym, rng);
  const std::vector<double> rv = r.to_vector();
  ag::backward(ag::sum_all(ag::mul(out, Var(r))));

  for (size_t i = 0; i < vars.size(); ++i) {
    BOOST_TEST_REQUIRE(vars[i].grad().defined(), "input " << i << " got no gradient");
    Tensor& x = vars[i].value();
    double* xp = x.data<double>();
    std::vector<double> fd(static_cast<size_t>(x.numel()));
    ag::NoGradGuard no_grad;
    for (int64_t j = 0; j < x.numel(); ++j) {
      const double x0 = xp[j];
      xp[j] = x0 + kEps;
      const double lp = dot(build(vars).value().to_vector(), rv);
      xp[j] = x0 - kEps;
      const double lm = dot(build(vars).value().to_vector(), rv);
      xp[j] = x0;
      fd[static_cast<size_t>(j)] = (lp - lm) / (2 * kEps);
    }
    BOOST_TEST(test::all_close(vars[i].grad().to_vector(), fd, kAtol, kRtol, name + " d/dinput" + std::to_string(i)));
  }

  // grad() on a fresh forward: the same gradients, returned, with .grad() untouched.
  std::vector<std::vector<double>> before;
  for (const Var& v : vars) before.push_back(v.grad().to_vector());
  const Tensors g = ag::grad(ag::sum_all(ag::mul(build(vars), Var(r))), vars);
  BOOST_TEST_REQUIRE(g.size() == vars.size());
  for (size_t i = 0; i < vars.size(); ++i) {
    BOOST_TEST(test::all_close(g[i].to_vector(), before[i], 1e-13, 1e-12, name + " grad() input" + std::to_string(i)));
    BOOST_TEST(vars[i].grad().to_vector() == before[i]);
  }
}

}  // namespace

// Every row of the op-case table (tests/op_cases.cpp) that has an autograd form, on its own inputs in float64.
BOOST_AUTO_TEST_CASE(table_ops_match_finite_differences) {
  int checked = 0;
  for (const test::OpCase& c : test::op_cases()) {
    if (!c.grad) continue;
    BOOST_TEST_CONTEXT("table case " << c.family << " " << c.name) {
      Tensors values;
      for (size_t k = 0; k < c.shapes.size(); ++k)
        values.push_back(Tensor::from_vector(test::op_case_input(c, k), c.shapes[k], DType::Float64));
      std::mt19937_64 rng(std::hash<std::string>{}(c.name));
      check_gradients(c.family + " " + c.name, values, c.grad, [&c](const Tensors& t) { return c.run(t).front(); },
                      rng);
    }
    ++checked;
  }
  BOOST_TEST_MESSAGE(checked << " table cases gradient-checked");
  BOOST_TEST(checked > 100);
}

// The autograd-only forms (operators, the generic unary()/binary()/reduce() entries, linear, reshape, flatten) and
// small networks built from the ops.
BOOST_AUTO_TEST_CASE(every_op_matches_finite_differences) {
  uint64_t seed = 1;
  for (const Case& c : all_cases()) {
    BOOST_TEST_CONTEXT("case " << c.name) {
      std::mt19937_64 rng(seed++);
      Tensors values;
      for (const Shape& s : c.shapes) values.push_back(random_tensor(s, c.range, rng));
      check_gradients(c.name, values, c.build, c.ref, rng);
    }
  }
}

// --- engine contracts ------------------------------------------------------------------------------------

namespace {
Var leaf(const std::vector<double>& v, const Shape& s, bool requires_grad = true) {
  return Var(Tensor::from_vector(v, s, DType::Float64), requires_grad);
}

// Identity op that counts its backward calls: shows which branches a sweep runs.
struct CountingNode : ag::Node {
  int* calls;
  explicit CountingNode(int* c) : calls(c) {}
  const char* name() const override { return "counting"; }
  std::vector<Tensor> backward(const Tensor& g) override {
    ++*calls;
    return {g};
  }
};
Var counted(const Var& x, int* calls) {
  auto n = std::make_shared<CountingNode>(calls);
  n->inputs = {x};
  return Var::from_op(x.value(), n);
}
}  // namespace

BOOST_AUTO_TEST_CASE(gradients_accumulate_across_backward_calls) {
  Var x = leaf({1, 2, 3}, {3});
  ag::backward(ag::sum_all(ag::square(x)));  // 2x
  ag::backward(ag::sum_all(ag::mul_scalar(x, 3.0)));  // + 3
  BOOST_TEST(x.grad().to_vector() == std::vector<double>({5, 7, 9}), boost::test_tools::per_element());
  x.zero_grad();
  BOOST_TEST(!x.grad().defined());
}

BOOST_AUTO_TEST_CASE(one_backward_fills_input_and_parameter_gradients) {
  // The cost rule (docs/method.md): one pass gives grad_x U and grad_theta U.
  Var x = leaf({1, -2, 0.5, 3}, {2, 2});
  Var w = leaf({0.5, -1, 2, 0.25}, {2, 2});
  Var b = leaf({0.1, -0.2}, {2});
  Var u = ag::sum_all(ag::tanh(ag::linear(x, w, b)));
  ag::backward(u);
  BOOST_TEST(x.grad().defined());
  BOOST_TEST(w.grad().defined());
  BOOST_TEST(b.grad().defined());
  BOOST_TEST(x.grad().shape() == x.shape());
  BOOST_TEST(w.grad().shape() == w.shape());
}

BOOST_AUTO_TEST_CASE(no_grad_guard_records_nothing_and_restores) {
  Var x = leaf({1, 2}, {2});
  BOOST_TEST(ag::grad_enabled());
  {
    ag::NoGradGuard outer;
    BOOST_TEST(!ag::grad_enabled());
    {
      ag::NoGradGuard inner;
      BOOST_TEST(!ag::grad_enabled());
    }
    BOOST_TEST(!ag::grad_enabled());  // the inner guard restores the outer's state, not "on"
    Var y = ag::exp(x) * x;
    BOOST_TEST(!y.requires_grad());
    BOOST_TEST(!y.grad_fn());
    BOOST_TEST(!ag::needs_graph({&x}));
  }
  BOOST_TEST(ag::grad_enabled());
  BOOST_TEST(ag::needs_graph({&x}));
  Var c = leaf({1, 2}, {2}, false);
  BOOST_TEST(!ag::needs_graph({&c}));
  BOOST_TEST(!(ag::exp(c)).grad_fn());  // no input requires a gradient: no node either
}

BOOST_AUTO_TEST_CASE(graph_is_released_after_backward) {
  Var x = leaf({1, 2, 3}, {3});
  std::weak_ptr<ag::Node> inner;
  Var root;
  {
    Var h = ag::exp(x);
    inner = h.grad_fn();
    root = ag::sum_all(ag::mul(h, h));
  }
  BOOST_TEST(!inner.expired());  // the root's graph keeps it alive...
  ag::backward(root);
  BOOST_TEST(inner.expired());   // ...until backward releases it
  BOOST_TEST(root.grad_fn()->inputs.empty());
  BOOST_CHECK_THROW(ag::backward(root), Error);  // a released graph cannot be swept twice
}

BOOST_AUTO_TEST_CASE(grad_returns_gradients_without_touching_dot_grad) {
  Var x = leaf({0.5, -1.0, 2.0}, {3});
  Var w = leaf({1.0, 2.0, 3.0}, {3});
  Var h = ag::mul(x, w);  // a non-leaf can be asked for too
  Var u = ag::sum_all(ag::square(h));
  const Tensors g = ag::grad(u, {x, h});
  BOOST_TEST(!x.grad().defined());
  BOOST_TEST(!w.grad().defined());
  // h = [0.5, -2, 6]; du/dh = 2h, du/dx = 2 h w
  BOOST_TEST(g[0].to_vector() == std::vector<double>({1.0, -8.0, 36.0}), boost::test_tools::per_element());
  BOOST_TEST(g[1].to_vector() == std::vector<double>({1.0, -4.0, 12.0}), boost::test_tools::per_element());

  // An input the root does not depend on gets zeros.
  Var y = leaf({1, 2}, {2});
  Var z = leaf({1, 2}, {2});
  const Tensors gz = ag::grad(ag::sum_all(y), {z});
  BOOST_TEST(gz[0].to_vector() == std::vector<double>({0, 0}), boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(grad_skips_branches_that_reach_no_requested_input) {
  // A Langevin move asks grad(U, {x}) with parameters still requiring grad: the weight branch must not run.
  Var x = leaf({0.5, -1.0}, {1, 2});
  Var w = leaf({1.0, 2.0, 3.0, 4.0}, {2, 2});
  int w_calls = 0, x_calls = 0;
  Var u = ag::sum_all(ag::tanh(ag::linear(counted(x, &x_calls), counted(w, &w_calls), Var())));
  const Tensors g = ag::grad(u, {x});
  BOOST_TEST(x_calls == 1);
  BOOST_TEST(w_calls == 0);
  BOOST_TEST(g[0].shape() == x.shape());
  BOOST_TEST(!w.grad().defined());

  w_calls = x_calls = 0;
  ag::backward(ag::sum_all(ag::tanh(ag::linear(counted(x, &x_calls), counted(w, &w_calls), Var()))));
  BOOST_TEST(x_calls == 1);
  BOOST_TEST(w_calls == 1);
}

BOOST_AUTO_TEST_CASE(shared_subexpressions_get_the_sum_of_their_gradients) {
  Var x = leaf({2.0}, {1});
  Var h = ag::mul_scalar(x, 3.0);  // used three times below
  Var u = ag::sum_all(h * h + h);  // u = 9x^2 + 3x, du/dx = 18x + 3
  ag::backward(u);
  BOOST_TEST(x.grad().item() == 39.0);
  BOOST_TEST(!h.grad().defined());  // non-leaf gradients are temporaries
}

BOOST_AUTO_TEST_CASE(leaf_gradients_do_not_alias) {
  // add hands the same tensor to both inputs; each leaf must own its gradient, since optimizers edit it in place.
  Var a = leaf({1, 2}, {2});
  Var b = leaf({3, 4}, {2});
  ag::backward(ag::sum_all(a + b));
  BOOST_TEST(!a.grad().same_storage(b.grad()));
  fill_(a.grad(), 7.0);
  BOOST_TEST(b.grad().to_vector() == std::vector<double>({1, 1}), boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(handed_over_gradients_share_nothing_the_sweep_uses) {
  // The engine hands a target a gradient without copying it only when nothing else holds it. Here h is a target
  // that also routes its gradient on to x and receives two contributions (the second added into the first), and
  // the root is a target whose gradient the next node passes through unchanged.
  Var x = leaf({1.0, -2.0}, {2});
  Var h = ag::mul_scalar(x, 3.0);                                        // h = [3, -6]
  Var u = ag::add_scalar(ag::sum_all(ag::square(h)) + ag::sum_all(h), 0.0);  // du/dh = 2h + 1, du/dx = 3 (2h + 1)
  Tensors g = ag::grad(u, {h, x, u});
  BOOST_TEST(g[0].to_vector() == std::vector<double>({7, -11}), boost::test_tools::per_element());
  BOOST_TEST(g[1].to_vector() == std::vector<double>({21, -33}), boost::test_tools::per_element());
  BOOST_TEST(g[2].item() == 1.0);
  BOOST_TEST(!g[0].same_storage(g[1]));
  fill_(g[2], 5.0);  // the caller owns each result
  fill_(g[0], 5.0);
  BOOST_TEST(g[1].to_vector() == std::vector<double>({21, -33}), boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(in_place_backwards_leave_shared_gradients_alone) {
  // SiLU's backward multiplies its gradient in place when nothing else holds it. add hands one tensor to both
  // SiLUs, so neither may write into it; the linear layer's gradient is the SiLU's alone, so it may.
  Var x1 = leaf({0.5, -1.5, 2.0}, {1, 3});
  Var x2 = leaf({-0.25, 1.0, 3.0}, {1, 3});
  ag::backward(ag::sum_all(ag::silu(x1) + ag::silu(x2)));
  Var w = leaf({1.0, -2.0, 0.5, 0.25, 1.5, -1.0}, {2, 3});
  Var h = ag::silu(ag::linear(x1, w, Var()));  // x1 w^T = [4.5, -4.125]
  const Tensors g = ag::grad(ag::sum_all(h), {x1});
  auto dsilu = [](double v) {
    const double s = 1.0 / (1.0 + std::exp(-v));
    return s * (1.0 + v * (1.0 - s));
  };
  const std::vector<double> a = x1.value().to_vector(), b = x2.value().to_vector(), gx1 = x1.grad().to_vector(),
                            gx2 = x2.grad().to_vector(), gg = g[0].to_vector();
  for (size_t i = 0; i < 3; ++i) {
    BOOST_TEST(gx1[i] == dsilu(a[i]), boost::test_tools::tolerance(1e-12));
    BOOST_TEST(gx2[i] == dsilu(b[i]), boost::test_tools::tolerance(1e-12));
    const double want = dsilu(4.5) * w.value().to_vector()[i] + dsilu(-4.125) * w.value().to_vector()[3 + i];
    BOOST_TEST(gg[i] == want, boost::test_tools::tolerance(1e-12));
  }
}

BOOST_AUTO_TEST_CASE(max_ties_split_the_gradient) {
  Var x = leaf({1, 3, 3, 0}, {1, 4});
  ag::backward(ag::sum_all(ag::max(x, 1)));
  BOOST_TEST(x.grad().to_vector() == std::vector<double>({0, 0.5, 0.5, 0}), boost::test_tools::per_element());

  Var a = leaf({1, 2, 5}, {3});
  Var b = leaf({1, 3, 4}, {3});
  ag::backward(ag::sum_all(ag::maximum(a, b)));
  BOOST_TEST(a.grad().to_vector() == std::vector<double>({0.5, 0, 1}), boost::test_tools::per_element());
  BOOST_TEST(b.grad().to_vector() == std::vector<double>({0.5, 1, 0}), boost::test_tools::per_element());
  a.zero_grad();
  b.zero_grad();
  ag::backward(ag::sum_all(ag::minimum(a, b)));
  BOOST_TEST(a.grad().to_vector() == std::vector<double>({0.5, 1, 0}), boost::test_tools::per_element());
  BOOST_TEST(b.grad().to_vector() == std::vector<double>({0.5, 0, 1}), boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(non_scalar_root_needs_grad_root) {
  Var x = leaf({1, 2, 3}, {3});
  BOOST_CHECK_THROW(ag::backward(ag::square(x)), Error);
  BOOST_CHECK_THROW(ag::backward(ag::square(x), Tensor::ones({2}, DType::Float64)), Error);  // wrong shape
  const Tensor seed = Tensor::from_vector(std::vector<double>{1, 0, -1}, {3}, DType::Float64);
  ag::backward(ag::square(x), seed);  // vector-Jacobian product: 2x * seed
  BOOST_TEST(x.grad().to_vector() == std::vector<double>({2, 0, -6}), boost::test_tools::per_element());
  // A root without a graph is an error, not a silent no-op.
  Var c = leaf({1}, {1}, false);
  BOOST_CHECK_THROW(ag::backward(ag::sum_all(c)), Error);
}

BOOST_AUTO_TEST_CASE(float32_gradients_flow) {
  // The harness runs in float64; the training runs in float32. One float32 pass checks dtypes are kept.
  Var x(Tensor::from_vector(std::vector<float>{1.f, -2.f, 0.5f}, {3}), true);
  ag::backward(ag::sum_all(ag::mul_scalar(ag::square(x), 0.5)));
  BOOST_TEST((x.grad().dtype() == DType::Float32), "gradient dtype " << dtype_name(x.grad().dtype()));
  BOOST_TEST(x.grad().to_vector() == std::vector<double>({1.0, -2.0, 0.5}), boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(op_entry_errors_name_the_shapes) {
  Var x = leaf({1, 2, 3, 4, 5, 6}, {2, 3});
  Var w = leaf({1, 2, 3, 4}, {2, 2});
  BOOST_CHECK_THROW(ag::linear(x, w, Var()), Error);
  BOOST_CHECK_THROW(ag::sum(x, 2), Error);
  BOOST_CHECK_THROW(ag::concat({}, 0), Error);
  // Only leaves may change requires_grad: flipping it on an op result would cut its graph silently.
  Var y = ag::exp(x);
  BOOST_CHECK_THROW(y.set_requires_grad(false), Error);
  Var d = y.detach();
  BOOST_TEST(d.is_leaf());
  BOOST_TEST(d.value().same_storage(y.value()));
  d.set_requires_grad(true);
  BOOST_TEST(d.requires_grad());
}
