// CUDA kernels of the log-weight statistics, normalised and cumulative weights, systematic/multinomial ancestors
// and the parameter-change increment (samplers/kernels.inc; the CPU twins in samplers/cpu/weights.cpp are the
// reference), so a training iteration never copies walker data to the host. Tested by tests/test_cuda_samplers.cpp
// (statistics to ~1e-14, ancestors identical to the CPU's for the same uniform).
//
// CPU reference: m = max A; s1 = sum e^{A-m}, s2 = sum e^{2(A-m)}; log_sum = m + log s1. cumulative:
// c_i = (sum_{k<=i} w_k) / total, c_{N-1} = 1. Systematic: ancestor of output i is the first j with c_j > (i + u)/N
// (else N-1); multinomial: the first j with c_j > u_i, u_i = Philox (seed, stream i, offset) word pair 0. The
// reductions and the scan run in one block of 1024 threads with a fixed partition, so results are deterministic;
// they differ from the CPU's sequential sums only in rounding order.
#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

#include "runtime/cuda/context.hpp"
#include "runtime/ops.hpp"
#include "runtime/philox.hpp"
#include "samplers/backend.hpp"

namespace jebm::cuda {
namespace {

constexpr int kScanThreads = 1024;

// Block-wide reduction (blockDim.x == kScanThreads); every thread gets the result.
template <bool kMax>
__device__ double block_reduce(double v) {
  __shared__ double shared[32];
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  for (int o = 16; o > 0; o >>= 1) {
    const double w = __shfl_xor_sync(0xffffffffu, v, o);
    v = kMax ? fmax(v, w) : v + w;
  }
  __syncthreads();  // shared may still be read from a previous call
  if (lane == 0) shared[warp] = v;
  __syncthreads();
  v = shared[lane];
  for (int o = 16; o > 0; o >>= 1) {
    const double w = __shfl_xor_sync(0xffffffffu, v, o);
    v = kMax ? fmax(v, w) : v + w;
  }
  return v;
}

// out = {max, s1, s2, log_sum}; one block.
__global__ void weight_stats_kernel(const double* __restrict__ a, int64_t n, double* __restrict__ out) {
  double m = -INFINITY;
  for (int64_t i = threadIdx.x; i < n; i += blockDim.x) m = fmax(m, a[i]);
  m = block_reduce<true>(m);
  double s1 = 0.0, s2 = 0.0;
  for (int64_t i = threadIdx.x; i < n; i += blockDim.x) {
    const double e = ::exp(a[i] - m);
    s1 += e;
    s2 += e * e;
  }
  s1 = block_reduce<false>(s1);
  s2 = block_reduce<false>(s2);
  if (threadIdx.x == 0) {
    out[0] = m;
    out[1] = s1;
    out[2] = s2;
    out[3] = m + ::log(s1);
  }
}

__global__ void normalized_weights_kernel(const double* __restrict__ a, int64_t n, const double* __restrict__ stats,
                                          double* __restrict__ w) {
  const double m = stats[0], s1 = stats[1];  // exp(A - m) / s1: see the CPU twin for why not exp(A - log_sum)
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n;
       i += static_cast<int64_t>(blockDim.x) * gridDim.x)
    w[i] = ::exp(a[i] - m) / s1;
}

// c = inclusive prefix sums of w, divided by the total, c[n-1] = 1. One block: thread t sums its contiguous
// chunk sequentially, a Hillis-Steele scan over the 1024 chunk totals gives each chunk's start, then each thread
// writes its chunk's running sums.
__global__ void cumulative_kernel(const double* __restrict__ w, int64_t n, double* __restrict__ c) {
  __shared__ double sums[kScanThreads];
  const int t = threadIdx.x;
  const int64_t chunk = (n + kScanThreads - 1) / kScanThreads;
  const int64_t b = t * chunk, e = b + chunk < n ? b + chunk : n;
  double s = 0.0;
  for (int64_t i = b; i < e; ++i) s += w[i];
  sums[t] = s;
  __syncthreads();
  for (int o = 1; o < kScanThreads; o <<= 1) {
    const double v = t >= o ? sums[t - o] : 0.0;
    __syncthreads();
    sums[t] += v;
    __syncthreads();
  }
  const double total = sums[kScanThreads - 1];
  double run = t > 0 ? sums[t - 1] : 0.0;
  for (int64_t i = b; i < e; ++i) {
    run += w[i];
    c[i] = run / total;
  }
  __syncthreads();
  if (t == 0) c[n - 1] = 1.0;
}

// First j in [0, n) with c[j] > p, else n - 1 (std::upper_bound, capped as on the CPU).
__device__ __forceinline__ int64_t upper_bound_capped(const double* __restrict__ c, int64_t n, double p) {
  int64_t lo = 0, hi = n;
  while (lo < hi) {
    const int64_t mid = lo + (hi - lo) / 2;
    if (c[mid] <= p) lo = mid + 1;
    else hi = mid;
  }
  return lo < n ? lo : n - 1;
}

__global__ void systematic_kernel(const double* __restrict__ c, int64_t n, double u, int64_t* __restrict__ anc) {
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n;
       i += static_cast<int64_t>(blockDim.x) * gridDim.x)
    anc[i] = upper_bound_capped(c, n, (static_cast<double>(i) + u) / static_cast<double>(n));
}

__global__ void multinomial_kernel(const double* __restrict__ c, int64_t n, uint64_t seed, uint64_t offset,
                                   int64_t* __restrict__ anc) {
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n;
       i += static_cast<int64_t>(blockDim.x) * gridDim.x) {
    double u0, u1;
    philox_uniform2(seed, static_cast<uint64_t>(i), offset, &u0, &u1);
    anc[i] = upper_bound_capped(c, n, u0);
  }
}

__global__ void parameter_change_kernel(double* __restrict__ a, const int64_t* __restrict__ idx, int64_t b,
                                        const double* __restrict__ u_old, const double* __restrict__ u_new,
                                        double s) {
  for (int64_t j = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; j < b;
       j += static_cast<int64_t>(blockDim.x) * gridDim.x)
    a[idx ? idx[j] : j] += s * (u_old[j] - u_new[j]);  // s = 1: fma(1, d, a) = a + d, the same bits
}

}  // namespace

void log_weight_sums(const Tensor& log_w, Tensor& sums) {
  weight_stats_kernel<<<1, kScanThreads, 0, stream(log_w)>>>(log_w.device_data<double>(), log_w.numel(), sums.device_data<double>());
  CUDA_CHECK_LAUNCH("weight_stats_kernel");
}

void normalized_weights(const Tensor& log_w, const Tensor& sums, Tensor& w) {
  const int64_t n = log_w.numel();
  normalized_weights_kernel<<<grid_for(n), kBlock, 0, stream(log_w)>>>(log_w.device_data<double>(), n, sums.device_data<double>(),
                                                                       w.device_data<double>());
  CUDA_CHECK_LAUNCH("normalized_weights_kernel");
}

double sum_of_squares(const Tensor& w) { return sum_all(square(w)).item(); }

void cumulative_weights(const Tensor& w, Tensor& c) {
  cumulative_kernel<<<1, kScanThreads, 0, stream(w)>>>(w.device_data<double>(), w.numel(), c.device_data<double>());
  CUDA_CHECK_LAUNCH("cumulative_kernel");
}

void systematic_ancestors(const Tensor& c, double u, Tensor& anc) {
  const int64_t n = c.numel();
  systematic_kernel<<<grid_for(n), kBlock, 0, stream(c)>>>(c.device_data<double>(), n, u, anc.device_data<int64_t>());
  CUDA_CHECK_LAUNCH("systematic_kernel");
}

void multinomial_ancestors(const Tensor& c, uint64_t seed, uint64_t offset, Tensor& anc) {
  const int64_t n = c.numel();
  multinomial_kernel<<<grid_for(n), kBlock, 0, stream(c)>>>(c.device_data<double>(), n, seed, offset, anc.device_data<int64_t>());
  CUDA_CHECK_LAUNCH("multinomial_kernel");
}

void parameter_change(Tensor& log_w, const Tensor& idx, const Tensor& u_old, const Tensor& u_new, double s) {
  const int64_t b = u_old.numel();
  if (b == 0) return;
  parameter_change_kernel<<<grid_for(b), kBlock, 0, stream(log_w)>>>(
      log_w.device_data<double>(), idx.defined() ? idx.device_data<int64_t>() : nullptr, b,
      u_old.device_data<double>(), u_new.device_data<double>(), s);
  CUDA_CHECK_LAUNCH("parameter_change_kernel");
}

}  // namespace jebm::cuda
