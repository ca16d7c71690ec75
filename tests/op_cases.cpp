// The op-case table (tests/op_cases.hpp): rows for every runtime op family (unary and its backward, binary with
// broadcasting, scalar, axpby, reduce, sum_to, gemm, conv2d, index, adam), each with a naive double reference
// written here (direct loops; unary backward: central differences of the forward reference; fill, cast and the
// random fills: tests/op_cases_data.cpp), its autograd form
// where one exists and the case is small enough for finite differences, and its CUDA-vs-CPU tolerance.
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

Host host_zeros(const Shape& s) { return {s, std::vector<double>(static_cast<size_t>(shape_numel(s)), 0.0)}; }

std::vector<int64_t> unravel(int64_t flat, const Shape& s) {
  std::vector<int64_t> idx(s.size());
  for (size_t k = s.size(); k-- > 0;) {
    idx[k] = flat % s[k];
    flat /= s[k];
  }
  return idx;
}

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

// CUDA vs CPU within {atol, rtol} = (a, r) machine epsilons of the dtype.
void cuda_eps(OpCase& c, double a, double r) {
  c.cuda32 = {a * eps_of(DType::Float32), r * eps_of(DType::Float32)};
  c.cuda64 = {a * eps_of(DType::Float64), r * eps_of(DType::Float64)};
}

// Finite differences cost two forwards per input element: gradients are checked on small cases only.
bool small_enough_for_fd(const std::vector<Shape>& shapes) {
  int64_t n = 0;
  for (const Shape& s : shapes) n += shape_numel(s);
  return n <= 1000;
}

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

void add_gemm_cases(std::vector<OpCase>& t) {
  // Small, odd and tile-sized shapes, a long K, a wide N, and K = 0 (the product is 0: C = beta C).
  for (const auto& [m, k, n] : std::vector<std::array<int64_t, 3>>{
           {7, 5, 3}, {64, 33, 17}, {1, 9, 1}, {64, 64, 64}, {129, 250, 33}, {10, 3, 1000}, {4, 0, 6}}) {
    for (int combo = 0; combo < 4; ++combo) {
      const bool ta = combo & 1, tb = combo & 2;
      const Shape sa = ta ? Shape{k, m} : Shape{m, k}, sb = tb ? Shape{n, k} : Shape{k, n};
      auto ref = [=](const std::vector<Host>& in, double alpha, double beta, const Host* c0) {
        Host c = host_zeros({m, n});
        for (int64_t i = 0; i < m; ++i)
          for (int64_t j = 0; j < n; ++j) {
            double s = 0;
            for (int64_t p = 0; p < k; ++p) {
              const double av = ta ? in[0].v[static_cast<size_t>(p * m + i)] : in[0].v[static_cast<size_t>(i * k + p)];
              const double bv = tb ? in[1].v[static_cast<size_t>(j * k + p)] : in[1].v[static_cast<size_t>(p * n + j)];
              s += av * bv;
            }
            const size_t o = static_cast<size_t>(i * n + j);
            c.v[o] = alpha * s + (c0 ? beta * c0->v[o] : 0.0);
          }
        return c;
      };
      const std::string nm = "[" + std::to_string(m) + "x" + std::to_string(k) + "x" + std::to_string(n) + "]" +
                             (ta ? " a^T" : " a") + (tb ? " b^T" : " b");
      t.push_back({"gemm", "matmul " + nm, {sa, sb}, -1, 1, 1e-5, 1e-12,
                   [=](const std::vector<Tensor>& in) { return std::vector<Tensor>{matmul(in[0], in[1], ta, tb)}; },
                   [=](const std::vector<Host>& in) { return std::vector<Host>{ref(in, 1.0, 0.0, nullptr)}; }});
      if (small_enough_for_fd({sa, sb}))
        t.back().grad = [=](const std::vector<ag::Var>& v) { return ag::matmul(v[0], v[1], ta, tb); };
      // Different summation orders in the dtype (BLAS vs cuBLAS): |error| <= K * eps * sum_k |a||b|, |a|, |b| <= 1.
      cuda_eps(t.back(), 2.0 * static_cast<double>(k) + 4, 0);
      t.push_back({"gemm", "gemm_ alpha beta " + nm, {sa, sb, {m, n}}, -1, 1, 1e-5, 1e-12,
                   [=](const std::vector<Tensor>& in) {
                     Tensor c = in[2].clone();
                     gemm_(ta, tb, -0.75, in[0], in[1], 0.5, c);
                     return std::vector<Tensor>{c};
                   },
                   [=](const std::vector<Host>& in) { return std::vector<Host>{ref(in, -0.75, 0.5, &in[2])}; }});
      cuda_eps(t.back(), 2.0 * static_cast<double>(k) + 4, 0);
    }
  }
}

// conv2d references by the index relation iy = oy*s - p + i, ix = ox*s - p + j, looped directly.
struct ConvCfg {
  int64_t n, c, h, w, f, kh, kw, stride, pad;
};

template <typename F>
void conv_loops(const ConvCfg& q, int64_t oh, int64_t ow, F body) {
  for (int64_t n = 0; n < q.n; ++n)
    for (int64_t f = 0; f < q.f; ++f)
      for (int64_t oy = 0; oy < oh; ++oy)
        for (int64_t ox = 0; ox < ow; ++ox)
          for (int64_t c = 0; c < q.c; ++c)
            for (int64_t i = 0; i < q.kh; ++i)
              for (int64_t j = 0; j < q.kw; ++j) {
                const int64_t iy = oy * q.stride - q.pad + i, ix = ox * q.stride - q.pad + j;
                if (iy < 0 || iy >= q.h || ix < 0 || ix >= q.w) continue;
                body(((n * q.c + c) * q.h + iy) * q.w + ix, ((f * q.c + c) * q.kh + i) * q.kw + j,
                     ((n * q.f + f) * oh + oy) * ow + ox);
              }
}

void add_conv_cases(std::vector<OpCase>& t) {
  // Strides 1-3, paddings 0-4, non-square kernels and images, 1x1, the MNIST first layer, and a batch large enough
  // to be split into several im2col groups.
  const std::vector<ConvCfg> cfgs = {{2, 3, 7, 6, 4, 3, 3, 1, 0}, {2, 3, 8, 8, 5, 3, 3, 2, 1}, {3, 1, 28, 28, 4, 5, 5, 2, 4},
                                     {1, 2, 5, 5, 3, 1, 1, 1, 0}, {2, 2, 6, 7, 3, 2, 3, 3, 2}, {30, 16, 32, 32, 4, 3, 3, 1, 1},
                                     // stride 1/2 x padding 0/1/2 on one small layer, and a 1x2 kernel (gradient-checked)
                                     {2, 3, 5, 6, 4, 3, 3, 1, 0}, {2, 3, 5, 6, 4, 3, 3, 1, 1}, {2, 3, 5, 6, 4, 3, 3, 2, 1},
                                     {2, 3, 5, 6, 4, 3, 3, 2, 2}, {2, 3, 5, 6, 4, 3, 3, 1, 2}, {2, 3, 5, 6, 4, 3, 3, 2, 0},
                                     {1, 2, 4, 4, 3, 1, 2, 1, 1},
                                     // 32 filters of 4x4 at stride 2, a 5x5 kernel with padding 2, 1x1 over 4 channels
                                     {2, 3, 32, 32, 32, 4, 4, 2, 1}, {2, 8, 7, 7, 6, 5, 5, 1, 2}, {5, 4, 6, 6, 3, 1, 1, 1, 0}};
  // cuDNN's algorithm vs im2col + BLAS: sums of products in the dtype, in different orders: bound K * eps * sum |a||b|
  // with |a|, |b| <= 1 and K the length of each dot product.
  auto conv_cuda_tol = [](OpCase& c, int64_t k) { cuda_eps(c, 2.0 * static_cast<double>(k) + 4, 0); };
  for (const ConvCfg& q : cfgs) {
    const Conv2dParams p{q.stride, q.pad};
    const Shape xs{q.n, q.c, q.h, q.w}, ws{q.f, q.c, q.kh, q.kw};
    const int64_t oh = (q.h + 2 * q.pad - q.kh) / q.stride + 1, ow = (q.w + 2 * q.pad - q.kw) / q.stride + 1;
    const Shape ys{q.n, q.f, oh, ow};
    const std::string nm = "x" + shape_str(xs) + " w" + shape_str(ws) + " s" + std::to_string(q.stride) + " p" +
                           std::to_string(q.pad);
    // float32 sums of L terms of size ~1 carry ~eps * sqrt(L) absolute error; backward_filter sums N*OH*OW terms.
    const double tol32 = 1e-5 * std::max(1.0, std::sqrt(static_cast<double>(q.n * oh * ow)) / 20);
    t.push_back({"conv2d", "forward " + nm, {xs, ws, {q.f}}, -1, 1, tol32, 1e-12,
                 [=](const std::vector<Tensor>& in) { return std::vector<Tensor>{conv2d(in[0], in[1], in[2], p)}; },
                 [=](const std::vector<Host>& in) {
                   Host y = host_zeros(ys);
                   for (size_t o = 0; o < y.v.size(); ++o) y.v[o] = in[2].v[static_cast<size_t>(unravel(static_cast<int64_t>(o), ys)[1])];
                   conv_loops(q, oh, ow, [&](int64_t xi, int64_t wi, int64_t yi) {
                     y.v[static_cast<size_t>(yi)] += in[0].v[static_cast<size_t>(xi)] * in[1].v[static_cast<size_t>(wi)];
                   });
                   return std::vector<Host>{y};
                 }});
    if (small_enough_for_fd({xs, ws, {q.f}}))
      t.back().grad = [=](const std::vector<ag::Var>& v) { return ag::conv2d(v[0], v[1], v[2], p); };
    conv_cuda_tol(t.back(), q.c * q.kh * q.kw + 1);
    t.push_back({"conv2d", "forward without bias " + nm, {xs, ws}, -1, 1, tol32, 1e-12,
                 [=](const std::vector<Tensor>& in) { return std::vector<Tensor>{conv2d(in[0], in[1], Tensor(), p)}; },
                 [=](const std::vector<Host>& in) {
                   Host y = host_zeros(ys);
                   conv_loops(q, oh, ow, [&](int64_t xi, int64_t wi, int64_t yi) {
                     y.v[static_cast<size_t>(yi)] += in[0].v[static_cast<size_t>(xi)] * in[1].v[static_cast<size_t>(wi)];
                   });
                   return std::vector<Host>{y};
                 }});
    if (small_enough_for_fd({xs, ws}))
      t.back().grad = [=](const std::vector<ag::Var>& v) { return ag::conv2d(v[0], v[1], ag::Var(), p); };
    conv_cuda_tol(t.back(), q.c * q.kh * q.kw);
    t.push_back({"conv2d", "backward_data " + nm, {ys, ws}, -1, 1, tol32, 1e-12,
                 [=](const std::vector<Tensor>& in) { return std::vector<Tensor>{conv2d_backward_data(in[0], in[1], xs, p)}; },
                 [=](const std::vector<Host>& in) {
                   Host gx = host_zeros(xs);
                   conv_loops(q, oh, ow, [&](int64_t xi, int64_t wi, int64_t yi) {
                     gx.v[static_cast<size_t>(xi)] += in[0].v[static_cast<size_t>(yi)] * in[1].v[static_cast<size_t>(wi)];
                   });
                   return std::vector<Host>{gx};
                 }});
    conv_cuda_tol(t.back(), q.f * q.kh * q.kw);
    t.push_back({"conv2d", "backward_filter " + nm, {ys, xs}, -1, 1, tol32, 1e-12,
                 [=](const std::vector<Tensor>& in) { return std::vector<Tensor>{conv2d_backward_filter(in[0], in[1], ws, p)}; },
                 [=](const std::vector<Host>& in) {
                   Host gw = host_zeros(ws);
                   conv_loops(q, oh, ow, [&](int64_t xi, int64_t wi, int64_t yi) {
                     gw.v[static_cast<size_t>(wi)] += in[0].v[static_cast<size_t>(yi)] * in[1].v[static_cast<size_t>(xi)];
                   });
                   return std::vector<Host>{gw};
                 }});
    conv_cuda_tol(t.back(), q.n * oh * ow);
    t.push_back({"conv2d", "backward_bias " + nm, {ys}, -1, 1, tol32, 1e-12,
                 [=](const std::vector<Tensor>& in) { return std::vector<Tensor>{conv2d_backward_bias(in[0])}; },
                 [=](const std::vector<Host>& in) {
                   Host gb = host_zeros({q.f});
                   for (size_t o = 0; o < in[0].v.size(); ++o)
                     gb.v[static_cast<size_t>(unravel(static_cast<int64_t>(o), ys)[1])] += in[0].v[o];
                   return std::vector<Host>{gb};
                 }});
    // A sum over N x OH x OW per channel: cuDNN adds in its own order (seen on an H200: float64 differs in the
    // last bits), so the same rounding allowance as the other convolution sums.
    conv_cuda_tol(t.back(), q.n * oh * ow);
  }
}

void add_index_cases(std::vector<OpCase>& t) {
  const std::vector<int64_t> idx = {4, 0, 2, 2, 5, 1, 0};  // repeats, out of order
  const Tensor idx_t = Tensor::from_vector(idx, {static_cast<int64_t>(idx.size())});
  const int64_t m = static_cast<int64_t>(idx.size());
  for (const Shape& row : {Shape{}, Shape{3}, Shape{2, 4}}) {
    Shape xs{6}, ss{m};
    xs.insert(xs.end(), row.begin(), row.end());
    ss.insert(ss.end(), row.begin(), row.end());
    const int64_t d = shape_numel(row);
    t.push_back({"index", "gather_rows " + shape_str(xs), {xs}, -2, 2, 0, 0,
                 [=](const std::vector<Tensor>& in) { return std::vector<Tensor>{gather_rows(in[0], idx_t.to(in[0].device()))}; },
                 [=](const std::vector<Host>& in) {
                   Host y = host_zeros(ss);
                   for (int64_t i = 0; i < m; ++i)
                     for (int64_t k = 0; k < d; ++k) y.v[static_cast<size_t>(i * d + k)] = in[0].v[static_cast<size_t>(idx[i] * d + k)];
                   return std::vector<Host>{y};
                 }});
    t.back().grad = [idx_t](const std::vector<ag::Var>& v) { return ag::gather_rows(v[0], idx_t); };
    t.push_back({"index", "scatter_add_rows " + shape_str(ss), {ss}, -2, 2, 1e-6, 1e-14,
                 [=](const std::vector<Tensor>& in) { return std::vector<Tensor>{scatter_add_rows(in[0], idx_t.to(in[0].device()), 6)}; },
                 [=](const std::vector<Host>& in) {
                   Host y = host_zeros(xs);
                   for (int64_t i = 0; i < m; ++i)
                     for (int64_t k = 0; k < d; ++k) y.v[static_cast<size_t>(idx[i] * d + k)] += in[0].v[static_cast<size_t>(i * d + k)];
                   return std::vector<Host>{y};
                 }});
    cuda_eps(t.back(), 4, 0);  // atomics add a repeated row's two terms in either order
    t.push_back({"index", "index_copy_rows_ " + shape_str(xs), {xs, ss}, -2, 2, 0, 0,
                 [=](const std::vector<Tensor>& in) {
                   Tensor dst = in[0].clone();
                   index_copy_rows_(dst, idx_t.to(dst.device()), in[1]);
                   return std::vector<Tensor>{dst};
                 },
                 [=](const std::vector<Host>& in) {
                   Host y = in[0];
                   for (int64_t i = 0; i < m; ++i)  // in order: the last write to a repeated row wins
                     for (int64_t k = 0; k < d; ++k) y.v[static_cast<size_t>(idx[i] * d + k)] = in[1].v[static_cast<size_t>(i * d + k)];
                   return std::vector<Host>{y};
                 }});
    t.back().cuda_comparable = false;  // with repeated rows any CUDA write may win (tests/test_cuda_ops.cpp: unique)
  }
  for (int64_t axis : {0, 1, 2, -1}) {
    const int64_t a = axis < 0 ? axis + 3 : axis;
    std::vector<Shape> shapes;
    for (int64_t len : {2, 1, 3}) {
      Shape s{2, 3, 4};
      s[static_cast<size_t>(a)] = len;
      shapes.push_back(s);
    }
    t.push_back({"index", "concat axis " + std::to_string(axis), shapes, -2, 2, 0, 0,
                 [=](const std::vector<Tensor>& in) { return std::vector<Tensor>{concat(in, axis)}; },
                 [=](const std::vector<Host>& in) {
                   Shape ys{2, 3, 4};
                   ys[static_cast<size_t>(a)] = 6;
                   Host y = host_zeros(ys);
                   int64_t start = 0;
                   for (const Host& x : in) {
                     for (size_t i = 0; i < x.v.size(); ++i) {
                       auto id = unravel(static_cast<int64_t>(i), x.shape);
                       id[static_cast<size_t>(a)] += start;
                       y.v[static_cast<size_t>((id[0] * ys[1] + id[1]) * ys[2] + id[2])] = x.v[i];
                     }
                     start += x.shape[static_cast<size_t>(a)];
                   }
                   return std::vector<Host>{y};
                 }});
    t.back().grad = [axis](const std::vector<ag::Var>& v) { return ag::concat(v, axis); };
  }
}

void add_adam_cases(std::vector<OpCase>& t) {
  for (const auto& [wd, step] : std::vector<std::pair<double, int64_t>>{{0.0, 1}, {0.01, 1}, {0.1, 7}}) {
    AdamHyper h;
    h.lr = 0.05;
    h.weight_decay = wd;
    h.step = step;
    for (const Shape& s : {Shape{5, 3}, Shape{40000}}) {
      // Inputs: param, grad, m, v (v = |draw| so it is a valid second moment).
      t.push_back({"adam", "adam wd " + std::to_string(wd) + " step " + std::to_string(step) + " " + shape_str(s),
                   {s, s, s, s}, -1, 1, 1e-5, 1e-13,
                   [=](const std::vector<Tensor>& in) {
                     Tensor p = in[0].clone(), m = in[2].clone(), v = abs(in[3]);
                     adam_update_(p, in[1], m, v, h);
                     return std::vector<Tensor>{p, m, v};
                   },
                   [=](const std::vector<Host>& in) {
                     Host p = in[0], m = in[2], v = in[3];
                     for (size_t i = 0; i < p.v.size(); ++i) {
                       const double g = in[1].v[i] + h.weight_decay * p.v[i];
                       m.v[i] = h.beta1 * m.v[i] + (1 - h.beta1) * g;
                       v.v[i] = h.beta2 * std::fabs(v.v[i]) + (1 - h.beta2) * g * g;
                       const double mhat = m.v[i] / (1 - std::pow(h.beta1, step));
                       const double vhat = v.v[i] / (1 - std::pow(h.beta2, step));
                       p.v[i] -= h.lr * mhat / (std::sqrt(vhat) + h.eps);
                     }
                     return std::vector<Host>{p, m, v};
                   }});
      cuda_eps(t.back(), 16, 8);  // FMA contraction on the GPU: a few ulps of each output (|p| <= 1)
    }
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
