// What the direct conv2d's files share (runtime/cpu/conv_direct*.cpp): the 64-byte vector type their kernels compute
// with, its fused multiply-add per instruction set, per-thread scratch, the per-sample loop, the layer's geometry and
// the weights by tap. Internal, not installed; covered by tests/test_conv_direct.cpp.
#pragma once
#include <immintrin.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <type_traits>
#include <vector>

#include "runtime/cpu/parallel.hpp"
#include "runtime/ops.hpp"

namespace jebm::cpu::conv_direct {

// The kernels are inlined into each version's entry point, so they are compiled for its instruction set (a call out
// of it would run the baseline code).
#define JEBM_ALWAYS_INLINE inline __attribute__((always_inline))

// One 64-byte vector of T as a GCC vector type: its * and + are lane-wise in every version (AVX-512: one register,
// AVX2: two, baseline: four), where loops over lanes with many accumulators were left scalar by GCC. No function
// returns one: its ABI differs between the versions.
template <typename T>
struct Vec {
  typedef T type __attribute__((vector_size(64)));
};
template <typename T>
using vec_t = typename Vec<T>::type;
template <typename T>
constexpr int64_t kLanes = 64 / sizeof(T);

inline int64_t round_up(int64_t v, int64_t m) { return (v + m - 1) / m * m; }

// acc += x * w lane by lane with one rounding, per instruction set: one AVX-512 vfmadd, two AVX2-class ones, or
// fma() per lane (GCC's vectoriser did not reliably turn a lane loop of fma() into vfmadd once inlined into the
// whole kernel). The kernels' entry points are flattened, so these are inlined into code of their own target.
struct IsaAvx512 {};
struct IsaFma {};
struct IsaBase {};

__attribute__((target("avx512f"))) inline void fma_into(IsaAvx512, vec_t<float>& acc, const vec_t<float>& x,
                                                         const vec_t<float>& w) {
  acc = reinterpret_cast<vec_t<float>>(_mm512_fmadd_ps(reinterpret_cast<__m512>(x), reinterpret_cast<__m512>(w),
                                                       reinterpret_cast<__m512>(acc)));
}
__attribute__((target("avx512f"))) inline void fma_into(IsaAvx512, vec_t<double>& acc, const vec_t<double>& x,
                                                         const vec_t<double>& w) {
  acc = reinterpret_cast<vec_t<double>>(_mm512_fmadd_pd(reinterpret_cast<__m512d>(x), reinterpret_cast<__m512d>(w),
                                                        reinterpret_cast<__m512d>(acc)));
}
template <typename V>
inline void fma_into(IsaBase, V& acc, const V& x, const V& w) {
  for (int l = 0; l < static_cast<int>(sizeof(V) / sizeof(acc[0])); ++l) acc[l] = std::fma(x[l], w[l], acc[l]);
}

// The vector a kernel holds in registers, per instruction set: vec_t<T> in AVX-512 (one register) and the portable
// code; in the FMA version two 32-byte halves, one ymm register each. Code without AVX-512 has no register for a
// 64-byte GCC vector, so GCC kept each one on the stack and moved it through general-purpose registers at every fma:
// on a Zen 3, MNIST conv2's input gradient ran at 6 GFLOP/s (5 % of the FMA peak) and conv1's filter gradient at 10.
// Kernels load, store, add and multiply-add through the functions below, which take either.
template <typename T>
struct Halves {
  typedef T half_t __attribute__((vector_size(32)));
  half_t h[2];
};
template <typename Isa, typename T>
struct Reg {
  using type = vec_t<T>;
};
template <typename T>
struct Reg<IsaFma, T> {
  using type = Halves<T>;
};
template <typename Isa, typename T>
using reg_t = typename Reg<Isa, T>::type;

template <typename T>
__attribute__((target("fma"))) inline void fma_into(IsaFma, Halves<T>& acc, const Halves<T>& x, const Halves<T>& w) {
  using half_t = typename Halves<T>::half_t;
  for (int h = 0; h < 2; ++h) {
    if constexpr (sizeof(T) == 4)
      acc.h[h] = reinterpret_cast<half_t>(_mm256_fmadd_ps(reinterpret_cast<__m256>(x.h[h]),
                                                          reinterpret_cast<__m256>(w.h[h]),
                                                          reinterpret_cast<__m256>(acc.h[h])));
    else
      acc.h[h] = reinterpret_cast<half_t>(_mm256_fmadd_pd(reinterpret_cast<__m256d>(x.h[h]),
                                                          reinterpret_cast<__m256d>(w.h[h]),
                                                          reinterpret_cast<__m256d>(acc.h[h])));
  }
}

// v = p[0..64 bytes), and back: one 64-byte copy for vec_t, one per half for Halves (a 64-byte memcpy into Halves
// became four 16-byte stores to the stack, reloaded as two 32-byte halves: a store-forwarding stall per load).
template <typename V, typename T>
JEBM_ALWAYS_INLINE void load(V& v, const T* p) {
  std::memcpy(&v, p, sizeof v);
}
template <typename T>
__attribute__((target("fma"))) inline void load(Halves<T>& v, const T* p) {
  std::memcpy(&v.h[0], p, sizeof v.h[0]);
  std::memcpy(&v.h[1], p + 32 / sizeof(T), sizeof v.h[1]);
}
template <typename V, typename T>
JEBM_ALWAYS_INLINE void store(T* p, const V& v) {
  std::memcpy(p, &v, sizeof v);
}
template <typename T>
__attribute__((target("fma"))) inline void store(T* p, const Halves<T>& v) {
  std::memcpy(p, &v.h[0], sizeof v.h[0]);
  std::memcpy(p + 32 / sizeof(T), &v.h[1], sizeof v.h[1]);
}

// acc += v lane by lane (one rounding per lane, as for vec_t's +).
template <typename Isa, typename V>  // V: vec_t<float> or vec_t<double>
JEBM_ALWAYS_INLINE void add_into(Isa, V& acc, const V& v) {
  acc += v;
}
template <typename T>
__attribute__((target("fma"))) inline void add_into(IsaFma, Halves<T>& acc, const Halves<T>& v) {
  acc.h[0] += v.h[0];
  acc.h[1] += v.h[1];
}

// Lane l of v.
template <typename V>  // vec_t<float> or vec_t<double>
JEBM_ALWAYS_INLINE auto lane(const V& v, int64_t l) {
  return v[l];
}
template <typename T>
JEBM_ALWAYS_INLINE T lane(const Halves<T>& v, int64_t l) {
  constexpr int64_t half = 32 / sizeof(T);
  return v.h[l / half][l % half];
}

// out = v in every lane, by the instruction set's broadcast (GCC built the generic vector lane by lane, with one
// masked broadcast each).
__attribute__((target("avx512f"))) inline void splat(IsaAvx512, vec_t<float>& out, float v) {
  out = reinterpret_cast<vec_t<float>>(_mm512_set1_ps(v));
}
__attribute__((target("avx512f"))) inline void splat(IsaAvx512, vec_t<double>& out, double v) {
  out = reinterpret_cast<vec_t<double>>(_mm512_set1_pd(v));
}
template <typename T>
__attribute__((target("fma"))) inline void splat(IsaFma, Halves<T>& out, T v) {
  using half_t = typename Halves<T>::half_t;
  if constexpr (sizeof(T) == 4) out.h[0] = out.h[1] = reinterpret_cast<half_t>(_mm256_set1_ps(v));
  else out.h[0] = out.h[1] = reinterpret_cast<half_t>(_mm256_set1_pd(v));
}
template <typename T>
inline void splat(IsaBase, vec_t<T>& out, T v) {
  for (int64_t l = 0; l < kLanes<T>; ++l) out[l] = v;
}

// Which of the three the kernels run: the best the CPU has (2 AVX-512, 1 FMA with AVX2, 0 portable), or less when a
// test forces it (conv2d_direct_force_isa). The FMA version uses AVX2's permutes too (the input gradient's grad_y
// copies), which every FMA CPU but AMD's 2012-2015 cores has.
int isa();

// Rounds p up to a 64-byte boundary: a 64-byte load that straddles two cache lines costs two.
template <typename T>
T* align64(T* p) {
  return reinterpret_cast<T*>((reinterpret_cast<uintptr_t>(p) + 63) / 64 * 64);
}

// Per-thread buffers, 64-byte aligned, that persist across calls (a Langevin run repeats the same shapes thousands
// of times). A slot holds data only during one call.
template <typename T>
T* buffer(int slot, int64_t count) {
  thread_local std::vector<T> buffers[3];
  std::vector<T>& b = buffers[slot];
  const int64_t want = count + 64 / static_cast<int64_t>(sizeof(T));
  if (static_cast<int64_t>(b.size()) < want) b.resize(static_cast<size_t>(want));
  return align64(b.data());
}

// Runs f(n) for every sample; each writes only its own output, so any schedule gives the same result.
template <typename F>
void for_samples(int64_t n, int64_t work, F f) {
#pragma omp parallel for schedule(static) if (n > 1 && work >= kParallelMin)
  for (int64_t i = 0; i < n; ++i) f(i);
}

// One layer's geometry: x [N, C, H, W], w [F, C, KH, KW], y [N, F, OH, OW], stride s, padding pad.
struct Geo {
  int64_t c, h, w, f, kh, kw, oh, ow, s, pad;
  int64_t hp() const { return h + 2 * pad; }
  int64_t wp() const { return w + 2 * pad; }
  int64_t ckk() const { return c * kh * kw; }
  int64_t p() const { return oh * ow; }
};

inline Geo geo(const Shape& x, const Shape& w, const Shape& y, const Conv2dParams& p) {
  return {x[1], x[2], x[3], w[0], w[2], w[3], y[2], y[3], p.stride, p.padding};
}


// The weights [F, CKK] as [CKK, FP]: one row of filters per tap, zero filters padding F to whole vectors.
template <typename T>
std::vector<T> weights_by_tap(const T* w, int64_t f, int64_t ckk, int64_t fp) {
  std::vector<T> wt(static_cast<size_t>(ckk * fp), T(0));
  for (int64_t i = 0; i < f; ++i)
    for (int64_t k = 0; k < ckk; ++k) wt[static_cast<size_t>(k * fp + i)] = w[i * ckk + k];
  return wt;
}

// How many filters the input gradient by output phase sums per pass (conv_direct_backward_data.cpp), for x, w, y
// and p as conv2d_direct_backward_data's and elements of elem bytes: the kernel by columns adds its passes alike.
int64_t backward_data_pass_filters(const Shape& x, const Shape& w, const Shape& y, const Conv2dParams& p,
                                   size_t elem);

// ENTRY(name, attributes, instruction set, type) for each version: AVX-512, FMA and portable, float32 and float64,
// each flattened (everything inlined into it, so compiled for its instruction set).
#define JEBM_CONV_DIRECT_ENTRIES(ENTRY, stem)                                                            \
  ENTRY(stem##_avx512_f32, __attribute__((target("avx512f"), flatten)), conv_direct::IsaAvx512, float)  \
  ENTRY(stem##_avx512_f64, __attribute__((target("avx512f"), flatten)), conv_direct::IsaAvx512, double) \
  ENTRY(stem##_fma_f32, __attribute__((target("avx2,fma"), flatten)), conv_direct::IsaFma, float)       \
  ENTRY(stem##_fma_f64, __attribute__((target("avx2,fma"), flatten)), conv_direct::IsaFma, double)      \
  ENTRY(stem##_base_f32, __attribute__((flatten)), conv_direct::IsaBase, float)                         \
  ENTRY(stem##_base_f64, __attribute__((flatten)), conv_direct::IsaBase, double)

// template <typename T> auto fn(): the version of stem that conv_direct::isa() picks, for element type T.
#define JEBM_CONV_DIRECT_PICKER(fn, stem)                                                                  \
  template <typename T>                                                                                    \
  auto fn() {                                                                                              \
    const int use = conv_direct::isa();                                                                    \
    if constexpr (sizeof(T) == 4) return use == 2 ? stem##_avx512_f32 : use == 1 ? stem##_fma_f32 : stem##_base_f32; \
    else return use == 2 ? stem##_avx512_f64 : use == 1 ? stem##_fma_f64 : stem##_base_f64;                  \
  }

}  // namespace jebm::cpu::conv_direct
