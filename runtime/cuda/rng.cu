// CUDA random fills with exactly the CPU's numbers (runtime/cpu/rng.cpp): element i takes member i % 2 of the
// Philox-4x32-10 pair (seed, stream = i / 2, offset), transformed in double, then cast. The words come from
// cuRAND's device generator (curand_init(seed, subsequence = offset, offset = 4 * stream) + curand4, inside
// runtime/philox.hpp's philox_block), one state per pair, so the result is independent of grid size. Uniforms are
// bit-identical to the CPU (integer ops and exactly-rounded double arithmetic only). Normals go through
// log/sqrt/sin/cos, which CUDA evaluates within 1-2 ulp of glibc in double: float64 normals agree to ~1e-15
// relative (tests use atol 1e-14, rtol 1e-13), float32 normals are the same float except on a rare rounding
// boundary (1 float ulp). Tested by tests/test_cuda_ops.cpp and
// tests/test_cuda_samplers.cpp (curand_fills_match_cpu).
#include <cstdint>

#include "runtime/backend.hpp"
#include "runtime/cuda/context.hpp"
#include "runtime/philox.hpp"

namespace jebm::cuda {
namespace {

// One thread per Philox pair p: elements 2p and 2p + 1 (when it exists) = v * scale + shift.
template <typename T, bool kNormal>
__global__ void rand_pairs_kernel(T* __restrict__ y, int64_t n, double scale, double shift, uint64_t seed,
                                  uint64_t offset) {
  const int64_t pairs = (n + 1) / 2;
  for (int64_t p = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; p < pairs; p += int64_t(blockDim.x) * gridDim.x) {
    double v0, v1;
    if (kNormal) philox_normal2(seed, static_cast<uint64_t>(p), offset, &v0, &v1);
    else philox_uniform2(seed, static_cast<uint64_t>(p), offset, &v0, &v1);
    // __fma_rn would fuse differently from the CPU's separate multiply and add: keep them separate.
    y[2 * p] = static_cast<T>(__dadd_rn(__dmul_rn(v0, scale), shift));
    if (2 * p + 1 < n) y[2 * p + 1] = static_cast<T>(__dadd_rn(__dmul_rn(v1, scale), shift));
  }
}

template <bool kNormal>
void rand_fill(Tensor& y, double scale, double shift, uint64_t seed, uint64_t offset, const char* what) {
  const int64_t n = y.numel();
  if (n == 0) return;
  cudaStream_t s = stream(y);
  JEBM_DISPATCH_FLOAT(y.dtype(), what, [&] {
    rand_pairs_kernel<scalar_t, kNormal>
        <<<grid_for((n + 1) / 2), kBlock, 0, s>>>(y.device_data<scalar_t>(), n, scale, shift, seed, offset);
  });
  CUDA_CHECK_LAUNCH(what);
}

}  // namespace

void rand_uniform(Tensor& y, double lo, double hi, uint64_t seed, uint64_t offset) {
  rand_fill<false>(y, hi - lo, lo, seed, offset, "rand_uniform (cuda)");
}

void rand_normal(Tensor& y, double mean, double stddev, uint64_t seed, uint64_t offset) {
  rand_fill<true>(y, stddev, mean, seed, offset, "rand_normal (cuda)");
}

}  // namespace jebm::cuda
