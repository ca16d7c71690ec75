// CUDA twins of the log-weight statistics (samplers/walkers.cpp: weight_stats, normalized_weights) and of
// resampling (samplers/resampling.cpp: cumulative sums in double, systematic and multinomial searches, applying
// a draw to a population), so a training iteration never copies walker data to the host. Tested by
// tests/test_cuda_samplers.cpp (statistics to ~1e-14, ancestors identical to the CPU's for the same uniform).
//
// CPU reference: m = max A; s1 = sum e^{A-m}, s2 = sum e^{2(A-m)}; log_sum = m + log s1, ESS = s1^2/s2,
// CV^2 = N s2/s1^2 - 1. cumulative: c_i = (sum_{k<=i} w_k) / total, c_{N-1} = 1. Systematic: ancestor of output i
// is the first j with c_j > (i + u)/N (else N-1); multinomial: the first j with c_j > u_i, u_i = Philox
// (seed, stream i, offset) word pair 0. The reductions and the scan run in one block of 1024 threads with a fixed
// partition, so results are deterministic; they differ from the CPU's sequential sums only in rounding order.
#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

#include "runtime/cuda/context.hpp"
#include "runtime/ops.hpp"
#include "runtime/philox.hpp"
#include "samplers/sampler_cuda.hpp"

namespace jebm {
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
  const double ls = stats[3];
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n;
       i += static_cast<int64_t>(blockDim.x) * gridDim.x)
    w[i] = ::exp(a[i] - ls);
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

void check_weights(const Tensor& w, const char* what) {
  JEBM_CHECK(w.defined() && w.device().is_cuda() && w.dtype() == DType::Float64 && w.dim() == 1 && w.numel() > 0,
             what << ": needs a non-empty [N] float64 CUDA tensor, got "
                  << (w.defined() ? dtype_name(w.dtype()) + std::string(" ") + shape_str(w.shape()) + " on " +
                                        w.device().str()
                                  : std::string("undefined")));
}

void zero_(Tensor& t) {
  CUDA_CHECK(cudaMemsetAsync(t.raw_data(), 0, t.nbytes(), cuda::stream(t)));  // 0.0 and int64 0 are all-zero bits
}

}  // namespace

WeightStats weight_stats_cuda(const Tensor& log_w, Tensor* scratch) {
  check_weights(log_w, "weight_stats_cuda");
  const int64_t n = log_w.numel();
  Tensor out = Tensor::empty({4}, DType::Float64, log_w.device());
  weight_stats_kernel<<<1, kScanThreads, 0, cuda::stream(log_w)>>>(log_w.data<double>(), n, out.data<double>());
  CUDA_CHECK_LAUNCH("weight_stats_kernel");
  if (scratch) *scratch = out;
  const std::vector<double> h = out.to_vector();  // the one synchronisation
  JEBM_CHECK(std::isfinite(h[0]), "weight_stats: the largest log-weight is " << h[0]);
  WeightStats s;
  s.log_sum = h[3];
  s.log_mean = s.log_sum - std::log(static_cast<double>(n));
  s.ess = h[1] * h[1] / h[2];
  s.cv2 = static_cast<double>(n) * h[2] / (h[1] * h[1]) - 1.0;
  return s;
}

Tensor normalized_weights_cuda(const Tensor& log_w) {
  check_weights(log_w, "normalized_weights_cuda");
  const int64_t n = log_w.numel();
  Tensor stats = Tensor::empty({4}, DType::Float64, log_w.device());
  Tensor w = Tensor::empty({n}, DType::Float64, log_w.device());
  cudaStream_t s = cuda::stream(log_w);
  weight_stats_kernel<<<1, kScanThreads, 0, s>>>(log_w.data<double>(), n, stats.data<double>());
  CUDA_CHECK_LAUNCH("weight_stats_kernel");
  normalized_weights_kernel<<<cuda::grid_for(n), cuda::kBlock, 0, s>>>(log_w.data<double>(), n,
                                                                       stats.data<double>(), w.data<double>());
  CUDA_CHECK_LAUNCH("normalized_weights_kernel");
  return w;
}

Tensor cumulative_weights_cuda(const Tensor& w) {
  check_weights(w, "cumulative_weights_cuda");
  Tensor c = Tensor::empty({w.numel()}, DType::Float64, w.device());
  cumulative_kernel<<<1, kScanThreads, 0, cuda::stream(w)>>>(w.data<double>(), w.numel(), c.data<double>());
  CUDA_CHECK_LAUNCH("cumulative_kernel");
  return c;
}

Tensor systematic_ancestors_cuda(const Tensor& w, double u) {
  JEBM_CHECK(u >= 0.0 && u < 1.0, "systematic_ancestors: u = " << u << " not in [0, 1)");
  const Tensor c = cumulative_weights_cuda(w);
  const int64_t n = w.numel();
  Tensor anc = Tensor::empty({n}, DType::Int64, w.device());
  systematic_kernel<<<cuda::grid_for(n), cuda::kBlock, 0, cuda::stream(w)>>>(c.data<double>(), n, u,
                                                                            anc.data<int64_t>());
  CUDA_CHECK_LAUNCH("systematic_kernel");
  return anc;
}

Tensor multinomial_ancestors_cuda(const Tensor& w, uint64_t seed, uint64_t offset) {
  const Tensor c = cumulative_weights_cuda(w);
  const int64_t n = w.numel();
  Tensor anc = Tensor::empty({n}, DType::Int64, w.device());
  multinomial_kernel<<<cuda::grid_for(n), cuda::kBlock, 0, cuda::stream(w)>>>(c.data<double>(), n, seed, offset,
                                                                             anc.data<int64_t>());
  CUDA_CHECK_LAUNCH("multinomial_kernel");
  return anc;
}

Tensor draw_population_ancestors_cuda(const WalkerPopulation& pop, ResampleScheme scheme) {
  const Tensor w = normalized_weights_cuda(pop.log_w);
  const uint64_t seed = pop.seed ^ kResampleKey, offset = static_cast<uint64_t>(pop.resamplings);
  if (scheme == ResampleScheme::Multinomial) return multinomial_ancestors_cuda(w, seed, offset);
  double u0, u1;
  philox_uniform2(seed, ~uint64_t{0}, offset, &u0, &u1);  // draw_ancestors' stream for the systematic offset
  return systematic_ancestors_cuda(w, u0);
}

void resample_population_cuda(WalkerPopulation& pop, const Tensor& ancestors) {
  JEBM_CHECK(ancestors.numel() == pop.size() && ancestors.device() == pop.x.device(),
             "resample_population (cuda): " << ancestors.numel() << " ancestors on " << ancestors.device().str()
                                            << " for " << pop.size() << " walkers on " << pop.x.device().str());
  pop.log_z_offset += weight_stats_cuda(pop.log_w).log_mean;
  zero_(pop.log_w);
  pop.x = gather_rows(pop.x, ancestors);
  pop.x_prev = pop.x.clone();  // nothing is pending: x_prev only needs to be a valid buffer
  ++pop.resamplings;
}

void resample_and_redo_move_cuda(WalkerPopulation& pop, const Tensor& ancestors, const Tensor& u, const Tensor& g,
                                 const UlaConfig& cfg) {
  JEBM_CHECK(ancestors.numel() == pop.size() && ancestors.device() == pop.x.device(),
             "resample_and_redo_move (cuda): " << ancestors.numel() << " ancestors for " << pop.size()
                                               << " walkers");
  JEBM_CHECK(pop.moves > 0, "resample_and_redo_move (cuda): no move to redo");
  pop.log_z_offset += weight_stats_cuda(pop.log_w).log_mean;
  zero_(pop.log_w);
  // The pre-move positions of the ancestors; the redone move then sets x_prev = x.
  pop.x = gather_rows(pop.x_prev, ancestors);
  zero_(pop.pending);
  const Tensor u_anc = gather_rows(u, ancestors), g_anc = gather_rows(g, ancestors);
  ula_jarzynski_step_cuda(pop, u_anc, g_anc, cfg, /*complete=*/false, /*move=*/true, {}, pop.moves - 1);
  ++pop.resamplings;
}

}  // namespace jebm
