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

// The kernel of the layouts "by the plane" (the forward for short output rows, runtime/cpu/conv_direct.cpp; the input
// gradient of layers with many channels, conv_direct_backward_data_plane.cpp; the filter gradient of layers with many
// taps, conv_direct_backward_filter_plane.cpp): NP pixels (or taps), each with its own base a[p], so that a block
// fills its registers whatever the row length, NB vectors of lanes.
// sum[p, 0..NB kLanes) = sum over k < nk of a[p][ka[k]] * b[k * ldb + 0..NB kLanes), one fused multiply-add per
// step in k order, into pixel p's output row o[p] + lo, as PlaneSum says.
enum class PlaneSum {
  kStore,     // from zero, stored there
  kContinue,  // continued from what is there (a chain split into chunks of k: the same chain)
  kAdd,       // from zero, then added to what is there (one rounding)
};
template <typename Isa, typename T, int64_t NP, int64_t NB>
JEBM_ALWAYS_INLINE void plane_kernel(PlaneSum mode, const T* const* a, const int64_t* __restrict ka, int64_t nk,
                                     const T* __restrict b, int64_t ldb, T* const* o, int64_t lo) {
  using V = reg_t<Isa, T>;
  const T* ap[NP];
  for (int64_t p = 0; p < NP; ++p) ap[p] = a[p];
  V acc[NB][NP];
  for (int64_t q = 0; q < NB; ++q)
    for (int64_t p = 0; p < NP; ++p)
      if (mode == PlaneSum::kContinue)
        load(acc[q][p], o[p] + lo + q * kLanes<T>);
      else
        acc[q][p] = V{};
  for (int64_t k = 0; k < nk; ++k) {
    V bv[NB];  // no function returns a vector: its ABI differs between the versions
    for (int64_t q = 0; q < NB; ++q) load(bv[q], b + k * ldb + q * kLanes<T>);
    const int64_t off = ka[k];
    for (int64_t p = 0; p < NP; ++p) {
      V av;
      splat(Isa{}, av, ap[p][off]);
      for (int64_t q = 0; q < NB; ++q) fma_into(Isa{}, acc[q][p], av, bv[q]);
    }
  }
  for (int64_t p = 0; p < NP; ++p)
    for (int64_t q = 0; q < NB; ++q) {
      if (mode == PlaneSum::kAdd) {
        V v;
        load(v, o[p] + lo + q * kLanes<T>);
        add_into(Isa{}, v, acc[q][p]);
        acc[q][p] = v;
      }
      store(o[p] + lo + q * kLanes<T>, acc[q][p]);
    }
}

// Pixels per block, per instruction set and lane blocks: AVX-512's 32 registers hold 4 x 6 or 2 x 8 accumulators
// beside the weights (2 x 12 measured no faster); the FMA version's vectors take two ymm registers each: 6 pixels are
// 12 of its 16 (with the FMA code forced on the Xeon, conv3's input gradient took 0.96-0.99x the time of im2col +
// OpenBLAS's Haswell kernels with 6, 1.02-1.03x with 4).
template <typename Isa, int64_t NB>
constexpr int64_t kPlanePix = std::is_same_v<Isa, IsaAvx512> ? (NB == 4 ? 6 : 8) : 6;

// plane_kernel for n (1 to NMAX) pixels, chosen at run time.
template <typename Isa, typename T, int64_t NB, int64_t NMAX>
JEBM_ALWAYS_INLINE void plane_tail(int64_t n, PlaneSum mode, const T* const* a, const int64_t* ka, int64_t nk,
                                   const T* b, int64_t ldb, T* const* o, int64_t lo) {
  if constexpr (NMAX >= 1) {
    if (n == NMAX) return plane_kernel<Isa, T, NMAX, NB>(mode, a, ka, nk, b, ldb, o, lo);
    return plane_tail<Isa, T, NB, NMAX - 1>(n, mode, a, ka, nk, b, ldb, o, lo);
  }
}

// out[i] = column i of the 8 x 8 float32 block at src (rows ls apart), in AVX registers: unpacks, then shuffles,
// then 128-bit lane swaps. Used by the forward's output rows (transpose8_add, conv_direct.cpp) and transpose8.
__attribute__((target("avx2,fma"))) inline void transpose8_columns(const float* __restrict src, int64_t ls,
                                                                   __m256* out) {
  __m256 r[8], t[8];
  for (int i = 0; i < 8; ++i) r[i] = _mm256_loadu_ps(src + i * ls);
  for (int i = 0; i < 8; i += 2) {
    t[i] = _mm256_unpacklo_ps(r[i], r[i + 1]);
    t[i + 1] = _mm256_unpackhi_ps(r[i], r[i + 1]);
  }
  for (int i = 0; i < 8; i += 4) {
    r[i] = _mm256_shuffle_ps(t[i], t[i + 2], 0x44);
    r[i + 1] = _mm256_shuffle_ps(t[i], t[i + 2], 0xEE);
    r[i + 2] = _mm256_shuffle_ps(t[i + 1], t[i + 3], 0x44);
    r[i + 3] = _mm256_shuffle_ps(t[i + 1], t[i + 3], 0xEE);
  }
  for (int i = 0; i < 4; ++i) {
    out[i] = _mm256_permute2f128_ps(r[i], r[i + 4], 0x20);
    out[i + 4] = _mm256_permute2f128_ps(r[i], r[i + 4], 0x31);
  }
}

typedef int32_t lanes16_t __attribute__((vector_size(64)));

// One round of transpose16: rows i and i + B (i & B zero) swap their off-diagonal blocks of B lanes.
template <int B>
JEBM_ALWAYS_INLINE void transpose_round(vec_t<float>* r, const lanes16_t& lo, const lanes16_t& hi) {
  for (int i = 0; i < 16; ++i)
    if (!(i & B)) {
      const vec_t<float> a = r[i], c = r[i + B];
      r[i] = __builtin_shuffle(a, c, lo);
      r[i + B] = __builtin_shuffle(a, c, hi);
    }
}

// dst[i * ld + j] = src[j * ls + i] for i, j < 16, in registers: four rounds of two-source permutes (blocks of 8, 4,
// 2, 1 lanes).
JEBM_ALWAYS_INLINE void transpose16(const float* __restrict src, int64_t ls, float* __restrict dst, int64_t ld) {
  vec_t<float> r[16];
  for (int i = 0; i < 16; ++i) std::memcpy(&r[i], src + i * ls, sizeof r[i]);
  transpose_round<8>(r, lanes16_t{0, 1, 2, 3, 4, 5, 6, 7, 16, 17, 18, 19, 20, 21, 22, 23},
                     lanes16_t{8, 9, 10, 11, 12, 13, 14, 15, 24, 25, 26, 27, 28, 29, 30, 31});
  transpose_round<4>(r, lanes16_t{0, 1, 2, 3, 16, 17, 18, 19, 8, 9, 10, 11, 24, 25, 26, 27},
                     lanes16_t{4, 5, 6, 7, 20, 21, 22, 23, 12, 13, 14, 15, 28, 29, 30, 31});
  transpose_round<2>(r, lanes16_t{0, 1, 16, 17, 4, 5, 20, 21, 8, 9, 24, 25, 12, 13, 28, 29},
                     lanes16_t{2, 3, 18, 19, 6, 7, 22, 23, 10, 11, 26, 27, 14, 15, 30, 31});
  transpose_round<1>(r, lanes16_t{0, 16, 2, 18, 4, 20, 6, 22, 8, 24, 10, 26, 12, 28, 14, 30},
                     lanes16_t{1, 17, 3, 19, 5, 21, 7, 23, 9, 25, 11, 27, 13, 29, 15, 31});
  for (int i = 0; i < 16; ++i) std::memcpy(dst + i * ld, &r[i], sizeof r[i]);
}

// The same for 8 x 8 blocks in AVX registers (the FMA version's float32).
__attribute__((target("avx2,fma"))) inline void transpose8(const float* __restrict src, int64_t ls,
                                                           float* __restrict dst, int64_t ld) {
  __m256 col[8];
  transpose8_columns(src, ls, col);
  for (int i = 0; i < 8; ++i) _mm256_storeu_ps(dst + i * ld, col[i]);
}

// dst[c * ld + r] = src[r * ls + c] for r < rows, c < cols: whole 16 x 16 blocks in registers in the AVX-512 float32
// version, 8 x 8 blocks in the FMA one, the rest element by element. A copy, so every version gives the same bits.
// (Element by element, grad_y's transposition took about 40 % of the filter gradient of MNIST's conv1.)
template <typename Isa, typename T>
JEBM_ALWAYS_INLINE void transpose_matrix(const T* __restrict src, int64_t ls, int64_t rows, int64_t cols,
                                         T* __restrict dst, int64_t ld) {
  int64_t rb = 0, cb = 0;  // rows and columns the blocks cover
  if constexpr (std::is_same_v<Isa, IsaAvx512> && sizeof(T) == 4) {
    rb = rows / 16 * 16;
    cb = cols / 16 * 16;
    for (int64_t r0 = 0; r0 < rb; r0 += 16)
      for (int64_t c0 = 0; c0 < cb; c0 += 16) transpose16(src + r0 * ls + c0, ls, dst + c0 * ld + r0, ld);
  } else if constexpr (std::is_same_v<Isa, IsaFma> && sizeof(T) == 4) {
    rb = rows / 8 * 8;
    cb = cols / 8 * 8;
    for (int64_t r0 = 0; r0 < rb; r0 += 8)
      for (int64_t c0 = 0; c0 < cb; c0 += 8) transpose8(src + r0 * ls + c0, ls, dst + c0 * ld + r0, ld);
  }
  for (int64_t c = 0; c < cols; ++c)
    for (int64_t r = c < cb ? rb : 0; r < rows; ++r) dst[c * ld + r] = src[r * ls + c];
}

// plane_kernel over np pixels (bases a, output rows o) for the lane blocks of NB vectors from lb on, in pixel blocks
// of kPlanePix; returns the first lane not covered.
template <typename Isa, typename T, int64_t NB>
JEBM_ALWAYS_INLINE int64_t plane_lanes(PlaneSum mode, const T* const* a, T* const* o, int64_t np, const int64_t* ka,
                                       int64_t nk, const T* b, int64_t ldb, int64_t lb) {
  constexpr int64_t NP = kPlanePix<Isa, NB>;
  for (; lb + NB * kLanes<T> <= ldb; lb += NB * kLanes<T>) {
    int64_t p = 0;
    for (; p + NP <= np; p += NP) plane_kernel<Isa, T, NP, NB>(mode, a + p, ka, nk, b + lb, ldb, o + p, lb);
    if (p < np) plane_tail<Isa, T, NB, NP - 1>(np - p, mode, a + p, ka, nk, b + lb, ldb, o + p, lb);
  }
  return lb;
}

// Every lane block of ldb lanes: four vectors at a time, then two, in AVX-512; then one.
template <typename Isa, typename T>
JEBM_ALWAYS_INLINE void plane_all_lanes(PlaneSum mode, const T* const* a, T* const* o, int64_t np, const int64_t* ka,
                                        int64_t nk, const T* b, int64_t ldb) {
  int64_t lb = 0;
  if constexpr (std::is_same_v<Isa, IsaAvx512>) {
    lb = plane_lanes<Isa, T, 4>(mode, a, o, np, ka, nk, b, ldb, lb);
    lb = plane_lanes<Isa, T, 2>(mode, a, o, np, ka, nk, b, ldb, lb);
  }
  plane_lanes<Isa, T, 1>(mode, a, o, np, ka, nk, b, ldb, lb);
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

// x_n [C, H, W] -> xpad [C, HP, WP], zeros around. Rows are copied by whole vectors where they can be: a plain loop
// became one memmove call per row (16 floats for MNIST's conv2), about 7 % of its forward and filter gradient.
template <typename T>
JEBM_ALWAYS_INLINE void pad_sample(const Geo& g, const T* xn, T* xpad) {
  std::fill(xpad, xpad + g.c * g.hp() * g.wp(), T(0));
  for (int64_t c = 0; c < g.c; ++c)
    for (int64_t y = 0; y < g.h; ++y) {
      const T* s = xn + (c * g.h + y) * g.w;
      T* d = xpad + (c * g.hp() + y + g.pad) * g.wp() + g.pad;
      int64_t x = 0;
      for (; x + kLanes<T> <= g.w; x += kLanes<T>) std::memcpy(d + x, s + x, sizeof(vec_t<T>));
      for (; x < g.w; ++x) d[x] = s[x];
    }
}

// Tap (c, i, j) -> its offset from a window's corner in the padded sample.
inline std::vector<int64_t> tap_offsets(const Geo& g) {
  std::vector<int64_t> xoff;
  for (int64_t c = 0; c < g.c; ++c)
    for (int64_t i = 0; i < g.kh; ++i)
      for (int64_t j = 0; j < g.kw; ++j) xoff.push_back((c * g.hp() + i) * g.wp() + j);
  return xoff;
}

// gyt [P, FP] = grad_y_n [F, P] transposed (transpose_matrix), zero filters padding F: the filter gradients' rows of
// grad_y (conv_direct.cpp, conv_direct_backward_filter_plane.cpp).
template <typename Isa, typename T>
JEBM_ALWAYS_INLINE void transpose_grad_y(const Geo& g, const T* __restrict gyn, T* __restrict gyt) {
  const int64_t fp = round_up(g.f, kLanes<T>), np = g.p();
  transpose_matrix<Isa>(gyn, np, g.f, np, gyt, fp);
  for (int64_t p = 0; p < np; ++p)
    for (int64_t f = g.f; f < fp; ++f) gyt[p * fp + f] = T(0);
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
