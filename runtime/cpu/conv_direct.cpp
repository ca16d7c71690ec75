// Direct conv2d (NCHW) for thin layers: forward and backward-filter without im2col, per sample, in AVX-512 / FMA /
// portable versions picked at load time, and which shapes take the direct path (the input gradient's kernel is in
// runtime/cpu/conv_direct_backward_data.cpp). Tested by tests/test_conv_direct.cpp (against the im2col path and the
// 7-loop references, float32 and float64, the same bits at 1 and 2 threads and in every version) and
// tests/test_ops.cpp.
//
// A layer like MNIST's first (1 -> 16 channels, 5x5) gives im2col + GEMM a K of 25: packing and loop overhead
// dominate. Here each sample is copied once into a zero-padded buffer, so no tap tests bounds; the innermost step
// is one vector of filters (forward, weights as [C*KH*KW, F]; backward-filter, grad_y as [P, F]) times one input
// value, fused multiply-added into one of kPix pixels' (or taps') accumulators held in registers. Where output rows
// fill a vector, the forward's lanes hold output columns instead (forward_columns_sample). Every version
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
#include "runtime/cpu/conv_direct_parts.hpp"

namespace jebm::cpu {
namespace {

using conv_direct::buffer;
using conv_direct::fma_into;
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

struct Geo {
  int64_t c, h, w, f, kh, kw, oh, ow, s, pad;
  int64_t hp() const { return h + 2 * pad; }
  int64_t wp() const { return w + 2 * pad; }
  int64_t ckk() const { return c * kh * kw; }
  int64_t p() const { return oh * ow; }
};

Geo geo(const Shape& x, const Shape& w, const Shape& y, const Conv2dParams& p) {
  return {x[1], x[2], x[3], w[0], w[2], w[3], y[2], y[3], p.stride, p.padding};
}


// x_n [C, H, W] -> xpad [C, HP, WP], zeros around.
template <typename T>
JEBM_ALWAYS_INLINE void pad_sample(const Geo& g, const T* xn, T* xpad) {
  std::fill(xpad, xpad + g.c * g.hp() * g.wp(), T(0));
  for (int64_t c = 0; c < g.c; ++c)
    for (int64_t y = 0; y < g.h; ++y) {
      const T* s = xn + (c * g.h + y) * g.w;
      T* d = xpad + (c * g.hp() + y + g.pad) * g.wp() + g.pad;
      for (int64_t x = 0; x < g.w; ++x) d[x] = s[x];
    }
}

// Filters in blocks of one 64-byte vector, and output pixels along a row in blocks of kPix: kPix x kLanes
// accumulators stay in registers while the taps stream by, each tap one vector load.
constexpr int64_t kPix = 8;

// out[p, 0..kLanes) = sum over k < nk of a(p, k) * b[k * ldb + 0..kLanes), for NP pixels p, where a(p, k) =
// a[p * as + ka[k]]: the lanes are filters, a the padded input row, ka the taps' offsets.
template <typename Isa, typename T, int64_t NP>
JEBM_ALWAYS_INLINE void block_kernel(const T* __restrict a, int64_t as, const int64_t* __restrict ka, int64_t nk,
                         const T* __restrict b, int64_t ldb, T* __restrict out, int64_t ldo) {
  vec_t<T> acc[NP];
  for (int64_t p = 0; p < NP; ++p) acc[p] = vec_t<T>{};
  for (int64_t k = 0; k < nk; ++k) {
    vec_t<T> bv;  // no function returns a vec_t: its ABI differs between the versions
    std::memcpy(&bv, b + k * ldb, sizeof bv);
    const T* ar = a + ka[k];
    for (int64_t p = 0; p < NP; ++p) {
      vec_t<T> av;
      splat(Isa{}, av, ar[p * as]);
      fma_into(Isa{}, acc[p], av, bv);
    }
  }
  for (int64_t p = 0; p < NP; ++p) std::memcpy(out + p * ldo, &acc[p], sizeof acc[p]);
}

// One row of outputs [n, ldo] (lane blocks of b's ldb columns), pixels in blocks of kPix then one at a time.
template <typename Isa, typename T>
JEBM_ALWAYS_INLINE void row_kernel(const T* a, int64_t as, const int64_t* ka, int64_t nk, const T* b, int64_t ldb,
                                   int64_t n, T* out) {
  for (int64_t lb = 0; lb < ldb; lb += kLanes<T>) {
    int64_t p = 0;
    for (; p + kPix <= n; p += kPix)
      block_kernel<Isa, T, kPix>(a + p * as, as, ka, nk, b + lb, ldb, out + p * ldb + lb, ldb);
    for (; p < n; ++p) block_kernel<Isa, T, 1>(a + p * as, as, ka, nk, b + lb, ldb, out + p * ldb + lb, ldb);
  }
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
    row_kernel<Isa, T>(xpad + oy * g.s * g.wp(), g.s, xoff, g.ckk(), wt, fp, ow, acc);
    for (int64_t f = 0; f < g.f; ++f) {
      const T b = bias ? bias[f] : T(0);
      T* d = yn + f * g.p() + oy * ow;
      for (int64_t ox = 0; ox < ow; ++ox) d[ox] = acc[ox * fp + f] + b;
    }
  }
}

// --- the forward with lanes over output columns ----------------------------------------------------------------
// Where output rows fill vectors (MNIST's conv1 at 28x28: one input channel, 16 outputs per row), the lanes hold
// output columns instead of filters: each tap is one vector load of input, times each filter's weight broadcast,
// into one accumulator per filter, and the accumulators are stored straight into y's rows (no transposition). The
// sample is first copied into xph [C, HP, s, WQ]: padded row Y's phase r holds the padded row's element s*m + r at
// m, so tap (c, i, j) of the outputs from column x0 on is the load at xph[c, oy*s + i, j mod s, x0 + j div s].
// Every output sums the same fused products in the same tap order from zero, then adds the bias, as forward_sample
// does: the two layouts give the same bits.

// How many padded columns per phase: the last vector of outputs reads up to (KW - 1) div s past its end.
int64_t phase_width(const Geo& g, int64_t lanes) { return round_up(g.ow, lanes) + (g.kw - 1) / g.s; }

// d_r[m] = row[S*m + r] for r < S, m < wq: one padded row into its phases. S = 2 (the MNIST CNN's stride) is a
// constant, so that the compiler can vectorise the strided reads.
template <int64_t S, typename T>
JEBM_ALWAYS_INLINE void deinterleave(const T* __restrict row, int64_t s, int64_t wq, T* __restrict d) {
  const int64_t st = S > 0 ? S : s;
  for (int64_t r = 0; r < st; ++r)
    for (int64_t m = 0; m < wq; ++m) d[r * wq + m] = row[st * m + r];
}

// x_n [C, H, W] -> xph [C, HP, s, WQ] (see above), zeros outside the input. Each input row is copied into a
// zero-padded row (whose margins stay zero), which is then split into its phases.
template <typename T>
JEBM_ALWAYS_INLINE void phase_sample(const Geo& g, int64_t wq, const T* __restrict xn, T* __restrict xph,
                                     T* __restrict row) {
  const int64_t s = g.s, len = s * wq;  // the padded row's columns that some window reads all lie below len
  const int64_t copy = std::clamp<int64_t>(len - g.pad, 0, g.w);
  std::fill(row, row + len, T(0));
  for (int64_t c = 0; c < g.c; ++c)
    for (int64_t y = 0; y < g.hp(); ++y) {
      T* d = xph + (c * g.hp() + y) * len;
      const int64_t iy = y - g.pad;
      if (iy < 0 || iy >= g.h) {
        std::fill(d, d + len, T(0));
        continue;
      }
      std::copy(xn + (c * g.h + iy) * g.w, xn + (c * g.h + iy) * g.w + copy, row + g.pad);
      if (s == 2) deinterleave<2>(row, s, wq, d);
      else deinterleave<0>(row, s, wq, d);
    }
}

// FB filters' outputs at one vector of columns: out[f * ostride + 0..nvalid) = sum over the taps k of
// xr[toff[k] + lane] * wt[k * fp + f], plus bias[f] (zero when there is none).
template <typename Isa, typename T, int FB>
JEBM_ALWAYS_INLINE void column_block(const T* __restrict xr, const int64_t* __restrict toff, int64_t nk,
                                     const T* __restrict wt, int64_t fp, const T* bias, int64_t nvalid,
                                     T* __restrict out, int64_t ostride) {
  vec_t<T> acc[FB];
  for (int f = 0; f < FB; ++f) acc[f] = vec_t<T>{};
  for (int64_t k = 0; k < nk; ++k) {
    vec_t<T> xv;
    std::memcpy(&xv, xr + toff[k], sizeof xv);
    const T* wk = wt + k * fp;
    for (int f = 0; f < FB; ++f) {
      vec_t<T> wv;
      splat(Isa{}, wv, wk[f]);
      fma_into(Isa{}, acc[f], xv, wv);
    }
  }
  for (int f = 0; f < FB; ++f) {
    vec_t<T> b;
    splat(Isa{}, b, bias ? bias[f] : T(0));
    acc[f] += b;
    if (nvalid == kLanes<T>) std::memcpy(out + f * ostride, &acc[f], sizeof acc[f]);
    else std::memcpy(out + f * ostride, &acc[f], static_cast<size_t>(nvalid) * sizeof(T));
  }
}

// One sample's forward by columns; wt, bias as forward_sample's; toff: tap (c, i, j)'s offset in xph from an
// output row's first input row and column; y_n: [F, OH, OW]; xph is followed by room for one padded row. AVX-512 holds 16 filters' accumulators in registers,
// the narrower versions 4 (their vectors take two or four registers each).
template <typename Isa, typename T>
JEBM_ALWAYS_INLINE void forward_columns_sample(const Geo& g, const T* __restrict xn, const T* __restrict wt,
                                               const int64_t* toff, const T* bias, T* __restrict yn,
                                               T* __restrict xph) {
  constexpr int64_t L = kLanes<T>;
  constexpr int FB = std::is_same_v<Isa, conv_direct::IsaAvx512> ? 16 : 4;
  const int64_t fp = round_up(g.f, L), wq = phase_width(g, L), np = g.p();
  phase_sample(g, wq, xn, xph, xph + g.c * g.hp() * g.s * wq);
  for (int64_t oy = 0; oy < g.oh; ++oy)
    for (int64_t x0 = 0; x0 < g.ow; x0 += L) {
      const T* xr = xph + oy * g.s * g.s * wq + x0;
      const int64_t nvalid = std::min(L, g.ow - x0);
      T* out = yn + oy * g.ow + x0;
      int64_t f = 0;
      for (; f + FB <= g.f; f += FB)
        column_block<Isa, T, FB>(xr, toff, g.ckk(), wt + f, fp, bias ? bias + f : nullptr, nvalid, out + f * np, np);
      for (; f < g.f; ++f)
        column_block<Isa, T, 1>(xr, toff, g.ckk(), wt + f, fp, bias ? bias + f : nullptr, nvalid, out + f * np, np);
    }
}

// part[t, 0..kLanes) += sum over the sample's pixels p of x(p, tap t) * gyt[p, 0..kLanes), for NT taps at once:
// the taps' accumulators stay in registers while the pixels stream by. toff: the taps' offsets in the padded sample,
// poff: each pixel's window corner.
template <typename Isa, typename T, int64_t NT>
JEBM_ALWAYS_INLINE void filter_block(const T* __restrict xpad, const int64_t* __restrict toff,
                                     const int64_t* __restrict poff, int64_t np, const T* __restrict gyt, int64_t fp,
                                     T* __restrict part) {
  vec_t<T> acc[NT];
  for (int64_t t = 0; t < NT; ++t) acc[t] = vec_t<T>{};
  for (int64_t p = 0; p < np; ++p) {
    vec_t<T> gv;
    std::memcpy(&gv, gyt + p * fp, sizeof gv);
    const T* xr = xpad + poff[p];
    for (int64_t t = 0; t < NT; ++t) {
      vec_t<T> xv;
      splat(Isa{}, xv, xr[toff[t]]);
      fma_into(Isa{}, acc[t], xv, gv);
    }
  }
  for (int64_t t = 0; t < NT; ++t) {
    vec_t<T> v;
    std::memcpy(&v, part + t * fp, sizeof v);
    v += acc[t];
    std::memcpy(part + t * fp, &v, sizeof v);
  }
}

// One sample's filter gradient added into part [C*KH*KW, FP]: grad_y_n [F, P] is transposed into gyt [P, FP] (zero
// filters padding F), then taps in blocks of kPix against every pixel.
template <typename Isa, typename T>
JEBM_ALWAYS_INLINE void backward_filter_sample(const Geo& g, const T* __restrict xn, const T* __restrict gyn,
                                               const int64_t* xoff, const int64_t* poff, T* __restrict part,
                                               T* __restrict xpad, T* __restrict gyt) {
  const int64_t fp = round_up(g.f, kLanes<T>), np = g.p(), nt = g.ckk();
  pad_sample(g, xn, xpad);
  for (int64_t p = 0; p < np; ++p) {
    for (int64_t f = 0; f < g.f; ++f) gyt[p * fp + f] = gyn[f * np + p];
    for (int64_t f = g.f; f < fp; ++f) gyt[p * fp + f] = T(0);
  }
  for (int64_t lb = 0; lb < fp; lb += kLanes<T>) {
    int64_t t = 0;
    for (; t + kPix <= nt; t += kPix)
      filter_block<Isa, T, kPix>(xpad, xoff + t, poff, np, gyt + lb, fp, part + t * fp + lb);
    for (; t < nt; ++t) filter_block<Isa, T, 1>(xpad, xoff + t, poff, np, gyt + lb, fp, part + t * fp + lb);
  }
}

// The entry points per instruction set, flattened (everything inlined, so compiled for that set), and the one
// conv_direct::isa() picks.
#define JEBM_FWD_ENTRY(name, attrs, isa, T)                                                                    \
  attrs void name(const Geo& g, const T* xn, const T* wt, const int64_t* xoff, const T* b, T* yn, T* xp, T* acc) { \
    forward_sample<isa, T>(g, xn, wt, xoff, b, yn, xp, acc);                                                     \
  }
#define JEBM_COLUMNS_ENTRY(name, attrs, isa, T)                                                          \
  attrs void name(const Geo& g, const T* xn, const T* wt, const int64_t* toff, const T* b, T* yn, T* xph) { \
    forward_columns_sample<isa, T>(g, xn, wt, toff, b, yn, xph);                                          \
  }
#define JEBM_FILTER_ENTRY(name, attrs, isa, T)                                                           \
  attrs void name(const Geo& g, const T* xn, const T* gyn, const int64_t* xoff, const int64_t* poff, T* part, \
                  T* xpad, T* gyt) {                                                                        \
    backward_filter_sample<isa, T>(g, xn, gyn, xoff, poff, part, xpad, gyt);                                \
  }
#define JEBM_ENTRIES(ENTRY, stem)                                                                \
  ENTRY(stem##_avx512_f32, __attribute__((target("avx512f"), flatten)), conv_direct::IsaAvx512, float)  \
  ENTRY(stem##_avx512_f64, __attribute__((target("avx512f"), flatten)), conv_direct::IsaAvx512, double) \
  ENTRY(stem##_fma_f32, __attribute__((target("fma"), flatten)), conv_direct::IsaFma, float)            \
  ENTRY(stem##_fma_f64, __attribute__((target("fma"), flatten)), conv_direct::IsaFma, double)           \
  ENTRY(stem##_base_f32, __attribute__((flatten)), conv_direct::IsaBase, float)                         \
  ENTRY(stem##_base_f64, __attribute__((flatten)), conv_direct::IsaBase, double)
JEBM_ENTRIES(JEBM_FWD_ENTRY, forward)
JEBM_ENTRIES(JEBM_COLUMNS_ENTRY, columns)
JEBM_ENTRIES(JEBM_FILTER_ENTRY, filter)
#undef JEBM_ENTRIES
#undef JEBM_FILTER_ENTRY
#undef JEBM_COLUMNS_ENTRY
#undef JEBM_FWD_ENTRY

template <typename T>
auto forward_fn() {
  const int isa = conv_direct::isa();
  if constexpr (sizeof(T) == 4) return isa == 2 ? forward_avx512_f32 : isa == 1 ? forward_fma_f32 : forward_base_f32;
  else return isa == 2 ? forward_avx512_f64 : isa == 1 ? forward_fma_f64 : forward_base_f64;
}
template <typename T>
auto columns_fn() {
  const int isa = conv_direct::isa();
  if constexpr (sizeof(T) == 4) return isa == 2 ? columns_avx512_f32 : isa == 1 ? columns_fma_f32 : columns_base_f32;
  else return isa == 2 ? columns_avx512_f64 : isa == 1 ? columns_fma_f64 : columns_base_f64;
}
template <typename T>
auto filter_fn() {
  const int isa = conv_direct::isa();
  if constexpr (sizeof(T) == 4) return isa == 2 ? filter_avx512_f32 : isa == 1 ? filter_fma_f32 : filter_base_f32;
  else return isa == 2 ? filter_avx512_f64 : isa == 1 ? filter_fma_f64 : filter_base_f64;
}

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

// Tap (c, i, j) -> its offset in xph (forward_columns_sample) from an output row's first input row and column.
std::vector<int64_t> phase_tap_offsets(const Geo& g, int64_t wq) {
  std::vector<int64_t> toff;
  for (int64_t c = 0; c < g.c; ++c)
    for (int64_t i = 0; i < g.kh; ++i)
      for (int64_t j = 0; j < g.kw; ++j) toff.push_back(((c * g.hp() + i) * g.s + j % g.s) * wq + j / g.s);
  return toff;
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
  const int64_t n = x.size(0), ckk = g.ckk(), fp = round_up(g.f, kLanes<T>);
  const T* wp = w.data<T>();  // [F, CKK]
  std::vector<T> wt(static_cast<size_t>(ckk * fp), T(0));  // [CKK, FP]
  for (int64_t f = 0; f < g.f; ++f)
    for (int64_t k = 0; k < ckk; ++k) wt[static_cast<size_t>(k * fp + f)] = wp[f * ckk + k];
  const T* xp = x.data<T>();
  const T* bp = bias.defined() ? bias.data<T>() : nullptr;
  T* yp = y.data<T>();
  if (forward_by_columns(g)) {
    const int64_t wq = phase_width(g, kLanes<T>);
    const std::vector<int64_t> toff = phase_tap_offsets(g, wq);
    const auto run = columns_fn<T>();
    for_samples(n, n * g.p() * ckk * g.f, [&](int64_t i) {
      T* xph = buffer<T>(0, (g.c * g.hp() + 1) * g.s * wq);  // and one padded row
      run(g, xp + i * g.c * g.h * g.w, wt.data(), toff.data(), bp, yp + i * g.f * g.p(), xph);
    });
    return;
  }
  const std::vector<int64_t> xoff = tap_offsets(g);
  const auto run = forward_fn<T>();
  for_samples(n, n * g.p() * ckk * g.f, [&](int64_t i) {
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
  static const int best = __builtin_cpu_supports("avx512f") ? 2 : __builtin_cpu_supports("fma") ? 1 : 0;
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
  JEBM_DISPATCH_FLOAT(x.dtype(), "conv2d", [&] { forward_typed<scalar_t>(x, w, bias, p, y); });
}

void conv2d_direct_backward_filter(const Tensor& grad_y, const Tensor& x, const Conv2dParams& p, Tensor& grad_w) {
  JEBM_DISPATCH_FLOAT(grad_y.dtype(), "conv2d_backward_filter",
                      [&] { backward_filter_typed<scalar_t>(grad_y, x, p, grad_w); });
}

}  // namespace jebm::cpu
