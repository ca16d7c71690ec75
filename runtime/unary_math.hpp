// The scalar math of the unary ops (UnaryOp in runtime/ops.hpp): each op's value and its derivative, written once
// for host and device and called by both runtime/cpu/elementwise.cpp and runtime/cuda/elementwise.cu, so the twins
// cannot drift. Every function is NaN in, NaN out (but neg's derivative, a constant), defined (no UB) for +-inf,
// huge values and denormals, and gives the mathematical limit at +-inf. Tested by tests/test_ops.cpp (values, special values) and tests/test_cuda_ops.cpp.
#pragma once
#include <cmath>
#include <cstdint>
#include <cstring>

#include "runtime/ops.hpp"

// Host: always inline, so the math is compiled inside the AVX-512/AVX2 clones of the CPU loops.
#if defined(__CUDACC__)
#define JEBM_UNARY_HD __host__ __device__ __forceinline__
#else
#define JEBM_UNARY_HD inline __attribute__((always_inline))
#endif

namespace jebm::unary_math {

// c, or v where v is NaN: the selects below would otherwise turn a NaN into a constant (relu(NaN) = 0).
template <typename T>
JEBM_UNARY_HD T nan_or(T v, T c) {
  return v == v ? c : v;
}

// --- exponential and logistic ---------------------------------------------------------------------------------
// libm's exp is an opaque call per element, which keeps the float32 sigmoid/SiLU loops scalar (a third of the MNIST
// energy net's forward+backward). exp_nonpositive is Cephes' expf: branch-free, ~1 ulp, so those loops vectorise.
// Its 2^n is built from integer bits in unsigned arithmetic: a NaN gives garbage bits there but a NaN polynomial,
// so NaN * scale = NaN, and no input makes a signed shift or overflow (UBSan saw one for NaN).

// The bits of a float and back, on either side.
JEBM_UNARY_HD uint32_t float_to_bits(float f) {
#if defined(__CUDA_ARCH__)
  return __float_as_uint(f);
#else
  uint32_t u;
  std::memcpy(&u, &f, sizeof u);
  return u;
#endif
}
JEBM_UNARY_HD float bits_to_float(uint32_t u) {
#if defined(__CUDA_ARCH__)
  return __uint_as_float(u);
#else
  float f;
  std::memcpy(&f, &u, sizeof f);
  return f;
#endif
}

// e^t for t <= 0 or NaN; 0 below -87 (where e^t is under 1.7e-38, at the edge of float's normal range).
JEBM_UNARY_HD float exp_nonpositive(float t) {
  const bool underflow = t < -87.0f;  // false for NaN, so NaN reaches the polynomial
  constexpr float kLog2e = 1.44269504088896341f, kLn2Hi = 0.693359375f, kLn2Lo = -2.12194440e-4f;
  constexpr float kRound = 12582912.0f;  // 1.5 * 2^23: adding it rounds to an integer held in the low mantissa bits
  t = underflow ? -87.0f : t;
  const float shifted = t * kLog2e + kRound;
  const float n = shifted - kRound;                        // round(t / ln 2), in [-126, 0]
  const uint32_t nbits = float_to_bits(shifted) - 0x4B400000u;  // minus kRound's bits: n, in two's complement
  const float r = (t - n * kLn2Hi) - n * kLn2Lo;           // t - n ln 2, |r| <= ln2 / 2
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  p = p * r * r + r + 1.0f;
  const float scale = bits_to_float((nbits + 127u) << 23);  // 2^n for n in [-126, 0]
  return underflow ? 0.0f : p * scale;
}

// The logistic function, overflow-free: exp only sees a non-positive argument. sigmoid(+-inf) = 1, 0.
// float: the vectorising exp above, 1 / (1 + e) computed once for both signs.
JEBM_UNARY_HD float sigmoid(float x) {
  const float e = exp_nonpositive(x < 0.0f ? x : -x);
  const float s = 1.0f / (1.0f + e);
  return x >= 0.0f ? s : e * s;
}
// double: libm's exp (a polynomial would need more terms for double's precision).
JEBM_UNARY_HD double sigmoid(double x) {
  if (x >= 0.0) return 1.0 / (1.0 + std::exp(-x));
  const double e = std::exp(x);
  return e / (1.0 + e);
}

// --- values: y = f(x) -----------------------------------------------------------------------------------------
template <typename T> JEBM_UNARY_HD T neg(T x) { return -x; }
template <typename T> JEBM_UNARY_HD T exp(T x) { return std::exp(x); }
template <typename T> JEBM_UNARY_HD T log(T x) { return std::log(x); }
template <typename T> JEBM_UNARY_HD T sqrt(T x) { return std::sqrt(x); }
template <typename T> JEBM_UNARY_HD T square(T x) { return x * x; }
template <typename T> JEBM_UNARY_HD T abs(T x) { return std::fabs(x); }
template <typename T> JEBM_UNARY_HD T tanh(T x) { return std::tanh(x); }
// log(1 + e^x) = max(x, 0) + log1p(e^{-|x|}): no overflow for large x, no loss of precision for very negative x.
template <typename T> JEBM_UNARY_HD T softplus(T x) {
  return (x > T(0) ? x : nan_or(x, T(0))) + std::log1p(std::exp(-std::fabs(x)));
}
template <typename T> JEBM_UNARY_HD T relu(T x) { return x > T(0) ? x : nan_or(x, T(0)); }
// x * sigmoid(x), and 0 at -inf (where it would be -inf * 0). Every finite x takes the product.
template <typename T> JEBM_UNARY_HD T silu(T x) {
  const T y = x * sigmoid(x);
  return x == -INFINITY ? T(0) : y;
}
// pos + alpha neg, exactly x or alpha x (NaN stays NaN, leaky_relu(-0) = +0): GCC keeps the ternary form's
// multiply behind a branch per element, and these selects vectorise.
template <typename T> JEBM_UNARY_HD T leaky_relu(T x, T alpha) {
  const T pos = x > T(0) ? x : T(0), neg = x > T(0) ? T(0) : x;
  return pos + alpha * neg;
}

// --- derivatives: dy/dx at x (the kernels multiply by grad_y) -------------------------------------------------
template <typename T> JEBM_UNARY_HD T neg_derivative(T) { return T(-1); }
template <typename T> JEBM_UNARY_HD T log_derivative(T x) { return T(1) / x; }
template <typename T> JEBM_UNARY_HD T sqrt_derivative(T x) { return T(0.5) / std::sqrt(x); }
template <typename T> JEBM_UNARY_HD T square_derivative(T x) { return T(2) * x; }
template <typename T> JEBM_UNARY_HD T abs_derivative(T x) {
  return x > T(0) ? T(1) : (x < T(0) ? T(-1) : nan_or(x, T(0)));
}
template <typename T> JEBM_UNARY_HD T tanh_derivative(T x) {
  const T t = std::tanh(x);
  return T(1) - t * t;
}
template <typename T> JEBM_UNARY_HD T sigmoid_derivative(T x) {
  const T s = sigmoid(x);
  return s * (T(1) - s);
}
template <typename T> JEBM_UNARY_HD T relu_derivative(T x) { return x > T(0) ? T(1) : nan_or(x, T(0)); }
// d/dx x s(x) = s (1 + x (1 - s)); x is clamped to +-1e4 first, where s is exactly 0 or 1 in float and double, so
// +-inf give the limits 0 and 1 instead of inf * 0 (the clamp keeps NaN).
template <typename T> JEBM_UNARY_HD T silu_derivative(T x) {
  x = x > T(1e4) ? T(1e4) : (x < T(-1e4) ? T(-1e4) : x);
  const T s = sigmoid(x);
  return s * (T(1) + x * (T(1) - s));
}
template <typename T> JEBM_UNARY_HD T leaky_relu_derivative(T x, T alpha) {
  return x > T(0) ? T(1) : nan_or(x, alpha);
}

// --- value and derivative together, for a backward that reuses them (ops.hpp's unary_with_derivative) ----------
// One logistic (one tanh) serves both, with the bits of the separate functions above: the derivative's clamp to
// +-1e4 does not change s, which is exactly 0 or 1 beyond it in float and double.
template <typename T> JEBM_UNARY_HD T sigmoid_with_derivative(T x, T& dydx) {
  const T s = sigmoid(x);
  dydx = s * (T(1) - s);
  return s;
}
template <typename T> JEBM_UNARY_HD T silu_with_derivative(T x, T& dydx) {
  const T s = sigmoid(x);
  const T c = x > T(1e4) ? T(1e4) : (x < T(-1e4) ? T(-1e4) : x);
  dydx = s * (T(1) + c * (T(1) - s));
  const T y = x * s;
  return x == -INFINITY ? T(0) : y;
}
template <typename T> JEBM_UNARY_HD T tanh_with_derivative(T x, T& dydx) {
  const T t = std::tanh(x);
  dydx = T(1) - t * t;
  return t;
}

// --- by op, for kernels that take the op as an argument (runtime/cuda/elementwise.cu: uniform across the grid,
// so the switch costs no divergence). The CPU loops switch once outside the loop and call the functions above.
template <typename T>
JEBM_UNARY_HD T value(UnaryOp op, T x, T alpha) {
  switch (op) {
    case UnaryOp::Neg: return neg(x);
    case UnaryOp::Exp: return exp(x);
    case UnaryOp::Log: return log(x);
    case UnaryOp::Sqrt: return sqrt(x);
    case UnaryOp::Square: return square(x);
    case UnaryOp::Abs: return abs(x);
    case UnaryOp::Tanh: return tanh(x);
    case UnaryOp::Sigmoid: return sigmoid(x);
    case UnaryOp::Softplus: return softplus(x);
    case UnaryOp::Relu: return relu(x);
    case UnaryOp::Silu: return silu(x);
    case UnaryOp::LeakyRelu: return leaky_relu(x, alpha);
  }
  return T(NAN);
}

template <typename T>
JEBM_UNARY_HD T derivative(UnaryOp op, T x, T alpha) {
  switch (op) {
    case UnaryOp::Neg: return neg_derivative(x);
    case UnaryOp::Exp: return exp(x);
    case UnaryOp::Log: return log_derivative(x);
    case UnaryOp::Sqrt: return sqrt_derivative(x);
    case UnaryOp::Square: return square_derivative(x);
    case UnaryOp::Abs: return abs_derivative(x);
    case UnaryOp::Tanh: return tanh_derivative(x);
    case UnaryOp::Sigmoid: return sigmoid_derivative(x);
    case UnaryOp::Softplus: return sigmoid(x);
    case UnaryOp::Relu: return relu_derivative(x);
    case UnaryOp::Silu: return silu_derivative(x);
    case UnaryOp::LeakyRelu: return leaky_relu_derivative(x, alpha);
  }
  return T(NAN);
}

template <typename T>
JEBM_UNARY_HD T value_with_derivative(UnaryOp op, T x, T alpha, T& dydx) {
  switch (op) {
    case UnaryOp::Sigmoid: return sigmoid_with_derivative(x, dydx);
    case UnaryOp::Silu: return silu_with_derivative(x, dydx);
    case UnaryOp::Tanh: return tanh_with_derivative(x, dydx);
    default: break;
  }
  dydx = derivative(op, x, alpha);
  return value(op, x, alpha);
}

}  // namespace jebm::unary_math
