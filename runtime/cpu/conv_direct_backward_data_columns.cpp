// The direct conv2d's input gradient with lanes over the output columns of one stride phase
// (conv2d_direct_backward_data_columns, runtime/cpu/conv_direct.hpp), for stride 2 and input rows whose phases fill a
// vector (MNIST's conv1 at 28x28: 14 columns of each phase), in AVX-512 / FMA / portable versions picked at load time.
// Tested by tests/test_conv_direct.cpp (backward_data_layouts_give_the_same_bits, and every test of the direct path).
//
// Output X = 2m + rx (padded coordinates) takes the taps j = rx + 2b and reads grad_y column m - b; row Y = 2q + ry
// takes the taps i = ry + 2a and reads grad_y row q - a. So for the lanes m of one column phase, each step (f, a, b)
// is one weight per phase, broadcast, times one unaligned load of consecutive grad_y values, shared by both column
// phases, from a copy of the sample's grad_y with zero margins. No row is repeated and no lane mixes phases, where
// the kernel by output phase (runtime/cpu/conv_direct_backward_data.cpp) built s copies of every grad_y row.
//
// Bits: every output runs the same fused multiply-adds as there, in the same order: passes of fb filters (the same
// fb), each a chain from zero over (f, a, b) including the zero weights of j >= KW and the zero grad_y outside the
// rows, the passes added in order. So the two give the same bits (tested); the file is compiled with
// -ffp-contract=off so that nothing else fuses.
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
using conv_direct::splat;
using conv_direct::vec_t;

constexpr int64_t kS = 2;  // the stride this layout is written for

// One layer's plan. Lanes m = m0 + v*kLanes + l, v < nv; gyp [F, rows, WQ]: grad_y rows rlo .. rlo + rows (zero
// outside [0, OH)), element k of a row holding column m0 - (kb - 1) + k (zero outside [0, OW)).
struct Plan {
  int64_t m0, nm, nv, kb, rlo, rows, wq, fb;
};

// Output rows of phase ry: Y = 2q + ry inside [pad, pad + H), q from q0, nq of them, ka taps i = ry + 2a < KH.
struct Rows {
  int64_t q0, nq, ka;
};

Rows rows_of(const Geo& g, int64_t ry) {
  const int64_t q0 = (g.pad - ry + kS - 1) / kS, q1 = (g.pad + g.h - 1 - ry) / kS;  // pad >= 0, ry < 2
  return {q0, std::max<int64_t>(0, q1 - q0 + 1), ry < g.kh ? (g.kh - ry + kS - 1) / kS : 0};
}

template <typename T>
Plan plan(const Geo& g, int64_t fb) {
  Plan pl{};
  pl.m0 = g.pad / kS;
  pl.nm = (g.pad + g.w - 1) / kS - pl.m0 + 1;
  pl.nv = (pl.nm + kLanes<T> - 1) / kLanes<T>;
  pl.kb = (g.kw + kS - 1) / kS;
  int64_t lo = 0, hi = 0;
  for (int64_t ry = 0; ry < kS; ++ry) {
    const Rows r = rows_of(g, ry);
    lo = std::min(lo, r.q0 - r.ka + 1);
    hi = std::max(hi, r.q0 + r.nq);
  }
  pl.rlo = lo;
  pl.rows = std::max(hi, g.oh) - lo;
  pl.wq = pl.nv * kLanes<T> + pl.kb - 1;
  pl.fb = fb;
  return pl;
}

// One phase's steps (f, a, b) in summation order: the offset of its grad_y load from the output row's grad_y row
// and the first lane (b's column shift), and its two weights (column phases 0 and 1; zero where j >= KW).
template <typename T>
struct Steps {
  std::vector<int64_t> gy;
  std::vector<T> w;  // [step, 2]
};

template <typename T>
Steps<T> steps(const Geo& g, const Plan& pl, int64_t c, int64_t ry, const T* w) {
  Steps<T> st;
  const int64_t ka = rows_of(g, ry).ka;
  for (int64_t f = 0; f < g.f; ++f)
    for (int64_t a = 0; a < ka; ++a)
      for (int64_t b = 0; b < pl.kb; ++b) {
        st.gy.push_back((f * pl.rows - a) * pl.wq + pl.kb - 1 - b);
        const int64_t i = ry + kS * a;
        for (int64_t rx = 0; rx < kS; ++rx) {
          const int64_t j = rx + kS * b;
          st.w.push_back(j < g.kw ? w[((f * g.c + c) * g.kh + i) * g.kw + j] : T(0));
        }
      }
  return st;
}

// d[2l] = a[l], d[2l + 1] = b[l] for 2l, 2l + 1 < n (n <= 32): one row of outputs from the two column phases' sums,
// by AVX unpacks (lane by lane, the stores took about a tenth of MNIST conv1's input gradient on a Zen 3).
__attribute__((target("avx2,fma"))) inline void store_interleaved(const conv_direct::Halves<float>& a,
                                                                   const conv_direct::Halves<float>& b, int64_t n,
                                                                   float* __restrict d) {
  alignas(32) float out[32];
  for (int h = 0; h < 2; ++h) {
    const __m256 va = reinterpret_cast<__m256>(a.h[h]), vb = reinterpret_cast<__m256>(b.h[h]);
    const __m256 lo = _mm256_unpacklo_ps(va, vb), hi = _mm256_unpackhi_ps(va, vb);  // by 128-bit lane
    const __m256 o0 = _mm256_permute2f128_ps(lo, hi, 0x20), o1 = _mm256_permute2f128_ps(lo, hi, 0x31);
    if (n >= 16 * h + 16) {
      _mm256_storeu_ps(d + 16 * h, o0);
      _mm256_storeu_ps(d + 16 * h + 8, o1);
    } else {
      _mm256_store_ps(out + 16 * h, o0);
      _mm256_store_ps(out + 16 * h + 8, o1);
    }
  }
  const int64_t full = n >= 32 ? 32 : n >= 16 ? 16 : 0;
  for (int64_t k = full; k < n; ++k) d[k] = out[k];
}

// R output rows of one phase, one vector of lanes, both column phases: acc[r][rx] over the passes' steps (each pass
// from zero, added into the total in pass order), then stored into grad_x_n's channel gxc [H, W]. gy0: gyp at the
// first row's grad_y row and the vector's first lane; q: the first row.
template <typename Isa, typename T, int R>
JEBM_ALWAYS_INLINE void block(const Geo& g, const Plan& pl, const T* __restrict gy0, const int64_t* __restrict goff,
                              const T* __restrict wst, int64_t per_f, int64_t ry, int64_t q, int64_t v,
                              T* __restrict gxc) {
  using V = conv_direct::reg_t<Isa, T>;
  V total[R][kS];
  for (int r = 0; r < R; ++r)
    for (int rx = 0; rx < kS; ++rx) total[r][rx] = V{};
  for (int64_t f0 = 0; f0 < g.f; f0 += pl.fb) {
    V acc[R][kS];
    for (int r = 0; r < R; ++r)
      for (int rx = 0; rx < kS; ++rx) acc[r][rx] = V{};
    const int64_t k1 = std::min(g.f, f0 + pl.fb) * per_f;
    for (int64_t k = f0 * per_f; k < k1; ++k) {
      V w0, w1;
      splat(Isa{}, w0, wst[2 * k]);
      splat(Isa{}, w1, wst[2 * k + 1]);
      const T* gp = gy0 + goff[k];
      for (int r = 0; r < R; ++r) {
        V x;
        conv_direct::load(x, gp + r * pl.wq);
        fma_into(Isa{}, acc[r][0], x, w0);
        fma_into(Isa{}, acc[r][1], x, w1);
      }
    }
    for (int r = 0; r < R; ++r)
      for (int rx = 0; rx < kS; ++rx) conv_direct::add_into(Isa{}, total[r][rx], acc[r][rx]);
  }
  for (int r = 0; r < R; ++r) {
    T* d = gxc + (kS * (q + r) + ry - g.pad) * g.w;
    if constexpr (std::is_same_v<Isa, conv_direct::IsaFma> && sizeof(T) == 4) {
      const int64_t x0 = kS * (pl.m0 + v * kLanes<T>) - g.pad;  // lane 0's column in phase 0 (phase 1: x0 + 1)
      if (g.pad % kS == 0 && x0 >= 0) {
        store_interleaved(total[r][0], total[r][1], std::min<int64_t>(2 * kLanes<T>, g.w - x0), d + x0);
        continue;
      }
    }
    for (int rx = 0; rx < kS; ++rx)
      for (int64_t l = 0; l < kLanes<T>; ++l) {
        const int64_t x = kS * (pl.m0 + v * kLanes<T> + l) + rx - g.pad;
        if (x >= 0 && x < g.w) d[x] = conv_direct::lane(total[r][rx], l);
      }
  }
}

// Output rows per block: R * 2 accumulators. The FMA version's vectors take two of its 16 ymm registers, so 4 rows
// (16 registers) spilled: MNIST conv1's input gradient on a Zen 3 took 1.5-1.6 ms with 4 rows, 1.2 with 2 or 3.
template <typename Isa>
constexpr int kRows = std::is_same_v<Isa, conv_direct::IsaFma> ? 2 : 4;

// One sample: gyp filled from grad_y_n [F, OH, OW], then every channel, phase, block of rows and vector of lanes.
// st[c * 2 + ry]: the steps of channel c and row phase ry.
template <typename Isa, typename T>
JEBM_ALWAYS_INLINE void sample(const Geo& g, const Plan& pl, const T* __restrict gyn, const Steps<T>* st,
                               T* __restrict gxn, T* __restrict gyp) {
  std::fill(gyp, gyp + g.f * pl.rows * pl.wq, T(0));
  const int64_t c0 = pl.m0 - (pl.kb - 1);  // grad_y column of a row's element 0
  const int64_t k0 = std::max<int64_t>(0, -c0), k1 = std::min<int64_t>(pl.wq, g.ow - c0);
  for (int64_t f = 0; f < g.f; ++f)
    for (int64_t oy = 0; oy < g.oh; ++oy) {
      const T* s = gyn + (f * g.oh + oy) * g.ow + c0;
      T* d = gyp + (f * pl.rows + oy - pl.rlo) * pl.wq;
      int64_t k = k0;
      for (; k + kLanes<T> <= k1; k += kLanes<T>) std::memcpy(d + k, s + k, sizeof(vec_t<T>));  // no call per row
      for (; k < k1; ++k) d[k] = s[k];
    }
  for (int64_t c = 0; c < g.c; ++c)
    for (int64_t ry = 0; ry < kS; ++ry) {
      const Rows rw = rows_of(g, ry);
      const Steps<T>& s = st[c * kS + ry];
      const int64_t per_f = rw.ka * pl.kb;
      T* gxc = gxn + c * g.h * g.w;
      for (int64_t v = 0; v < pl.nv; ++v) {
        int64_t q = rw.q0;
        const T* gy_row = gyp + v * kLanes<T> - pl.rlo * pl.wq;  // + q * wq: row q's grad_y row
        for (; q + kRows<Isa> <= rw.q0 + rw.nq; q += kRows<Isa>)
          block<Isa, T, kRows<Isa>>(g, pl, gy_row + q * pl.wq, s.gy.data(), s.w.data(), per_f, ry, q, v, gxc);
        for (; q < rw.q0 + rw.nq; ++q)
          block<Isa, T, 1>(g, pl, gy_row + q * pl.wq, s.gy.data(), s.w.data(), per_f, ry, q, v, gxc);
      }
    }
}

#define JEBM_BDC_ENTRY(name, attrs, isa, T)                                                                     \
  attrs void name(const Geo& g, const Plan& pl, const T* gyn, const Steps<T>* st, T* gxn, T* gyp) {             \
    sample<isa, T>(g, pl, gyn, st, gxn, gyp);                                                                   \
  }
JEBM_CONV_DIRECT_ENTRIES(JEBM_BDC_ENTRY, columns)
#undef JEBM_BDC_ENTRY
JEBM_CONV_DIRECT_PICKER(columns_fn, columns)

template <typename T>
void backward_data_typed(const Tensor& gy, const Tensor& w, const Conv2dParams& prm, Tensor& gx) {
  const Geo g = conv_direct::geo(gx.shape(), w.shape(), gy.shape(), prm);
  JEBM_CHECK(g.s == kS, "conv2d_backward_data: the direct kernel by columns takes stride 2, not " << g.s);
  const Plan pl = plan<T>(g, conv_direct::backward_data_pass_filters(gx.shape(), w.shape(), gy.shape(), prm,
                                                                      sizeof(T)));
  std::vector<Steps<T>> st;
  for (int64_t c = 0; c < g.c; ++c)
    for (int64_t ry = 0; ry < kS; ++ry) st.push_back(steps<T>(g, pl, c, ry, w.data<T>()));
  const int64_t n = gx.size(0), fpo = g.f * g.oh * g.ow;
  const T* gyp = gy.data<T>();
  T* gxp = gx.data<T>();
  const auto run = columns_fn<T>();
  for_samples(n, n * fpo * g.c * g.kh * g.kw, [&](int64_t i) {
    T* pad = buffer<T>(0, g.f * pl.rows * pl.wq + kLanes<T>);
    run(g, pl, gyp + i * fpo, st.data(), gxp + i * g.c * g.h * g.w, pad);
  });
}

}  // namespace

void conv2d_direct_backward_data_columns(const Tensor& grad_y, const Tensor& w, const Conv2dParams& p,
                                         Tensor& grad_x) {
  JEBM_DISPATCH_FLOAT(grad_y.dtype(), "conv2d_backward_data",
                      [&] { backward_data_typed<scalar_t>(grad_y, w, p, grad_x); });
}

}  // namespace jebm::cpu
