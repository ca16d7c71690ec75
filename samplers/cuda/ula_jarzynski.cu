// CUDA kernels of the fused ULA + Jarzynski move, its noise and the raw Philox words (samplers/kernels.inc; the
// CPU twins in samplers/cpu/ula_jarzynski.cpp are the reference): one pass over the moving walkers' N x D
// coordinates, noise drawn in-kernel from cuRAND's Philox4_32_10 with the CPU's counter scheme
// (runtime/philox.hpp's philox_block) and the same polynomial transform, per-walker sums by warp shuffles.
// Tested by tests/test_cuda_samplers.cpp (against the CPU: f32/f64, odd D, subsets, clipping, both weight kernels).
//
// CPU reference, per walker i (ula_jarzynski_walker): with pairs P = ceil(D/2) and (z_2p, z_2p+1) =
// philox_normal2_poly(seed, i*P + p, offset), G clipped to [-c, c] when c > 0,
//   back = sum_d (x_prev_d - x_d + h G_d)^2          (if complete && weighted && pending_i)
//   x_prev = x;  x = x - h G + sigma z;  xi2 = sum_d z_d^2   (if move)
//   A_i += P_i - s U_i - back / back_den;  P_i = s U_i + partial_coef xi2, pending_i = 1 (move && weighted), else 0
//   (s = energy_coef: 1 / T for the tempered kernel, else 1)
// GPU mapping: one warp per walker, lane l handles pairs p = l, l+32, ... (coordinates 2p, 2p+1), so each
// Philox block is drawn exactly once, by one lane; back and xi2 are warp-reduced and lane 0 writes the walker's
// scalars. Results differ from the CPU only in summation order and FMA contraction (~1e-15 relative in float64).
#include <cstdint>
#include <initializer_list>
#include <vector>

#include "runtime/cuda/context.hpp"
#include "samplers/backend.hpp"

namespace jebm::cuda {
namespace {

struct StepArgsDev {
  int64_t b, dims, pairs;
  const int64_t* idx;  // null: batch row j is walker j
  const double* u;
  double* log_w;
  double* partial;
  int64_t* pending;
  UlaMove m;
  uint64_t seed;
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
  const UlaMove& m = a.m;
  for (int64_t j = (static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x) >> 5; j < a.b; j += warps) {
    const int64_t i = a.idx ? a.idx[j] : j;
    T* xp = x_prev + i * a.dims;
    T* xr = x + i * a.dims;
    const T* gr = g + j * a.dims;
    // Every lane reads pending before lane 0 rewrites it (the shuffles below order the warp).
    const bool do_complete = m.complete && m.weighted && a.pending[i] != 0;
    double back = 0.0, xi2 = 0.0;
    for (int64_t p = lane; p < a.pairs; p += 32) {
      double z[2] = {0.0, 0.0};
      if (m.move)
        philox_normal2_poly(a.seed, (m.first_walker + static_cast<uint64_t>(i)) * static_cast<uint64_t>(a.pairs) + static_cast<uint64_t>(p),
                            m.offset, &z[0], &z[1]);
      for (int k = 0; k < 2; ++k) {
        const int64_t d = 2 * p + k;
        if (d >= a.dims) break;
        double gd = static_cast<double>(gr[d]);
        if (m.clip > 0.0) gd = gd < -m.clip ? -m.clip : (gd > m.clip ? m.clip : gd);
        const double xd = static_cast<double>(xr[d]);
        if (do_complete) {
          const double r = static_cast<double>(xp[d]) - xd + m.h * gd;
          back += r * r;
        }
        if (m.move) {
          xi2 += z[k] * z[k];
          xp[d] = xr[d];
          xr[d] = static_cast<T>(xd - m.h * gd + m.sigma * z[k]);
        }
      }
    }
    back = warp_sum(back);
    xi2 = warp_sum(xi2);
    if (lane == 0) {
      // __dmul_rn: the product is never contracted into an FMA, so energy_coef = 1 keeps the other kernels' bits.
      const double uj = __dmul_rn(m.energy_coef, a.u[j]);
      if (do_complete) a.log_w[i] += a.partial[i] - uj - back / m.back_den;
      if (m.move && m.weighted) {
        a.partial[i] = uj + m.partial_coef * xi2;
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
    philox_normal2_poly(seed, static_cast<uint64_t>(t), offset, &z0, &z1);  // stream i*pairs + p == t
    xi[i * dims + 2 * p] = z0;
    if (2 * p + 1 < dims) xi[i * dims + 2 * p + 1] = z1;
  }
}

// words: [n, 4] int64, block (seed, stream first + i, offset) through cuRAND (philox_block on the device).
__global__ void philox_words_kernel(int64_t* __restrict__ words, int64_t n, uint64_t seed, uint64_t first,
                                    uint64_t offset) {
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n;
       i += static_cast<int64_t>(blockDim.x) * gridDim.x) {
    const Philox4 b = philox_block(seed, first + static_cast<uint64_t>(i), offset);
    for (int k = 0; k < 4; ++k) words[4 * i + k] = b.v[k];
  }
}

}  // namespace

void ula_jarzynski_move(WalkerPopulation& pop, const Tensor& u, const Tensor& g, const UlaMove& m,
                        const std::vector<int64_t>& idx) {
  const int64_t n = pop.size(), dims = pop.walker_numel();
  const int64_t b = idx.empty() ? n : static_cast<int64_t>(idx.size());
  if (b == 0) return;
  // The indices were checked on the host by the dispatch point; upload them.
  Tensor idx_dev;
  if (!idx.empty()) idx_dev = Tensor::from_vector(idx, {b}, pop.x.device());
  StepArgsDev a{b,
                dims,
                (dims + 1) / 2,
                idx.empty() ? nullptr : idx_dev.device_data<int64_t>(),
                u.device_data<double>(),
                pop.log_w.device_data<double>(),
                pop.partial.device_data<double>(),
                pop.pending.device_data<int64_t>(),
                m,
                pop.seed};
  Context& ctx = context(pop.x);
  const unsigned grid = grid_for(b * 32);  // one warp per walker
  if (pop.x.dtype() == DType::Float64)
    ula_jarzynski_kernel<double><<<grid, kBlock, 0, ctx.stream>>>(a, pop.x_prev.device_data<double>(),
                                                                  pop.x.device_data<double>(), g.device_data<double>());
  else
    ula_jarzynski_kernel<float><<<grid, kBlock, 0, ctx.stream>>>(a, pop.x_prev.device_data<float>(), pop.x.device_data<float>(),
                                                                 g.device_data<float>());
  CUDA_CHECK_LAUNCH("ula_jarzynski_kernel");
}

void ula_noise(Tensor& xi, uint64_t seed, uint64_t offset) {
  const int64_t n = xi.size(0), dims = xi.size(1), pairs = (dims + 1) / 2;
  if (n == 0) return;
  ula_noise_kernel<<<grid_for(n * pairs), kBlock, 0, stream(xi)>>>(xi.device_data<double>(), n, dims, pairs, seed, offset);
  CUDA_CHECK_LAUNCH("ula_noise_kernel");
}

void philox_words(Tensor& words, uint64_t seed, uint64_t first, uint64_t offset) {
  const int64_t n = words.size(0);
  if (n == 0) return;
  philox_words_kernel<<<grid_for(n), kBlock, 0, stream(words)>>>(words.device_data<int64_t>(), n, seed, first, offset);
  CUDA_CHECK_LAUNCH("philox_words_kernel");
}

}  // namespace jebm::cuda
