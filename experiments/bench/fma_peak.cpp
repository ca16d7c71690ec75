// measure_fma_peak (see fma_peak.hpp). Each loop keeps kChains accumulators live, more than the FMA latency
// (4 cycles) times the FMA ports (2) of current x86 cores, so the units never wait on a result.
#include "experiments/bench/fma_peak.hpp"

#include <immintrin.h>
#include <omp.h>

#include <atomic>
#include <cstdint>
#include <cstring>

#include "experiments/bench/timing.hpp"
#include "runtime/cpu_features.hpp"

namespace jebm {
namespace {

constexpr int kChains = 12;               // 12 vector registers + 2 constants fit AVX2's 16
constexpr int64_t kIters = int64_t{1} << 22;  // ~4M iterations x 12 chains: tens of ms per thread

// A sink the optimiser cannot see through: the chains' results are added into it.
std::atomic<double> g_sink{0.0};

template <typename E, typename V>
double lanes_sum(const V& v) {
  E e[sizeof(V) / sizeof(E)];
  std::memcpy(e, &v, sizeof(V));
  double s = 0.0;
  for (E x : e) s += static_cast<double>(x);
  return s;
}

// One loop per ISA and dtype: V is the vector type, E its element, SET1 broadcasts, STEP(acc, a, b) is acc * a + b
// in one FMA (or a multiply and an add where the ISA has no FMA).
#define JEBM_FMA_CHAINS(NAME, TARGET, V, E, SET1, STEP, ADD)                     \
  TARGET void NAME() {                                                           \
    V acc[kChains];                                                              \
    for (int k = 0; k < kChains; ++k) acc[k] = SET1(static_cast<E>(1e-3 * k));  \
    const V a = SET1(static_cast<E>(0.999999)), b = SET1(static_cast<E>(1e-7));  \
    for (int64_t it = 0; it < kIters; ++it)                                      \
      for (int k = 0; k < kChains; ++k) acc[k] = STEP(acc[k], a, b);             \
    for (int k = 1; k < kChains; ++k) acc[0] = ADD(acc[0], acc[k]);              \
    g_sink.store(g_sink.load() + lanes_sum<E>(acc[0]));                          \
  }
#define JEBM_AVX512 __attribute__((target("avx512f")))
#define JEBM_AVX2 __attribute__((target("avx2,fma")))
#define JEBM_SSE2_PS(x, a, b) _mm_add_ps(_mm_mul_ps(x, a), b)
#define JEBM_SSE2_PD(x, a, b) _mm_add_pd(_mm_mul_pd(x, a), b)
JEBM_FMA_CHAINS(chains_avx512_f32, JEBM_AVX512, __m512, float, _mm512_set1_ps, _mm512_fmadd_ps, _mm512_add_ps)
JEBM_FMA_CHAINS(chains_avx512_f64, JEBM_AVX512, __m512d, double, _mm512_set1_pd, _mm512_fmadd_pd, _mm512_add_pd)
JEBM_FMA_CHAINS(chains_avx2_f32, JEBM_AVX2, __m256, float, _mm256_set1_ps, _mm256_fmadd_ps, _mm256_add_ps)
JEBM_FMA_CHAINS(chains_avx2_f64, JEBM_AVX2, __m256d, double, _mm256_set1_pd, _mm256_fmadd_pd, _mm256_add_pd)
JEBM_FMA_CHAINS(chains_sse2_f32, , __m128, float, _mm_set1_ps, JEBM_SSE2_PS, _mm_add_ps)
JEBM_FMA_CHAINS(chains_sse2_f64, , __m128d, double, _mm_set1_pd, JEBM_SSE2_PD, _mm_add_pd)
#undef JEBM_FMA_CHAINS
#undef JEBM_AVX512
#undef JEBM_AVX2
#undef JEBM_SSE2_PS
#undef JEBM_SSE2_PD

}  // namespace

FmaPeak measure_fma_peak(DType dt, int repeat) {
  FmaPeak p;
  const bool f64 = dt == DType::Float64;
  void (*chains)() = nullptr;
  int vector_bytes = 0;
  if (cpu_features().avx512f) {
    chains = f64 ? chains_avx512_f64 : chains_avx512_f32;
    vector_bytes = 64;
    p.isa = "AVX-512";
  } else if (cpu_features().avx2_fma) {
    chains = f64 ? chains_avx2_f64 : chains_avx2_f32;
    vector_bytes = 32;
    p.isa = "AVX2+FMA";
  } else {
    chains = f64 ? chains_sse2_f64 : chains_sse2_f32;
    vector_bytes = 16;
    p.isa = "SSE2";
  }
  p.threads = omp_get_max_threads();
  const double lanes = vector_bytes / (f64 ? 8.0 : 4.0);
  const double ms = median_ms(
      [&] {
#pragma omp parallel num_threads(p.threads)
        chains();
      },
      repeat);
  p.gflops = 2.0 * lanes * kChains * static_cast<double>(kIters) * p.threads / (ms * 1e6);
  return p;
}

}  // namespace jebm
