// CPU kernels of the fused ULA + Jarzynski move, its noise and the raw Philox words (samplers/kernels.inc): the
// reference for samplers/cuda/ula_jarzynski.cu. Walker loops over OpenMP chunks, each chunk's per-walker math
// (ula_jarzynski_walker) compiled in AVX2 and baseline clones. Tested by tests/test_samplers.cpp (fused ==
// reference, both weight kernels, thread-count invariance) and tests/test_gmm.cpp.
#include <algorithm>
#include <type_traits>
#include <utility>
#include <vector>

#include "samplers/backend.hpp"

namespace jebm::cpu {
namespace {

struct StepArgs {
  int64_t dims;
  const int64_t* idx;  // null: batch row j is walker j
  const double* u;
  double *log_w, *partial;
  int64_t* pending;
  UlaMove m;
  uint64_t seed;
  bool swap;  // every walker moves: X_next goes into the x_prev buffer and the caller swaps the buffers
};

// Walkers [b0, b1) of the batch, serially. Compiled twice (AVX2 and baseline, picked at load time): the noise
// loops vectorise 4-wide with AVX2 (on a CPU with AVX-512F the noise comes from runtime/cpu/philox_normals.cpp
// instead). No FMA is enabled, so both clones give bit-identical results.
template <typename T>
inline void walker_range(const StepArgs& a, T* x_prev, T* x, const T* g, int64_t b0, int64_t b1) {
  const int64_t d = a.dims, nz = 2 * ((d + 1) / 2);
  const UlaMove& m = a.m;
  // All walkers: the range's noise in one draw (consecutive walkers, consecutive streams) where that is faster.
  std::vector<double> noise;
  const bool drawn = m.move && !a.idx &&
                     ula_walkers_noise(a.seed, m.first_walker + static_cast<uint64_t>(b0), b1 - b0, d, m.offset, noise);
  for (int64_t j = b0; j < b1; ++j) {
    const int64_t i = a.idx ? a.idx[j] : j;
    ula_jarzynski_walker<T>(d, x_prev + i * d, x + i * d, g + j * d, a.u[j], a.log_w + i, a.partial + i,
                            a.pending + i, m.complete, m.move, m.weighted, m.h, m.sigma, m.clip, a.seed,
                            m.first_walker + static_cast<uint64_t>(i), m.offset, a.swap ? x_prev + i * d : nullptr, m.partial_coef,
                            m.back_den, m.energy_coef, drawn ? noise.data() + (j - b0) * nz : nullptr);
  }
}

__attribute__((target_clones("avx2", "default"))) void walker_range_f64(const StepArgs& a, double* x_prev,
                                                                          double* x, const double* g, int64_t b0,
                                                                          int64_t b1) {
  walker_range<double>(a, x_prev, x, g, b0, b1);
}
__attribute__((target_clones("avx2", "default"))) void walker_range_f32(const StepArgs& a, float* x_prev, float* x,
                                                                          const float* g, int64_t b0, int64_t b1) {
  walker_range<float>(a, x_prev, x, g, b0, b1);
}

template <typename T>
void step_impl(WalkerPopulation& pop, const double* u, const T* g, const UlaMove& m, const std::vector<int64_t>& idx) {
  const int64_t n = pop.size(), dims = pop.walker_numel();
  const int64_t b = idx.empty() ? n : static_cast<int64_t>(idx.size());
  StepArgs a{dims, idx.empty() ? nullptr : idx.data(), u, pop.log_w.data<double>(), pop.partial.data<double>(),
             pop.pending.data<int64_t>(), m, pop.seed, m.move && idx.empty()};
  T* x = pop.x.data<T>();
  T* xp = pop.x_prev.data<T>();
  // Each walker is independent and its noise is keyed by its index: any schedule gives the same result.
  constexpr int64_t kChunk = 64;
  const int64_t chunks = (b + kChunk - 1) / kChunk;
#pragma omp parallel for schedule(static) if (b * dims > 4096)
  for (int64_t c = 0; c < chunks; ++c) {
    const int64_t b0 = c * kChunk, b1 = std::min(b, b0 + kChunk);
    if constexpr (std::is_same_v<T, double>)
      walker_range_f64(a, xp, x, g, b0, b1);
    else
      walker_range_f32(a, xp, x, g, b0, b1);
  }
  if (a.swap) std::swap(pop.x, pop.x_prev);  // x = X_next, x_prev = the positions it moved from
}

}  // namespace

void ula_jarzynski_move(WalkerPopulation& pop, const Tensor& u, const Tensor& g, const UlaMove& m,
                        const std::vector<int64_t>& idx) {
  if (pop.x.dtype() == DType::Float64)
    step_impl<double>(pop, u.data<double>(), g.data<double>(), m, idx);
  else
    step_impl<float>(pop, u.data<double>(), g.data<float>(), m, idx);
}

void ula_noise(Tensor& xi, uint64_t seed, uint64_t offset) {
  const int64_t n = xi.size(0), dims = xi.size(1);
  double* p = xi.data<double>();
  const uint64_t pairs = static_cast<uint64_t>((dims + 1) / 2);
  for (int64_t i = 0; i < n; ++i)
    for (int64_t d = 0; d < dims; ++d) {
      double z0, z1;
      philox_normal2_poly(seed, static_cast<uint64_t>(i) * pairs + static_cast<uint64_t>(d / 2), offset, &z0, &z1);
      p[i * dims + d] = d % 2 == 0 ? z0 : z1;
    }
}

void philox_words(Tensor& words, uint64_t seed, uint64_t first, uint64_t offset) {
  int64_t* w = words.data<int64_t>();
  for (int64_t i = 0; i < words.size(0); ++i) {
    const Philox4 b = philox_block(seed, first + static_cast<uint64_t>(i), offset);
    for (int k = 0; k < 4; ++k) w[4 * i + k] = b.v[k];
  }
}

}  // namespace jebm::cpu
