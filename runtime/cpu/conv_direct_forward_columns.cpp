// The direct conv2d's forward with lanes over output columns (runtime/cpu/conv_direct.hpp), which
// conv2d_direct_forward takes for output rows of 16 and more, in AVX-512 / FMA / portable versions picked at load
// time. Tested by tests/test_conv_direct.cpp (forward_layouts_give_the_same_bits: against the loops and bit for bit
// against lanes over filters, in every version, at 1 and 2 threads; and every test of the direct forward).
#include <algorithm>
#include <cstdint>
#include <cstring>
#include <type_traits>
#include <vector>

#include "runtime/backend.hpp"
#include "runtime/cpu/conv_direct.hpp"
#include "runtime/cpu/conv_direct_parts.hpp"

namespace jebm::cpu {
namespace {

using conv_direct::buffer;
using conv_direct::fma_into;
using conv_direct::for_samples;
using conv_direct::Geo;
using conv_direct::kLanes;
using conv_direct::round_up;
using conv_direct::splat;
using conv_direct::vec_t;

// Where output rows fill vectors (MNIST's conv1 at 28x28: one input channel, 16 outputs per row), the lanes hold
// output columns instead of filters: each tap is one vector load of input, times each filter's weight broadcast,
// into one accumulator per filter, and the accumulators are stored straight into y's rows (no transposition). The
// sample is first copied into xph [C, HP, s, WQ]: padded row Y's phase r holds the padded row's element s*m + r at
// m, so tap (c, i, j) of the outputs from column x0 on is the load at xph[c, oy*s + i, j mod s, x0 + j div s].
// Every output sums the same fused products in the same tap order from zero, then adds the bias, as the forward with
// lanes over filters does (runtime/cpu/conv_direct.cpp): the two layouts give the same bits. Compiled with
// -ffp-contract=off, like the other direct kernels, so that nothing else fuses.

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
  using V = conv_direct::reg_t<Isa, T>;
  V acc[FB];
  for (int f = 0; f < FB; ++f) acc[f] = V{};
  for (int64_t k = 0; k < nk; ++k) {
    V xv;
    conv_direct::load(xv, xr + toff[k]);
    const T* wk = wt + k * fp;
    for (int f = 0; f < FB; ++f) {
      V wv;
      splat(Isa{}, wv, wk[f]);
      fma_into(Isa{}, acc[f], xv, wv);
    }
  }
  // Unrolled, so that the accumulators stay in registers: left as a loop, GCC kept the FMA version's on the stack
  // and copied each out through general-purpose registers, about 30 % of MNIST conv1's forward on a Zen 3.
#pragma GCC unroll 16
  for (int f = 0; f < FB; ++f) {
    V b;
    splat(Isa{}, b, bias ? bias[f] : T(0));
    conv_direct::add_into(Isa{}, acc[f], b);
    if (nvalid == kLanes<T>) conv_direct::store(out + f * ostride, acc[f]);
    else std::memcpy(out + f * ostride, &acc[f], static_cast<size_t>(nvalid) * sizeof(T));
  }
}

// One sample's forward by columns. wt: the weights as [C*KH*KW, FP]; toff: tap (c, i, j)'s offset in xph from an
// output row's first input row and column; y_n: [F, OH, OW]; xph is followed by room for one padded row. AVX-512
// holds 16 filters' accumulators in registers, the narrower versions 4 (their vectors take two or four registers; on
// a Zen 3, MNIST conv1's forward took 1.0 ms with 4 in the FMA version, 1.1-1.2 with 3 or 6, 1.4 with 8).
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

#define JEBM_COLUMNS_ENTRY(name, attrs, isa, T)                                                          \
  attrs void name(const Geo& g, const T* xn, const T* wt, const int64_t* toff, const T* b, T* yn, T* xph) { \
    forward_columns_sample<isa, T>(g, xn, wt, toff, b, yn, xph);                                          \
  }
JEBM_CONV_DIRECT_ENTRIES(JEBM_COLUMNS_ENTRY, columns)
#undef JEBM_COLUMNS_ENTRY

JEBM_CONV_DIRECT_PICKER(columns_fn, columns)

// Tap (c, i, j) -> its offset in xph (forward_columns_sample) from an output row's first input row and column.
std::vector<int64_t> phase_tap_offsets(const Geo& g, int64_t wq) {
  std::vector<int64_t> toff;
  for (int64_t c = 0; c < g.c; ++c)
    for (int64_t i = 0; i < g.kh; ++i)
      for (int64_t j = 0; j < g.kw; ++j) toff.push_back(((c * g.hp() + i) * g.s + j % g.s) * wq + j / g.s);
  return toff;
}

template <typename T>
void forward_typed(const Tensor& x, const Tensor& w, const Tensor& bias, const Conv2dParams& prm, Tensor& y) {
  const Geo g = conv_direct::geo(x.shape(), w.shape(), y.shape(), prm);
  const int64_t n = x.size(0), wq = phase_width(g, kLanes<T>);
  const std::vector<T> wt = conv_direct::weights_by_tap(w.data<T>(), g.f, g.ckk(), round_up(g.f, kLanes<T>));
  const std::vector<int64_t> toff = phase_tap_offsets(g, wq);
  const T* xp = x.data<T>();
  const T* bp = bias.defined() ? bias.data<T>() : nullptr;
  T* yp = y.data<T>();
  const auto run = columns_fn<T>();
  for_samples(n, n * g.p() * g.ckk() * g.f, [&](int64_t i) {
    T* xph = buffer<T>(0, (g.c * g.hp() + 1) * g.s * wq);  // and one padded row
    run(g, xp + i * g.c * g.h * g.w, wt.data(), toff.data(), bp, yp + i * g.f * g.p(), xph);
  });
}

}  // namespace

void conv2d_direct_forward_columns(const Tensor& x, const Tensor& w, const Tensor& bias, const Conv2dParams& p,
                                   Tensor& y) {
  JEBM_DISPATCH_FLOAT(x.dtype(), "conv2d", [&] { forward_typed<scalar_t>(x, w, bias, p, y); });
}

}  // namespace jebm::cpu
