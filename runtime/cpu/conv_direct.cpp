// Direct conv2d (NCHW) for thin layers: forward and backward-filter without im2col, per sample, in AVX-512 / FMA /
// portable versions picked at load time, and which shapes take the direct path (the input gradient's kernel is in
// runtime/cpu/conv_direct_backward_data.cpp, the forward with lanes over output columns in
// runtime/cpu/conv_direct_forward_columns.cpp). Tested by tests/test_conv_direct.cpp (against the im2col path and the
// 7-loop references, float32 and float64, the same bits at 1 and 2 threads and in every version) and
// tests/test_ops.cpp.
//
// A layer like MNIST's first (1 -> 16 channels, 5x5) gives im2col + GEMM a K of 25: packing and loop overhead
// dominate. Here each sample is copied once into a zero-padded buffer, so no tap tests bounds; the innermost step
// is one vector of filters (forward, weights as [C*KH*KW, F]; backward-filter, grad_y as [P, F]) times one input
// value, fused multiply-added into one of kPix pixels' (or taps') accumulators held in registers. Where output rows
// fill a vector, the forward's lanes hold output columns instead. Every version
// rounds each fma once (conv_direct::fma_into) and nothing else fuses (the file is compiled with -ffp-contract=off),
// so all give the same bits; every output's sum runs in a fixed order inside one sample, so does every thread
// count.
#include "runtime/cpu/conv_direct.hpp"

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <cstring>
#include <vector>

#include "runtime/backend.hpp"
#include "runtime/cpu_features.hpp"
#include "runtime/cpu/conv_direct_parts.hpp"

namespace jebm::cpu {
namespace {

using conv_direct::add_into;
using conv_direct::buffer;
using conv_direct::fma_into;
using conv_direct::load;
using conv_direct::store;
using conv_direct::splat;
using conv_direct::for_samples;
using conv_direct::kLanes;
using conv_direct::round_up;
using conv_direct::vec_t;

// Which layers go direct, measured at one thread in float32 against OpenBLAS's SkylakeX kernels (docs/performance.md,
// "Thin convolutions"). Forward and filter gradient: the MNIST CNN's conv1 (C*KH*KW = 25, 16 filters) and conv2
// (144, 32 filters) are faster direct (conv2's filter gradient ties); MNIST's conv3 (288), conv4 (576) and the
// CIFAR-10 CNN's filter gradient at conv1 (27 but 64 filters, a GEMM tall enough) are faster through the GEMM. The
// forward with lanes over filters also needs output rows at least one pixel block long (on rows of 5 it took twice
// the GEMM's time); with lanes over output columns, which it takes for rows of 16 and more (MNIST's conv1 at 28x28,
// CIFAR-10's conv1), any filter count (on rows of 8 and 9 it was slower than lanes over filters). Input gradient:
// conv1 and conv2 at 28x28 and 14x14 and CIFAR-10's conv1 are faster direct; conv3 (288, rows of 8 and 5) is not.
constexpr int64_t kDirectMaxCkk = 144;
constexpr int64_t kDirectMaxFilters = 32;
constexpr int64_t kDirectDataMinWidth = 8;  // input rows: half a float32 vector at least
constexpr int64_t kFilterSlots = 8;  // partial filter-gradient sums
constexpr int64_t kColumnsMinWidth = 16;  // output rows the forward takes by columns

using conv_direct::Geo;
using conv_direct::geo;

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

// Filters in blocks of one 64-byte vector, and output pixels along a row in blocks of kPix: kPix x kLanes
// accumulators stay in registers while the taps stream by, each tap one vector load.
// The FMA version's vectors take two of its 16 ymm registers: 8 pixels' accumulators left no room for the weights
// and spilled. It takes 4 (MNIST conv2's forward on a Zen 3, one thread: 3.5 ms with 8, 2.3-2.5 with 4, 3.2-3.4 with
// 6, 4.0-4.2 with 2).
constexpr int64_t kPix = 8;
template <typename Isa>
constexpr int64_t kPixBlock = std::is_same_v<Isa, conv_direct::IsaFma> ? 4 : kPix;

// out[p, 0..NB kLanes) = sum over k < nk of a(p, k) * b[k * ldb + 0..NB kLanes), for NP pixels p, where a(p, k) =
// a[p * as + ka[k]]: the lanes are filters, a the padded input row, ka the taps' offsets. S: the stride as, when it
// is a constant (S > 0), so that each pixel's input is a constant displacement from the tap's: with a run-time
// stride every multiply-add needed an address computation, and the addresses spilled. NB lane blocks share each
// pixel's broadcast: AVX-512 takes two (its 32 zmm registers hold 2 x 8 accumulators); with one, MNIST conv2's
// forward (32 filters) broadcast every input twice and kept 8 chains of 4-cycle multiply-adds, which left the Xeon's
// two FMA ports half idle. Each output's chain is the same whatever NB, so the same bits.
template <typename Isa, typename T, int64_t NP, int64_t NB, int64_t S>
JEBM_ALWAYS_INLINE void block_kernel(const T* __restrict a, int64_t as, const int64_t* __restrict ka, int64_t nk,
                                     const T* __restrict b, int64_t ldb, T* __restrict out, int64_t ldo) {
  using V = conv_direct::reg_t<Isa, T>;
  const int64_t st = S > 0 ? S : as;
  V acc[NB][NP];
  for (int64_t q = 0; q < NB; ++q)
    for (int64_t p = 0; p < NP; ++p) acc[q][p] = V{};
  for (int64_t k = 0; k < nk; ++k) {
    V bv[NB];  // no function returns a vec_t: its ABI differs between the versions
    for (int64_t q = 0; q < NB; ++q) load(bv[q], b + k * ldb + q * kLanes<T>);
    const T* ar = a + ka[k];
    for (int64_t p = 0; p < NP; ++p) {
      V av;
      splat(Isa{}, av, ar[p * st]);
      for (int64_t q = 0; q < NB; ++q) fma_into(Isa{}, acc[q][p], av, bv[q]);
    }
  }
  for (int64_t p = 0; p < NP; ++p)
    for (int64_t q = 0; q < NB; ++q) store(out + p * ldo + q * kLanes<T>, acc[q][p]);
}

// Lane blocks of b's ldb columns for NB blocks at a time, pixels in blocks of kPixBlock then one at a time.
template <typename Isa, typename T, int64_t NB, int64_t S>
JEBM_ALWAYS_INLINE int64_t row_blocks(const T* a, int64_t as, const int64_t* ka, int64_t nk, const T* b, int64_t ldb,
                                      int64_t n, T* out, int64_t lb) {
  for (; lb + NB * kLanes<T> <= ldb; lb += NB * kLanes<T>) {
    int64_t p = 0;
    for (; p + kPixBlock<Isa> <= n; p += kPixBlock<Isa>)
      block_kernel<Isa, T, kPixBlock<Isa>, NB, S>(a + p * as, as, ka, nk, b + lb, ldb, out + p * ldb + lb, ldb);
    for (; p < n; ++p) block_kernel<Isa, T, 1, NB, S>(a + p * as, as, ka, nk, b + lb, ldb, out + p * ldb + lb, ldb);
  }
  return lb;
}

// One row of outputs [n, ldo]: in AVX-512, two lane blocks at a time where there are two; then one at a time.
template <typename Isa, typename T, int64_t S>
JEBM_ALWAYS_INLINE void row_kernel(const T* a, int64_t as, const int64_t* ka, int64_t nk, const T* b, int64_t ldb,
                                   int64_t n, T* out) {
  int64_t lb = 0;
  if constexpr (std::is_same_v<Isa, conv_direct::IsaAvx512>)
    lb = row_blocks<Isa, T, 2, S>(a, as, ka, nk, b, ldb, n, out, lb);
  row_blocks<Isa, T, 1, S>(a, as, ka, nk, b, ldb, n, out, lb);
}

// out[i] = column i of the 8 x 8 float32 block at src (rows ls apart), in AVX registers: unpacks, then shuffles,
// then 128-bit lane swaps. Used by the forward's output rows (transpose8_add) and the filter gradient's grad_y
// (transpose8).
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

// dst[i * ld + j] = src[j * ls + i] + b[i] for i, j < 8 (b null: + 0): the forward's output row from its [pixels,
// filters] accumulators (element by element, about a tenth of MNIST conv2's forward on a Zen 3). The same additions
// as the element loop, so the same bits.
__attribute__((target("avx2,fma"))) inline void transpose8_add(const float* __restrict src, int64_t ls,
                                                                const float* b, float* __restrict dst, int64_t ld) {
  __m256 col[8];
  transpose8_columns(src, ls, col);
  for (int i = 0; i < 8; ++i) _mm256_storeu_ps(dst + i * ld, _mm256_add_ps(col[i], _mm256_set1_ps(b ? b[i] : 0.0f)));
}

// One sample's forward. wt: the weights as [C*KH*KW, FP] (F padded with zero filters to whole vectors); xoff: each
// tap's offset in the padded sample; acc: one output row as [OW, FP]; y_n: [F, OH, OW].
template <typename Isa, typename T>
JEBM_ALWAYS_INLINE void forward_sample(const Geo& g, const T* __restrict xn, const T* __restrict wt,
                                       const int64_t* xoff, const T* bias, T* __restrict yn, T* __restrict xpad,
                                       T* __restrict acc) {
  const int64_t fp = round_up(g.f, kLanes<T>), ow = g.ow;
  pad_sample(g, xn, xpad);
  for (int64_t oy = 0; oy < g.oh; ++oy) {
    const T* a = xpad + oy * g.s * g.wp();
    if (g.s == 1) row_kernel<Isa, T, 1>(a, 1, xoff, g.ckk(), wt, fp, ow, acc);
    else if (g.s == 2) row_kernel<Isa, T, 2>(a, 2, xoff, g.ckk(), wt, fp, ow, acc);  // the MNIST CNN's
    else row_kernel<Isa, T, 0>(a, g.s, xoff, g.ckk(), wt, fp, ow, acc);
    int64_t f = 0, ob = 0;  // filters and columns the 8 x 8 blocks cover
    if constexpr (!std::is_same_v<Isa, conv_direct::IsaBase> && sizeof(T) == 4) {  // AVX-512 has AVX2 and FMA
      ob = ow / 8 * 8;
      for (; f + 8 <= g.f; f += 8)
        for (int64_t ox = 0; ox < ob; ox += 8) transpose8_add(acc + ox * fp + f, fp, bias ? bias + f : nullptr,
                                                              yn + f * g.p() + oy * ow + ox, g.p());
    }
    for (int64_t fr = 0; fr < g.f; ++fr) {
      const T b = bias ? bias[fr] : T(0);
      T* d = yn + fr * g.p() + oy * ow;
      for (int64_t ox = fr < f ? ob : 0; ox < ow; ++ox) d[ox] = acc[ox * fp + fr] + b;
    }
  }
}

// part[t, 0..kLanes) += sum over the sample's pixels p of x(p, tap t) * gyt[p, 0..kLanes), for the NR * KW taps of
// NR runs of KW consecutive taps (whole kernel rows where KW is the kernel's width, single taps where KW = 1): the
// taps' accumulators stay in registers while the pixels stream by. Tap (r, j) lies at roff[r * KW] + j in the padded
// sample, poff[p] is pixel p's window corner. With KW a constant, the j-th tap's input is a constant displacement
// from its row's, so a block needs NR offsets in registers, not NR * KW: with 15 run-time offsets the AVX-512
// version ran out of general registers, parked them in xmm registers and moved one back (vmovq, on an FMA port)
// before every multiply-add. The blocks do not change any sum's order, so the same bits.
template <typename Isa, typename T, int64_t NR, int64_t KW>
JEBM_ALWAYS_INLINE void filter_block_rows(const T* __restrict xpad, const int64_t* __restrict roff,
                                          const int64_t* __restrict poff, int64_t np, const T* __restrict gyt,
                                          int64_t fp, T* __restrict part) {
  using V = conv_direct::reg_t<Isa, T>;
  V acc[NR * KW];
  for (int64_t t = 0; t < NR * KW; ++t) acc[t] = V{};
  int64_t ro[NR];
  for (int64_t r = 0; r < NR; ++r) ro[r] = roff[r * KW];
  for (int64_t p = 0; p < np; ++p) {
    V gv;
    load(gv, gyt + p * fp);
    const T* xr = xpad + poff[p];
    for (int64_t r = 0; r < NR; ++r) {
      const T* xrr = xr + ro[r];
      for (int64_t j = 0; j < KW; ++j) {
        V xv;
        splat(Isa{}, xv, xrr[j]);
        fma_into(Isa{}, acc[r * KW + j], xv, gv);
      }
    }
  }
  for (int64_t t = 0; t < NR * KW; ++t) {
    V v;
    load(v, part + t * fp);
    add_into(Isa{}, v, acc[t]);
    store(part + t * fp, v);
  }
}

// filter_block_rows for nr (1 to NMAX) runs, chosen at run time.
template <typename Isa, typename T, int64_t KW, int64_t NMAX>
JEBM_ALWAYS_INLINE void filter_rows(int64_t nr, const T* xpad, const int64_t* roff, const int64_t* poff, int64_t np,
                                    const T* gyt, int64_t fp, T* part) {
  if constexpr (NMAX >= 1) {
    if (nr == NMAX) return filter_block_rows<Isa, T, NMAX, KW>(xpad, roff, poff, np, gyt, fp, part);
    return filter_rows<Isa, T, KW, NMAX - 1>(nr, xpad, roff, poff, np, gyt, fp, part);
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

// gyt [P, FP] = grad_y_n [F, P] transposed, zero filters padding F. Element by element it took about 40 % of the
// filter gradient of MNIST's conv1; the AVX-512 float32 version moves whole 16 x 16 blocks in registers, the FMA
// version 8 x 8 blocks. A copy, so every version gives the same bits.
template <typename Isa, typename T>
JEBM_ALWAYS_INLINE void transpose_grad_y(const Geo& g, const T* __restrict gyn, T* __restrict gyt) {
  const int64_t fp = round_up(g.f, kLanes<T>), np = g.p();
  int64_t fb = 0, pb = 0;  // filters and pixels the blocks cover
  if constexpr (std::is_same_v<Isa, conv_direct::IsaAvx512> && sizeof(T) == 4) {
    fb = g.f / 16 * 16;
    pb = np / 16 * 16;
    for (int64_t f0 = 0; f0 < fb; f0 += 16)
      for (int64_t p0 = 0; p0 < pb; p0 += 16) transpose16(gyn + f0 * np + p0, np, gyt + p0 * fp + f0, fp);
  } else if constexpr (std::is_same_v<Isa, conv_direct::IsaFma> && sizeof(T) == 4) {
    fb = g.f / 8 * 8;
    pb = np / 8 * 8;
    for (int64_t f0 = 0; f0 < fb; f0 += 8)
      for (int64_t p0 = 0; p0 < pb; p0 += 8) transpose8(gyn + f0 * np + p0, np, gyt + p0 * fp + f0, fp);
  }
  for (int64_t p = 0; p < np; ++p) {
    for (int64_t f = p < pb ? fb : 0; f < g.f; ++f) gyt[p * fp + f] = gyn[f * np + p];
    for (int64_t f = g.f; f < fp; ++f) gyt[p * fp + f] = T(0);
  }
}

// One sample's filter gradient added into part [C*KH*KW, FP]: grad_y_n [F, P] is transposed into gyt [P, FP], then
// taps in blocks against every pixel: whole kernel rows for the 3- and 5-wide kernels (MNIST, CIFAR-10), single taps
// otherwise. The blocks are as even as the register budget allows (16 taps' accumulators in AVX-512, 8 in the
// portable code, 6 in the FMA version, whose vectors take two of its 16 ymm registers: 8 spilled, and on a Zen 3 at
// one thread conv1 took 1.5-1.6 ms with 8, 1.05-1.12 with 6; conv2 3.6 and 2.2-2.3): each tap's sum is a chain of
// dependent fused multiply-adds, and a block of fewer than about 8 taps waits on them (MNIST's conv1, 5 rows of 5
// taps: 3 + 2 rows in AVX-512). The blocks do not change any sum's order.
template <typename Isa, typename T>
JEBM_ALWAYS_INLINE void backward_filter_sample(const Geo& g, const T* __restrict xn, const T* __restrict gyn,
                                               const int64_t* xoff, const int64_t* poff, T* __restrict part,
                                               T* __restrict xpad, T* __restrict gyt) {
  constexpr int64_t kMaxTaps = std::is_same_v<Isa, conv_direct::IsaAvx512> ? 16
                               : std::is_same_v<Isa, conv_direct::IsaFma>  ? 6
                                                                           : 8;
  const int64_t fp = round_up(g.f, kLanes<T>), np = g.p();
  const int64_t kw = g.kw == 3 || g.kw == 5 ? g.kw : 1, runs = g.ckk() / kw, per = kMaxTaps / kw;
  const int64_t blocks = (runs + per - 1) / per;
  pad_sample(g, xn, xpad);
  transpose_grad_y<Isa>(g, gyn, gyt);
  for (int64_t lb = 0; lb < fp; lb += kLanes<T>)
    for (int64_t b = 0, r = 0; b < blocks; ++b) {
      const int64_t n = runs / blocks + (b < runs % blocks ? 1 : 0), t = r * kw;
      const T* gb = gyt + lb;
      T* pb = part + t * fp + lb;
      if (kw == 3) filter_rows<Isa, T, 3, kMaxTaps / 3>(n, xpad, xoff + t, poff, np, gb, fp, pb);
      else if (kw == 5) filter_rows<Isa, T, 5, kMaxTaps / 5>(n, xpad, xoff + t, poff, np, gb, fp, pb);
      else filter_rows<Isa, T, 1, kMaxTaps>(n, xpad, xoff + t, poff, np, gb, fp, pb);
      r += n;
    }
}

// The entry points per instruction set, flattened (everything inlined, so compiled for that set), and the one
// conv_direct::isa() picks.
#define JEBM_FWD_ENTRY(name, attrs, isa, T)                                                                    \
  attrs void name(const Geo& g, const T* xn, const T* wt, const int64_t* xoff, const T* b, T* yn, T* xp, T* acc) { \
    forward_sample<isa, T>(g, xn, wt, xoff, b, yn, xp, acc);                                                     \
  }
#define JEBM_FILTER_ENTRY(name, attrs, isa, T)                                                           \
  attrs void name(const Geo& g, const T* xn, const T* gyn, const int64_t* xoff, const int64_t* poff, T* part, \
                  T* xpad, T* gyt) {                                                                        \
    backward_filter_sample<isa, T>(g, xn, gyn, xoff, poff, part, xpad, gyt);                                \
  }
JEBM_CONV_DIRECT_ENTRIES(JEBM_FWD_ENTRY, forward)
JEBM_CONV_DIRECT_ENTRIES(JEBM_FILTER_ENTRY, filter)
#undef JEBM_FILTER_ENTRY
#undef JEBM_FWD_ENTRY

JEBM_CONV_DIRECT_PICKER(forward_fn, forward)
JEBM_CONV_DIRECT_PICKER(filter_fn, filter)

std::atomic<int> forced_isa{-1};
std::atomic<int> forced_layout{-1};

// Tap (c, i, j) -> its offset from a window's corner in the padded sample.
std::vector<int64_t> tap_offsets(const Geo& g) {
  std::vector<int64_t> xoff;
  for (int64_t c = 0; c < g.c; ++c)
    for (int64_t i = 0; i < g.kh; ++i)
      for (int64_t j = 0; j < g.kw; ++j) xoff.push_back((c * g.hp() + i) * g.wp() + j);
  return xoff;
}

// Whether the forward's lanes hold output columns (else filters): output rows of at least one float32 vector.
bool columns_fit(int64_t ow) { return ow >= kColumnsMinWidth; }
bool forward_by_columns(const Geo& g) {
  const int forced = forced_layout.load(std::memory_order_relaxed);
  return forced >= 0 ? forced == 1 : columns_fit(g.ow);
}

template <typename T>
void forward_typed(const Tensor& x, const Tensor& w, const Tensor& bias, const Conv2dParams& prm, Tensor& y) {
  const Geo g = geo(x.shape(), w.shape(), y.shape(), prm);
  const int64_t n = x.size(0), fp = round_up(g.f, kLanes<T>);
  const std::vector<T> wt = conv_direct::weights_by_tap(w.data<T>(), g.f, g.ckk(), fp);  // [CKK, FP]
  const T* xp = x.data<T>();
  const T* bp = bias.defined() ? bias.data<T>() : nullptr;
  T* yp = y.data<T>();
  const std::vector<int64_t> xoff = tap_offsets(g);
  const auto run = forward_fn<T>();
  for_samples(n, n * g.p() * g.ckk() * g.f, [&](int64_t i) {
    T* xpad = buffer<T>(0, g.c * g.hp() * g.wp());
    T* acc = buffer<T>(1, g.ow * fp);
    run(g, xp + i * g.c * g.h * g.w, wt.data(), xoff.data(), bp, yp + i * g.f * g.p(), xpad, acc);
  });
}

// Samples go to kFilterSlots fixed partial sums (sample i to slot i mod S, in sample order), the slots are then
// added in slot order: S depends only on the batch size, so the result does not depend on the thread count.
template <typename T>
void backward_filter_typed(const Tensor& gy, const Tensor& x, const Conv2dParams& prm, Tensor& gw) {
  const Geo g = geo(x.shape(), gw.shape(), gy.shape(), prm);
  const int64_t n = x.size(0), ckk = g.ckk(), fp = round_up(g.f, kLanes<T>);
  const int64_t slots = std::clamp<int64_t>(n, 1, kFilterSlots), part_size = ckk * fp;
  std::vector<T> part(static_cast<size_t>(slots * part_size), T(0));  // [S, CKK, FP]
  const std::vector<int64_t> xoff = tap_offsets(g);
  std::vector<int64_t> poff;  // pixel (oy, ox) -> its window's corner in the padded sample
  for (int64_t oy = 0; oy < g.oh; ++oy)
    for (int64_t ox = 0; ox < g.ow; ++ox) poff.push_back(oy * g.s * g.wp() + ox * g.s);
  const T* xp = x.data<T>();
  const T* gyp = gy.data<T>();
  const auto run = filter_fn<T>();
#pragma omp parallel for schedule(static) if (slots > 1 && n * g.p() * ckk * g.f >= kParallelMin)
  for (int64_t sl = 0; sl < slots; ++sl) {
    T* xpad = buffer<T>(0, g.c * g.hp() * g.wp());
    T* gyt = buffer<T>(2, g.p() * fp);
    for (int64_t i = sl; i < n; i += slots)
      run(g, xp + i * g.c * g.h * g.w, gyp + i * g.f * g.p(), xoff.data(), poff.data(),
                          part.data() + sl * part_size, xpad, gyt);
  }
  T* gwp = gw.data<T>();  // [F, CKK]
  for (int64_t f = 0; f < g.f; ++f)
    for (int64_t k = 0; k < ckk; ++k) {
      T v = part[static_cast<size_t>(k * fp + f)];
      for (int64_t sl = 1; sl < slots; ++sl) v += part[static_cast<size_t>(sl * part_size + k * fp + f)];
      gwp[f * ckk + k] = v;
    }
}

}  // namespace

namespace conv_direct {
int isa() {
  static const int best = cpu_features().avx512f ? 2 : cpu_features().avx2_fma ? 1 : 0;
  const int forced = forced_isa.load(std::memory_order_relaxed);
  return forced < 0 ? best : std::min(forced, best);
}
}  // namespace conv_direct

void conv2d_direct_force_isa(int isa) { forced_isa.store(isa); }
void conv2d_direct_force_forward_layout(int layout) { forced_layout.store(layout); }

bool conv2d_direct_forward_fits(const Shape& x, const Shape& w, const Conv2dParams& p) {
  const int64_t ow = (x[3] + 2 * p.padding - w[3]) / p.stride + 1;
  return x[1] * w[2] * w[3] <= kDirectMaxCkk && ((w[0] <= kDirectMaxFilters && ow >= kPix) || columns_fit(ow));
}
bool conv2d_direct_backward_data_fits(const Shape& x, const Shape& w, const Conv2dParams& p) {
  return x[1] * w[2] * w[3] <= kDirectMaxCkk && x[3] >= kDirectDataMinWidth;
}
bool conv2d_direct_backward_filter_fits(const Shape& x, const Shape& w, const Conv2dParams& p) {
  return x[1] * w[2] * w[3] <= kDirectMaxCkk && w[0] <= kDirectMaxFilters;
}

void conv2d_direct_forward(const Tensor& x, const Tensor& w, const Tensor& bias, const Conv2dParams& p, Tensor& y) {
  if (forward_by_columns(geo(x.shape(), w.shape(), y.shape(), p)))
    return conv2d_direct_forward_columns(x, w, bias, p, y);
  JEBM_DISPATCH_FLOAT(x.dtype(), "conv2d", [&] { forward_typed<scalar_t>(x, w, bias, p, y); });
}

void conv2d_direct_backward_filter(const Tensor& grad_y, const Tensor& x, const Conv2dParams& p, Tensor& grad_w) {
  JEBM_DISPATCH_FLOAT(grad_y.dtype(), "conv2d_backward_filter",
                      [&] { backward_filter_typed<scalar_t>(grad_y, x, p, grad_w); });
}

}  // namespace jebm::cpu
