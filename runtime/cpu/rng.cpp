// CPU random fills: element i takes member i % 2 of the Philox pair (seed, stream = i / 2, offset) (runtime/philox.hpp),
// so every value is a pure function of (seed, offset, i): identical for any thread count and on the CUDA backend
// (runtime/cuda/rng.cu). Tested by tests/test_rng.cpp.
#include <cstdint>

#include "runtime/backend.hpp"
#include "runtime/cpu/parallel.hpp"
#include "runtime/philox.hpp"

namespace jebm::cpu {
namespace {

// Calls pair(p, &v0, &v1) for each Philox pair p and stores v0 * scale + shift into element 2p (and v1 into 2p + 1
// when it exists).
template <typename T, typename Pair>
void fill_pairs(Tensor& y, double scale, double shift, Pair pair) {
  T* yp = y.data<T>();
  const int64_t n = y.numel(), pairs = (n + 1) / 2;
  auto body = [&](int64_t p) {
    double v0, v1;
    pair(static_cast<uint64_t>(p), &v0, &v1);
    yp[2 * p] = static_cast<T>(v0 * scale + shift);
    if (2 * p + 1 < n) yp[2 * p + 1] = static_cast<T>(v1 * scale + shift);
  };
  if (n >= kParallelMin / 4) {  // Philox is ~10x the cost of a plain store: parallel sooner
#pragma omp parallel for schedule(static)
    for (int64_t p = 0; p < pairs; ++p) body(p);
  } else {
    for (int64_t p = 0; p < pairs; ++p) body(p);
  }
}

}  // namespace

void rand_uniform(Tensor& y, double lo, double hi, uint64_t seed, uint64_t offset) {
  JEBM_DISPATCH_FLOAT(y.dtype(), "rand_uniform", [&] {
    fill_pairs<scalar_t>(y, hi - lo, lo, [&](uint64_t p, double* u0, double* u1) {
      philox_uniform2(seed, p, offset, u0, u1);
    });
  });
}

void rand_normal(Tensor& y, double mean, double stddev, uint64_t seed, uint64_t offset) {
  JEBM_DISPATCH_FLOAT(y.dtype(), "rand_normal", [&] {
    fill_pairs<scalar_t>(y, stddev, mean, [&](uint64_t p, double* z0, double* z1) {
      philox_normal2(seed, p, offset, z0, z1);
    });
  });
}

}  // namespace jebm::cpu
