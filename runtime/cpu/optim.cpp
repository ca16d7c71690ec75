// CPU optimizer kernel: PyTorch's Adam (L2 weight decay added to the gradient, bias-corrected moments) in one
// fused pass over param, grad, m, v. The reference for runtime/cuda/optim.cu. Tested by tests/test_ops.cpp
// (one step against the hand formula).
#include <cmath>
#include <cstdint>

#include "runtime/backend.hpp"
#include "runtime/cpu/parallel.hpp"

namespace jebm::cpu {
namespace {

template <typename T>
void adam_typed(Tensor& param, const Tensor& grad, Tensor& m, Tensor& v, const AdamHyper& h) {
  T* p = param.data<T>();
  const T* g = grad.data<T>();
  T* mp = m.data<T>();
  T* vp = v.data<T>();
  const double bc1 = 1.0 - std::pow(h.beta1, static_cast<double>(h.step));
  const double bc2 = 1.0 - std::pow(h.beta2, static_cast<double>(h.step));
  // As torch.optim.Adam: p -= lr / bc1 * m / (sqrt(v) / sqrt(bc2) + eps).
  const T step_size = static_cast<T>(h.lr / bc1), sqrt_bc2 = static_cast<T>(std::sqrt(bc2));
  const T b1 = static_cast<T>(h.beta1), b2 = static_cast<T>(h.beta2), eps = static_cast<T>(h.eps);
  const T wd = static_cast<T>(h.weight_decay);
  const int64_t n = param.numel();
  auto body = [&](int64_t i) {
    const T gi = g[i] + wd * p[i];
    mp[i] = b1 * mp[i] + (T(1) - b1) * gi;
    vp[i] = b2 * vp[i] + (T(1) - b2) * gi * gi;
    p[i] -= step_size * mp[i] / (std::sqrt(vp[i]) / sqrt_bc2 + eps);
  };
  if (n >= kParallelMin) {
#pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < n; ++i) body(i);
  } else {
    for (int64_t i = 0; i < n; ++i) body(i);
  }
}

}  // namespace

void adam_update(Tensor& param, const Tensor& grad, Tensor& m, Tensor& v, const AdamHyper& h) {
  JEBM_DISPATCH_FLOAT(param.dtype(), "adam_update", [&] { adam_typed<scalar_t>(param, grad, m, v, h); });
}

}  // namespace jebm::cpu
