// The op-case table (tests/op_cases.hpp): the rows of the elementwise and reduction families (unary, its backward
// and both at once, binary with broadcasting, scalar, axpby, reduce, sum_to), each with a naive double reference
// written here (unary derivatives: central differences of the forward reference), its autograd form where one exists
// and the case is small enough for finite differences, and its CUDA-vs-CPU tolerance; op_cases() gathers them with
// the rows of tests/op_cases_layers.cpp (gemm, conv2d, index, adam) and tests/op_cases_data.cpp (fill, cast, random
// fills).
// Read by tests/test_ops.cpp, tests/test_cuda_ops.cpp and tests/test_autograd.cpp.
#include "tests/op_cases.hpp"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <functional>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "autograd/ops.hpp"

namespace jebm::test {
namespace {

// --- host arrays for the references ---------------------------------------------------------------------

// Flat index into `s` (right-aligned, size-1 dims broadcast) of the output multi-index `idx`.
int64_t broadcast_index(const std::vector<int64_t>& idx, const Shape& s) {
  const size_t off = idx.size() - s.size();
  int64_t flat = 0;
  for (size_t k = 0; k < s.size(); ++k) flat = flat * s[k] + (s[k] == 1 ? 0 : idx[off + k]);
  return flat;
}

Shape naive_broadcast(const Shape& a, const Shape& b) {
  const size_t r = std::max(a.size(), b.size());
  Shape out(r);
  for (size_t k = 0; k < r; ++k) {
    const int64_t da = k + a.size() < r ? 1 : a[k + a.size() - r];
    const int64_t db = k + b.size() < r ? 1 : b[k + b.size() - r];
    out[k] = std::max(da, db);
  }
  return out;
}

// --- tolerances and autograd forms -----------------------------------------------------------------------

// Through the named wrappers (ag::silu, ag::add, ...), so those are what the gradient checks cover.
ag::Var ag_unary(UnaryOp op, const ag::Var& x, double alpha) {
  switch (op) {
    case UnaryOp::Neg: return ag::neg(x);
    case UnaryOp::Exp: return ag::exp(x);
    case UnaryOp::Log: return ag::log(x);
    case UnaryOp::Sqrt: return ag::sqrt(x);
    case UnaryOp::Square: return ag::square(x);
    case UnaryOp::Abs: return ag::abs(x);
    case UnaryOp::Tanh: return ag::tanh(x);
    case UnaryOp::Sigmoid: return ag::sigmoid(x);
    case UnaryOp::Softplus: return ag::softplus(x);
    case UnaryOp::Relu: return ag::relu(x);
    case UnaryOp::Silu: return ag::silu(x);
    case UnaryOp::LeakyRelu: return ag::leaky_relu(x, alpha);
  }
  return ag::unary(op, x, alpha);
}

ag::Var ag_binary(BinaryOp op, const ag::Var& a, const ag::Var& b) {
  switch (op) {
    case BinaryOp::Add: return ag::add(a, b);
    case BinaryOp::Sub: return ag::sub(a, b);
    case BinaryOp::Mul: return ag::mul(a, b);
    case BinaryOp::Div: return ag::div(a, b);
    case BinaryOp::Max: return ag::maximum(a, b);
    case BinaryOp::Min: return ag::minimum(a, b);
  }
  return ag::binary(op, a, b);
}

ag::Var ag_reduce(ReduceOp op, const ag::Var& x, int64_t axis, bool keepdim) {
  switch (op) {
    case ReduceOp::Sum: return ag::sum(x, axis, keepdim);
    case ReduceOp::Mean: return ag::mean(x, axis, keepdim);
    case ReduceOp::Max: return ag::max(x, axis, keepdim);
    case ReduceOp::LogSumExp: return ag::logsumexp(x, axis, keepdim);
  }
  return ag::reduce(op, x, axis, keepdim);
}

// --- the table ------------------------------------------------------------------------------------------

double unary_ref(UnaryOp op, double x, double alpha) { return static_cast<double>(unary_exact(op, x, alpha)); }

double binary_ref(BinaryOp op, double a, double b) {
  switch (op) {
    case BinaryOp::Add: return a + b;
    case BinaryOp::Sub: return a - b;
    case BinaryOp::Mul: return a * b;
    case BinaryOp::Div: return a / b;
    case BinaryOp::Max: return std::max(a, b);
    case BinaryOp::Min: return std::min(a, b);
  }
  return NAN;
}

void add_unary_cases(std::vector<OpCase>& t) {
  // Small (serial), odd (vector remainders) and large (OpenMP; several CUDA grid strides) sizes.
  for (const Shape& s : {Shape{3, 5}, Shape{7}, Shape{260, 130}, Shape{1 << 17}}) {
    for (UnaryOp op : all_unary_ops()) {
      const bool positive = op == UnaryOp::Log || op == UnaryOp::Sqrt;
      const double lo = positive ? 0.1 : -4.0, hi = positive ? 3.0 : 4.0;
      const bool kink = op == UnaryOp::Abs || op == UnaryOp::Relu || op == UnaryOp::LeakyRelu;
      const double alpha = 0.2;
      const std::string nm = std::string(unary_op_name(op)) + " " + shape_str(s);
      t.push_back({"unary", nm, {s}, lo, hi, 2e-6, 1e-13,
                   [op, alpha](const std::vector<Tensor>& in) { return std::vector<Tensor>{unary(op, in[0], alpha)}; },
                   [op, alpha](const std::vector<Host>& in) {
                     Host y = in[0];
                     for (double& v : y.v) v = unary_ref(op, v, alpha);
                     return std::vector<Host>{y};
                   },
                   kink});
      if (small_enough_for_fd({s})) t.back().grad = [op, alpha](const std::vector<ag::Var>& v) { return ag_unary(op, v[0], alpha); };
      // CUDA's float exp/log/tanh are within 2 ulp of correctly rounded and glibc's within 1, and nvcc contracts
      // the shared polynomials (runtime/unary_math.hpp) into FMAs: a few ulps of the result, plus an absolute term
      // for results near 0 (tanh, silu). Pure arithmetic ops (neg, square, abs, relu) are exact.
      cuda_eps(t.back(), 8, 8);
      // d/dx by central differences of the double reference, times a random grad_y.
      t.push_back({"unary_backward", nm, {s, s}, lo, hi, 1e-5, 1e-7,
                   [op, alpha](const std::vector<Tensor>& in) {
                     return std::vector<Tensor>{unary_backward(op, in[0], in[1], alpha)};
                   },
                   [op, alpha](const std::vector<Host>& in) {
                     Host g = in[0];
                     const double h = 1e-6;
                     for (size_t i = 0; i < g.v.size(); ++i) {
                       const double x = in[0].v[i];
                       g.v[i] = (unary_ref(op, x + h, alpha) - unary_ref(op, x - h, alpha)) / (2 * h) * in[1].v[i];
                     }
                     return std::vector<Host>{g};
                   },
                   kink});
      // 1 - tanh^2 and 1 - sigmoid cancel: ~2 ulp(1) absolute from the forward's ulps, times |grad_y| <= 4.
      cuda_eps(t.back(), 128, 16);
      // Value and derivative in one pass (what autograd saves for sigmoid, silu and tanh), against both references.
      t.push_back({"unary_with_derivative", nm, {s}, lo, hi, 1e-5, 1e-7,
                   [op, alpha](const std::vector<Tensor>& in) {
                     Tensor d;
                     Tensor y = unary_with_derivative(op, in[0], d, alpha);
                     return std::vector<Tensor>{y, d};
                   },
                   [op, alpha](const std::vector<Host>& in) {
                     Host y = in[0], d = in[0];
                     const double h = 1e-6;
                     for (size_t i = 0; i < y.v.size(); ++i) {
                       const double x = in[0].v[i];
                       y.v[i] = unary_ref(op, x, alpha);
                       d.v[i] = (unary_ref(op, x + h, alpha) - unary_ref(op, x - h, alpha)) / (2 * h);
                     }
                     return std::vector<Host>{y, d};
                   },
                   kink});
      cuda_eps(t.back(), 128, 16);
    }
  }
}

void add_binary_cases(std::vector<OpCase>& t) {
  // Equal shapes, scalars, row/column broadcasts, rank mismatch, both sides broadcasting, and sizes that take
  // the parallel paths.
  const std::vector<std::pair<Shape, Shape>> pairs = {
      {{3, 4}, {3, 4}},       {{3, 4}, {4}},       {{3, 4}, {3, 1}},       {{2, 3, 4}, {3, 1}},
      {{4}, {2, 3, 4}},       {{2, 1, 4}, {1, 3, 1}}, {{}, {2, 3}},        {{5, 1}, {}},
      {{1}, {6}},             {{2, 3, 1, 5}, {3, 4, 1}}, {{300, 200}, {200}}, {{256, 160}, {256, 1}},
      {{200, 300}, {200, 300}}, {{70000}, {1}}, {{300, 257}, {257}}, {{4, 1, 6}, {1, 3, 6}}};
  for (BinaryOp op : {BinaryOp::Add, BinaryOp::Sub, BinaryOp::Mul, BinaryOp::Div, BinaryOp::Max, BinaryOp::Min}) {
    for (const auto& [sa, sb] : pairs) {
      // Div keeps the denominator away from zero by drawing every input from [0.5, 2].
      const bool div = op == BinaryOp::Div;
      t.push_back({"binary", std::string(binary_op_name(op)) + " " + shape_str(sa) + " " + shape_str(sb), {sa, sb},
                   div ? 0.5 : -2.0, 2.0, 1e-6, 1e-14,
                   [op](const std::vector<Tensor>& in) { return std::vector<Tensor>{binary(op, in[0], in[1])}; },
                   [op](const std::vector<Host>& in) {
                     Host y = host_zeros(naive_broadcast(in[0].shape, in[1].shape));
                     for (size_t i = 0; i < y.v.size(); ++i) {
                       const auto idx = unravel(static_cast<int64_t>(i), y.shape);
                       y.v[i] = binary_ref(op, in[0].v[static_cast<size_t>(broadcast_index(idx, in[0].shape))],
                                           in[1].v[static_cast<size_t>(broadcast_index(idx, in[1].shape))]);
                     }
                     return std::vector<Host>{y};
                   }});
      if (small_enough_for_fd({sa, sb}))
        t.back().grad = [op](const std::vector<ag::Var>& v) { return ag_binary(op, v[0], v[1]); };
      // + - * / are correctly rounded IEEE operations on both sides (nvcc keeps prec-div): exact.
    }
  }
  // In place (the output is the first input's buffer): serial, odd and OpenMP-sized.
  for (const Shape& s : {Shape{3, 5}, Shape{7}, Shape{1 << 17}}) {
    t.push_back({"binary", "mul_ (in place) " + shape_str(s), {s, s}, -2.0, 2.0, 1e-6, 1e-14,
                 [](const std::vector<Tensor>& in) {
                   Tensor y = in[0].clone();
                   mul_(y, in[1]);
                   return std::vector<Tensor>{y};
                 },
                 [](const std::vector<Host>& in) {
                   Host y = in[0];
                   for (size_t i = 0; i < y.v.size(); ++i) y.v[i] *= in[1].v[i];
                   return std::vector<Host>{y};
                 }});
  }
}

void add_scalar_cases(std::vector<OpCase>& t) {
  struct S {
    const char* name;
    ScalarOp op;
    double s, s2, lo, hi;
  };
  const std::vector<S> list = {{"add_scalar", ScalarOp::Add, 1.5, 0, -2, 2},   {"mul_scalar", ScalarOp::Mul, -2.5, 0, -2, 2},
                               {"pow 2", ScalarOp::Pow, 2.0, 0, -2, 2},         {"pow 3", ScalarOp::Pow, 3.0, 0, -2, 2},
                               {"pow 0.5", ScalarOp::Pow, 0.5, 0, 0.1, 3},      {"pow -1.5", ScalarOp::Pow, -1.5, 0, 0.1, 3},
                               {"pow 1", ScalarOp::Pow, 1.0, 0, -2, 2},         {"clamp", ScalarOp::Clamp, -0.5, 0.7, -2, 2},
                               {"pow 2.5", ScalarOp::Pow, 2.5, 0, 0.5, 2}};
  for (const Shape& shape : {Shape{7, 3}, Shape{50000}}) {
    for (const S& c : list) {
      t.push_back({"scalar", std::string(c.name) + " " + shape_str(shape), {shape}, c.lo, c.hi, 2e-6, 1e-14,
                   [c](const std::vector<Tensor>& in) { return std::vector<Tensor>{scalar_op(c.op, in[0], c.s, c.s2)}; },
                   [c](const std::vector<Host>& in) {
                     Host y = in[0];
                     for (double& v : y.v) {
                       if (c.op == ScalarOp::Add) v = v + c.s;
                       else if (c.op == ScalarOp::Mul) v = v * c.s;
                       else if (c.op == ScalarOp::Pow) v = std::pow(v, c.s);
                       else v = std::min(std::max(v, c.s), c.s2);
                     }
                     return std::vector<Host>{y};
                   }});
      if (small_enough_for_fd({shape}) && c.op != ScalarOp::Clamp)  // autograd has no clamp
        t.back().grad = [c](const std::vector<ag::Var>& v) {
          return c.op == ScalarOp::Add ? ag::add_scalar(v[0], c.s)
                 : c.op == ScalarOp::Mul ? ag::mul_scalar(v[0], c.s) : ag::pow_scalar(v[0], c.s);
        };
      cuda_eps(t.back(), 0, 8);  // powf/pow within 4 ulp on CUDA (1 in glibc); the rest is exact arithmetic
    }
  }
  for (const Shape& shape : {Shape{4, 5}, Shape{60000}}) {
    for (const auto& [a, b] : std::vector<std::pair<double, double>>{{0.5, -1.25}, {2.0, 0.0}, {-1.0, 1.0}}) {
      t.push_back({"axpby", "axpby " + std::to_string(a) + " " + std::to_string(b) + " " + shape_str(shape),
                   {shape, shape}, -2, 2, 1e-6, 1e-14,
                   [a = a, b = b](const std::vector<Tensor>& in) {
                     // b = 0 must overwrite y even where it holds NaN (fresh, uninitialised memory).
                     Tensor y = b == 0.0 ? Tensor::full(in[1].shape(), NAN, in[1].dtype(), in[1].device())
                                         : in[1].clone();
                     axpby_(a, in[0], b, y);
                     return std::vector<Tensor>{y};
                   },
                   [a = a, b = b](const std::vector<Host>& in) {
                     Host y = in[1];
                     for (size_t i = 0; i < y.v.size(); ++i) y.v[i] = a * in[0].v[i] + b * in[1].v[i];
                     return std::vector<Host>{y};
                   }});
      // nvcc fuses a*x + b*y into one FMA: one rounding fewer, so results differ by up to one ulp of the larger
      // term (|a x| <= 4), absolute because the two terms may cancel.
      cuda_eps(t.back(), 4 * 4.0, 0);
    }
  }
}

Host reduce_ref(ReduceOp op, const Host& x, int64_t axis, bool keepdim) {
  Shape xs = x.shape.empty() ? Shape{1} : x.shape;
  const int64_t r = static_cast<int64_t>(xs.size());
  const int64_t a = axis < 0 ? axis + r : axis;
  Shape ys = xs;
  ys[static_cast<size_t>(a)] = 1;
  Host y = host_zeros(ys);
  const int64_t n = xs[static_cast<size_t>(a)];
  for (size_t i = 0; i < y.v.size(); ++i) {
    auto idx = unravel(static_cast<int64_t>(i), ys);
    std::vector<double> vals;
    for (int64_t j = 0; j < n; ++j) {
      idx[static_cast<size_t>(a)] = j;
      int64_t flat = 0;
      for (size_t k = 0; k < xs.size(); ++k) flat = flat * xs[k] + idx[k];
      vals.push_back(x.v[static_cast<size_t>(flat)]);
    }
    double s = 0, m = -INFINITY;
    for (double v : vals) {
      s += v;
      m = std::max(m, v);
    }
    double e = 0;
    for (double v : vals) e += std::exp(v - m);
    y.v[i] = op == ReduceOp::Sum ? s : op == ReduceOp::Mean ? s / n : op == ReduceOp::Max ? m : m + std::log(e);
  }
  if (!keepdim) ys.erase(ys.begin() + a);
  if (x.shape.empty()) ys = {};
  y.shape = ys;
  return y;
}

void add_reduce_cases(std::vector<OpCase>& t) {
  struct R {
    Shape shape;
    int64_t axis;
    bool keepdim;
  };
  // Every axis of a 3-D tensor, negative axes, keepdim, 0-d, and large sizes for the chunked/parallel paths; first,
  // middle and last axis with keepdim on and off (gradient-checked).
  const std::vector<R> list = {{{3, 4, 5}, 0, false}, {{3, 4, 5}, 1, false}, {{3, 4, 5}, 2, false},
                               {{3, 4, 5}, -1, true}, {{3, 4, 5}, -3, true}, {{7}, 0, false},
                               {{}, 0, false},        {{70000}, 0, false},  {{3, 40000}, 1, false},
                               {{40000, 3}, 0, true}, {{20, 600, 3}, 1, false}, {{2, 5, 700}, 1, false},
                               {{3, 4, 2}, 0, false}, {{3, 4, 2}, 0, true},  {{3, 4, 2}, 1, false},
                               {{3, 4, 2}, 1, true},  {{3, 4, 2}, -1, false}, {{3, 4, 2}, -1, true},
                               // the CUDA paths: warp per row (n <= 1024), block per row, a row split over blocks,
                               // many short rows, columns (inner > 1)
                               {{7, 1025}, 1, false}, {{3, 100000}, 1, false}, {{1 << 20}, 0, false},
                               {{70000, 3}, 1, false}, {{4, 37, 33}, 1, false}, {{2, 5000, 3}, 1, false},
                               {{1, 1, 1000}, 1, false}};
  // Both backends accumulate in double; only the summation order differs (~n * 1e-16 of sum |x|, |x| <= 3), which
  // can flip the final rounding to the dtype by one ulp; CUDA's exp/log (log-sum-exp) are within 2 ulp.
  auto reduce_cuda_tol = [](OpCase& c, int64_t n) {
    c.cuda32 = {1e-15 * 3.0 * static_cast<double>(n + 1), 4 * eps_of(DType::Float32)};
    c.cuda64 = {1e-15 * 3.0 * static_cast<double>(n + 1), 4 * eps_of(DType::Float64)};
  };
  for (ReduceOp op : {ReduceOp::Sum, ReduceOp::Mean, ReduceOp::Max, ReduceOp::LogSumExp}) {
    for (const R& c : list) {
      t.push_back({"reduce",
                   std::string(reduce_op_name(op)) + " " + shape_str(c.shape) + " axis " + std::to_string(c.axis) +
                       (c.keepdim ? " keepdim" : ""),
                   {c.shape}, -3, 3, 1e-5, 1e-12,
                   [op, c](const std::vector<Tensor>& in) { return std::vector<Tensor>{reduce(op, in[0], c.axis, c.keepdim)}; },
                   [op, c](const std::vector<Host>& in) { return std::vector<Host>{reduce_ref(op, in[0], c.axis, c.keepdim)}; }});
      if (!c.shape.empty() && small_enough_for_fd({c.shape}))
        t.back().grad = [op, c](const std::vector<ag::Var>& v) { return ag_reduce(op, v[0], c.axis, c.keepdim); };
      reduce_cuda_tol(t.back(), shape_numel(c.shape));
    }
    if (op == ReduceOp::Sum) {
      for (const Shape& s : {Shape{3, 0, 2}, Shape{3, 0}}) {
        t.push_back({"reduce", "sum over an empty axis " + shape_str(s), {s}, -3, 3, 0, 0,
                     [](const std::vector<Tensor>& in) { return std::vector<Tensor>{sum(in[0], 1)}; },
                     [](const std::vector<Host>& in) {
                       return std::vector<Host>{reduce_ref(ReduceOp::Sum, in[0], 1, false)};
                     }});
      }
    }
    t.push_back({"reduce", std::string(reduce_op_name(op)) + " all", {{6, 7, 8}}, -3, 3, 1e-5, 1e-12,
                 [op](const std::vector<Tensor>& in) { return std::vector<Tensor>{reduce_all(op, in[0])}; },
                 [op](const std::vector<Host>& in) {
                   Host flat{{static_cast<int64_t>(in[0].v.size())}, in[0].v};
                   return std::vector<Host>{reduce_ref(op, flat, 0, false)};
                 }});
    if (op == ReduceOp::Sum) t.back().grad = [](const std::vector<ag::Var>& v) { return ag::sum_all(v[0]); };
    if (op == ReduceOp::Mean) t.back().grad = [](const std::vector<ag::Var>& v) { return ag::mean_all(v[0]); };
    reduce_cuda_tol(t.back(), 6 * 7 * 8);
  }
  // sum_to: the inverse of broadcasting, for leading, trailing and interleaved broadcast dimensions.
  const std::vector<std::pair<Shape, Shape>> st = {{{3, 4}, {4}},       {{3, 4}, {3, 1}},         {{2, 3, 4}, {3, 1}},
                                                   {{2, 3, 4}, {2, 1, 4}}, {{2, 3, 4}, {}},        {{3, 4}, {3, 4}},
                                                   {{2, 3, 4}, {1, 3, 4}}, {{5, 300, 40}, {300, 1}}, {{4, 1, 3}, {1, 3}}};
  for (const auto& [gs, to] : st) {
    t.push_back({"sum_to", "sum_to " + shape_str(gs) + " -> " + shape_str(to), {gs}, -2, 2, 1e-5, 1e-12,
                 [to = to](const std::vector<Tensor>& in) { return std::vector<Tensor>{sum_to(in[0], to)}; },
                 [to = to](const std::vector<Host>& in) {
                   Host y = host_zeros(to);
                   for (size_t i = 0; i < in[0].v.size(); ++i)
                     y.v[static_cast<size_t>(broadcast_index(unravel(static_cast<int64_t>(i), in[0].shape), to))] += in[0].v[i];
                   return std::vector<Host>{y};
                 }});
    reduce_cuda_tol(t.back(), shape_numel(gs));
  }
}

}  // namespace

namespace {
long double sigmoid_exact(long double x) { return x >= 0 ? 1 / (1 + std::exp(-x)) : std::exp(x) / (1 + std::exp(x)); }
}  // namespace

// Written from the definitions, not from runtime/unary_math.hpp, so that a slip there cannot hide in both.

long double unary_exact(UnaryOp op, long double x, long double alpha) {
  const long double nan = std::nanl("");
  switch (op) {
    case UnaryOp::Neg: return -x;
    case UnaryOp::Exp: return std::exp(x);
    case UnaryOp::Log: return std::log(x);
    case UnaryOp::Sqrt: return std::sqrt(x);
    case UnaryOp::Square: return x * x;
    case UnaryOp::Abs: return std::fabs(x);
    case UnaryOp::Tanh: return std::tanh(x);
    case UnaryOp::Sigmoid: return sigmoid_exact(x);
    case UnaryOp::Softplus: return x > 0 ? x + std::log1p(std::exp(-x)) : std::log1p(std::exp(x));
    case UnaryOp::Relu: return std::isnan(x) ? nan : x > 0 ? x : 0;
    case UnaryOp::Silu: return std::isinf(x) ? (x > 0 ? x : 0) : x * sigmoid_exact(x);
    case UnaryOp::LeakyRelu: return std::isnan(x) ? nan : x > 0 ? x : alpha * x;
  }
  return nan;
}

long double unary_derivative_exact(UnaryOp op, long double x, long double alpha) {
  const long double nan = std::nanl(""), s = sigmoid_exact(x);
  switch (op) {
    case UnaryOp::Neg: return -1;
    case UnaryOp::Exp: return std::exp(x);
    case UnaryOp::Log: return 1 / x;
    case UnaryOp::Sqrt: return 0.5L / std::sqrt(x);
    case UnaryOp::Square: return 2 * x;
    case UnaryOp::Abs: return std::isnan(x) ? nan : x > 0 ? 1 : x < 0 ? -1 : 0;
    case UnaryOp::Tanh: return 1 - std::tanh(x) * std::tanh(x);
    case UnaryOp::Sigmoid: return s * (1 - s);
    case UnaryOp::Softplus: return s;
    case UnaryOp::Relu: return std::isnan(x) ? nan : x > 0 ? 1 : 0;
    case UnaryOp::Silu: return std::isinf(x) ? (x > 0 ? 1 : 0) : s * (1 + x * (1 - s));
    case UnaryOp::LeakyRelu: return std::isnan(x) ? nan : x > 0 ? 1 : alpha;
  }
  return nan;
}

const std::vector<UnaryOp>& all_unary_ops() {
  static const std::vector<UnaryOp> ops = {UnaryOp::Neg,      UnaryOp::Exp,  UnaryOp::Log,  UnaryOp::Sqrt,
                                           UnaryOp::Square,   UnaryOp::Abs,  UnaryOp::Tanh, UnaryOp::Sigmoid,
                                           UnaryOp::Softplus, UnaryOp::Relu, UnaryOp::Silu, UnaryOp::LeakyRelu};
  return ops;
}

const std::vector<OpCase>& op_cases() {
  static const std::vector<OpCase> table = [] {
    std::vector<OpCase> t;
    add_unary_cases(t);
    add_binary_cases(t);
    add_scalar_cases(t);
    add_reduce_cases(t);
    add_gemm_cases(t);
    add_conv_cases(t);
    add_index_cases(t);
    add_adam_cases(t);
    add_data_cases(t);
    return t;
  }();
  return table;
}

std::vector<double> special_values(DType dtype) {
  const bool f32 = dtype == DType::Float32;
  const double inf = std::numeric_limits<double>::infinity();
  const double big = f32 ? 1e38 : 1e308;
  const double max = f32 ? std::numeric_limits<float>::max() : std::numeric_limits<double>::max();
  const double den = f32 ? std::numeric_limits<float>::denorm_min() : std::numeric_limits<double>::denorm_min();
  const double tiny = f32 ? std::numeric_limits<float>::min() : std::numeric_limits<double>::min();
  const std::vector<double> one = {std::nan(""), inf, -inf, max, -max, big, -big, den, -den, tiny, -tiny, 0.0, -0.0,
                                   1.0, -1.0, 20.0, -20.0, 100.0, -100.0, 800.0, -800.0, 1e5, -1e5, 1e-30, -1e-30};
  std::vector<double> v;
  for (int r = 0; r < 5; ++r) v.insert(v.end(), one.begin(), one.end());  // 125: vector loops plus a remainder
  return v;
}

std::vector<double> op_case_input(const OpCase& c, size_t k) {
  std::mt19937_64 rng(std::hash<std::string>{}(c.name) + k);
  std::uniform_real_distribution<double> u(c.lo, c.hi);
  std::vector<double> v(static_cast<size_t>(shape_numel(c.shapes[k])));
  for (double& x : v) {
    x = u(rng);
    if (c.avoid_kink && std::fabs(x) < 0.05) x = 0.3;
  }
  return v;
}

}  // namespace jebm::test
