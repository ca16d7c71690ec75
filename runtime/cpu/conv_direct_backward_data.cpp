// The direct conv2d's input gradient (runtime/cpu/conv_direct.hpp) for thin layers, per sample, in AVX-512 / FMA /
// portable versions picked at load time, and which layers take the kernel by the columns of one stride phase
// (runtime/cpu/conv_direct_backward_data_columns.cpp) or of one (row, column) phase (conv_direct_backward_data_phases
// .cpp) instead, the same bits. Tested by tests/test_conv_direct.cpp (against
// the im2col path and the 7-loop reference, float32 and float64, strides 1 to 3; the same bits at 1 and 2 threads
// and in the portable code).
//
// grad_x[c, Y, X] (Y = iy + pad, X = ix + pad: padded coordinates) sums gy[f, oy, ox] * w[f, c, i, j] over
// Y = oy*s + i, X = ox*s + j. Along a row, output X takes the taps j = (X mod s) + s*b, b < KB = ceil(KW / s), and
// reads gy[f, oy, X div s - b]. So with each grad_y row stored with its values repeated s times and shifted by s*b
// (one copy per b, so that every load is 64-byte aligned), tap step b is one load for a vector of consecutive
// outputs X, times a vector of weights w[f, c, i, (X mod s) + s*b] (zero past KW) built once per call. Rows alike:
// row Y takes the taps i = (Y mod s) + s*a and reads grad_y row Y div s - a. Each grad_x vector is thus F*KA*KB
// fused multiply-adds, kept in registers and stored once: no scatter, no bounds test. A block of output rows of
// one phase (Y mod s) and of channels shares each load.
//
// Every output is summed over (f, a, b) in that order with one rounding per step (fma), whatever the version or the
// thread count: all versions give the same bits (the file is compiled with -ffp-contract=off, so nothing else
// fuses).
#include <algorithm>
#include <atomic>
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
using conv_direct::IsaAvx512;
using conv_direct::IsaBase;
using conv_direct::IsaFma;
using conv_direct::kLanes;
using conv_direct::vec_t;

// x: [N, C, H, W], w: [F, C, KH, KW], grad_y: [N, F, OH, OW]; v vectors of kLanes per grad_x row. gyd [fb, rows,
// KB, V*kLanes] for fb filters at a time: grad_y rows oy_lo .. oy_lo + rows (zero outside [0, OH)), copy b's
// element k holding gy[(pad + k - s*b) div s] (zero outside the row).
struct Geo {
  int64_t c, h, w, f, kh, kw, oh, ow, s, pad;
  int64_t v, kb, oy_lo, rows;
  int64_t xp;                              // a copy's length, V*kLanes
  int64_t fb;                              // filters per pass over the outputs
  int64_t rs() const { return kb * xp; }  // one grad_y row's copies
};

// A pass's gyd is at most this large, so that it stays in L1 while every output block reads it; the outputs are
// loaded and stored once per pass, each pass's sum (from zero) added to them. The passes depend only on the shapes,
// so the bits do too.
constexpr int64_t kPassBytes = 24 << 10;

// Output rows of phase ry (Y = s*q + ry inside [pad, pad + H)): the first q, how many, and their taps per column.
struct Phase {
  int64_t q0, nq, ka;
};

Phase phase(const Geo& g, int64_t ry) {
  Phase p{0, 0, ry < g.kh ? (g.kh - ry + g.s - 1) / g.s : 0};
  for (int64_t y = g.pad; y < g.pad + g.h; ++y)
    if (y % g.s == ry) {
      if (p.nq == 0) p.q0 = y / g.s;
      ++p.nq;
    }
  return p;
}

template <typename T>
Geo geo(const Shape& x, const Shape& w, const Shape& y, const Conv2dParams& p) {
  Geo g{x[1], x[2], x[3], w[0], w[2], w[3], y[2], y[3], p.stride, p.padding, 0, 0, 0, 0, 0, 0};
  g.v = (g.w + kLanes<T> - 1) / kLanes<T>;
  g.kb = (g.kw + g.s - 1) / g.s;
  g.xp = g.v * kLanes<T>;
  int64_t lo = 0, hi = 0;
  bool any = false;
  for (int64_t ry = 0; ry < g.s; ++ry) {
    const Phase ph = phase(g, ry);
    if (ph.nq == 0 || ph.ka == 0) continue;
    lo = any ? std::min(lo, ph.q0 - ph.ka + 1) : ph.q0 - ph.ka + 1;
    hi = any ? std::max(hi, ph.q0 + ph.nq) : ph.q0 + ph.nq;
    any = true;
  }
  g.oy_lo = lo;
  g.rows = hi - lo;
  g.fb = std::clamp<int64_t>(kPassBytes / std::max<int64_t>(1, g.rows * g.rs() * int64_t{sizeof(T)}), 1, g.f);
  return g;
}

// wv [C, KH, F, KB, V, kLanes]: lane l of vector v is output X = pad + v*kLanes + l, which takes tap
// j = (X mod s) + s*b of row i (zero where j >= KW).
template <typename T>
void weight_vectors(const Geo& g, const T* w, T* wv) {
  const int64_t lanes = kLanes<T>;
  T* d = wv;
  for (int64_t c = 0; c < g.c; ++c)
    for (int64_t i = 0; i < g.kh; ++i)
      for (int64_t f = 0; f < g.f; ++f)
        for (int64_t b = 0; b < g.kb; ++b)
          for (int64_t x = g.pad; x < g.pad + g.v * lanes; ++x, ++d) {
            const int64_t j = x % g.s + g.s * b;
            *d = j < g.kw ? w[((f * g.c + c) * g.kh + i) * g.kw + j] : T(0);
          }
}

typedef int32_t mask32_t __attribute__((vector_size(64)));
typedef int64_t mask64_t __attribute__((vector_size(64)));

// How a grad_y row becomes its gyd copies, the same for every row: gyd vector k (copy k / V, vector k % V) is the
// row's kLanes values from t = tb[k] on, permuted by mask[k] (lane l takes t = floor((pad + X - s*b) / s), X its
// column) and zeroed where t falls outside the row (valid[k]). One load, permute and store per vector, where
// element-wise copies of rows of 4 to 32 values cost several times the products they feed. The sample's grad_y is
// first copied between `before` and `after` margins, so that these loads never leave the buffer.
template <typename T>
struct Dup {
  using lane_t = std::conditional_t<sizeof(T) == 4, int32_t, int64_t>;
  using mask_t = std::conditional_t<sizeof(T) == 4, mask32_t, mask64_t>;
  int64_t before = 0, after = 0;
  std::vector<int64_t> tb;
  std::vector<lane_t> mask, valid;  // kLanes per vector (a std::vector of vector types would lose their alignment)
};

template <typename T>
Dup<T> dup_plan(const Geo& g) {
  constexpr int64_t L = kLanes<T>;
  Dup<T> dp;
  for (int64_t b = 0; b < g.kb; ++b)
    for (int64_t v = 0; v < g.v; ++v) {
      int64_t t[L];
      for (int64_t l = 0; l < L; ++l) {
        const int64_t x = g.pad + v * L + l - g.s * b;  // >= -(KW-1)
        t[l] = (x + g.s * g.kb) / g.s - g.kb;           // floor(x / s)
      }
      dp.tb.push_back(t[0]);  // t grows by 0 or 1 per lane: t[l] - t[0] < kLanes
      for (int64_t l = 0; l < L; ++l) {
        dp.mask.push_back(static_cast<typename Dup<T>::lane_t>(t[l] - t[0]));
        dp.valid.push_back(t[l] >= 0 && t[l] < g.ow ? -1 : 0);
      }
      dp.before = std::max(dp.before, -t[0]);
      dp.after = std::max(dp.after, t[0] + L - g.ow);
    }
  return dp;
}

// d[0..kLanes) = src[mk[l]] where ok[l] is set, else 0 (mk[l] < kLanes): one gyd vector (fill_gyd).
template <typename Isa, typename T, typename M>
JEBM_ALWAYS_INLINE void permute_valid(Isa, const T* __restrict src, const M& mk, const M& ok, T* __restrict d) {
  vec_t<T> z;
  std::memcpy(&z, src, sizeof z);
  const M o = reinterpret_cast<M>(__builtin_shuffle(z, mk)) & ok;
  std::memcpy(d, &o, sizeof o);
}
// The FMA version in float32: without AVX-512 GCC lowered the 16-lane shuffle to one scalar move per lane (about a
// fifth of MNIST conv2's input gradient on a Zen 3). Each half of the result permutes both halves of the source
// (AVX2's vpermps) and picks by the index's bit 3.
__attribute__((target("avx2,fma"))) inline void permute_valid(IsaFma, const float* __restrict src,
                                                               const mask32_t& mk, const mask32_t& ok,
                                                               float* __restrict d) {
  const __m256 lo = _mm256_loadu_ps(src), hi = _mm256_loadu_ps(src + 8);
  for (int h = 0; h < 2; ++h) {
    __m256i m, v;
    std::memcpy(&m, reinterpret_cast<const int32_t*>(&mk) + 8 * h, sizeof m);
    std::memcpy(&v, reinterpret_cast<const int32_t*>(&ok) + 8 * h, sizeof v);
    const __m256 from_hi = _mm256_castsi256_ps(_mm256_cmpgt_epi32(m, _mm256_set1_epi32(7)));
    const __m256 r = _mm256_blendv_ps(_mm256_permutevar8x32_ps(lo, m), _mm256_permutevar8x32_ps(hi, m), from_hi);
    _mm256_storeu_ps(d + 8 * h, _mm256_and_ps(r, _mm256_castsi256_ps(v)));
  }
}

// gyd (see Geo) for filters f0 .. f0 + nf of one sample; gys: the sample's grad_y [F, OH, OW] at its margins' end.
// Vector k outermost, so that its mask stays in registers over the rows.
template <typename Isa, typename T>
JEBM_ALWAYS_INLINE void fill_gyd(const Geo& g, const Dup<T>& dp, const T* __restrict gys, int64_t f0, int64_t nf,
                                 T* __restrict gyd) {
  constexpr int64_t L = kLanes<T>;
  using mask_t = typename Dup<T>::mask_t;
  const int64_t nk = g.kb * g.v, rs = g.rs();
  const int64_t r0 = std::clamp<int64_t>(-g.oy_lo, 0, g.rows), r1 = std::clamp<int64_t>(g.oh - g.oy_lo, r0, g.rows);
  for (int64_t f = 0; f < nf; ++f) {  // rows outside grad_y: zeros
    std::fill(gyd + f * g.rows * rs, gyd + (f * g.rows + r0) * rs, T(0));
    std::fill(gyd + (f * g.rows + r1) * rs, gyd + (f + 1) * g.rows * rs, T(0));
  }
  for (int64_t k = 0; k < nk; ++k) {
    mask_t mk, ok;
    std::memcpy(&mk, dp.mask.data() + k * L, sizeof mk);
    std::memcpy(&ok, dp.valid.data() + k * L, sizeof ok);
    const T* src = gys + (f0 * g.oh + g.oy_lo + r0) * g.ow + dp.tb[k];
    T* d = gyd + r0 * rs + k * L;
    for (int64_t f = 0; f < nf; ++f)
      for (int64_t r = 0; r < r1 - r0; ++r)
        permute_valid(Isa{}, src + (f * g.oh + r) * g.ow, mk, ok, d + (f * g.rows + r) * rs);
  }
}

// One phase's steps (f, a, b) in summation order: each step's offset in its pass's gyd (from the output row's grad_y
// row and the vector's column for b = 0) and in wv (from i = ry); a pass's steps are a contiguous run. One flat loop
// over them keeps a block's accumulators in registers (nested loops over f, a and b had them stored and reloaded
// around the short innermost one).
struct Steps {
  std::vector<int64_t> gy, w;
};

template <typename T>
Steps steps(const Geo& g, int64_t ka) {
  const int64_t wb = g.v * kLanes<T>, wf = g.kb * wb, wi = g.f * wf;
  Steps st;
  for (int64_t f = 0; f < g.f; ++f)
    for (int64_t a = 0; a < ka; ++a)
      for (int64_t b = 0; b < g.kb; ++b) {
        st.gy.push_back((f % g.fb * g.rows - a) * g.rs() + b * g.xp);
        st.w.push_back(g.s * a * wi + f * wf + b * wb);
      }
  return st;
}

// CB channels x R rows (of one phase) x VB vectors of the padded grad_x gxs [C, H, V*kLanes], over one pass's
// steps. gy0: gyd at the first row's grad_y row and the first vector's column (f 0, b 0); w0: wv at the first
// channel, i = ry, the first vector; out: gxs at the first channel, row and vector (zero before the first pass).
template <typename Isa, typename T, int CB, int R, int VB>
JEBM_ALWAYS_INLINE void block(const Geo& g, const T* __restrict gy0, const T* __restrict w0,
                              const int64_t* __restrict goff, const int64_t* __restrict woff, int64_t nk,
                              T* __restrict out) {
  constexpr int64_t L = kLanes<T>;
  const int64_t wc = g.kh * g.f * g.kb * g.xp, oc = g.h * g.xp, orow = g.s * g.xp;
  using V = conv_direct::reg_t<Isa, T>;
  V acc[CB][R][VB];
  for (int cb = 0; cb < CB; ++cb)
    for (int r = 0; r < R; ++r)
      for (int vb = 0; vb < VB; ++vb) acc[cb][r][vb] = V{};
  for (int64_t k = 0; k < nk; ++k) {
    const T* gp = gy0 + goff[k];
    const T* wp = w0 + woff[k];
    V wv[CB][VB];
#pragma GCC unroll 4
    for (int cb = 0; cb < CB; ++cb)
#pragma GCC unroll 2
      for (int vb = 0; vb < VB; ++vb) conv_direct::load(wv[cb][vb], wp + cb * wc + vb * L);
#pragma GCC unroll 8
    for (int r = 0; r < R; ++r)
#pragma GCC unroll 2
      for (int vb = 0; vb < VB; ++vb) {
        V x;
        conv_direct::load(x, gp + r * g.rs() + vb * L);
#pragma GCC unroll 4
        for (int cb = 0; cb < CB; ++cb) fma_into(Isa{}, acc[cb][r][vb], x, wv[cb][vb]);
      }
  }
  for (int cb = 0; cb < CB; ++cb)
    for (int r = 0; r < R; ++r)
      for (int vb = 0; vb < VB; ++vb) {
        T* d = out + cb * oc + r * orow + vb * L;
        V sum;
        conv_direct::load(sum, d);
        conv_direct::add_into(Isa{}, sum, acc[cb][r][vb]);
        conv_direct::store(d, sum);
      }
}

// A pass: its filters' gyd and its run of each phase's steps.
template <typename T>
struct Pass {
  const T* gyd;
  int64_t k0, nk;
};

// A block's channels (CB), rows (R) and vectors (VB): CB * R * VB accumulators and CB * VB weight vectors held in
// registers. AVX-512 (32 registers, one per vector) takes 4 x 4 x 1 or 2 x 4 x 2. The FMA version's vectors take two
// of its 16 ymm registers, so 4 x 4 x 1 needed 40; it takes 2 x 2 x 1 (14 registers with the input vector) or
// 1 x 2 x 2 (not timed: no MNIST layer has two vectors per row by output phase). MNIST conv2's input gradient on a Zen 3, one thread: 5.1-5.3 ms with 2 x 2, 5.5-5.6 with 2 x 4, 6.0 with
// 1 x 4, 6.5 with 2 x 3, 6.6-6.9 with 4 x 2 and 4 x 1.
template <typename Isa, int VB>
constexpr int kChannels = std::is_same_v<Isa, IsaFma> ? (VB == 1 ? 2 : 1) : (VB == 1 ? 4 : 2);
template <typename Isa, int VB>
constexpr int kRows = std::is_same_v<Isa, IsaFma> ? 2 : 4;

// All rows of one phase for CB channels and VB vectors: blocks of kRows rows, then single rows.
template <typename Isa, typename T, int CB, int VB>
JEBM_ALWAYS_INLINE void rows(const Geo& g, const T* gy0, const T* w0, const Phase& ph, const Steps& st,
                             const Pass<T>& ps, T* out) {
  constexpr int R = kRows<Isa, VB>;
  const int64_t* goff = st.gy.data() + ps.k0;
  const int64_t* woff = st.w.data() + ps.k0;
  int64_t q = 0;
  for (; q + R <= ph.nq; q += R)
    block<Isa, T, CB, R, VB>(g, gy0 + q * g.rs(), w0, goff, woff, ps.nk, out + q * g.s * g.xp);
  for (; q < ph.nq; ++q) block<Isa, T, CB, 1, VB>(g, gy0 + q * g.rs(), w0, goff, woff, ps.nk, out + q * g.s * g.xp);
}

// One pass over every output of one phase: vectors in pairs (then one), channels in blocks of kChannels.
template <typename Isa, typename T>
JEBM_ALWAYS_INLINE void phase_pass(const Geo& g, int64_t ry, const Phase& ph, const T* wv, const Steps& st,
                                   const Pass<T>& ps, T* gxs) {
  constexpr int64_t L = kLanes<T>;
  const int64_t wc = g.kh * g.f * g.kb * g.xp, oc = g.h * g.xp;
  const T* gyr = ps.gyd + (ph.q0 - g.oy_lo) * g.rs();
  const T* wr = wv + ry * g.f * g.kb * g.xp;
  T* outr = gxs + (g.s * ph.q0 + ry - g.pad) * g.xp;
  for (int64_t v = 0; v < g.v;) {
    const T *gyv = gyr + v * L, *wvv = wr + v * L;
    T* outv = outr + v * L;
    int64_t c = 0;
    if (g.v - v >= 2) {
      constexpr int CB = kChannels<Isa, 2>;
      for (; c + CB <= g.c; c += CB) rows<Isa, T, CB, 2>(g, gyv, wvv + c * wc, ph, st, ps, outv + c * oc);
      for (; c < g.c; ++c) rows<Isa, T, 1, 2>(g, gyv, wvv + c * wc, ph, st, ps, outv + c * oc);
      v += 2;
    } else {
      constexpr int CB = kChannels<Isa, 1>;
      for (; c + CB <= g.c; c += CB) rows<Isa, T, CB, 1>(g, gyv, wvv + c * wc, ph, st, ps, outv + c * oc);
      for (; c < g.c; ++c) rows<Isa, T, 1, 1>(g, gyv, wvv + c * wc, ph, st, ps, outv + c * oc);
      v += 1;
    }
  }
}

// One sample: grad_x_n [C, H, W] from grad_y_n [F, OH, OW], fb filters per pass; wv as weight_vectors, st[ry] phase
// ry's steps; gyd and gxs [C, H, V*kLanes] scratch. gys: where grad_y_n is copied between its margins, or null when
// the margins lie inside the batch's grad_y (every sample but the first and last): fill_gyd's loads then read the
// neighbouring samples' values, which its masks zero, and the copy (about a tenth of conv1's input gradient) is
// skipped.
template <typename Isa, typename T>
JEBM_ALWAYS_INLINE void sample(const Geo& g, const T* __restrict gyn, const T* __restrict wv, const Steps* st,
                               const Dup<T>& dp, T* __restrict gxn, T* __restrict gyd, T* __restrict gxs,
                               T* __restrict gys) {
  std::fill(gxs, gxs + g.c * g.h * g.xp, T(0));
  const T* src = gyn;
  if (gys) {
    const int64_t fpo = g.f * g.oh * g.ow;
    std::fill(gys, gys + dp.before, T(0));
    std::copy(gyn, gyn + fpo, gys + dp.before);
    std::fill(gys + dp.before + fpo, gys + dp.before + fpo + dp.after, T(0));
    src = gys + dp.before;
  }
  for (int64_t f0 = 0; f0 < g.f; f0 += g.fb) {
    const int64_t nf = std::min(g.fb, g.f - f0);
    fill_gyd<Isa>(g, dp, src, f0, nf, gyd);
    for (int64_t ry = 0; ry < g.s; ++ry) {
      const Phase ph = phase(g, ry);
      if (ph.nq == 0) continue;
      const int64_t per_f = ph.ka * g.kb;
      phase_pass<Isa>(g, ry, ph, wv, st[ry], Pass<T>{gyd, f0 * per_f, nf * per_f}, gxs);
    }
  }
  for (int64_t c = 0; c < g.c; ++c)
    for (int64_t y = 0; y < g.h; ++y) {
      const T* src = gxs + (c * g.h + y) * g.xp;
      std::copy(src, src + g.w, gxn + (c * g.h + y) * g.w);
    }
}

// The entry points per instruction set, flattened (everything inlined, so compiled for that set) and picked once
// at load time, or a lesser one when forced (conv2d_direct_force_isa).
#define JEBM_BD_ENTRY(name, attrs, isa, T)                                                                  \
  attrs void name(const Geo& g, const T* gyn, const T* wv, const Steps* st, const Dup<T>& dp, T* gxn, T* gyd, \
                  T* gxs, T* gys) {                                                                           \
    sample<isa, T>(g, gyn, wv, st, dp, gxn, gyd, gxs, gys);                                                   \
  }
JEBM_BD_ENTRY(sample_avx512_f32, __attribute__((target("avx512f"), flatten)), IsaAvx512, float)
JEBM_BD_ENTRY(sample_avx512_f64, __attribute__((target("avx512f"), flatten)), IsaAvx512, double)
JEBM_BD_ENTRY(sample_fma_f32, __attribute__((target("avx2,fma"), flatten)), IsaFma, float)
JEBM_BD_ENTRY(sample_fma_f64, __attribute__((target("avx2,fma"), flatten)), IsaFma, double)
JEBM_BD_ENTRY(sample_base_f32, __attribute__((flatten)), IsaBase, float)
JEBM_BD_ENTRY(sample_base_f64, __attribute__((flatten)), IsaBase, double)
#undef JEBM_BD_ENTRY

template <typename T>
using SampleFn = void (*)(const Geo&, const T*, const T*, const Steps*, const Dup<T>&, T*, T*, T*, T*);

template <typename T>
SampleFn<T> sample_fn() {
  const int use = conv_direct::isa();
  if constexpr (sizeof(T) == 4) return use == 2 ? sample_avx512_f32 : use == 1 ? sample_fma_f32 : sample_base_f32;
  else return use == 2 ? sample_avx512_f64 : use == 1 ? sample_fma_f64 : sample_base_f64;
}

template <typename T>
void backward_data_typed(const Tensor& gy, const Tensor& w, const Conv2dParams& prm, Tensor& gx) {
  const Geo g = geo<T>(gx.shape(), w.shape(), gy.shape(), prm);
  const int64_t n = gx.size(0);
  std::vector<T> wstore(static_cast<size_t>(g.c * g.kh * g.f * g.kb * g.xp + kLanes<T>));
  T* wv = conv_direct::align64(wstore.data());
  weight_vectors(g, w.data<T>(), wv);
  std::vector<Steps> st;
  for (int64_t ry = 0; ry < g.s; ++ry) st.push_back(steps<T>(g, phase(g, ry).ka));
  const Dup<T> dp = dup_plan<T>(g);
  const T* gyp = gy.data<T>();
  T* gxp = gx.data<T>();
  const SampleFn<T> run = sample_fn<T>();
  for_samples(n, n * g.oh * g.ow * g.c * g.kh * g.kw * g.f, [&](int64_t i) {
    T* gyd = buffer<T>(0, g.fb * g.rows * g.rs());
    T* gxs = buffer<T>(1, g.c * g.h * g.xp);
    const int64_t fpo = g.f * g.oh * g.ow;
    const bool inside = i * fpo >= dp.before && (i + 1) * fpo + dp.after <= n * fpo;
    T* gys = inside ? nullptr : buffer<T>(2, dp.before + fpo + dp.after);
    run(g, gyp + i * fpo, wv, st.data(), dp, gxp + i * g.c * g.h * g.w, gyd, gxs, gys);
  });
}

std::atomic<int> forced_layout{-1};

// Which layout the input gradient takes (conv2d_direct_force_backward_data_layout): by pixels of the plane
// (conv_direct_backward_data_plane.cpp) where conv2d_direct_backward_data_by_plane says; else at stride 2, by the
// columns of one stride phase (conv_direct_backward_data_columns.cpp) for rows whose phases fill at least
// kColumnsMinLanes of a float32 vector, else, in the FMA version, by the columns of one (row, column) phase with its
// own taps only (conv_direct_backward_data_phases.cpp); else by output phase (this file). Measured at one thread on a
// Zen 3 (docs/performance.md, "Thin convolutions"): MNIST's conv1 at 28x28 (14 lanes) is faster by columns; conv1 at
// 14x14 and conv2 at 16x16 by phases (0.44 and 2.45 ms, where by output phase took 0.68 and 4.1). On an AVX-512 Xeon
// the FMA kernel by phases also beat the 64-byte kernel by output phase (conv2 2.14 against 2.33 ms, conv1 at 14x14
// 0.34 against 0.44, float64 too), so every CPU with FMA takes it.
constexpr int64_t kColumnsMinLanes = 12;
int layout(const Shape& x, const Shape& w, const Conv2dParams& p) {
  const int forced = forced_layout.load(std::memory_order_relaxed);
  if (forced == 3 || (forced < 0 && conv2d_direct_backward_data_by_plane(x, w))) return 3;
  if (p.stride != 2) return 0;
  if (forced >= 0) return forced;
  if ((p.padding + x[3] - 1) / 2 - p.padding / 2 + 1 >= kColumnsMinLanes) return 1;
  return conv_direct::isa() >= 1 ? 2 : 0;
}

int64_t pass_filters(const Shape& x, const Shape& w, const Shape& y, const Conv2dParams& p, size_t elem) {
  return elem == sizeof(float) ? geo<float>(x, w, y, p).fb : geo<double>(x, w, y, p).fb;
}

}  // namespace

namespace conv_direct {
int64_t backward_data_pass_filters(const Shape& x, const Shape& w, const Shape& y, const Conv2dParams& p,
                                   size_t elem) {
  return pass_filters(x, w, y, p, elem);
}
}  // namespace conv_direct

void conv2d_direct_force_backward_data_layout(int layout) { forced_layout.store(layout); }

void conv2d_direct_backward_data(const Tensor& grad_y, const Tensor& w, const Conv2dParams& p, Tensor& grad_x) {
  const int by = layout(grad_x.shape(), w.shape(), p);
  if (by == 1) return conv2d_direct_backward_data_columns(grad_y, w, p, grad_x);
  if (by == 2) return conv2d_direct_backward_data_phases(grad_y, w, p, grad_x);
  if (by == 3) return conv2d_direct_backward_data_plane(grad_y, w, p, grad_x);
  JEBM_DISPATCH_FLOAT(grad_y.dtype(), "conv2d_backward_data",
                      [&] { backward_data_typed<scalar_t>(grad_y, w, p, grad_x); });
}

}  // namespace jebm::cpu
