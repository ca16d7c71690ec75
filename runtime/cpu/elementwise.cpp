// CPU elementwise kernels: unary activations and their backward, binary ops with NumPy broadcasting, scalar ops,
// axpby, fill and dtype casts. The reference for runtime/cuda/elementwise.cu. Tested by tests/test_ops.cpp
// (table harness against double-precision references).
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <vector>

#include <omp.h>

#include "runtime/backend.hpp"
#include "runtime/broadcast.hpp"
#include "runtime/cpu/parallel.hpp"

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

// Overflow-free logistic function: exp() only ever sees a non-positive argument.
template <typename T>
inline T stable_sigmoid(T x) {
  if (x >= T(0)) return T(1) / (T(1) + std::exp(-x));
  const T e = std::exp(x);
  return e / (T(1) + e);
}

// log(1 + e^x) = max(x, 0) + log1p(e^{-|x|}): no overflow for large x, no loss of precision for very negative x.
template <typename T>
inline T stable_softplus(T x) {
  return std::max(x, T(0)) + std::log1p(std::exp(-std::fabs(x)));
}

// --- float32 logistic family, vectorised ---------------------------------------------------------------------
// std::exp is an opaque libm call per element, so sigmoid/SiLU loops ran scalar (a third of the MNIST energy net's
// forward+backward). exp_nonpositive_f32 is Cephes' expf: branch-free, ~1 ulp, so the loops below vectorise; the
// clones pick AVX-512/AVX2 at load time. No FMA contraction (-std=c++17 implies -ffp-contract=off), so every clone
// returns the same bits.

// e^t for t <= 0; 0 below -87 (where e^t is under 1.7e-38, at the edge of float's normal range).
inline float exp_nonpositive_f32(float t) {
  const bool underflow = t < -87.0f;
  constexpr float kLog2e = 1.44269504088896341f, kLn2Hi = 0.693359375f, kLn2Lo = -2.12194440e-4f;
  constexpr float kRound = 12582912.0f;  // 1.5 * 2^23: adding it rounds to an integer held in the low mantissa bits
  t = t < -87.0f ? -87.0f : t;
  const float shifted = t * kLog2e + kRound;
  const float n = shifted - kRound;  // round(t / ln 2), in [-126, 0]
  int32_t ni;
  std::memcpy(&ni, &shifted, sizeof ni);
  ni -= 0x4B400000;  // the bits of kRound: what is left is n as an integer
  const float r = (t - n * kLn2Hi) - n * kLn2Lo;  // t - n ln 2, |r| <= ln2 / 2
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  p = p * r * r + r + 1.0f;
  const int32_t bits = (ni + 127) << 23;  // 2^n
  float scale;
  std::memcpy(&scale, &bits, sizeof scale);
  return underflow ? 0.0f : p * scale;
}

// The logistic function, overflow-free: exp only sees -|x|.
inline float sigmoid_f32(float x) {
  const float e = exp_nonpositive_f32(x < 0.0f ? x : -x);
  const float s = 1.0f / (1.0f + e);
  return x >= 0.0f ? s : e * s;
}

enum class Logistic { Sigmoid, Silu };

__attribute__((target_clones("avx512f", "avx2", "default"))) void logistic_forward_f32(Logistic op, const float* x,
                                                                                     float* y, int64_t n) {
  if (op == Logistic::Sigmoid) {
    for (int64_t i = 0; i < n; ++i) y[i] = sigmoid_f32(x[i]);
  } else {
    for (int64_t i = 0; i < n; ++i) y[i] = x[i] * sigmoid_f32(x[i]);
  }
}

__attribute__((target_clones("avx512f", "avx2", "default"))) void logistic_backward_f32(Logistic op, const float* x,
                                                                                      const float* gy, float* gx,
                                                                                      int64_t n) {
  if (op == Logistic::Sigmoid) {
    for (int64_t i = 0; i < n; ++i) {
      const float s = sigmoid_f32(x[i]);
      gx[i] = s * (1.0f - s) * gy[i];
    }
  } else {  // d/dx x s(x) = s (1 + x (1 - s))
    for (int64_t i = 0; i < n; ++i) {
      const float s = sigmoid_f32(x[i]);
      gx[i] = s * (1.0f + x[i] * (1.0f - s)) * gy[i];
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

template <typename T, typename F>
void map_unary(const Tensor& x, Tensor& y, F f) {
  const T* xp = x.data<T>();
  T* yp = y.data<T>();
  for_each_index(x.numel(), [xp, yp, f](int64_t i) { yp[i] = f(xp[i]); });
}

template <typename T>
void unary_typed(UnaryOp op, const Tensor& x, Tensor& y, T alpha) {
  switch (op) {
    case UnaryOp::Neg: return map_unary<T>(x, y, [](T v) { return -v; });
    case UnaryOp::Exp: return map_unary<T>(x, y, [](T v) { return std::exp(v); });
    case UnaryOp::Log: return map_unary<T>(x, y, [](T v) { return std::log(v); });
    case UnaryOp::Sqrt: return map_unary<T>(x, y, [](T v) { return std::sqrt(v); });
    case UnaryOp::Square: return map_unary<T>(x, y, [](T v) { return v * v; });
    case UnaryOp::Abs: return map_unary<T>(x, y, [](T v) { return std::fabs(v); });
    case UnaryOp::Tanh: return map_unary<T>(x, y, [](T v) { return std::tanh(v); });
    case UnaryOp::Sigmoid: return map_unary<T>(x, y, [](T v) { return stable_sigmoid(v); });
    case UnaryOp::Softplus: return map_unary<T>(x, y, [](T v) { return stable_softplus(v); });
    case UnaryOp::Relu: return map_unary<T>(x, y, [](T v) { return v > T(0) ? v : T(0); });
    case UnaryOp::Silu: return map_unary<T>(x, y, [](T v) { return v * stable_sigmoid(v); });
    case UnaryOp::LeakyRelu:  // pos + alpha neg, exactly v or alpha v (NaN stays NaN): GCC keeps the ternary form's
                              // multiply behind a branch per element, and these selects vectorise
      return map_unary<T>(x, y, [alpha](T v) {
        const T pos = v > T(0) ? v : T(0), neg = v > T(0) ? T(0) : v;
        return pos + alpha * neg;
      });
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

// Each lambda is dy/dx evaluated at x; the caller multiplies by grad_y.
template <typename T>
void unary_backward_typed(UnaryOp op, const Tensor& x, const Tensor& gy, Tensor& gx, T alpha) {
  switch (op) {
    case UnaryOp::Neg: return map_backward<T>(x, gy, gx, [](T) { return T(-1); });
    case UnaryOp::Exp: return map_backward<T>(x, gy, gx, [](T v) { return std::exp(v); });
    case UnaryOp::Log: return map_backward<T>(x, gy, gx, [](T v) { return T(1) / v; });
    case UnaryOp::Sqrt: return map_backward<T>(x, gy, gx, [](T v) { return T(0.5) / std::sqrt(v); });
    case UnaryOp::Square: return map_backward<T>(x, gy, gx, [](T v) { return T(2) * v; });
    case UnaryOp::Abs: return map_backward<T>(x, gy, gx, [](T v) { return v > T(0) ? T(1) : (v < T(0) ? T(-1) : T(0)); });
    case UnaryOp::Tanh: return map_backward<T>(x, gy, gx, [](T v) { const T t = std::tanh(v); return T(1) - t * t; });
    case UnaryOp::Sigmoid: return map_backward<T>(x, gy, gx, [](T v) { const T s = stable_sigmoid(v); return s * (T(1) - s); });
    case UnaryOp::Softplus: return map_backward<T>(x, gy, gx, [](T v) { return stable_sigmoid(v); });
    case UnaryOp::Relu: return map_backward<T>(x, gy, gx, [](T v) { return v > T(0) ? T(1) : T(0); });
    case UnaryOp::Silu:  // d/dx x s(x) = s (1 + x (1 - s))
      return map_backward<T>(x, gy, gx, [](T v) { const T s = stable_sigmoid(v); return s * (T(1) + v * (T(1) - s)); });
    case UnaryOp::LeakyRelu: return map_backward<T>(x, gy, gx, [alpha](T v) { return v > T(0) ? T(1) : alpha; });
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
  if (a.numel() == n && b.numel() == n) {
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

void binary(BinaryOp op, const Tensor& a, const Tensor& b, Tensor& out) {
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
