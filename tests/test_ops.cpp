// The CPU op harness (runtime/ops.hpp, runtime/cpu/*.cpp): every row of the op-case table (tests/op_cases.cpp), run
// in float32 and float64 and compared with its naive double-precision reference. Families: unary, unary_backward,
// unary_with_derivative (also checked bit for bit against the other two),
// binary (broadcasting; mul_ in place, also bit for bit against mul), scalar, axpby, reduce, sum_to, gemm, conv2d, index, adam. Plus every unary op and its
// derivative at the special values (NaN, +-inf, huge, denormal, +-0), thread-count independence, the error messages.
#include "tests/helpers.hpp"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <functional>
#include <limits>
#include <random>
#include <string>
#include <tuple>
#include <vector>

#include "runtime/ops.hpp"
#include "runtime/unary_math.hpp"
#include "tests/op_cases.hpp"

using namespace jebm;
using jebm::test::all_close;
using jebm::test::expect_error;
using jebm::test::Host;
using jebm::test::op_case_input;
using jebm::test::op_cases;
using jebm::test::OpCase;

namespace {

// Draws the inputs (tests/op_cases.cpp: deterministic per case and input), runs the op in `dtype` and compares
// with the reference computed from exactly the values the op saw.
void run_case(const OpCase& c, DType dtype) {
  std::vector<Tensor> in;
  std::vector<Host> host;
  for (size_t k = 0; k < c.shapes.size(); ++k) {
    in.push_back(Tensor::from_vector(op_case_input(c, k), c.shapes[k], dtype));
    host.push_back({c.shapes[k], in.back().to_vector()});
  }
  const std::vector<Tensor> got = c.run(in);
  const std::vector<Host> want = c.ref(host);
  BOOST_TEST_REQUIRE(got.size() == want.size());
  const double tol = dtype == DType::Float32 ? c.tol32 : c.tol64;
  for (size_t k = 0; k < got.size(); ++k) {
    const std::string what = c.family + " " + c.name + " " + dtype_name(dtype) + " output " + std::to_string(k);
    BOOST_TEST((got[k].dtype() == dtype), what);
    BOOST_TEST(shape_str(got[k].shape()) == shape_str(want[k].shape), what);
    BOOST_TEST(all_close(got[k].to_vector(), want[k].v, tol, tol, what), what);
  }
}

void run_family(const std::string& family) {
  int count = 0;
  for (const OpCase& c : op_cases()) {
    if (c.family != family) continue;
    if (jebm::test::sanitized() && count > 40) break;  // ASan/UBSan runs keep the first cases of each family
    for (DType dt : {DType::Float32, DType::Float64}) {
      BOOST_TEST_CONTEXT(family << ": " << c.name << " (" << dtype_name(dt) << ")") { run_case(c, dt); }
    }
    ++count;
  }
  BOOST_TEST(count > 0, "no cases in family " << family);
}

}  // namespace

BOOST_AUTO_TEST_CASE(unary_ops) { run_family("unary"); }
BOOST_AUTO_TEST_CASE(unary_backward_ops) { run_family("unary_backward"); }
BOOST_AUTO_TEST_CASE(unary_with_derivative_ops) { run_family("unary_with_derivative"); }
BOOST_AUTO_TEST_CASE(binary_ops_broadcast) { run_family("binary"); }
BOOST_AUTO_TEST_CASE(scalar_ops) { run_family("scalar"); }
BOOST_AUTO_TEST_CASE(axpby) { run_family("axpby"); }
BOOST_AUTO_TEST_CASE(reductions) { run_family("reduce"); }
BOOST_AUTO_TEST_CASE(sum_to_inverts_broadcasting) { run_family("sum_to"); }
BOOST_AUTO_TEST_CASE(gemm_all_transposes) { run_family("gemm"); }
BOOST_AUTO_TEST_CASE(conv2d_forward_and_backward) { run_family("conv2d"); }
BOOST_AUTO_TEST_CASE(index_ops) { run_family("index"); }
BOOST_AUTO_TEST_CASE(adam_one_step) { run_family("adam"); }
BOOST_AUTO_TEST_CASE(fill_and_cast) {
  run_family("fill");
  run_family("cast");
}
BOOST_AUTO_TEST_CASE(random_fills) { run_family("rng"); }

namespace {

// e rounded to dtype; beyond the largest finite value plus half an ulp, the infinity (a plain cast would be UB).
double round_to(DType dt, long double e) {
  const bool f32 = dt == DType::Float32;
  const long double overflow = f32 ? std::ldexp(2.0L - std::ldexp(1.0L, -24), 127) : std::ldexp(2.0L - std::ldexp(1.0L, -53), 1023);
  if (std::fabs(e) >= overflow) return e > 0 ? INFINITY : -INFINITY;
  return f32 ? static_cast<double>(static_cast<float>(e)) : static_cast<double>(e);
}

// got == the exact value rounded to dtype: NaN where it is NaN, the same infinity, else within rtol, plus an atol:
// the smallest normal for values (float32's sigmoid and exp flush results below it to 0), one epsilon for the
// derivatives (1 - tanh^2 and s (1 - s) subtract from 1, so their error is absolute: tanh'(20) = 1.7e-17 comes out 0).
void check_special(const std::vector<double>& x, const std::vector<double>& got, DType dt, bool derivative,
                   UnaryOp op, double alpha, const std::string& what) {
  const double atol = derivative ? jebm::test::eps_of(dt)
                      : dt == DType::Float32 ? std::numeric_limits<float>::min()
                                             : std::numeric_limits<double>::min();
  const double rtol = 8 * jebm::test::eps_of(dt);
  int bad = 0;
  for (size_t i = 0; i < x.size(); ++i) {
    const long double e = derivative ? jebm::test::unary_derivative_exact(op, x[i], alpha) : jebm::test::unary_exact(op, x[i], alpha);
    const double want = round_to(dt, e);
    const bool ok = std::isnan(want) ? std::isnan(got[i])
                    : std::isinf(want) ? got[i] == want
                                       : std::fabs(got[i] - want) <= atol + rtol * std::fabs(want);
    if (!ok && bad++ < 10) BOOST_ERROR(what << " at x = " << x[i] << ": got " << got[i] << ", want " << want);
  }
  BOOST_TEST(bad == 0, what << ": " << bad << " of " << x.size() << " special values wrong");
}

}  // namespace

// NaN, +-inf, huge and denormal inputs reach the activations from corrupt checkpoints or diverging runs.
// Every unary op and its derivative gives NaN for NaN, the limit for +-inf, and no UB (the asan preset runs this).
BOOST_AUTO_TEST_CASE(unary_ops_at_special_values) {
  const double alpha = 0.1;
  for (DType dt : {DType::Float32, DType::Float64}) {
    const std::vector<double> xv = jebm::test::special_values(dt);
    const Shape shape{static_cast<int64_t>(xv.size())};
    const Tensor x = Tensor::from_vector(xv, shape, dt);
    const std::vector<double> xs = x.to_vector();  // as the kernel sees them
    for (UnaryOp op : jebm::test::all_unary_ops()) {
      const std::string what = std::string(unary_op_name(op)) + " " + dtype_name(dt);
      check_special(xs, unary(op, x, alpha).to_vector(), dt, false, op, alpha, what);
      check_special(xs, unary_backward(op, x, Tensor::ones(shape, dt), alpha).to_vector(), dt, true, op, alpha,
                    what + " backward");
    }
  }
}

// unary_with_derivative is unary and unary_backward (grad_y = 1) fused, so autograd's saved derivative changes no
// bit of a gradient: the same bits (NaN where they give NaN) on random inputs of serial, odd and OpenMP-sized
// lengths and on the special values, for every op, float32 and float64.
BOOST_AUTO_TEST_CASE(unary_with_derivative_has_the_bits_of_unary_and_its_backward) {
  const double alpha = 0.1;
  std::mt19937_64 rng(11);
  std::normal_distribution<double> normal(0.0, 4.0);
  auto same_bits = [](const Tensor& got, const Tensor& want, const std::string& what) {
    const std::vector<double> g = got.to_vector(), w = want.to_vector();
    int bad = 0;
    for (size_t i = 0; i < g.size(); ++i) {
      const bool ok = g[i] == w[i] ? std::signbit(g[i]) == std::signbit(w[i]) : std::isnan(g[i]) && std::isnan(w[i]);
      if (!ok && bad++ < 10) BOOST_ERROR(what << " at " << i << ": got " << g[i] << ", want " << w[i]);
    }
    BOOST_TEST(bad == 0, what << ": " << bad << " of " << g.size() << " differ");
  };
  for (DType dt : {DType::Float32, DType::Float64}) {
    for (int64_t n : {int64_t{7}, int64_t{33811}, int64_t{1} << 18}) {
      std::vector<double> xv = jebm::test::special_values(dt);
      while (static_cast<int64_t>(xv.size()) < n) xv.push_back(normal(rng));
      xv.resize(static_cast<size_t>(n));
      const Tensor x = Tensor::from_vector(xv, {n}, dt), ones = Tensor::ones({n}, dt);
      for (UnaryOp op : jebm::test::all_unary_ops()) {
        const std::string what = std::string(unary_op_name(op)) + " " + dtype_name(dt) + " n=" + std::to_string(n);
        Tensor d;
        const Tensor y = unary_with_derivative(op, x, d, alpha);
        same_bits(y, unary(op, x, alpha), what + " value");
        same_bits(d, unary_backward(op, x, ones, alpha), what + " derivative");
      }
    }
  }
}

namespace {
// Whether two float32 results have the same bits (any two NaNs count as the same).
bool same_bits_f32(float got, float want) {
  uint32_t a, b;
  std::memcpy(&a, &got, 4);
  std::memcpy(&b, &want, 4);
  return a == b || (std::isnan(got) && std::isnan(want));
}
}  // namespace

// The float32 sigmoid and SiLU run in loops cloned for AVX-512, AVX2 and the baseline ISA (runtime/cpu/elementwise.cpp),
// vectorised: every clone must give the bits of the scalar formulas in runtime/unary_math.hpp, element by element
// (this checks the clone that this CPU runs), on random, special and underflowing inputs at odd and OpenMP lengths.
BOOST_AUTO_TEST_CASE(float32_logistic_loops_have_the_bits_of_the_scalar_formulas) {
  namespace um = jebm::unary_math;
  std::mt19937_64 rng(12);
  std::normal_distribution<double> normal(0.0, 30.0);
  for (int64_t n : {int64_t{13}, int64_t{40013}}) {
    std::vector<double> xv = jebm::test::special_values(DType::Float32);
    for (double v : {-87.0, -87.5, -86.9, -1e4, 1e4, -1.0001e4, 1.0001e4, -0.0, 0.0}) xv.push_back(v);
    while (static_cast<int64_t>(xv.size()) < n) xv.push_back(normal(rng));
    xv.resize(static_cast<size_t>(n));
    const Tensor x = Tensor::from_vector(xv, {n}, DType::Float32);
    Generator gen{13, 0};
    const Tensor gy = rand_normal({n}, 0, 2, gen, DType::Float32);
    const std::vector<float> xs = x.host_vector<float>(), gs = gy.host_vector<float>();
    for (UnaryOp op : {UnaryOp::Sigmoid, UnaryOp::Silu}) {
      const bool silu = op == UnaryOp::Silu;
      Tensor d;
      const std::vector<float> y = unary(op, x).host_vector<float>(), g = unary_backward(op, x, gy).host_vector<float>();
      const std::vector<float> yw = unary_with_derivative(op, x, d).host_vector<float>(), dw = d.host_vector<float>();
      int bad = 0;
      auto same = [&](float got, float want, const char* what, size_t i) {
        if (same_bits_f32(got, want)) return;
        if (bad++ < 10)
          BOOST_ERROR(unary_op_name(op) << " " << what << " n=" << n << " at x = " << xs[i] << ": got " << got
                                        << ", want " << want);
      };
      for (size_t i = 0; i < xs.size(); ++i) {
        float di;
        const float want_y = silu ? um::silu(xs[i]) : um::sigmoid(xs[i]);
        const float want_g = (silu ? um::silu_derivative(xs[i]) : um::sigmoid_derivative(xs[i])) * gs[i];
        const float want_yw = silu ? um::silu_with_derivative(xs[i], di) : um::sigmoid_with_derivative(xs[i], di);
        same(y[i], want_y, "value", i);
        same(g[i], want_g, "backward", i);
        same(yw[i], want_yw, "value with derivative", i);
        same(dw[i], di, "derivative", i);
      }
      BOOST_TEST(bad == 0, unary_op_name(op) << " n=" << n << ": " << bad << " elements differ from the scalar formulas");
    }
  }
}

// float32 add and mul of equal shapes, and mul_ in place, run in loops cloned for AVX-512, AVX2 and the baseline ISA
// (runtime/cpu/elementwise.cpp): the clone this CPU runs must give each element's single rounding, on special values,
// at odd lengths and at lengths that run in parallel chunks.
BOOST_AUTO_TEST_CASE(float32_add_and_mul_loops_round_each_element_once) {
  std::mt19937_64 rng(14);
  std::normal_distribution<double> normal(0.0, 1e3);
  for (int64_t n : {int64_t{1}, int64_t{17}, int64_t{40013}, int64_t{1} << 18}) {
    std::vector<double> av = jebm::test::special_values(DType::Float32), bv;
    while (static_cast<int64_t>(av.size()) < n) av.push_back(normal(rng));
    av.resize(static_cast<size_t>(n));
    for (int64_t i = 0; i < n; ++i) bv.push_back(i % 7 == 0 ? av[static_cast<size_t>((i * 5) % n)] : normal(rng));
    const Tensor a = Tensor::from_vector(av, {n}, DType::Float32), b = Tensor::from_vector(bv, {n}, DType::Float32);
    const std::vector<float> as = a.host_vector<float>(), bs = b.host_vector<float>();
    const std::vector<float> sum = add(a, b).host_vector<float>(), prod = mul(a, b).host_vector<float>();
    Tensor in_place = a.clone();
    mul_(in_place, b);  // the in-place clone
    const std::vector<float> prod_ = in_place.host_vector<float>();
    int bad = 0;
    for (size_t i = 0; i < as.size(); ++i)
      for (const auto& [got, want, what] : {std::tuple{sum[i], as[i] + bs[i], "add"}, {prod[i], as[i] * bs[i], "mul"},
                                            {prod_[i], as[i] * bs[i], "mul_"}})
        if (!same_bits_f32(got, want) && bad++ < 10)
          BOOST_ERROR(what << " n=" << n << " at " << as[i] << ", " << bs[i] << ": got " << got << ", want " << want);
    BOOST_TEST(bad == 0, "n=" << n << ": " << bad << " elements differ");
  }
}

// mul_ writes into its first argument (autograd's in-place backward): the bits of mul, on the CPU's in-place path.
BOOST_AUTO_TEST_CASE(mul_in_place_has_the_bits_of_mul) {
  Generator gen{21, 0};
  for (DType dt : {DType::Float32, DType::Float64}) {
    for (int64_t n : {int64_t{7}, int64_t{1} << 18}) {
      const Tensor a = rand_normal({n}, 0, 3, gen, dt), b = rand_normal({n}, 0, 3, gen, dt);
      Tensor y = a.clone();
      mul_(y, b);
      BOOST_TEST(y.to_vector() == mul(b, a).to_vector(), dtype_name(dt) << " n=" << n);
    }
  }
  Tensor y = Tensor::ones({3});
  BOOST_CHECK_THROW(mul_(y, Tensor::ones({4})), Error);
}

// conv2d_backward_bias's order, pinned: a training run's bits depend on it. Per filter, in double, each grad_y row
// (sample) in turn; a row's first floor(P / 8) * 8 values go to 8 lane sums (value k to lane k mod 8), the rest to
// a tail sum; the result is tail + lane 0 + ... + lane 7, rounded once to the dtype. Filter counts that are not a
// multiple of the kernel's block of filters, P below 8 and not a multiple of 8, and sizes that run in parallel.
BOOST_AUTO_TEST_CASE(conv_bias_gradient_adds_in_its_documented_order) {
  Generator gen{22, 0};
  const std::vector<std::array<int64_t, 4>> shapes = {{3, 5, 2, 2}, {7, 6, 4, 4},    {5, 9, 3, 3},     {2, 3, 16, 16},
                                                      {4, 1, 1, 1}, {300, 64, 2, 2}, {64, 16, 16, 16}, {9, 7, 5, 1}};
  for (DType dt : {DType::Float32, DType::Float64}) {
    for (const auto& [n, f, h, w] : shapes) {
      const Tensor gy = rand_normal({n, f, h, w}, 0, 1e3, gen, dt);
      const std::vector<double> v = gy.to_vector();
      const int64_t p = h * w, body = p / 8 * 8;
      std::vector<double> want(static_cast<size_t>(f));
      for (int64_t j = 0; j < f; ++j) {
        double lane[8] = {}, tail = 0.0;
        for (int64_t i = 0; i < n; ++i)
          for (int64_t k = 0; k < p; ++k) {
            const double x = v[static_cast<size_t>((i * f + j) * p + k)];
            if (k < body)
              lane[k % 8] += x;
            else
              tail += x;
          }
        double s = tail;
        for (double l : lane) s += l;
        want[static_cast<size_t>(j)] = dt == DType::Float32 ? static_cast<double>(static_cast<float>(s)) : s;
      }
      for (int threads : {1, 2}) {
        const jebm::test::ThreadCount t(threads);
        const std::vector<double> got = conv2d_backward_bias(gy).to_vector();
        BOOST_TEST(got == want, dtype_name(dt) << " [" << n << ", " << f << ", " << h << ", " << w << "] at " << threads
                                               << " threads");
      }
    }
  }
}

BOOST_AUTO_TEST_CASE(activations_are_stable_at_extreme_inputs) {
  for (DType dt : {DType::Float32, DType::Float64}) {
    const Tensor x = Tensor::from_vector(std::vector<double>{-1000, -80, 80, 1000}, {4}, dt);
    const auto sp = softplus(x).to_vector();
    BOOST_TEST(sp[0] == 0.0);
    BOOST_TEST(sp[1] == std::exp(-80.0), boost::test_tools::tolerance(1e-5));
    BOOST_TEST(sp[2] == 80.0);
    BOOST_TEST(sp[3] == 1000.0);
    const auto sg = sigmoid(x).to_vector();
    BOOST_TEST(sg[0] == 0.0);
    BOOST_TEST(sg[3] == 1.0);
    for (double v : silu(x).to_vector()) BOOST_TEST(std::isfinite(v));
    for (double v : unary_backward(UnaryOp::Softplus, x, Tensor::ones({4}, dt)).to_vector()) BOOST_TEST(std::isfinite(v));
    // log-sum-exp of huge equal values: m + log(n), no overflow.
    const Tensor big = Tensor::full({3, 5}, 1000.0, dt);
    for (double v : logsumexp(big, 1).to_vector()) BOOST_TEST(v == 1000.0 + std::log(5.0), boost::test_tools::tolerance(1e-6));
    const Tensor ninf = Tensor::full({4}, -INFINITY, dt);
    BOOST_TEST(std::isinf(logsumexp(ninf, 0).item()));
    BOOST_TEST(logsumexp(ninf, 0).item() < 0);
  }
}

BOOST_AUTO_TEST_CASE(results_do_not_depend_on_thread_count) {
  Generator gen{5, 0};
  const Tensor x = rand_normal({3, 100000}, 0, 1, gen, DType::Float32);
  const Tensor y = rand_normal({50000, 7}, 0, 1, gen, DType::Float32);
  std::vector<std::vector<double>> runs;
  for (int threads : {1, 2, 3}) {
    const jebm::test::ThreadCount count(threads);
    std::vector<double> r = sum(x, 1).to_vector();
    for (double v : logsumexp(x, 1).to_vector()) r.push_back(v);
    for (double v : sum(y, 0).to_vector()) r.push_back(v);
    r.push_back(sum_all(x).item());
    // GEMM and conv2d: BLAS blocks and im2col groups depend on the shapes only.
    for (double v : matmul(x.reshape({300, 1000}), x.reshape({1000, 300})).to_vector()) r.push_back(v);
    const Tensor img = x.reshape({12, 25, 1000}).rows(0, 12).reshape({12, 1, 100, 250});
    const Tensor w = y.rows(0, 45).reshape({7, 1, 5, 9});
    for (double v : conv2d_backward_filter(conv2d(img, w, Tensor(), {2, 1}), img, w.shape(), {2, 1}).to_vector()) r.push_back(v);
    runs.push_back(r);
  }
  BOOST_TEST(runs[0] == runs[1]);
  BOOST_TEST(runs[0] == runs[2]);
}

BOOST_AUTO_TEST_CASE(errors_name_the_op_and_both_shapes) {
  const Tensor a = Tensor::zeros({3, 4}), b = Tensor::zeros({5});
  expect_error([&] { add(a, b); }, {"add", "[3, 4]", "[5]"});
  expect_error([&] { broadcast_shapes({2, 3}, {4, 3}, "mul"); }, {"mul", "[2, 3]", "[4, 3]"});
  expect_error([&] { add(a, Tensor::zeros({3, 4}, DType::Float64)); }, {"add", "float32", "float64"});
  expect_error([&] { matmul(a, Tensor::zeros({3, 2})); }, {"matmul", "[3, 4]", "[3, 2]"});
  expect_error([&] { matmul(a, b); }, {"matmul", "[3, 4]", "[5]"});
  Tensor c = Tensor::zeros({3, 3});
  expect_error([&] { gemm_(false, false, 1, a, Tensor::zeros({4, 2}), 0, c); }, {"gemm_", "[3, 3]"});
  expect_error([&] { axpby_(1, a, 1, c); }, {"axpby_", "[3, 4]", "[3, 3]"});
  expect_error([&] { conv2d(Tensor::zeros({1, 3, 8, 8}), Tensor::zeros({2, 4, 3, 3}), Tensor(), {}); },
               {"conv2d", "[1, 3, 8, 8]", "[2, 4, 3, 3]"});
  expect_error([&] { conv2d(Tensor::zeros({1, 3, 2, 2}), Tensor::zeros({2, 3, 5, 5}), Tensor(), {}); },
               {"conv2d", "[2, 3, 5, 5]"});
  expect_error([&] { conv2d_backward_data(Tensor::zeros({1, 2, 5, 5}), Tensor::zeros({2, 3, 3, 3}), {1, 3, 8, 8}, {}); },
               {"conv2d_backward_data", "[1, 2, 5, 5]", "[1, 2, 6, 6]"});
  expect_error([&] { sum(a, 2); }, {"sum", "axis 2", "[3, 4]"});
  expect_error([&] { sum_to(a, {2, 4}); }, {"sum_to", "[2, 4]", "[3, 4]"});
  expect_error([&] { exp(Tensor::zeros({2}, DType::Int64)); }, {"exp", "int64"});
  const Tensor idx = Tensor::from_vector(std::vector<int64_t>{0, 7}, {2});
  expect_error([&] { gather_rows(a, idx); }, {"gather_rows", "index 7", "3 rows"});
  expect_error([&] { scatter_add_rows(Tensor::zeros({2, 4}), idx, 3); }, {"scatter_add_rows", "index 7"});
  Tensor dst = Tensor::zeros({3, 4});
  expect_error([&] { index_copy_rows_(dst, idx, Tensor::zeros({2, 4})); }, {"index_copy_rows", "index 7"});
  expect_error([&] { gather_rows(a, Tensor::zeros({2})); }, {"gather_rows", "int64"});
  expect_error([&] { concat({a, Tensor::zeros({3, 5})}, 0); }, {"concat", "[3, 4]", "[3, 5]"});
  Tensor p = Tensor::zeros({3}), m = Tensor::zeros({3}), v = Tensor::zeros({4});
  expect_error([&] { adam_update_(p, p, m, v, {}); }, {"adam_update_", "[3]", "[4]"});
}

BOOST_AUTO_TEST_CASE(fill_and_cast_cover_every_dtype) {
  for (DType from : {DType::Float32, DType::Float64, DType::Int64}) {
    Tensor t = Tensor::empty({70000}, from);  // large enough for the parallel path
    fill_(t, -3.0);
    for (DType to : {DType::Float32, DType::Float64, DType::Int64}) {
      const auto v = cast(t, to).to_vector();
      BOOST_TEST(v.size() == 70000u);
      BOOST_TEST(std::all_of(v.begin(), v.end(), [](double x) { return x == -3.0; }));
    }
  }
  // float -> int64 truncates toward zero.
  const Tensor f = Tensor::from_vector(std::vector<double>{2.7, -2.7, 0.4}, {3}, DType::Float64);
  BOOST_TEST(cast(f, DType::Int64).host_vector<int64_t>() == std::vector<int64_t>({2, -2, 0}));
}
