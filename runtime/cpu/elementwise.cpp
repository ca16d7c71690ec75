// CPU elementwise kernels: unary activations, their backward and both at once, binary ops with NumPy
// broadcasting, scalar ops, axpby, fill and dtype casts. The reference for runtime/cuda/elementwise.cu; the unary
// math is shared with it (runtime/unary_math.hpp). Tested by tests/test_ops.cpp (the op-case table against
// double-precision references, and every unary op at NaN, +-inf, huge and denormal inputs).
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

#include <omp.h>

#include "runtime/backend.hpp"
#include "runtime/broadcast.hpp"
#include "runtime/cpu/parallel.hpp"
#include "runtime/unary_math.hpp"

namespace jebm::cpu {
namespace {

// Calls f(i) for i in [0, n), in parallel when n is large. f writes only element i, so order does not matter.
// Each thread loops over a private copy of f, and callers capture pointers and scalars by value: a float parameter
// reached through a reference may alias the float stores, so the compiler reloads it every iteration and neither
// if-converts nor vectorises the loop (LeakyReLU ran scalar with a branch per element, ~3 ns each).
template <typename F>
void run_range(const F& f, int64_t lo, int64_t hi) {
  F local = f;
  for (int64_t i = lo; i < hi; ++i) local(i);
}

template <typename F>
void for_each_index(int64_t n, F f) {
  if (n >= kParallelMin) {
#pragma omp parallel
    {
      const int64_t t = omp_get_thread_num(), nt = omp_get_num_threads();
      run_range(f, n * t / nt, n * (t + 1) / nt);
    }
  } else {
    run_range(f, 0, n);
  }
}

// --- float32 logistic family, vectorised ---------------------------------------------------------------------
// unary_math::sigmoid(float) is branch-free (runtime/unary_math.hpp), so these loops vectorise (this file is
// compiled with -fno-trapping-math: CMakeLists.txt says why); the clones pick AVX-512/AVX2 at load time. No FMA
// contraction (the project's -ffp-contract=off), so every clone returns the bits of the scalar formulas (tested).
enum class Logistic { Sigmoid, Silu };

__attribute__((target_clones("avx512f", "avx2", "default"))) void logistic_forward_f32(Logistic op, const float* x,
                                                                                     float* y, int64_t n) {
  if (op == Logistic::Sigmoid) {
    for (int64_t i = 0; i < n; ++i) y[i] = unary_math::sigmoid(x[i]);
  } else {
    for (int64_t i = 0; i < n; ++i) y[i] = unary_math::silu(x[i]);
  }
}

__attribute__((target_clones("avx512f", "avx2", "default"))) void logistic_backward_f32(Logistic op, const float* x,
                                                                                      const float* gy, float* gx,
                                                                                      int64_t n) {
  if (op == Logistic::Sigmoid) {
    for (int64_t i = 0; i < n; ++i) gx[i] = unary_math::sigmoid_derivative(x[i]) * gy[i];
  } else {
    for (int64_t i = 0; i < n; ++i) gx[i] = unary_math::silu_derivative(x[i]) * gy[i];
  }
}

// y and dy/dx in one pass, from one logistic per element (autograd saves dy/dx for its backward).
__attribute__((target_clones("avx512f", "avx2", "default"))) void logistic_with_derivative_f32(Logistic op,
                                                                                             const float* x, float* y,
                                                                                             float* d, int64_t n) {
  float di;
  if (op == Logistic::Sigmoid) {
    for (int64_t i = 0; i < n; ++i) {
      y[i] = unary_math::sigmoid_with_derivative(x[i], di);
      d[i] = di;
    }
  } else {
    for (int64_t i = 0; i < n; ++i) {
      y[i] = unary_math::silu_with_derivative(x[i], di);
      d[i] = di;
    }
  }
}

// Calls f(lo, hi) on fixed chunks of [0, n), in parallel when n is large.
template <typename F>
void for_each_chunk(int64_t n, F f) {
  constexpr int64_t kChunk = 1 << 13;
  const int64_t chunks = (n + kChunk - 1) / kChunk;
  if (n >= kParallelMin) {
#pragma omp parallel for schedule(static)
    for (int64_t c = 0; c < chunks; ++c) f(c * kChunk, std::min(n, (c + 1) * kChunk));
  } else {
    for (int64_t c = 0; c < chunks; ++c) f(c * kChunk, std::min(n, (c + 1) * kChunk));
  }
}

// True (and done) when op is a logistic-family op on float32.
bool logistic_unary_f32(UnaryOp op, const Tensor& x, Tensor& y) {
  if (x.dtype() != DType::Float32 || (op != UnaryOp::Sigmoid && op != UnaryOp::Silu)) return false;
  const Logistic l = op == UnaryOp::Sigmoid ? Logistic::Sigmoid : Logistic::Silu;
  const float* xp = x.data<float>();
  float* yp = y.data<float>();
  for_each_chunk(x.numel(), [&](int64_t lo, int64_t hi) { logistic_forward_f32(l, xp + lo, yp + lo, hi - lo); });
  return true;
}

bool logistic_backward_f32(UnaryOp op, const Tensor& x, const Tensor& gy, Tensor& gx) {
  if (x.dtype() != DType::Float32 || (op != UnaryOp::Sigmoid && op != UnaryOp::Silu)) return false;
  const Logistic l = op == UnaryOp::Sigmoid ? Logistic::Sigmoid : Logistic::Silu;
  const float* xp = x.data<float>();
  const float* gp = gy.data<float>();
  float* op_ = gx.data<float>();
  for_each_chunk(x.numel(),
                 [&](int64_t lo, int64_t hi) { logistic_backward_f32(l, xp + lo, gp + lo, op_ + lo, hi - lo); });
  return true;
}

bool logistic_with_derivative_f32(UnaryOp op, const Tensor& x, Tensor& y, Tensor& d) {
  if (x.dtype() != DType::Float32 || (op != UnaryOp::Sigmoid && op != UnaryOp::Silu)) return false;
  const Logistic l = op == UnaryOp::Sigmoid ? Logistic::Sigmoid : Logistic::Silu;
  const float* xp = x.data<float>();
  float* yp = y.data<float>();
  float* dp = d.data<float>();
  for_each_chunk(x.numel(), [&](int64_t lo, int64_t hi) {
    logistic_with_derivative_f32(l, xp + lo, yp + lo, dp + lo, hi - lo);
  });
  return true;
}

template <typename T, typename F>
void map_unary(const Tensor& x, Tensor& y, F f) {
  const T* xp = x.data<T>();
  T* yp = y.data<T>();
  for_each_index(x.numel(), [xp, yp, f](int64_t i) { yp[i] = f(xp[i]); });
}

// One loop per op, chosen outside the loop; the math is runtime/unary_math.hpp's, shared with the CUDA kernels.
template <typename T>
void unary_typed(UnaryOp op, const Tensor& x, Tensor& y, T alpha) {
  namespace um = unary_math;
  switch (op) {
    case UnaryOp::Neg: return map_unary<T>(x, y, [](T v) { return um::neg(v); });
    case UnaryOp::Exp: return map_unary<T>(x, y, [](T v) { return um::exp(v); });
    case UnaryOp::Log: return map_unary<T>(x, y, [](T v) { return um::log(v); });
    case UnaryOp::Sqrt: return map_unary<T>(x, y, [](T v) { return um::sqrt(v); });
    case UnaryOp::Square: return map_unary<T>(x, y, [](T v) { return um::square(v); });
    case UnaryOp::Abs: return map_unary<T>(x, y, [](T v) { return um::abs(v); });
    case UnaryOp::Tanh: return map_unary<T>(x, y, [](T v) { return um::tanh(v); });
    case UnaryOp::Sigmoid: return map_unary<T>(x, y, [](T v) { return um::sigmoid(v); });
    case UnaryOp::Softplus: return map_unary<T>(x, y, [](T v) { return um::softplus(v); });
    case UnaryOp::Relu: return map_unary<T>(x, y, [](T v) { return um::relu(v); });
    case UnaryOp::Silu: return map_unary<T>(x, y, [](T v) { return um::silu(v); });
    case UnaryOp::LeakyRelu: return map_unary<T>(x, y, [alpha](T v) { return um::leaky_relu(v, alpha); });
  }
  JEBM_FAIL("unary: unknown op " << static_cast<int>(op));
}

template <typename T, typename F>
void map_backward(const Tensor& x, const Tensor& gy, Tensor& gx, F f) {
  const T* xp = x.data<T>();
  const T* gp = gy.data<T>();
  T* op = gx.data<T>();
  for_each_index(x.numel(), [xp, gp, op, f](int64_t i) { op[i] = f(xp[i]) * gp[i]; });
}

// Each lambda is dy/dx evaluated at x; map_backward multiplies by grad_y.
template <typename T>
void unary_backward_typed(UnaryOp op, const Tensor& x, const Tensor& gy, Tensor& gx, T alpha) {
  namespace um = unary_math;
  switch (op) {
    case UnaryOp::Neg: return map_backward<T>(x, gy, gx, [](T v) { return um::neg_derivative(v); });
    case UnaryOp::Exp: return map_backward<T>(x, gy, gx, [](T v) { return um::exp(v); });
    case UnaryOp::Log: return map_backward<T>(x, gy, gx, [](T v) { return um::log_derivative(v); });
    case UnaryOp::Sqrt: return map_backward<T>(x, gy, gx, [](T v) { return um::sqrt_derivative(v); });
    case UnaryOp::Square: return map_backward<T>(x, gy, gx, [](T v) { return um::square_derivative(v); });
    case UnaryOp::Abs: return map_backward<T>(x, gy, gx, [](T v) { return um::abs_derivative(v); });
    case UnaryOp::Tanh: return map_backward<T>(x, gy, gx, [](T v) { return um::tanh_derivative(v); });
    case UnaryOp::Sigmoid: return map_backward<T>(x, gy, gx, [](T v) { return um::sigmoid_derivative(v); });
    case UnaryOp::Softplus: return map_backward<T>(x, gy, gx, [](T v) { return um::sigmoid(v); });
    case UnaryOp::Relu: return map_backward<T>(x, gy, gx, [](T v) { return um::relu_derivative(v); });
    case UnaryOp::Silu: return map_backward<T>(x, gy, gx, [](T v) { return um::silu_derivative(v); });
    case UnaryOp::LeakyRelu:
      return map_backward<T>(x, gy, gx, [alpha](T v) { return um::leaky_relu_derivative(v, alpha); });
  }
  JEBM_FAIL("unary_backward: unknown op " << static_cast<int>(op));
}

// --- broadcasting -------------------------------------------------------------------------------------------

template <typename T, typename F>
void broadcast_loop(const T* a, const T* b, T* o, const BroadcastLayout& p, int64_t numel, F f) {
  const size_t r = p.shape.size();
  const int64_t len = p.shape[r - 1], la = p.stride_a[r - 1], lb = p.stride_b[r - 1];
  if (r == 1) {
    for_each_index(numel, [a, b, o, la, lb, f](int64_t i) { o[i] = f(a[i * la], b[i * lb]); });
    return;
  }
  // One "row" = the innermost dimension; each row's operand offsets come from unravelling its index.
  const int64_t rows = numel / len;
  auto do_row = [&](int64_t row) {
    int64_t oa = 0, ob = 0, rem = row;
    for (size_t k = r - 1; k-- > 0;) {
      const int64_t idx = rem % p.shape[k];
      rem /= p.shape[k];
      oa += idx * p.stride_a[k];
      ob += idx * p.stride_b[k];
    }
    const T* ar = a + oa;
    const T* br = b + ob;
    T* orow = o + row * len;
    // Contiguous rows (a bias row, a per-row scalar) get loops without the strides, which vectorise.
    if (la == 1 && lb == 1) {
      for (int64_t j = 0; j < len; ++j) orow[j] = f(ar[j], br[j]);
    } else if (la == 1 && lb == 0) {
      const T bv = br[0];
      for (int64_t j = 0; j < len; ++j) orow[j] = f(ar[j], bv);
    } else if (la == 0 && lb == 1) {
      const T av = ar[0];
      for (int64_t j = 0; j < len; ++j) orow[j] = f(av, br[j]);
    } else {
      for (int64_t j = 0; j < len; ++j) orow[j] = f(ar[j * la], br[j * lb]);
    }
  };
  if (numel >= kParallelMin) {
#pragma omp parallel for schedule(static)
    for (int64_t row = 0; row < rows; ++row) do_row(row);
  } else {
    for (int64_t row = 0; row < rows; ++row) do_row(row);
  }
}

template <typename T, typename F>
void map_binary(const Tensor& a, const Tensor& b, Tensor& out, F f) {
  const T* ap = a.data<T>();
  const T* bp = b.data<T>();
  T* op = out.data<T>();
  const int64_t n = out.numel();
  if (n == 0) return;
  // Fast paths: equal shapes and scalar operands need no index arithmetic.
  if (a.numel() == n && b.numel() == n && op == ap) {  // in place (mul_): one pointer, so no overlap test at run time
    for_each_index(n, [bp, op, f](int64_t i) { op[i] = f(op[i], bp[i]); });
  } else if (a.numel() == n && b.numel() == n) {
    for_each_index(n, [ap, bp, op, f](int64_t i) { op[i] = f(ap[i], bp[i]); });
  } else if (b.numel() == 1 && a.numel() == n) {
    const T s = bp[0];
    for_each_index(n, [ap, op, s, f](int64_t i) { op[i] = f(ap[i], s); });
  } else if (a.numel() == 1 && b.numel() == n) {
    const T s = ap[0];
    for_each_index(n, [bp, op, s, f](int64_t i) { op[i] = f(s, bp[i]); });
  } else {
    broadcast_loop(ap, bp, op, broadcast_layout(a.shape(), b.shape(), out.shape()), n, f);
  }
}

// float32 a + b and a * b on equal shapes in AVX-512 / AVX2 clones: the generic loop above is built for the baseline
// x86-64 (SSE2), and an energy CNN's backward multiplies every activation's gradient by its saved SiLU derivative
// in place (mul_: o is a), about 4 % of the MNIST CNN's forward + backward on a Xeon at 1 thread. No __restrict, so
// that o may be a or b: GCC checks the overlap at run time before taking the vector loop. One rounding per element
// either way: the same bits.
template <bool kMul>
__attribute__((target_clones("avx512f", "avx2", "default"))) void binary_f32(const float* a, const float* b, float* o,
                                                                            int64_t n) {
  for (int64_t i = 0; i < n; ++i) o[i] = kMul ? a[i] * b[i] : a[i] + b[i];
}

// True (and done) for float32 Add / Mul of equal shapes, into a distinct output or in place.
bool binary_f32_fast(BinaryOp op, const Tensor& a, const Tensor& b, Tensor& out) {
  if (out.dtype() != DType::Float32 || (op != BinaryOp::Add && op != BinaryOp::Mul)) return false;
  const int64_t n = out.numel();
  if (a.numel() != n || b.numel() != n) return false;
  const float* ap = a.data<float>();
  const float* bp = b.data<float>();
  float* op_ = out.data<float>();
  for_each_chunk(n, [&](int64_t lo, int64_t hi) {
    (op == BinaryOp::Mul ? binary_f32<true> : binary_f32<false>)(ap + lo, bp + lo, op_ + lo, hi - lo);
  });
  return true;
}

template <typename T>
void binary_typed(BinaryOp op, const Tensor& a, const Tensor& b, Tensor& out) {
  switch (op) {
    case BinaryOp::Add: return map_binary<T>(a, b, out, [](T x, T y) { return x + y; });
    case BinaryOp::Sub: return map_binary<T>(a, b, out, [](T x, T y) { return x - y; });
    case BinaryOp::Mul: return map_binary<T>(a, b, out, [](T x, T y) { return x * y; });
    case BinaryOp::Div: return map_binary<T>(a, b, out, [](T x, T y) { return x / y; });
    case BinaryOp::Max: return map_binary<T>(a, b, out, [](T x, T y) { return x >= y ? x : y; });
    case BinaryOp::Min: return map_binary<T>(a, b, out, [](T x, T y) { return x <= y ? x : y; });
  }
  JEBM_FAIL("binary: unknown op " << static_cast<int>(op));
}

template <typename T>
void scalar_typed(ScalarOp op, const Tensor& x, T s, T s2, Tensor& y) {
  switch (op) {
    case ScalarOp::Add: return map_unary<T>(x, y, [s](T v) { return v + s; });
    case ScalarOp::Mul: return map_unary<T>(x, y, [s](T v) { return v * s; });
    case ScalarOp::Pow:
      // Common exponents exactly and without pow()'s cost.
      if (s == T(2)) return map_unary<T>(x, y, [](T v) { return v * v; });
      if (s == T(1)) return map_unary<T>(x, y, [](T v) { return v; });
      if (s == T(0.5)) return map_unary<T>(x, y, [](T v) { return std::sqrt(v); });
      return map_unary<T>(x, y, [s](T v) { return std::pow(v, s); });
    case ScalarOp::Clamp: return map_unary<T>(x, y, [s, s2](T v) { return v < s ? s : (v > s2 ? s2 : v); });
  }
  JEBM_FAIL("scalar_op: unknown op " << static_cast<int>(op));
}

template <typename Src, typename Dst>
void cast_typed(const Tensor& x, Tensor& y) {
  const Src* xp = x.data<Src>();
  Dst* yp = y.data<Dst>();
  for_each_index(x.numel(), [xp, yp](int64_t i) { yp[i] = static_cast<Dst>(xp[i]); });
}

template <typename Src>
void cast_from(const Tensor& x, Tensor& y) {
  switch (y.dtype()) {
    case DType::Float32: return cast_typed<Src, float>(x, y);
    case DType::Float64: return cast_typed<Src, double>(x, y);
    case DType::Int64: return cast_typed<Src, int64_t>(x, y);
  }
}

template <typename T>
void fill_typed(Tensor& y, T v) {
  T* p = y.data<T>();
  for_each_index(y.numel(), [p, v](int64_t i) { p[i] = v; });
}

}  // namespace

void unary(UnaryOp op, const Tensor& x, Tensor& y, double alpha) {
  if (logistic_unary_f32(op, x, y)) return;
  JEBM_DISPATCH_FLOAT(x.dtype(), "unary", [&] { unary_typed<scalar_t>(op, x, y, static_cast<scalar_t>(alpha)); });
}

void unary_backward(UnaryOp op, const Tensor& x, const Tensor& grad_y, Tensor& grad_x, double alpha) {
  if (logistic_backward_f32(op, x, grad_y, grad_x)) return;
  JEBM_DISPATCH_FLOAT(x.dtype(), "unary_backward",
                      [&] { unary_backward_typed<scalar_t>(op, x, grad_y, grad_x, static_cast<scalar_t>(alpha)); });
}

void unary_with_derivative(UnaryOp op, const Tensor& x, Tensor& y, Tensor& dydx, double alpha) {
  if (logistic_with_derivative_f32(op, x, y, dydx)) return;
  JEBM_DISPATCH_FLOAT(x.dtype(), "unary_with_derivative", [&] {
    const scalar_t* xp = x.data<scalar_t>();
    scalar_t* yp = y.data<scalar_t>();
    scalar_t* dp = dydx.data<scalar_t>();
    const scalar_t a = static_cast<scalar_t>(alpha);
    for_each_index(x.numel(), [op, xp, yp, dp, a](int64_t i) {
      scalar_t di;
      yp[i] = unary_math::value_with_derivative(op, xp[i], a, di);
      dp[i] = di;
    });
  });
}

void binary(BinaryOp op, const Tensor& a, const Tensor& b, Tensor& out) {
  if (binary_f32_fast(op, a, b, out)) return;
  JEBM_DISPATCH_FLOAT(out.dtype(), "binary", [&] { binary_typed<scalar_t>(op, a, b, out); });
}

void scalar_op(ScalarOp op, const Tensor& x, double s, double s2, Tensor& y) {
  JEBM_DISPATCH_FLOAT(x.dtype(), "scalar_op",
                      [&] { scalar_typed<scalar_t>(op, x, static_cast<scalar_t>(s), static_cast<scalar_t>(s2), y); });
}

void axpby(double a, const Tensor& x, double b, Tensor& y) {
  JEBM_DISPATCH_FLOAT(y.dtype(), "axpby", [&] {
    const scalar_t* xp = x.data<scalar_t>();
    scalar_t* yp = y.data<scalar_t>();
    const scalar_t sa = static_cast<scalar_t>(a), sb = static_cast<scalar_t>(b);
    // b == 0 must overwrite y even when it holds NaN/Inf (y may be fresh, uninitialised memory).
    if (b == 0.0) {
      for_each_index(y.numel(), [xp, yp, sa](int64_t i) { yp[i] = sa * xp[i]; });
    } else {
      for_each_index(y.numel(), [xp, yp, sa, sb](int64_t i) { yp[i] = sa * xp[i] + sb * yp[i]; });
    }
  });
}

void fill(Tensor& y, double value) {
  switch (y.dtype()) {
    case DType::Float32: return fill_typed<float>(y, static_cast<float>(value));
    case DType::Float64: return fill_typed<double>(y, value);
    case DType::Int64: return fill_typed<int64_t>(y, static_cast<int64_t>(value));
  }
}

void cast(const Tensor& x, Tensor& y) {
  switch (x.dtype()) {
    case DType::Float32: return cast_from<float>(x, y);
    case DType::Float64: return cast_from<double>(x, y);
    case DType::Int64: return cast_from<int64_t>(x, y);
  }
}

}  // namespace jebm::cpu
