// The runtime's operations on Tensors. Each op validates shapes/dtypes/devices (the message names the op and
// both shapes), allocates its output and dispatches to the kernel of the tensor's device: runtime/cpu/<family>.cpp
// or runtime/cuda/<family>.cu, which share names and signatures (runtime/kernels.inc). Nothing here records
// gradients: autograd/ wraps these. Tested by tests/test_ops.cpp (values) and tests/test_cuda_ops.cpp (CUDA vs CPU).
#pragma once
#include <cstdint>
#include <vector>

#include "runtime/tensor.hpp"

namespace jebm {

enum class UnaryOp { Neg, Exp, Log, Sqrt, Square, Abs, Tanh, Sigmoid, Softplus, Relu, Silu, LeakyRelu };
enum class BinaryOp { Add, Sub, Mul, Div, Max, Min };
enum class ScalarOp { Add, Mul, Pow, Clamp };  // Clamp uses (s, s2) = (lo, hi)
enum class ReduceOp { Sum, Mean, Max, LogSumExp };
const char* unary_op_name(UnaryOp op);
const char* binary_op_name(BinaryOp op);
const char* reduce_op_name(ReduceOp op);

// --- elementwise (runtime/cpu/elementwise.cpp) -----------------------------------------------------------
// Broadcasting follows NumPy: shapes are right-aligned, a dimension of 1 stretches.
Shape broadcast_shapes(const Shape& a, const Shape& b, const char* op);
Tensor unary(UnaryOp op, const Tensor& x, double alpha = 0.0);  // alpha: LeakyRelu's slope
// d(unary(x))/dx * grad_y, recomputed from x (no saved output needed).
Tensor unary_backward(UnaryOp op, const Tensor& x, const Tensor& grad_y, double alpha = 0.0);
// unary(x), with dy/dx at x written to dydx in the same pass (the bits of unary_backward with grad_y = 1): a
// backward that saves dydx is one multiply, and the logistic ops evaluate their exp once for both.
Tensor unary_with_derivative(UnaryOp op, const Tensor& x, Tensor& dydx, double alpha = 0.0);
Tensor binary(BinaryOp op, const Tensor& a, const Tensor& b);
Tensor scalar_op(ScalarOp op, const Tensor& x, double s, double s2 = 0.0);

inline Tensor add(const Tensor& a, const Tensor& b) { return binary(BinaryOp::Add, a, b); }
inline Tensor sub(const Tensor& a, const Tensor& b) { return binary(BinaryOp::Sub, a, b); }
inline Tensor mul(const Tensor& a, const Tensor& b) { return binary(BinaryOp::Mul, a, b); }
inline Tensor div(const Tensor& a, const Tensor& b) { return binary(BinaryOp::Div, a, b); }
inline Tensor maximum(const Tensor& a, const Tensor& b) { return binary(BinaryOp::Max, a, b); }
inline Tensor minimum(const Tensor& a, const Tensor& b) { return binary(BinaryOp::Min, a, b); }
inline Tensor neg(const Tensor& x) { return unary(UnaryOp::Neg, x); }
inline Tensor exp(const Tensor& x) { return unary(UnaryOp::Exp, x); }
inline Tensor log(const Tensor& x) { return unary(UnaryOp::Log, x); }
inline Tensor sqrt(const Tensor& x) { return unary(UnaryOp::Sqrt, x); }
inline Tensor square(const Tensor& x) { return unary(UnaryOp::Square, x); }
inline Tensor abs(const Tensor& x) { return unary(UnaryOp::Abs, x); }
inline Tensor tanh(const Tensor& x) { return unary(UnaryOp::Tanh, x); }
inline Tensor sigmoid(const Tensor& x) { return unary(UnaryOp::Sigmoid, x); }
inline Tensor softplus(const Tensor& x) { return unary(UnaryOp::Softplus, x); }
inline Tensor relu(const Tensor& x) { return unary(UnaryOp::Relu, x); }
inline Tensor silu(const Tensor& x) { return unary(UnaryOp::Silu, x); }
inline Tensor leaky_relu(const Tensor& x, double slope) { return unary(UnaryOp::LeakyRelu, x, slope); }
inline Tensor add_scalar(const Tensor& x, double s) { return scalar_op(ScalarOp::Add, x, s); }
inline Tensor mul_scalar(const Tensor& x, double s) { return scalar_op(ScalarOp::Mul, x, s); }
inline Tensor pow_scalar(const Tensor& x, double p) { return scalar_op(ScalarOp::Pow, x, p); }
inline Tensor clamp(const Tensor& x, double lo, double hi) { return scalar_op(ScalarOp::Clamp, x, lo, hi); }

// In place, same shape/dtype/device: y = a*x + b*y.
void axpby_(double a, const Tensor& x, double b, Tensor& y);
inline void add_(Tensor& y, const Tensor& x, double alpha = 1.0) { axpby_(alpha, x, 1.0, y); }
void mul_(Tensor& y, const Tensor& x);  // y *= x elementwise, same shape: the bits of mul(x, y)
void fill_(Tensor& y, double value);
Tensor cast(const Tensor& x, DType dtype);  // same device

// --- reductions (runtime/cpu/reduce.cpp) ------------------------------------------------------------------
Tensor reduce(ReduceOp op, const Tensor& x, int64_t axis, bool keepdim = false);  // negative axis ok
Tensor reduce_all(ReduceOp op, const Tensor& x);  // shape {}
inline Tensor sum(const Tensor& x, int64_t axis, bool keepdim = false) { return reduce(ReduceOp::Sum, x, axis, keepdim); }
inline Tensor mean(const Tensor& x, int64_t axis, bool keepdim = false) { return reduce(ReduceOp::Mean, x, axis, keepdim); }
inline Tensor max(const Tensor& x, int64_t axis, bool keepdim = false) { return reduce(ReduceOp::Max, x, axis, keepdim); }
inline Tensor logsumexp(const Tensor& x, int64_t axis, bool keepdim = false) { return reduce(ReduceOp::LogSumExp, x, axis, keepdim); }
inline Tensor sum_all(const Tensor& x) { return reduce_all(ReduceOp::Sum, x); }
inline Tensor mean_all(const Tensor& x) { return reduce_all(ReduceOp::Mean, x); }
// Index of the first non-finite value of t, or -1 (always -1 for int64 and undefined tensors); *value gets that
// value. A device tensor is tested through one scalar (sum(t * 0) is exactly 0 when every entry is finite, NaN
// otherwise) and comes to the host only when it fails, so a healthy check copies no data.
int64_t first_non_finite(const Tensor& t, double* value = nullptr);
// Sums a broadcast result g back to `shape` (the inverse of broadcasting; used by autograd).
Tensor sum_to(const Tensor& g, const Shape& shape);

// --- GEMM (runtime/cpu/gemm.cpp: CBLAS; runtime/cuda/gemm.cu: cuBLAS) ------------------------------------
// 2-D: op(a) [M, K] x op(b) [K, N] -> [M, N], op = transpose when the flag is set.
Tensor matmul(const Tensor& a, const Tensor& b, bool trans_a = false, bool trans_b = false);
// In place: c = alpha * op(a) op(b) + beta * c.
void gemm_(bool trans_a, bool trans_b, double alpha, const Tensor& a, const Tensor& b, double beta, Tensor& c);

// --- conv2d, NCHW (runtime/cpu/conv.cpp: im2col + GEMM, thin layers direct; runtime/cuda/conv.cu: cuDNN) -------------
struct Conv2dParams {
  int64_t stride = 1;
  int64_t padding = 0;
};
// x: [N, C, H, W], w: [F, C, KH, KW], bias: [F] or undefined -> y: [N, F, OH, OW]
Shape conv2d_output_shape(const Shape& x, const Shape& w, const Conv2dParams& p);
Tensor conv2d(const Tensor& x, const Tensor& w, const Tensor& bias, const Conv2dParams& p);
Tensor conv2d_backward_data(const Tensor& grad_y, const Tensor& w, const Shape& x_shape, const Conv2dParams& p);
Tensor conv2d_backward_filter(const Tensor& grad_y, const Tensor& x, const Shape& w_shape, const Conv2dParams& p);
Tensor conv2d_backward_bias(const Tensor& grad_y);  // [F]

// --- rows by index (runtime/cpu/index.cpp); idx is Int64 [M] on the same device ---------------------------
Tensor gather_rows(const Tensor& x, const Tensor& idx);                        // y[i] = x[idx[i]]
// The same with host indices (chosen on the host, uploaded to x's device): exact row copies on every device.
Tensor gather_rows(const Tensor& x, const std::vector<int64_t>& idx);
Tensor scatter_add_rows(const Tensor& src, const Tensor& idx, int64_t rows);   // y = 0; y[idx[i]] += src[i]
void index_copy_rows_(Tensor& dst, const Tensor& idx, const Tensor& src);      // dst[idx[i]] = src[i]
Tensor concat(const std::vector<Tensor>& xs, int64_t axis);

// --- random numbers (runtime/cpu/rng.cpp): Philox-4x32-10, see runtime/philox.hpp --------------------------
// A Generator is (seed, offset); every call that draws consumes one offset, element i of the draw uses the
// Philox block (seed, stream = i / 2, offset). So a seed fixes every draw, whatever the thread count.
struct Generator {
  uint64_t seed = 0;
  uint64_t offset = 0;
  uint64_t next() { return offset++; }
};
Tensor rand_uniform(const Shape& shape, double lo, double hi, Generator& gen, DType dtype = DType::Float32,
                    Device device = Device::cpu());
Tensor rand_normal(const Shape& shape, double mean, double stddev, Generator& gen, DType dtype = DType::Float32,
                   Device device = Device::cpu());
void uniform_(Tensor& y, double lo, double hi, Generator& gen);
void normal_(Tensor& y, double mean, double stddev, Generator& gen);

// --- optimizer kernels (runtime/cpu/optim.cpp) --------------------------------------------------------------
struct AdamHyper {
  double lr = 1e-3, beta1 = 0.9, beta2 = 0.999, eps = 1e-8, weight_decay = 0.0;
  int64_t step = 1;  // 1-based, for bias correction
};
// PyTorch's Adam (L2 weight decay added to the gradient), one fused pass over param, grad, m, v.
void adam_update_(Tensor& param, const Tensor& grad, Tensor& m, Tensor& v, const AdamHyper& h);

}  // namespace jebm
