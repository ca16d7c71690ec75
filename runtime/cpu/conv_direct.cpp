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
using conv_direct::for_samples;
using conv_direct::kLanes;
using conv_direct::load;
using conv_direct::round_up;
using conv_direct::splat;
using conv_direct::store;
using conv_direct::transpose8_columns;
using conv_direct::vec_t;

// Which layers go direct, measured at one thread in float32 against OpenBLAS's SkylakeX kernels (docs/performance.md,
// "Thin convolutions"). Forward and filter gradient: the MNIST CNN's conv1 (C*KH*KW = 25, 16 filters) and conv2
// (144, 32 filters) are faster direct (conv2's filter gradient ties); the per-sample kernels were slower than the GEMM
// on MNIST's conv3 (288), conv4 (576) and the CIFAR-10 CNN's filter gradient at conv1 (27 but 64 filters, a GEMM
// tall enough). The forward with lanes over filters also needs output rows at least one pixel block long (on rows of
// 5 it took twice the GEMM's time); with lanes over output columns, which it takes for rows of 16 and more (MNIST's
// conv1 at 28x28, CIFAR-10's conv1), any filter count (on rows of 8 and 9 it was slower than lanes over filters).
// Input gradient: conv1 and conv2 at 28x28 and 14x14 and CIFAR-10's conv1 are faster direct. Since 2026-12-08 the
// layouts by the plane (below) take MNIST's conv3 and conv4 and the short rows, faster than the GEMM.
constexpr int64_t kDirectMaxCkk = 144;
constexpr int64_t kDirectMaxFilters = 32;
constexpr int64_t kDirectDataMinWidth = 8;  // input rows: half a float32 vector at least
constexpr int64_t kFilterSlots = 8;  // partial filter-gradient sums
constexpr int64_t kColumnsMinWidth = 16;  // output rows the forward takes by columns
// Layers the layouts by the plane take, up to kPlaneMaxCkk taps and kPlaneMaxFilters filters: the forward for output
// rows shorter than a pixel block; the input gradient, with channels for a vector, past kDirectMaxCkk taps or on
// input rows narrower than kPlaneDataWidth; the filter gradient past kDirectMaxCkk taps or on small output planes
// (conv2d_direct_backward_filter_by_plane). Measured at one thread on MNIST's layers (docs/performance.md,
// "Convolutions by the plane"): faster than im2col + OpenBLAS on conv3 and conv4, and than the other direct layouts
// on conv2 at 14x14 (input gradient 2.15-2.21 ms by phases, 0.59-0.62 by the plane), not at 28x28 (1.79-1.80
// against 1.91-1.92).
constexpr int64_t kPlaneMaxCkk = 576;
constexpr int64_t kPlaneMaxFilters = 64;
constexpr int64_t kPlaneDataWidth = 16;
constexpr int64_t kPlaneFilterPixels = 32;
constexpr int64_t kPlaneGroupPixels = 64;       // the forward by pixels of the plane: pixels per group of samples
constexpr int64_t kPlaneChunkBytes = 24 << 10;  // and weights per chunk of taps

using conv_direct::Geo;
using conv_direct::geo;
using conv_direct::pad_sample;
using conv_direct::tap_offsets;

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

// The forward of a group of samples by pixels of the plane: acc [G*P, FP] over the group's pixels (pix: each one's
// window corner, in its sample's padded copy), then each y_n [F, P] = its rows of acc transposed + bias, as
// forward_sample does with one row.
// The taps go in chunks of kc, whose weights stay in L1 while every pixel block goes by, each chunk's sums continued
// from the previous chunk's: the same chains.
template <typename Isa, typename T>
JEBM_ALWAYS_INLINE void forward_plane_group(const Geo& g, int64_t gn, const T* __restrict wt, const int64_t* xoff,
                                            int64_t kc, const T* bias, T* __restrict yn, T* __restrict acc,
                                            const T* const* pix, T* const* outs) {
  const int64_t fp = round_up(g.f, kLanes<T>), np = g.p(), nk = g.ckk();
  for (int64_t k0 = 0; k0 < nk; k0 += kc)
    conv_direct::plane_all_lanes<Isa, T>(k0 > 0 ? conv_direct::PlaneSum::kContinue : conv_direct::PlaneSum::kStore, pix,
                                         outs, gn * np, xoff + k0, std::min(kc, nk - k0), wt + k0 * fp, fp);
  for (int64_t i = 0; i < gn; ++i) {
    const T* ai = acc + i * np * fp;
    T* yi = yn + i * g.f * np;
    int64_t f = 0, ob = 0;
    if constexpr (!std::is_same_v<Isa, conv_direct::IsaBase> && sizeof(T) == 4) {
      ob = np / 8 * 8;
      for (; f + 8 <= g.f; f += 8)
        for (int64_t p = 0; p < ob; p += 8)
          transpose8_add(ai + p * fp + f, fp, bias ? bias + f : nullptr, yi + f * np + p, np);
    }
    for (int64_t fr = 0; fr < g.f; ++fr) {
      const T bv = bias ? bias[fr] : T(0);
      for (int64_t p = fr < f ? ob : 0; p < np; ++p) yi[fr * np + p] = ai[p * fp + fr] + bv;
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
  conv_direct::transpose_grad_y<Isa>(g, gyn, gyt);
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
#define JEBM_PLANE_ENTRY(name, attrs, isa, T)                                                                        \
  attrs void name(const Geo& g, int64_t gn, const T* wt, const int64_t* xoff, int64_t kc, const T* b, T* yn, T* acc, \
                  const T* const* pix, T* const* outs) {                                                             \
    forward_plane_group<isa, T>(g, gn, wt, xoff, kc, b, yn, acc, pix, outs);                                         \
  }
JEBM_CONV_DIRECT_ENTRIES(JEBM_FWD_ENTRY, forward)
JEBM_CONV_DIRECT_ENTRIES(JEBM_PLANE_ENTRY, plane)
#undef JEBM_PLANE_ENTRY
JEBM_CONV_DIRECT_ENTRIES(JEBM_FILTER_ENTRY, filter)
#undef JEBM_FILTER_ENTRY
#undef JEBM_FWD_ENTRY

JEBM_CONV_DIRECT_PICKER(forward_fn, forward)
JEBM_CONV_DIRECT_PICKER(plane_fn, plane)
JEBM_CONV_DIRECT_PICKER(filter_fn, filter)

std::atomic<int> forced_isa{-1};
std::atomic<int> forced_layout{-1};
std::atomic<int> forced_filter_layout{-1};

// Whether the forward's lanes hold output columns (else filters): output rows of at least one float32 vector.
bool columns_fit(int64_t ow) { return ow >= kColumnsMinWidth; }
// Whether the forward's pixel blocks come from the whole output plane: rows shorter than a pixel block.
bool forward_by_plane(const Geo& g) {
  const int forced = forced_layout.load(std::memory_order_relaxed);
  return forced >= 0 ? forced == 2 : g.ow < kPix;
}
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
  if (forward_by_plane(g)) {
    // Groups of samples with enough pixels to amortise each weight chunk; taps in chunks of about 24 KB of weights.
    const int64_t gs = std::clamp<int64_t>(kPlaneGroupPixels / std::max<int64_t>(1, g.p()), 1, std::max<int64_t>(n, 1));
    const int64_t groups = (n + gs - 1) / gs;
    const int64_t kc = std::max<int64_t>(1, kPlaneChunkBytes / (fp * int64_t{sizeof(T)}));
    const int64_t spad = g.c * g.hp() * g.wp();
    const auto run = plane_fn<T>();
    for_samples(groups, n * g.p() * g.ckk() * g.f, [&](int64_t grp) {
      const int64_t i0 = grp * gs, gn = std::min(gs, n - i0);
      thread_local std::vector<const T*> pix;
      thread_local std::vector<T*> outs;
      pix.resize(static_cast<size_t>(gn * g.p()));
      outs.resize(pix.size());
      T* xpad = buffer<T>(0, gn * spad);
      T* acc = buffer<T>(1, gn * g.p() * fp);
      for (size_t q = 0; q < outs.size(); ++q) outs[q] = acc + static_cast<int64_t>(q) * fp;
      for (int64_t i = 0; i < gn; ++i) {
        pad_sample(g, xp + (i0 + i) * g.c * g.h * g.w, xpad + i * spad);
        for (int64_t oy = 0, q = i * g.p(); oy < g.oh; ++oy)
          for (int64_t ox = 0; ox < g.ow; ++ox, ++q)
            pix[static_cast<size_t>(q)] = xpad + i * spad + oy * g.s * g.wp() + ox * g.s;
      }
      run(g, gn, wt.data(), xoff.data(), kc, bp, yp + i0 * g.f * g.p(), acc, pix.data(), outs.data());
    });
    return;
  }
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
  const int64_t ow = (x[3] + 2 * p.padding - w[3]) / p.stride + 1, ckk = x[1] * w[2] * w[3];
  if (ow < kPix) return ckk <= kPlaneMaxCkk && w[0] <= kPlaneMaxFilters;  // by pixels of the plane
  return ckk <= kDirectMaxCkk && (w[0] <= kDirectMaxFilters || columns_fit(ow));
}
bool conv2d_direct_backward_data_fits(const Shape& x, const Shape& w, const Conv2dParams& p) {
  return (x[1] * w[2] * w[3] <= kDirectMaxCkk && x[3] >= kDirectDataMinWidth) ||
         conv2d_direct_backward_data_by_plane(x, w);
}
bool conv2d_direct_backward_data_by_plane(const Shape& x, const Shape& w) {
  const int64_t ckk = x[1] * w[2] * w[3];
  return (ckk > kDirectMaxCkk || x[3] < kPlaneDataWidth) && ckk <= kPlaneMaxCkk && w[0] <= kPlaneMaxFilters &&
         x[1] >= conv_direct::kLanes<float>;
}
// The filter gradient goes by taps of the plane for more taps than the per-sample kernel takes, or output planes
// smaller than kPlaneFilterPixels (its per-sample blocks then run short: MNIST's conv2 on 14x14 digits, 25 pixels,
// 0.70-0.73 ms against 0.54-0.56 by taps; on 28x28, 64 pixels, within noise: 1.56-1.61 against 1.41-1.50 in one
// sitting, the other way in another), and filters for a vector at least (CIFAR-10's conv1, 27 taps and 64 filters,
// stays with the GEMM, measured faster there).
bool conv2d_direct_backward_filter_by_plane(const Shape& x, const Shape& w, const Conv2dParams& p) {
  const int64_t ckk = x[1] * w[2] * w[3];
  const int64_t oh = (x[2] + 2 * p.padding - w[2]) / p.stride + 1, ow = (x[3] + 2 * p.padding - w[3]) / p.stride + 1;
  return (ckk > kDirectMaxCkk || oh * ow < kPlaneFilterPixels) && ckk <= kPlaneMaxCkk && w[0] <= kPlaneMaxFilters &&
         w[0] >= conv_direct::kLanes<float>;
}
bool conv2d_direct_backward_filter_fits(const Shape& x, const Shape& w, const Conv2dParams& p) {
  return (x[1] * w[2] * w[3] <= kDirectMaxCkk && w[0] <= kDirectMaxFilters) ||
         conv2d_direct_backward_filter_by_plane(x, w, p);
}

void conv2d_direct_forward(const Tensor& x, const Tensor& w, const Tensor& bias, const Conv2dParams& p, Tensor& y) {
  if (forward_by_columns(geo(x.shape(), w.shape(), y.shape(), p)))
    return conv2d_direct_forward_columns(x, w, bias, p, y);
  JEBM_DISPATCH_FLOAT(x.dtype(), "conv2d", [&] { forward_typed<scalar_t>(x, w, bias, p, y); });
}

void conv2d_direct_force_backward_filter_layout(int layout) { forced_filter_layout.store(layout); }

void conv2d_direct_backward_filter(const Tensor& grad_y, const Tensor& x, const Conv2dParams& p, Tensor& grad_w) {
  const int forced = forced_filter_layout.load(std::memory_order_relaxed);
  if (forced == 1 || (forced < 0 && conv2d_direct_backward_filter_by_plane(x.shape(), grad_w.shape(), p)))
    return conv2d_direct_backward_filter_plane(grad_y, x, p, grad_w);
  JEBM_DISPATCH_FLOAT(grad_y.dtype(), "conv2d_backward_filter",
                      [&] { backward_filter_typed<scalar_t>(grad_y, x, p, grad_w); });
}

}  // namespace jebm::cpu
