// CUDA twin of the fused ULA + Jarzynski move (samplers/ula_jarzynski.cpp is the reference): one pass over the
// moving walkers' N x D coordinates, noise drawn in-kernel with the CPU's Philox counter scheme and the same
// JEBM_HD helpers (ula_normal2, ula_jarzynski.hpp), per-walker sums by warp shuffles. Tested by
// tests/test_cuda_samplers.cpp (against ula_jarzynski_step on the CPU: f32/f64, odd D, subsets, clipping).
//
// CPU reference, per walker i (ula_jarzynski_walker): with pairs P = ceil(D/2) and (z_2p, z_2p+1) =
// ula_normal2(seed, i*P + p, offset), G clipped to [-c, c] when c > 0,
//   back = sum_d (x_prev_d - x_d + h G_d)^2          (if complete && weighted && pending_i)
//   x_prev = x;  x = x - h G + sigma z;  xi2 = sum_d z_d^2   (if move)
//   A_i += P_i - U_i - back / (2 sigma^2);  P_i = U_i + xi2/2, pending_i = 1 (move && weighted), else pending_i = 0
// GPU mapping: one warp per walker, lane l handles pairs p = l, l+32, ... (coordinates 2p, 2p+1), so each
// Philox block is drawn exactly once, by one lane; back and xi2 are warp-reduced and lane 0 writes the walker's
// scalars. Results differ from the CPU only in summation order and FMA contraction (~1e-15 relative in float64).
#include <cstdint>
#include <initializer_list>
#include <vector>

#include "runtime/cuda/context.hpp"
#include "samplers/sampler_cuda.hpp"

namespace jebm {
namespace {

struct StepArgsDev {
  int64_t b, dims, pairs;
  const int64_t* idx;  // null: batch row j is walker j
  const double* u;
  double* log_w;
  double* partial;
  int64_t* pending;
  bool complete, move, weighted;
  double h, sigma, clip;
  uint64_t seed, offset;
};

__device__ __forceinline__ double warp_sum(double v) {
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}

// x_prev, x: [N, D] (walker rows, updated in place); g: [B, D] (batch rows); one warp per batch row.
template <typename T>
__global__ void ula_jarzynski_kernel(StepArgsDev a, T* __restrict__ x_prev, T* __restrict__ x,
                                     const T* __restrict__ g) {
  const int lane = threadIdx.x & 31;
  const int64_t warps = (static_cast<int64_t>(gridDim.x) * blockDim.x) >> 5;
  for (int64_t j = (static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x) >> 5; j < a.b; j += warps) {
    const int64_t i = a.idx ? a.idx[j] : j;
    T* xp = x_prev + i * a.dims;
    T* xr = x + i * a.dims;
    const T* gr = g + j * a.dims;
    // Every lane reads pending before lane 0 rewrites it (the shuffles below order the warp).
    const bool do_complete = a.complete && a.weighted && a.pending[i] != 0;
    double back = 0.0, xi2 = 0.0;
    for (int64_t p = lane; p < a.pairs; p += 32) {
      double z[2] = {0.0, 0.0};
      if (a.move) ula_normal2(a.seed, static_cast<uint64_t>(i) * static_cast<uint64_t>(a.pairs) +
                                          static_cast<uint64_t>(p), a.offset, &z[0], &z[1]);
      for (int k = 0; k < 2; ++k) {
        const int64_t d = 2 * p + k;
        if (d >= a.dims) break;
        double gd = static_cast<double>(gr[d]);
        if (a.clip > 0.0) gd = gd < -a.clip ? -a.clip : (gd > a.clip ? a.clip : gd);
        const double xd = static_cast<double>(xr[d]);
        if (do_complete) {
          const double r = static_cast<double>(xp[d]) - xd + a.h * gd;
          back += r * r;
        }
        if (a.move) {
          xi2 += z[k] * z[k];
          xp[d] = xr[d];
          xr[d] = static_cast<T>(xd - a.h * gd + a.sigma * z[k]);
        }
      }
    }
    back = warp_sum(back);
    xi2 = warp_sum(xi2);
    if (lane == 0) {
      const double uj = a.u[j];
      if (do_complete) a.log_w[i] += a.partial[i] - uj - back / (2.0 * a.sigma * a.sigma);
      if (a.move && a.weighted) {
        a.partial[i] = uj + 0.5 * xi2;
        a.pending[i] = 1;
      } else {
        a.pending[i] = 0;
      }
    }
  }
}

// xi: [n, dims] float64, the same streams as the kernel above (one thread per pair).
__global__ void ula_noise_kernel(double* __restrict__ xi, int64_t n, int64_t dims, int64_t pairs, uint64_t seed,
                                 uint64_t offset) {
  const int64_t total = n * pairs;
  for (int64_t t = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; t < total;
       t += static_cast<int64_t>(blockDim.x) * gridDim.x) {
    const int64_t i = t / pairs, p = t % pairs;
    double z0, z1;
    ula_normal2(seed, static_cast<uint64_t>(t), offset, &z0, &z1);  // stream i*pairs + p == t
    xi[i * dims + 2 * p] = z0;
    if (2 * p + 1 < dims) xi[i * dims + 2 * p + 1] = z1;
  }
}

}  // namespace

void ula_jarzynski_step_cuda(WalkerPopulation& pop, const Tensor& u, const Tensor& g, const UlaConfig& cfg,
                             bool complete, bool move, const std::vector<int64_t>& idx, uint64_t offset) {
  const int64_t n = pop.size(), dims = pop.walker_numel();
  const int64_t b = idx.empty() ? n : static_cast<int64_t>(idx.size());
  const Device dev = pop.x.device();
  const std::initializer_list<const Tensor*> state = {&pop.x_prev, &pop.log_w, &pop.partial, &pop.pending, &u, &g};
  for (const Tensor* t : state)
    JEBM_CHECK(t->device() == dev, "ula_jarzynski_step (cuda): a tensor is on " << t->device().str()
                                                                                 << ", the walkers on " << dev.str());
  JEBM_CHECK(pop.pending.dtype() == DType::Int64 && pop.log_w.dtype() == DType::Float64 &&
                 pop.partial.dtype() == DType::Float64,
             "ula_jarzynski_step (cuda): walker state has wrong dtypes");
  // The indices come from the host: check them here (cheap), then upload. Duplicates would race.
  Tensor idx_dev;
  if (!idx.empty()) {
    for (int64_t i : idx)
      JEBM_CHECK(i >= 0 && i < n, "ula_jarzynski_step: walker index " << i << " out of [0, " << n << ")");
    idx_dev = Tensor::from_vector(idx, {b}, dev);
  }
  if (b == 0) return;
  StepArgsDev a{b,
                dims,
                (dims + 1) / 2,
                idx.empty() ? nullptr : idx_dev.data<int64_t>(),
                u.data<double>(),
                pop.log_w.data<double>(),
                pop.partial.data<double>(),
                pop.pending.data<int64_t>(),
                complete,
                move,
                cfg.weighted,
                cfg.h,
                cfg.noise_scale(),
                cfg.drift_clip,
                pop.seed,
                offset};
  cuda::Context& ctx = cuda::context(pop.x);
  const unsigned grid = cuda::grid_for(b * 32);  // one warp per walker
  if (pop.x.dtype() == DType::Float64)
    ula_jarzynski_kernel<double><<<grid, cuda::kBlock, 0, ctx.stream>>>(a, pop.x_prev.data<double>(),
                                                                        pop.x.data<double>(), g.data<double>());
  else
    ula_jarzynski_kernel<float><<<grid, cuda::kBlock, 0, ctx.stream>>>(a, pop.x_prev.data<float>(),
                                                                       pop.x.data<float>(), g.data<float>());
  CUDA_CHECK_LAUNCH("ula_jarzynski_kernel");
}

Tensor ula_noise_cuda(int64_t n, int64_t dims, uint64_t seed, uint64_t offset, Device device) {
  JEBM_CHECK(device.is_cuda() && n >= 0 && dims >= 1, "ula_noise_cuda: n " << n << ", dims " << dims << " on "
                                                                           << device.str());
  Tensor xi = Tensor::empty({n, dims}, DType::Float64, device);
  const int64_t pairs = (dims + 1) / 2;
  if (n == 0) return xi;
  cuda::Context& ctx = cuda::context(xi);
  ula_noise_kernel<<<cuda::grid_for(n * pairs), cuda::kBlock, 0, ctx.stream>>>(xi.data<double>(), n, dims, pairs,
                                                                               seed, offset);
  CUDA_CHECK_LAUNCH("ula_noise_kernel");
  return xi;
}

}  // namespace jebm
