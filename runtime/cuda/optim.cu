// CUDA optimizer kernel: PyTorch's Adam (L2 weight decay added to the gradient, bias-corrected moments) in one
// fused pass over param, grad, m, v, with the same scalar precomputation and order of operations as the CPU
// reference (runtime/cpu/optim.cpp). nvcc contracts a*b + c into FMAs, so results match to a few ulps of the
// dtype, not bit for bit. Tested by tests/test_cuda_ops.cpp.
#include <cmath>
#include <cstdint>

#include "runtime/backend.hpp"
#include "runtime/cuda/context.hpp"

namespace jebm::cuda {
namespace {

// CPU reference, per element:  g = grad + wd p;  m = b1 m + (1 - b1) g;  v = b2 v + (1 - b2) g^2;
//                               p -= (lr / bc1) m / (sqrt(v) / sqrt(bc2) + eps)
template <typename T>
__global__ void adam_kernel(T* __restrict__ p, const T* __restrict__ g, T* __restrict__ m, T* __restrict__ v,
                            int64_t n, T step_size, T sqrt_bc2, T b1, T b2, T eps, T wd) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(blockDim.x) * gridDim.x) {
    const T pi = p[i];
    const T gi = g[i] + wd * pi;
    const T mi = b1 * m[i] + (T(1) - b1) * gi;
    const T vi = b2 * v[i] + (T(1) - b2) * gi * gi;
    m[i] = mi;
    v[i] = vi;
    p[i] = pi - step_size * mi / (std::sqrt(vi) / sqrt_bc2 + eps);
  }
}

}  // namespace

void adam_update(Tensor& param, const Tensor& grad, Tensor& m, Tensor& v, const AdamHyper& h) {
  const int64_t n = param.numel();
  if (n == 0) return;
  const double bc1 = 1.0 - std::pow(h.beta1, static_cast<double>(h.step));
  const double bc2 = 1.0 - std::pow(h.beta2, static_cast<double>(h.step));
  cudaStream_t s = stream(param);
  JEBM_DISPATCH_FLOAT(param.dtype(), "adam_update (cuda)", [&] {
    using T = scalar_t;
    adam_kernel<<<grid_for(n), kBlock, 0, s>>>(param.device_data<T>(), grad.device_data<T>(), m.device_data<T>(), v.device_data<T>(), n,
                                                static_cast<T>(h.lr / bc1), static_cast<T>(std::sqrt(bc2)),
                                                static_cast<T>(h.beta1), static_cast<T>(h.beta2),
                                                static_cast<T>(h.eps), static_cast<T>(h.weight_decay));
  });
  CUDA_CHECK_LAUNCH("adam_kernel");
}

}  // namespace jebm::cuda
