// CUDA elementwise kernels: unary activations, their backward and both at once, binary ops with NumPy
// broadcasting, scalar ops, axpby, fill and dtype casts. CPU reference: runtime/cpu/elementwise.cpp. The unary math
// is the CPU's own (runtime/unary_math.hpp), so results differ only by CUDA's vs glibc's exp/log/tanh/pow and FMA
// contraction. Tested by tests/test_cuda_ops.cpp.
#include <cmath>
#include <cstdint>
#include <vector>

#include "runtime/backend.hpp"
#include "runtime/broadcast.hpp"
#include "runtime/cuda/context.hpp"
#include "runtime/unary_math.hpp"

namespace jebm::cuda {
namespace {

template <typename T>
__device__ __forceinline__ T binary_value(BinaryOp op, T x, T y) {
  switch (op) {
    case BinaryOp::Add: return x + y;
    case BinaryOp::Sub: return x - y;
    case BinaryOp::Mul: return x * y;
    case BinaryOp::Div: return x / y;
    case BinaryOp::Max: return x >= y ? x : y;
    case BinaryOp::Min: return x <= y ? x : y;
  }
  return T(NAN);
}

template <typename T>
__device__ __forceinline__ T scalar_value(ScalarOp op, T v, T s, T s2) {
  switch (op) {
    case ScalarOp::Add: return v + s;
    case ScalarOp::Mul: return v * s;
    case ScalarOp::Pow:  // the CPU special-cases these exponents; so must we to match bit for bit
      if (s == T(2)) return v * v;
      if (s == T(1)) return v;
      if (s == T(0.5)) return std::sqrt(v);
      return std::pow(v, s);
    case ScalarOp::Clamp: return v < s ? s : (v > s2 ? s2 : v);
  }
  return T(NAN);
}

// --- kernels (grid-stride; op is uniform across the grid so the switch costs no divergence) ---------------
#define JEBM_GRID_STRIDE(i, n) \
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < (n); i += int64_t(blockDim.x) * gridDim.x)

template <typename T>
__global__ void unary_kernel(UnaryOp op, const T* __restrict__ x, T* __restrict__ y, int64_t n, T alpha) {
  JEBM_GRID_STRIDE(i, n) y[i] = unary_math::value(op, x[i], alpha);
}

template <typename T>
__global__ void unary_backward_kernel(UnaryOp op, const T* __restrict__ x, const T* __restrict__ gy,
                                      T* __restrict__ gx, int64_t n, T alpha) {
  JEBM_GRID_STRIDE(i, n) gx[i] = unary_math::derivative(op, x[i], alpha) * gy[i];
}

template <typename T>
__global__ void unary_with_derivative_kernel(UnaryOp op, const T* __restrict__ x, T* __restrict__ y,
                                             T* __restrict__ d, int64_t n, T alpha) {
  JEBM_GRID_STRIDE(i, n) {
    T di;
    y[i] = unary_math::value_with_derivative(op, x[i], alpha, di);
    d[i] = di;
  }
}

template <typename T>
__global__ void scalar_kernel(ScalarOp op, const T* __restrict__ x, T* __restrict__ y, int64_t n, T s, T s2) {
  JEBM_GRID_STRIDE(i, n) y[i] = scalar_value(op, x[i], s, s2);
}

// Same shape, or one side a scalar (stride 0): the common cases need no index arithmetic.
template <typename T>
__global__ void binary_flat_kernel(BinaryOp op, const T* __restrict__ a, int64_t sa, const T* __restrict__ b,
                                   int64_t sb, T* __restrict__ o, int64_t n) {
  JEBM_GRID_STRIDE(i, n) o[i] = binary_value(op, a[i * sa], b[i * sb]);
}

// The same without __restrict__, for an output that is one of the inputs (mul_ and the like): each element is read
// before it is written, by the same thread.
template <typename T>
__global__ void binary_flat_aliased_kernel(BinaryOp op, const T* a, int64_t sa, const T* b, int64_t sb, T* o,
                                           int64_t n) {
  JEBM_GRID_STRIDE(i, n) o[i] = binary_value(op, a[i * sa], b[i * sb]);
}

// General broadcasting over a merged shape of at most kMaxDims dims; strides are 0 where an operand broadcasts.
constexpr int kMaxDims = 8;
struct BroadcastPlan {
  int rank = 0;
  int64_t shape[kMaxDims] = {};
  int64_t stride_a[kMaxDims] = {};
  int64_t stride_b[kMaxDims] = {};
};

// Index is int32_t when the output is small enough (see binary()): 64-bit division is emulated in software and
// costs several times a 32-bit one, and this kernel divides once per merged dim per element. Offsets into a and
// b never exceed n (each operand broadcasts to the output), so they fit the same type.
template <typename T, typename Index>
__global__ void binary_broadcast_kernel(BinaryOp op, const T* __restrict__ a, const T* __restrict__ b,
                                        T* __restrict__ o, Index n, BroadcastPlan p) {
  const Index step = static_cast<Index>(blockDim.x) * static_cast<Index>(gridDim.x);
  for (Index i = static_cast<Index>(blockIdx.x) * static_cast<Index>(blockDim.x) + static_cast<Index>(threadIdx.x);
       i < n; i += step) {
    Index rem = i, oa = 0, ob = 0;
    for (int k = p.rank - 1; k >= 0; --k) {
      const Index d = static_cast<Index>(p.shape[k]);
      const Index q = rem / d;
      const Index idx = rem - q * d;
      rem = q;
      oa += idx * static_cast<Index>(p.stride_a[k]);
      ob += idx * static_cast<Index>(p.stride_b[k]);
    }
    o[i] = binary_value(op, a[oa], b[ob]);
  }
}

template <typename T>
__global__ void axpby_kernel(T a, const T* __restrict__ x, T b, T* __restrict__ y, int64_t n) {
  // b == 0 overwrites y even when it holds NaN/Inf (fresh, uninitialised memory), as on the CPU.
  if (b == T(0)) {
    JEBM_GRID_STRIDE(i, n) y[i] = a * x[i];
  } else {
    JEBM_GRID_STRIDE(i, n) y[i] = a * x[i] + b * y[i];
  }
}

template <typename T>
__global__ void fill_kernel(T* __restrict__ y, int64_t n, T v) {
  JEBM_GRID_STRIDE(i, n) y[i] = v;
}

template <typename Src, typename Dst>
__global__ void cast_kernel(const Src* __restrict__ x, Dst* __restrict__ y, int64_t n) {
  JEBM_GRID_STRIDE(i, n) y[i] = static_cast<Dst>(x[i]);
}

// --- host side --------------------------------------------------------------------------------------------

// The shared layout (runtime/broadcast.hpp) packed into a fixed-size struct for the kernel argument.
BroadcastPlan plan_broadcast(const Shape& a, const Shape& b, const Shape& out) {
  const BroadcastLayout l = broadcast_layout(a, b, out);
  JEBM_CHECK(l.shape.size() <= static_cast<size_t>(kMaxDims),
             "binary (cuda): broadcasting " << shape_str(a) << " with " << shape_str(b) << " needs "
                                            << l.shape.size() << " dims after merging; at most " << kMaxDims);
  BroadcastPlan p;
  p.rank = static_cast<int>(l.shape.size());
  for (size_t k = 0; k < l.shape.size(); ++k) {
    p.shape[k] = l.shape[k];
    p.stride_a[k] = l.stride_a[k];
    p.stride_b[k] = l.stride_b[k];
  }
  return p;
}

template <typename Src>
void cast_from(const Tensor& x, Tensor& y, cudaStream_t s) {
  const int64_t n = x.numel();
  const Src* xp = static_cast<const Src*>(x.raw_data());
  switch (y.dtype()) {
    case DType::Float32: cast_kernel<<<grid_for(n), kBlock, 0, s>>>(xp, y.device_data<float>(), n); break;
    case DType::Float64: cast_kernel<<<grid_for(n), kBlock, 0, s>>>(xp, y.device_data<double>(), n); break;
    case DType::Int64: cast_kernel<<<grid_for(n), kBlock, 0, s>>>(xp, y.device_data<int64_t>(), n); break;
  }
  CUDA_CHECK_LAUNCH("cast_kernel");
}

}  // namespace

void unary(UnaryOp op, const Tensor& x, Tensor& y, double alpha) {
  const int64_t n = x.numel();
  if (n == 0) return;
  cudaStream_t s = stream(x);
  JEBM_DISPATCH_FLOAT(x.dtype(), "unary (cuda)", [&] {
    unary_kernel<<<grid_for(n), kBlock, 0, s>>>(op, x.device_data<scalar_t>(), y.device_data<scalar_t>(), n,
                                                 static_cast<scalar_t>(alpha));
  });
  CUDA_CHECK_LAUNCH("unary_kernel(" << unary_op_name(op) << ")");
}

void unary_backward(UnaryOp op, const Tensor& x, const Tensor& grad_y, Tensor& grad_x, double alpha) {
  const int64_t n = x.numel();
  if (n == 0) return;
  cudaStream_t s = stream(x);
  JEBM_DISPATCH_FLOAT(x.dtype(), "unary_backward (cuda)", [&] {
    unary_backward_kernel<<<grid_for(n), kBlock, 0, s>>>(op, x.device_data<scalar_t>(), grad_y.device_data<scalar_t>(),
                                                          grad_x.device_data<scalar_t>(), n, static_cast<scalar_t>(alpha));
  });
  CUDA_CHECK_LAUNCH("unary_backward_kernel(" << unary_op_name(op) << ")");
}

void unary_with_derivative(UnaryOp op, const Tensor& x, Tensor& y, Tensor& dydx, double alpha) {
  const int64_t n = x.numel();
  if (n == 0) return;
  cudaStream_t s = stream(x);
  JEBM_DISPATCH_FLOAT(x.dtype(), "unary_with_derivative (cuda)", [&] {
    unary_with_derivative_kernel<<<grid_for(n), kBlock, 0, s>>>(op, x.device_data<scalar_t>(),
                                                                 y.device_data<scalar_t>(),
                                                                 dydx.device_data<scalar_t>(), n,
                                                                 static_cast<scalar_t>(alpha));
  });
  CUDA_CHECK_LAUNCH("unary_with_derivative_kernel(" << unary_op_name(op) << ")");
}

void binary(BinaryOp op, const Tensor& a, const Tensor& b, Tensor& out) {
  const int64_t n = out.numel();
  if (n == 0) return;
  cudaStream_t s = stream(out);
  JEBM_DISPATCH_FLOAT(out.dtype(), "binary (cuda)", [&] {
    const scalar_t* ap = a.device_data<scalar_t>();
    const scalar_t* bp = b.device_data<scalar_t>();
    scalar_t* op_ = out.device_data<scalar_t>();
    if ((a.numel() == n || a.numel() == 1) && (b.numel() == n || b.numel() == 1)) {
      const int64_t sa = a.numel() == n ? 1 : 0, sb = b.numel() == n ? 1 : 0;
      if (op_ == ap || op_ == bp)
        binary_flat_aliased_kernel<<<grid_for(n), kBlock, 0, s>>>(op, ap, sa, bp, sb, op_, n);
      else
        binary_flat_kernel<<<grid_for(n), kBlock, 0, s>>>(op, ap, sa, bp, sb, op_, n);
    } else {
      const BroadcastPlan plan = plan_broadcast(a.shape(), b.shape(), out.shape());
      // int32 while i + the grid's stride (at most 65536 * kBlock) cannot overflow
      if (n <= (int64_t(1) << 30))
        binary_broadcast_kernel<scalar_t, int32_t><<<grid_for(n), kBlock, 0, s>>>(op, ap, bp, op_,
                                                                                  static_cast<int32_t>(n), plan);
      else
        binary_broadcast_kernel<scalar_t, int64_t><<<grid_for(n), kBlock, 0, s>>>(op, ap, bp, op_, n, plan);
    }
  });
  CUDA_CHECK_LAUNCH("binary kernel(" << binary_op_name(op) << ")");
}

void scalar_op(ScalarOp op, const Tensor& x, double s_, double s2, Tensor& y) {
  const int64_t n = x.numel();
  if (n == 0) return;
  cudaStream_t s = stream(x);
  JEBM_DISPATCH_FLOAT(x.dtype(), "scalar_op (cuda)", [&] {
    scalar_kernel<<<grid_for(n), kBlock, 0, s>>>(op, x.device_data<scalar_t>(), y.device_data<scalar_t>(), n,
                                                  static_cast<scalar_t>(s_), static_cast<scalar_t>(s2));
  });
  CUDA_CHECK_LAUNCH("scalar_kernel");
}

void axpby(double a, const Tensor& x, double b, Tensor& y) {
  const int64_t n = y.numel();
  if (n == 0) return;
  cudaStream_t s = stream(y);
  JEBM_DISPATCH_FLOAT(y.dtype(), "axpby (cuda)", [&] {
    axpby_kernel<<<grid_for(n), kBlock, 0, s>>>(static_cast<scalar_t>(a), x.device_data<scalar_t>(),
                                                 static_cast<scalar_t>(b), y.device_data<scalar_t>(), n);
  });
  CUDA_CHECK_LAUNCH("axpby_kernel");
}

void fill(Tensor& y, double value) {
  const int64_t n = y.numel();
  if (n == 0) return;
  cudaStream_t s = stream(y);
  switch (y.dtype()) {
    case DType::Float32: fill_kernel<<<grid_for(n), kBlock, 0, s>>>(y.device_data<float>(), n, static_cast<float>(value)); break;
    case DType::Float64: fill_kernel<<<grid_for(n), kBlock, 0, s>>>(y.device_data<double>(), n, value); break;
    case DType::Int64: fill_kernel<<<grid_for(n), kBlock, 0, s>>>(y.device_data<int64_t>(), n, static_cast<int64_t>(value)); break;
  }
  CUDA_CHECK_LAUNCH("fill_kernel");
}

void cast(const Tensor& x, Tensor& y) {
  if (x.numel() == 0) return;
  cudaStream_t s = stream(x);
  switch (x.dtype()) {
    case DType::Float32: return cast_from<float>(x, y, s);
    case DType::Float64: return cast_from<double>(x, y, s);
    case DType::Int64: return cast_from<int64_t>(x, y, s);
  }
}

}  // namespace jebm::cuda
