// The direct conv2d's input gradient by output phase, with lanes over the columns of one (row, column) stride phase
// and only that phase's own taps (conv2d_direct_backward_data_phases, runtime/cpu/conv_direct.hpp), for stride 2, in
// FMA / portable versions picked at load time, and an AVX-512 float32 version for layers of 4 channels or more whose
// phases fill one 32-byte vector (MNIST conv2: two output rows per zmm register; phases_avx512_f32). Tested by
// tests/test_conv_direct.cpp (backward_data_layouts_give_the_same_bits, and every test of the direct path).
//
// Output (Y, X) = (2q + ry, 2m + rx) (padded coordinates) takes the taps i = ry + 2a < KH, j = rx + 2b < KW and reads
// grad_y[f, q - a, m - b]. The 3x3 kernel's four phases have 2x2, 2x1, 1x2 and 1x1 taps: the kernel by output phase
// (conv_direct_backward_data.cpp) pads each to 2x2 with zero weights, a quarter of its multiply-adds. Here one phase
// at a time, lanes m (one 32-byte vector: 8 float32, MNIST conv2's 8 columns per phase), each step (f, a, b) is one
// broadcast weight per channel times one unaligned load of consecutive grad_y values from a copy of the sample's
// grad_y with zero margins. The phases' sums go to a scratch by phase, interleaved into grad_x at the end.
//
// Bits: every output runs the fused multiply-adds of the other two layouts in the same order (passes of the same fb
// filters, each a chain from zero over (f, a, b), added in order into a zero), less the steps whose weight is a zero
// padding tap. Such a step adds x * 0 to the chain, which leaves it unchanged unless the chain is -0 (only when
// every product so far underflowed below the smallest denormal and was negative: then the others give +0) or x is
// infinite or NaN. The file is compiled with -ffp-contract=off so that nothing else fuses.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <vector>

#include "runtime/backend.hpp"
#include "runtime/cpu/conv_direct.hpp"
#include "runtime/cpu/conv_direct_parts.hpp"

namespace jebm::cpu {
namespace {

using conv_direct::buffer;
using conv_direct::for_samples;
using conv_direct::Geo;
using conv_direct::IsaBase;
using conv_direct::IsaFma;

constexpr int64_t kS = 2;  // the stride this layout is written for

// One 32-byte vector: one ymm register in the FMA version.
template <typename T>
using unit_t = typename conv_direct::Halves<T>::half_t;
template <typename T>
constexpr int64_t kUnit = 32 / sizeof(T);

template <typename T>
__attribute__((target("avx2,fma"))) inline void fma_unit(IsaFma, unit_t<T>& acc, const unit_t<T>& x,
                                                         const unit_t<T>& w) {
  if constexpr (sizeof(T) == 4)
    acc = reinterpret_cast<unit_t<T>>(_mm256_fmadd_ps(reinterpret_cast<__m256>(x), reinterpret_cast<__m256>(w),
                                                      reinterpret_cast<__m256>(acc)));
  else
    acc = reinterpret_cast<unit_t<T>>(_mm256_fmadd_pd(reinterpret_cast<__m256d>(x), reinterpret_cast<__m256d>(w),
                                                      reinterpret_cast<__m256d>(acc)));
}
template <typename T>
inline void fma_unit(IsaBase, unit_t<T>& acc, const unit_t<T>& x, const unit_t<T>& w) {
  for (int l = 0; l < kUnit<T>; ++l) acc[l] = std::fma(x[l], w[l], acc[l]);
}

template <typename T>
__attribute__((target("avx2,fma"))) inline void splat_unit(IsaFma, unit_t<T>& out, T v) {
  if constexpr (sizeof(T) == 4) out = reinterpret_cast<unit_t<T>>(_mm256_set1_ps(v));
  else out = reinterpret_cast<unit_t<T>>(_mm256_set1_pd(v));
}
template <typename T>
inline void splat_unit(IsaBase, unit_t<T>& out, T v) {
  for (int l = 0; l < kUnit<T>; ++l) out[l] = v;
}

// Output rows of phase ry (Y = 2q + ry inside [pad, pad + H)): q from q0, nq of them, ka taps i = ry + 2a < KH. The
// same for columns (X = 2m + rx inside [pad, pad + W), kb taps j = rx + 2b < KW).
struct Span {
  int64_t q0, nq, ka;
};

Span span(int64_t pad, int64_t size, int64_t k, int64_t r) {
  const int64_t q0 = (pad - r + kS - 1) / kS, q1 = (pad + size - 1 - r) / kS;  // pad >= 0, r < 2
  return {q0, std::max<int64_t>(0, q1 - q0 + 1), r < k ? (k - r + kS - 1) / kS : 0};
}

// One layer's plan. gyp [F, rows, wq]: grad_y rows rlo .. rlo + rows, columns clo .. clo + wq (zero outside
// [0, OH) x [0, OW)). sc [C, 2 (ry), nqm, 2 (column phase: the one of grad_x's even columns first), nu]: the phases'
// sums, nu = nv * kUnit lanes per row, lane k of the first column phase being grad_x column 2k, of the second 2k + 1.
struct Plan {
  Span rows[kS], cols[kS];
  int64_t nv, nu, nqm;
  int64_t rlo, nrows, clo, wq;
  int64_t fb;
  int64_t first;  // the column phase rx of grad_x's column 0: pad mod 2
  bool skips;     // whether a phase has no rows, columns or taps (its sums: zero)
  // The phases that have rows, columns and taps, in summation order: (ry, rx) and sc's slot for rx.
  struct Phase {
    int64_t ry, rx, slot;
  } phases[kS * kS];
  int64_t nphases;
  // The AVX-512 float32 version's copies of gyp with rows kUnit wide, one per first column o = cs.q0 - b: o from omin,
  // nco of them (phases_avx512_f32).
  int64_t omin, nco;
};

template <typename T>
Plan plan(const Geo& g, int64_t fb) {
  Plan pl{};
  pl.first = g.pad % kS;
  int64_t rlo = 0, rhi = g.oh, clo = 0, chi = g.ow;
  for (int64_t r = 0; r < kS; ++r) {
    pl.rows[r] = span(g.pad, g.h, g.kh, r);
    pl.cols[r] = span(g.pad, g.w, g.kw, r);
    pl.nv = std::max(pl.nv, (pl.cols[r].nq + kUnit<T> - 1) / kUnit<T>);
    pl.nqm = std::max(pl.nqm, pl.rows[r].nq);
  }
  pl.nu = pl.nv * kUnit<T>;
  for (int64_t r = 0; r < kS; ++r) {
    rlo = std::min(rlo, pl.rows[r].q0 - std::max<int64_t>(pl.rows[r].ka - 1, 0));
    rhi = std::max(rhi, pl.rows[r].q0 + pl.rows[r].nq);
    clo = std::min(clo, pl.cols[r].q0 - std::max<int64_t>(pl.cols[r].ka - 1, 0));
    chi = std::max(chi, pl.cols[r].q0 + pl.nu);
  }
  pl.rlo = rlo;
  pl.nrows = rhi - rlo;
  pl.clo = clo;
  pl.wq = chi - clo;
  pl.fb = fb;
  for (int64_t r = 0; r < kS; ++r)
    pl.skips = pl.skips || pl.rows[r].nq == 0 || pl.rows[r].ka == 0 || pl.cols[r].nq == 0 || pl.cols[r].ka == 0;
  pl.nphases = 0;
  for (int64_t ry = 0; ry < kS; ++ry)
    for (int64_t rx = 0; rx < kS; ++rx)
      if (pl.rows[ry].nq > 0 && pl.cols[rx].nq > 0 && pl.rows[ry].ka * pl.cols[rx].ka > 0)
        pl.phases[pl.nphases++] = {ry, rx, rx == pl.first ? 0 : 1};
  int64_t omax = 0;
  pl.omin = pl.cols[0].q0;
  for (int64_t r = 0; r < kS; ++r) {
    pl.omin = std::min(pl.omin, pl.cols[r].q0 - std::max<int64_t>(pl.cols[r].ka - 1, 0));
    omax = std::max(omax, pl.cols[r].q0);
  }
  pl.nco = omax - pl.omin + 1;
  return pl;
}

// One phase's steps (f, a, b) in summation order, its own taps only: the offset of the grad_y load from the output
// row's grad_y row and the first lane's column, and the weights of every channel, ws [step, C].
template <typename T>
struct Steps {
  std::vector<int64_t> gy;
  std::vector<int64_t> gy512;  // the same loads in phases_avx512_f32's copies: (copy, f * nrows - a) in rows of kUnit
  std::vector<T> w;
  int64_t per_f = 0;  // steps per filter
};

template <typename T>
Steps<T> steps(const Geo& g, const Plan& pl, int64_t ry, int64_t rx, const T* w) {
  Steps<T> st;
  const int64_t ka = pl.rows[ry].ka, kb = pl.cols[rx].ka;
  st.per_f = ka * kb;
  for (int64_t f = 0; f < g.f; ++f)
    for (int64_t a = 0; a < ka; ++a)
      for (int64_t b = 0; b < kb; ++b) {
        st.gy.push_back((f * pl.nrows - a) * pl.wq - b);
        const int64_t copy = pl.cols[rx].q0 - b - pl.omin;
        st.gy512.push_back(((copy * g.f + f) * pl.nrows - a) * kUnit<T>);
        const int64_t i = ry + kS * a, j = rx + kS * b;
        for (int64_t c = 0; c < g.c; ++c) st.w.push_back(w[((f * g.c + c) * g.kh + i) * g.kw + j]);
      }
  return st;
}

// CB channels x R rows of one phase, one vector of lanes: over each pass's steps a chain from zero, added into out
// (sc at the first channel, row and vector). gy0: gyp at the first row's grad_y row and the vector's first column;
// w0: ws at the first channel.
template <typename Isa, typename T, int CB, int R>
JEBM_ALWAYS_INLINE void block(const Geo& g, const Plan& pl, const T* __restrict gy0, const int64_t* __restrict goff,
                              const T* __restrict w0, int64_t per_f, int64_t oc, int64_t orow, T* __restrict out) {
  using U = unit_t<T>;
  for (int64_t f0 = 0; f0 < g.f; f0 += pl.fb) {
    U acc[CB][R];
    for (int cb = 0; cb < CB; ++cb)
      for (int r = 0; r < R; ++r) acc[cb][r] = U{};
    const int64_t k1 = std::min(g.f, f0 + pl.fb) * per_f;
#pragma GCC unroll 2
    for (int64_t k = f0 * per_f; k < k1; ++k) {
      const T* gp = gy0 + goff[k];
      const T* wp = w0 + k * g.c;
      U wv[CB];
      for (int cb = 0; cb < CB; ++cb) splat_unit<T>(Isa{}, wv[cb], wp[cb]);
      for (int r = 0; r < R; ++r) {
        U x;
        std::memcpy(&x, gp + r * pl.wq, sizeof x);
        for (int cb = 0; cb < CB; ++cb) fma_unit<T>(Isa{}, acc[cb][r], x, wv[cb]);
      }
    }
    for (int cb = 0; cb < CB; ++cb)
      for (int r = 0; r < R; ++r) {
        T* d = out + cb * oc + r * orow;
        U sum{};  // the first pass adds into zero, the others into the sum so far
        if (f0 > 0) std::memcpy(&sum, d, sizeof sum);
        sum += acc[cb][r];
        std::memcpy(d, &sum, sizeof sum);
      }
  }
}

// A block's channels and rows: CB * R accumulators, CB broadcast weights and one grad_y vector in the FMA version's 16
// ymm registers, CB + R loads per CB * R multiply-adds. 4 x 2 where the layer has 4 channels or more (MNIST conv2),
// else 1 x 7 (MNIST conv1's 7 and 14 rows per phase). On the Zen 3, one thread, MNIST conv1 at 14x14: 0.68 ms with
// 1 x 2 rows, 0.44 with 1 x 7; at 28x28, 1 x 4, 1 x 6 and 1 x 7 rows and 1 x 4 x 2 vectors took 1.4-1.6 ms, where
// the kernel by columns takes 1.15 (it shares each grad_y load between the two column phases).
constexpr int kChannels = 4;
template <int CB>
constexpr int kRows = CB >= 4 ? 2 : 7;

// All rows of one phase for CB channels: blocks of kRows rows, then of 3, then single rows.
template <typename Isa, typename T, int CB>
JEBM_ALWAYS_INLINE void rows(const Geo& g, const Plan& pl, const Span& rs, const T* gy0, const Steps<T>& st,
                             int64_t c, int64_t oc, T* out) {
  const int64_t orow = kS * pl.nu;
  constexpr int R = kRows<CB>;
  const int64_t* goff = st.gy.data();
  const T* w0 = st.w.data() + c;
  int64_t q = 0;
  for (; q + R <= rs.nq; q += R)
    block<Isa, T, CB, R>(g, pl, gy0 + q * pl.wq, goff, w0, st.per_f, oc, orow, out + q * orow);
  if constexpr (R > 3)
    for (; q + 3 <= rs.nq; q += 3)
      block<Isa, T, CB, 3>(g, pl, gy0 + q * pl.wq, goff, w0, st.per_f, oc, orow, out + q * orow);
  for (; q < rs.nq; ++q) block<Isa, T, CB, 1>(g, pl, gy0 + q * pl.wq, goff, w0, st.per_f, oc, orow, out + q * orow);
}

// grad_x row d [W] from its two column phases' sums: d[2k] = a[k], d[2k + 1] = b[k].
template <typename Isa, typename T>
JEBM_ALWAYS_INLINE void interleave(Isa, const T* __restrict a, const T* __restrict b, int64_t w, T* __restrict d) {
  for (int64_t k = 0; 2 * k < w; ++k) {
    d[2 * k] = a[k];
    if (2 * k + 1 < w) d[2 * k + 1] = b[k];
  }
}
// The FMA version in float32, 16 columns per step (GCC left the loop above scalar).
__attribute__((target("avx2,fma"))) inline void interleave(IsaFma, const float* __restrict a,
                                                            const float* __restrict b, int64_t w,
                                                            float* __restrict d) {
  int64_t k = 0;
  for (; 2 * k + 16 <= w; k += 8) {
    const __m256 va = _mm256_loadu_ps(a + k), vb = _mm256_loadu_ps(b + k);
    const __m256 lo = _mm256_unpacklo_ps(va, vb), hi = _mm256_unpackhi_ps(va, vb);  // by 128-bit lane
    _mm256_storeu_ps(d + 2 * k, _mm256_permute2f128_ps(lo, hi, 0x20));
    _mm256_storeu_ps(d + 2 * k + 8, _mm256_permute2f128_ps(lo, hi, 0x31));
  }
  for (; 2 * k < w; ++k) {
    d[2 * k] = a[k];
    if (2 * k + 1 < w) d[2 * k + 1] = b[k];
  }
}

// gyp filled from one sample's grad_y_n [F, OH, OW].
template <typename T>
JEBM_ALWAYS_INLINE void sample_fill(const Geo& g, const Plan& pl, const T* __restrict gyn, T* __restrict gyp) {
  // gyp: grad_y's rows inside zero margins. Each row by 32-byte copies, the last one ending at the row's end (a call
  // to memmove per row of 8 or 9 cost 9 % of MNIST conv2's input gradient; element loops cost more).
  std::fill(gyp, gyp + g.f * pl.nrows * pl.wq, T(0));
  for (int64_t f = 0; f < g.f; ++f)
    for (int64_t oy = 0; oy < g.oh; ++oy) {
      const T* src = gyn + (f * g.oh + oy) * g.ow;
      T* d = gyp + (f * pl.nrows + oy - pl.rlo) * pl.wq - pl.clo;
      if (g.ow < kUnit<T>) {
        for (int64_t k = 0; k < g.ow; ++k) d[k] = src[k];
        continue;
      }
      for (int64_t k = 0; k + kUnit<T> < g.ow; k += kUnit<T>) std::memcpy(d + k, src + k, 32);
      std::memcpy(d + g.ow - kUnit<T>, src + g.ow - kUnit<T>, 32);
    }
}

// sc's phase sums interleaved into grad_x_n [C, H, W].
template <typename Isa, typename T>
JEBM_ALWAYS_INLINE void sample_interleave(const Geo& g, const Plan& pl, const T* __restrict sc, T* __restrict gxn) {
  const int64_t oc = kS * pl.nqm * kS * pl.nu;
  for (int64_t c = 0; c < g.c; ++c)
    for (int64_t ry = 0; ry < kS; ++ry)
      for (int64_t q = 0; q < pl.rows[ry].nq; ++q) {
        const T* a = sc + c * oc + (ry * pl.nqm + q) * kS * pl.nu;
        const int64_t iy = kS * (pl.rows[ry].q0 + q) + ry - g.pad;
        interleave(Isa{}, a, a + pl.nu, g.w, gxn + (c * g.h + iy) * g.w);
      }
}

// One sample: gyp filled from grad_y_n [F, OH, OW], every phase's sums into sc, then sc interleaved into grad_x_n
// [C, H, W]. st[ry * 2 + rx]: phase (ry, rx)'s steps.
template <typename Isa, typename T>
JEBM_ALWAYS_INLINE void sample(const Geo& g, const Plan& pl, const T* __restrict gyn, const Steps<T>* st,
                               T* __restrict gxn, T* __restrict gyp, T* __restrict sc) {
  sample_fill<T>(g, pl, gyn, gyp);
  const int64_t oc = kS * pl.nqm * kS * pl.nu;  // sc's channel stride
  if (pl.skips) std::fill(sc, sc + g.c * oc, T(0));  // else every element is stored by its phase's first pass
  for (int64_t i = 0; i < pl.nphases; ++i) {
    const Plan::Phase& ph = pl.phases[i];
    const Span &rs = pl.rows[ph.ry], &cs = pl.cols[ph.rx];
    const Steps<T>& s = st[ph.ry * kS + ph.rx];
    const int64_t nv = (cs.nq + kUnit<T> - 1) / kUnit<T>;
    for (int64_t v = 0; v < nv; ++v) {
      const T* gy0 = gyp + (rs.q0 - pl.rlo) * pl.wq + cs.q0 + v * kUnit<T> - pl.clo;
      T* out = sc + (ph.ry * pl.nqm * kS + ph.slot) * pl.nu + v * kUnit<T>;
      int64_t c = 0;
      for (; c + kChannels <= g.c; c += kChannels) rows<Isa, T, kChannels>(g, pl, rs, gy0, s, c, oc, out + c * oc);
      for (; c < g.c; ++c) rows<Isa, T, 1>(g, pl, rs, gy0, s, c, oc, out + c * oc);
    }
  }
  sample_interleave<Isa, T>(g, pl, sc, gxn);
}

// --- AVX-512, float32: one zmm register holds two output rows of a phase -----------------------------------------
// Where each phase's columns fill one 32-byte unit (nu = 8: MNIST conv2), the FMA version's vector is half a zmm
// register. Here grad_y is copied once more per first column o = cs.q0 - b with rows exactly 8 wide, so that rows
// q - a and q + 1 - a of one step are 16 consecutive floats: one load, and the 16 lanes are two output rows. Every
// output's chain is the FMA version's (same steps, passes and order), so the same bits; a phase's odd last row
// takes the FMA version's block.
template <int CB, int RP>
__attribute__((target("avx512f"))) JEBM_ALWAYS_INLINE void block512(const Geo& g, const Plan& pl,
                                                                   const float* __restrict gy0,
                                                                   const int64_t* __restrict goff,
                                                                   const float* __restrict w0, int64_t per_f,
                                                                   int64_t oc, int64_t orow, float* __restrict out) {
  for (int64_t f0 = 0; f0 < g.f; f0 += pl.fb) {
    __m512 acc[CB][RP];
    for (int cb = 0; cb < CB; ++cb)
      for (int r = 0; r < RP; ++r) acc[cb][r] = _mm512_setzero_ps();
    const int64_t k1 = std::min(g.f, f0 + pl.fb) * per_f;
    for (int64_t k = f0 * per_f; k < k1; ++k) {
      const float* gp = gy0 + goff[k];
      const float* wp = w0 + k * g.c;
      __m512 wv[CB];
      for (int cb = 0; cb < CB; ++cb) wv[cb] = _mm512_set1_ps(wp[cb]);
      for (int r = 0; r < RP; ++r) {
        const __m512 x = _mm512_loadu_ps(gp + r * 2 * kUnit<float>);
        for (int cb = 0; cb < CB; ++cb) acc[cb][r] = _mm512_fmadd_ps(x, wv[cb], acc[cb][r]);
      }
    }
    for (int cb = 0; cb < CB; ++cb)
      for (int r = 0; r < RP; ++r) {
        float* d = out + cb * oc + 2 * r * orow;
        // The halves by a vector shuffle: GCC 12's extract intrinsics trip -Wmaybe-uninitialized inside <immintrin.h>.
        typedef float v16 __attribute__((vector_size(64)));
        const v16 a = reinterpret_cast<v16>(acc[cb][r]);
        const __m256 lo = reinterpret_cast<__m256>(__builtin_shufflevector(a, a, 0, 1, 2, 3, 4, 5, 6, 7));
        const __m256 hi = reinterpret_cast<__m256>(__builtin_shufflevector(a, a, 8, 9, 10, 11, 12, 13, 14, 15));
        // As block: the first pass adds into zero, the others into the sum so far.
        const __m256 s0 = f0 > 0 ? _mm256_loadu_ps(d) : _mm256_setzero_ps();
        const __m256 s1 = f0 > 0 ? _mm256_loadu_ps(d + orow) : _mm256_setzero_ps();
        _mm256_storeu_ps(d, _mm256_add_ps(s0, lo));
        _mm256_storeu_ps(d + orow, _mm256_add_ps(s1, hi));
      }
  }
}

// One phase's rows for CB channels: blocks of 4 row pairs, then one block of the pairs left, then the odd row in
// the FMA version.
template <int CB>
__attribute__((target("avx512f"))) JEBM_ALWAYS_INLINE void rows512(const Geo& g, const Plan& pl, const Span& rs,
                                                                  const float* gc0, const float* gy0,
                                                                  const Steps<float>& st, int64_t c, int64_t oc,
                                                                  float* out) {
  const int64_t orow = kS * pl.nu;
  const float* w0 = st.w.data() + c;
  int64_t q = 0;
  for (; q + 8 <= rs.nq; q += 8)
    block512<CB, 4>(g, pl, gc0 + q * kUnit<float>, st.gy512.data(), w0, st.per_f, oc, orow, out + q * orow);
  const int64_t left = (rs.nq - q) / 2;
  const float* gq = gc0 + q * kUnit<float>;
  if (left == 3) block512<CB, 3>(g, pl, gq, st.gy512.data(), w0, st.per_f, oc, orow, out + q * orow);
  if (left == 2) block512<CB, 2>(g, pl, gq, st.gy512.data(), w0, st.per_f, oc, orow, out + q * orow);
  if (left == 1) block512<CB, 1>(g, pl, gq, st.gy512.data(), w0, st.per_f, oc, orow, out + q * orow);
  q += 2 * left;
  if (q < rs.nq)
    block<IsaFma, float, CB, 1>(g, pl, gy0 + q * pl.wq, st.gy.data(), w0, st.per_f, oc, orow, out + q * orow);
}

__attribute__((target("avx512f"), flatten)) void phases_avx512_f32(const Geo& g, const Plan& pl, const float* gyn,
                                                                    const Steps<float>* st, float* gxn, float* gyp,
                                                                    float* sc, float* gc) {
  // gyp as sample fills it, then the copies gc [nco, F, nrows, 8]: copy o's row = gyp's row from column o.
  sample_fill<float>(g, pl, gyn, gyp);
  constexpr int64_t u = kUnit<float>;
  for (int64_t o = 0; o < pl.nco; ++o)
    for (int64_t fr = 0; fr < g.f * pl.nrows; ++fr)
      _mm256_storeu_ps(gc + (o * g.f * pl.nrows + fr) * u, _mm256_loadu_ps(gyp + fr * pl.wq + pl.omin + o - pl.clo));
  const int64_t oc = kS * pl.nqm * kS * pl.nu;
  if (pl.skips) std::fill(sc, sc + g.c * oc, 0.0f);
  for (int64_t i = 0; i < pl.nphases; ++i) {
    const Plan::Phase& ph = pl.phases[i];
    const Span &rs = pl.rows[ph.ry], &cs = pl.cols[ph.rx];
    const Steps<float>& s = st[ph.ry * kS + ph.rx];
    const float* gy0 = gyp + (rs.q0 - pl.rlo) * pl.wq + cs.q0 - pl.clo;
    const float* gc0 = gc + (rs.q0 - pl.rlo) * u;
    float* out = sc + (ph.ry * pl.nqm * kS + ph.slot) * pl.nu;
    int64_t c = 0;
    for (; c + kChannels <= g.c; c += kChannels) rows512<kChannels>(g, pl, rs, gc0, gy0, s, c, oc, out + c * oc);
    for (; c < g.c; ++c) rows512<1>(g, pl, rs, gc0, gy0, s, c, oc, out + c * oc);
  }
  sample_interleave<IsaFma, float>(g, pl, sc, gxn);
}

#define JEBM_BDP_ENTRY(name, attrs, isa, T)                                                                    \
  attrs void name(const Geo& g, const Plan& pl, const T* gyn, const Steps<T>* st, T* gxn, T* gyp, T* sc) {     \
    sample<isa, T>(g, pl, gyn, st, gxn, gyp, sc);                                                              \
  }
JEBM_BDP_ENTRY(phases_fma_f32, __attribute__((target("avx2,fma"), flatten)), IsaFma, float)
JEBM_BDP_ENTRY(phases_fma_f64, __attribute__((target("avx2,fma"), flatten)), IsaFma, double)
JEBM_BDP_ENTRY(phases_base_f32, __attribute__((flatten)), IsaBase, float)
JEBM_BDP_ENTRY(phases_base_f64, __attribute__((flatten)), IsaBase, double)
#undef JEBM_BDP_ENTRY

// Every CPU with AVX-512 has AVX2 and FMA, so it runs the FMA version where phases_avx512_f32 does not apply.
template <typename T>
auto phases_fn() {
  const bool fma = conv_direct::isa() >= 1;
  if constexpr (sizeof(T) == 4) return fma ? phases_fma_f32 : phases_base_f32;
  else return fma ? phases_fma_f64 : phases_base_f64;
}

template <typename T>
void backward_data_typed(const Tensor& gy, const Tensor& w, const Conv2dParams& prm, Tensor& gx) {
  const Geo g = conv_direct::geo(gx.shape(), w.shape(), gy.shape(), prm);
  JEBM_CHECK(g.s == kS, "conv2d_backward_data: the direct kernel by phases takes stride 2, not " << g.s);
  const Plan pl = plan<T>(g, conv_direct::backward_data_pass_filters(gx.shape(), w.shape(), gy.shape(), prm,
                                                                      sizeof(T)));
  std::vector<Steps<T>> st;
  for (int64_t ry = 0; ry < kS; ++ry)
    for (int64_t rx = 0; rx < kS; ++rx) st.push_back(steps<T>(g, pl, ry, rx, w.data<T>()));
  const int64_t n = gx.size(0), fpo = g.f * g.oh * g.ow;
  const T* gyp = gy.data<T>();
  T* gxp = gx.data<T>();
  if constexpr (sizeof(T) == 4)
    // Layers of fewer than 4 channels keep the FMA version: one channel's few row pairs are too few chains of
    // multiply-adds for AVX-512 (MNIST conv1 at 14x14: 0.69 ms against 0.32).
    if (conv_direct::isa() == 2 && pl.nu == kUnit<T> && g.c >= kChannels) {
      for_samples(n, n * fpo * g.c * g.kh * g.kw, [&](int64_t i) {
        T* pad = buffer<T>(0, g.f * pl.nrows * pl.wq + kUnit<T>);
        T* sc = buffer<T>(1, g.c * kS * pl.nqm * kS * pl.nu);
        T* gc = buffer<T>(2, pl.nco * g.f * pl.nrows * kUnit<T> + kUnit<T>);  // + kUnit: the last pair's overread
        phases_avx512_f32(g, pl, gyp + i * fpo, st.data(), gxp + i * g.c * g.h * g.w, pad, sc, gc);
      });
      return;
    }
  const auto run = phases_fn<T>();
  for_samples(n, n * fpo * g.c * g.kh * g.kw, [&](int64_t i) {
    T* pad = buffer<T>(0, g.f * pl.nrows * pl.wq + kUnit<T>);
    T* sc = buffer<T>(1, g.c * kS * pl.nqm * kS * pl.nu);
    run(g, pl, gyp + i * fpo, st.data(), gxp + i * g.c * g.h * g.w, pad, sc);
  });
}

}  // namespace

void conv2d_direct_backward_data_phases(const Tensor& grad_y, const Tensor& w, const Conv2dParams& p,
                                        Tensor& grad_x) {
  JEBM_DISPATCH_FLOAT(grad_y.dtype(), "conv2d_backward_data",
                      [&] { backward_data_typed<scalar_t>(grad_y, w, p, grad_x); });
}

}  // namespace jebm::cpu
