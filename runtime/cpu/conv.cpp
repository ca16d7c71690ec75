// CPU conv2d (NCHW) by im2col/col2im + GEMM: forward, backward-data, backward-filter, backward-bias; thin layers
// go to runtime/cpu/conv_direct.cpp (conv2d_direct_*_fits). The reference for runtime/cuda/conv.cu (cuDNN).
// Tested by tests/test_ops.cpp against direct 7-loop references, and tests/test_conv_direct.cpp.
//
// The batch is cut into groups of G samples whose patches sit one under another ([G*OH*OW, C*KH*KW], one sample's
// block contiguous), sized so a group's patches stay in L2 while its GEMM reads them. Groups run in parallel, one per
// thread, each with its own scratch buffers and one single-threaded BLAS call; a single group (one big image) instead
// threads its im2col and its GEMM's fixed blocks. Filter gradients are summed per slot (groups s, s+S, s+2S, ...)
// and the S slot sums added in slot order. G and S depend only on the shapes, so results do not depend on the thread
// count.
#include <omp.h>
#if defined(__x86_64__)
#include <immintrin.h>
#endif

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <mutex>
#include <new>
#include <vector>

#include "runtime/backend.hpp"
#include "runtime/cpu_features.hpp"
#include "runtime/cpu/conv_direct.hpp"
#include "runtime/cpu/gemm.hpp"
#include "runtime/cpu/parallel.hpp"

namespace jebm::cpu {
namespace {

constexpr int64_t kGroupBudget = int64_t{1} << 16;       // im2col elements of one group (256 KiB of float32)
constexpr int64_t kGroupMinCols = 256;                   // GEMM columns per group, at least: amortises packing w
constexpr int64_t kFilterSlots = 8;                      // partial filter-gradient sums, at most
constexpr int64_t kFilterSlotBudget = int64_t{1} << 21;  // elements of all partial filter gradients together

struct ConvGeom {
  int64_t n, c, h, w, f, kh, kw, oh, ow, stride, pad;
  int64_t ckk() const { return c * kh * kw; }
  int64_t p() const { return oh * ow; }
  int64_t group() const {
    const int64_t by_budget = kGroupBudget / std::max<int64_t>(1, ckk() * p());
    const int64_t by_cols = (kGroupMinCols + p() - 1) / std::max<int64_t>(1, p());
    return std::clamp<int64_t>(std::max(by_budget, by_cols), 1, std::max<int64_t>(n, 1));
  }
  int64_t groups() const { return (n + group() - 1) / group(); }
  int64_t work() const { return n * ckk() * p(); }  // im2col elements of the whole batch
};

ConvGeom geometry(const Shape& x, const Shape& w, const Shape& y, const Conv2dParams& p) {
  return {x[0], x[1], x[2], x[3], w[0], w[2], w[3], y[2], y[3], p.stride, p.padding};
}

// Per-thread scratch that persists across calls (a Langevin run calls the same shapes thousands of times), so the
// group loops neither allocate nor touch fresh pages. Slot 0: patches [G*P, CKK]; slot 1: grad_y or output in
// [F, G*P]; slot 2: one sample and the zero its padding taps read (im2col).
template <typename T>
T* scratch(int slot, int64_t count) {
  struct Buffer {
    void* p = nullptr;
    size_t bytes = 0;
    ~Buffer() { std::free(p); }
  };
  thread_local Buffer buffers[3];
  Buffer& b = buffers[slot];
  const size_t want = (static_cast<size_t>(count) * sizeof(T) + 63) / 64 * 64;
  if (b.bytes < want) {
    std::free(b.p);
    b.p = std::aligned_alloc(64, want);
    b.bytes = b.p ? want : 0;
    if (!b.p) throw std::bad_alloc();
  }
  return static_cast<T*>(b.p);
}

// Whether groups run one per thread (else one after another, each threading its own im2col and GEMM). A function
// of the shapes only: it picks between GEMM decompositions, so it must not depend on the thread count.
bool groups_in_parallel(const ConvGeom& q) { return q.groups() > 1 && q.work() >= kParallelMin; }

// Runs f(gi) for every group, in parallel when groups_in_parallel.
template <typename F>
void for_groups(const ConvGeom& q, F f) {
  const int64_t groups = q.groups();
  if (groups_in_parallel(q)) {
#pragma omp parallel for schedule(dynamic, 1)
    for (int64_t gi = 0; gi < groups; ++gi) f(gi);
  } else {
    for (int64_t gi = 0; gi < groups; ++gi) f(gi);
  }
}

// One group's product: a single BLAS call when groups run one per thread, else fixed threaded blocks.
template <typename T>
void group_gemm(bool per_thread, bool ta, bool tb, int64_t m, int64_t n, int64_t k, const T* a, int64_t lda,
                const T* b, int64_t ldb, T beta, T* c, int64_t ldc) {
  if (per_thread) gemm_serial(ta, tb, m, n, k, T(1), a, lda, b, ldb, beta, c, ldc);
  else gemm_blocked(ta, tb, m, n, k, T(1), a, lda, b, ldb, beta, c, ldc);
}

// --- patches ------------------------------------------------------------------------------------------------
// A sample's patches are gathered through a table of offsets, patch[(oy, ox), (c, i, j)] = x_n[c, iy, ix] with
// iy = oy*s - pad + i, ix = ox*s - pad + j, and offset C*H*W (a zero one past the sample) where the window hits
// padding. So im2col is one flat gather of P*CKK elements and col2im one sum per pixel over the table inverted
// (Col2imIndex): row loops over OW = 16, 8, 4, 2 outputs spent their time on loop control and tiny copies. The
// table depends only on the geometry and is built once per shape.

struct PatchKey {
  int64_t c, h, w, kh, kw, stride, pad;
  bool operator==(const PatchKey& o) const {
    return c == o.c && h == o.h && w == o.w && kh == o.kh && kw == o.kw && stride == o.stride && pad == o.pad;
  }
};

// Which patch entries read each pixel: pixel e's are entry[start[e] .. start[e + 1]), in patch order (the patch
// table inverted; padding taps, which read the extra element, are left out).
struct Col2imIndex {
  std::vector<int32_t> start, entry;
};

Col2imIndex col2im_index(const std::vector<int32_t>& table, int64_t chw) {
  Col2imIndex ix;
  ix.start.assign(static_cast<size_t>(chw + 2), 0);
  for (int32_t e : table) ++ix.start[static_cast<size_t>(e) + 1];
  for (int64_t e = 0; e <= chw; ++e) ix.start[static_cast<size_t>(e + 1)] += ix.start[static_cast<size_t>(e)];
  std::vector<int32_t> next(ix.start.begin(), ix.start.end() - 1);
  ix.entry.resize(table.size());
  for (size_t t = 0; t < table.size(); ++t) ix.entry[static_cast<size_t>(next[static_cast<size_t>(table[t])]++)] =
      static_cast<int32_t>(t);
  return ix;
}

// A shape's patch offsets, patch[(oy, ox), (c, i, j)] as [P * CKK], and their inverse for col2im. Cached: shared,
// read-only, the oldest of kPatchCacheSize shapes dropped first.
struct Patches {
  std::vector<int32_t> offset;
  Col2imIndex inverse;
};
using PatchTable = std::shared_ptr<const Patches>;

PatchTable patch_table(const ConvGeom& q) {
  constexpr size_t kPatchCacheSize = 32;
  static std::mutex mutex;
  static std::vector<std::pair<PatchKey, PatchTable>> cache;
  const PatchKey key{q.c, q.h, q.w, q.kh, q.kw, q.stride, q.pad};
  std::lock_guard<std::mutex> lock(mutex);
  for (const auto& e : cache)
    if (e.first == key) return e.second;
  const int64_t chw = q.c * q.h * q.w;
  JEBM_CHECK(chw < (int64_t{1} << 31), "conv2d: one sample [" << q.c << ", " << q.h << ", " << q.w
                                                                << "] exceeds the 32-bit patch offsets");
  auto t = std::make_shared<Patches>();
  t->offset.resize(static_cast<size_t>(q.p() * q.ckk()));
  int32_t* o = t->offset.data();
  for (int64_t oy = 0; oy < q.oh; ++oy)
    for (int64_t ox = 0; ox < q.ow; ++ox)
      for (int64_t c = 0; c < q.c; ++c)
        for (int64_t i = 0; i < q.kh; ++i)
          for (int64_t j = 0; j < q.kw; ++j) {
            const int64_t iy = oy * q.stride - q.pad + i, ix = ox * q.stride - q.pad + j;
            const bool inside = iy >= 0 && iy < q.h && ix >= 0 && ix < q.w;
            *o++ = static_cast<int32_t>(inside ? (c * q.h + iy) * q.w + ix : chw);
          }
  t->inverse = col2im_index(t->offset, chw);
  if (cache.size() == kPatchCacheSize) cache.erase(cache.begin());
  cache.emplace_back(key, t);
  return t;
}

// dst[t] = src[idx[t]]. GCC does not vectorise gathers for generic tuning; on AVX-512 CPUs 16-lane hardware gathers
// cut im2col's time by about a third. (The masked intrinsics: GCC 12 warns inside the unmasked ones.)
#if defined(__x86_64__)
__attribute__((target("avx512f"))) void gather_avx512(const float* src, const int32_t* idx, float* dst,
                                                      int64_t n) {
  int64_t t = 0;
  for (; t + 16 <= n; t += 16)
    _mm512_storeu_ps(dst + t,
                     _mm512_mask_i32gather_ps(_mm512_setzero_ps(), 0xFFFF, _mm512_loadu_si512(idx + t), src, 4));
  for (; t < n; ++t) dst[t] = src[idx[t]];
}
__attribute__((target("avx512f"))) void gather_avx512(const double* src, const int32_t* idx, double* dst,
                                                      int64_t n) {
  int64_t t = 0;
  for (; t + 8 <= n; t += 8)
    _mm512_storeu_pd(dst + t, _mm512_mask_i32gather_pd(_mm512_setzero_pd(), 0xFF,
                                                       _mm256_loadu_si256(reinterpret_cast<const __m256i*>(idx + t)),
                                                       src, 8));
  for (; t < n; ++t) dst[t] = src[idx[t]];
}
#endif

template <typename T>
void gather(const T* src, const int32_t* idx, T* dst, int64_t n) {
#if defined(__x86_64__)
  if (cpu_features().avx512f) return gather_avx512(src, idx, dst, n);
#endif
  for (int64_t t = 0; t < n; ++t) dst[t] = src[idx[t]];
}

// x_n: [C, H, W] -> its patches [P, CKK]. x_n is copied next to the zero the padding offsets point at.
template <typename T>
void sample_im2col(const ConvGeom& q, const int32_t* table, const T* xn, T* patches) {
  const int64_t chw = q.c * q.h * q.w, n = q.p() * q.ckk();
  T* src = scratch<T>(2, chw + 1);
  std::memcpy(src, xn, static_cast<size_t>(chw) * sizeof(T));
  src[chw] = T(0);
  gather(src, table, patches, n);
}

// The adjoint of sample_im2col: gx_n = sum of the patch entries that read each pixel, added in patch order from
// zero: the bits of a scatter-add over the patches in order, computed pixel by pixel (the scatter-add's loads and
// stores of the sums cost more, on MNIST's conv4 about 40 %).
template <typename T>
void sample_col2im(const ConvGeom& q, const Col2imIndex& ix, const T* patches, T* gxn) {
  const int64_t chw = q.c * q.h * q.w;
  const int32_t* start = ix.start.data();
  const int32_t* entry = ix.entry.data();
  for (int64_t e = 0; e < chw; ++e) {
    T v = T(0);
    for (int32_t k = start[e]; k < start[e + 1]; ++k) v += patches[entry[k]];
    gxn[e] = v;
  }
}

// Runs f(g) for every sample g < gn of one group; threaded only when not already inside a parallel region (the
// single-group case). Each f(g) writes only sample g's data, so the order does not matter.
template <typename F>
void for_samples(const ConvGeom& q, int64_t gn, F f) {
  if (gn > 1 && !omp_in_parallel() && gn * q.ckk() * q.p() >= kParallelMin) {
#pragma omp parallel for schedule(static)
    for (int64_t g = 0; g < gn; ++g) f(g);
  } else {
    for (int64_t g = 0; g < gn; ++g) f(g);
  }
}

// The patches [gn*P, CKK] of samples n0 .. n0+gn of x: [N, C, H, W].
template <typename T>
void group_im2col(const ConvGeom& q, const int32_t* table, const T* x, int64_t n0, int64_t gn, T* col) {
  for_samples(q, gn, [&](int64_t g) {
    sample_im2col(q, table, x + (n0 + g) * q.c * q.h * q.w, col + g * q.p() * q.ckk());
  });
}

// grad_y samples n0 .. n0+gn, [gn, F, P] -> [F, gn*P] (the layout the group GEMMs produce and consume). One sample
// needs no copy: its [F, P] block already is that layout.
template <typename T>
const T* group_grad_y(const ConvGeom& q, const T* gy, int64_t n0, int64_t gn) {
  const int64_t p = q.p();
  const T* src = gy + n0 * q.f * p;
  if (gn == 1) return src;
  T* dst = scratch<T>(1, q.f * gn * p);
  for (int64_t g = 0; g < gn; ++g)
    for (int64_t f = 0; f < q.f; ++f) {
      const T* r = src + (g * q.f + f) * p;
      T* d = dst + f * gn * p + g * p;
      for (int64_t k = 0; k < p; ++k) d[k] = r[k];  // rows of 4 to 256: a loop, not a memmove call each
    }
  return dst;
}

template <typename T>
void forward_typed(const Tensor& x, const Tensor& w, const Tensor& bias, const Conv2dParams& prm, Tensor& y) {
  const ConvGeom q = geometry(x.shape(), w.shape(), y.shape(), prm);
  const int64_t G = q.group(), p = q.p(), ckk = q.ckk();
  const T* xp = x.data<T>();
  const T* wp = w.data<T>();  // [F, CKK]
  const T* bp = bias.defined() ? bias.data<T>() : nullptr;
  T* yp = y.data<T>();
  const PatchTable table = patch_table(q);
  for_groups(q, [&](int64_t gi) {
    const int64_t n0 = gi * G, gn = std::min(G, q.n - n0);
    T* col = scratch<T>(0, gn * p * ckk);  // [gn*P, CKK]
    group_im2col(q, table->offset.data(), xp, n0, gn, col);
    // w [F, CKK] x col^T. One sample's product [F, P] lands in y directly; a group's [F, gn*P] is spread over its
    // samples.
    T* out = gn == 1 ? yp + n0 * q.f * p : scratch<T>(1, q.f * gn * p);
    group_gemm(groups_in_parallel(q), false, true, q.f, gn * p, ckk, wp, ckk, col, ckk, T(0), out, gn * p);
    for (int64_t g = 0; g < gn; ++g)
      for (int64_t f = 0; f < q.f; ++f) {
        const T b = bp ? bp[f] : T(0);
        const T* s = out + f * gn * p + g * p;
        T* d = yp + ((n0 + g) * q.f + f) * p;
        for (int64_t k = 0; k < p; ++k) d[k] = s[k] + b;
      }
  });
}

template <typename T>
void backward_data_typed(const Tensor& gy, const Tensor& w, const Conv2dParams& prm, Tensor& gx) {
  const ConvGeom q = geometry(gx.shape(), w.shape(), gy.shape(), prm);
  const int64_t G = q.group(), p = q.p(), ckk = q.ckk();
  const T* gyp = gy.data<T>();
  const T* wp = w.data<T>();  // [F, CKK]
  T* gxp = gx.data<T>();
  const PatchTable table = patch_table(q);  // its inverse: which patch entries read each pixel
  for_groups(q, [&](int64_t gi) {
    const int64_t n0 = gi * G, gn = std::min(G, q.n - n0);
    const T* gyt = group_grad_y(q, gyp, n0, gn);
    T* col = scratch<T>(0, gn * p * ckk);  // [gn*P, CKK] = gy_g^T [gn*P, F] x w [F, CKK]
    group_gemm(groups_in_parallel(q), true, false, gn * p, ckk, q.f, gyt, gn * p, wp, ckk, T(0), col, ckk);
    for_samples(q, gn, [&](int64_t g) {
      sample_col2im(q, table->inverse, col + g * p * ckk, gxp + (n0 + g) * q.c * q.h * q.w);
    });
  });
}

template <typename T>
void backward_filter_typed(const Tensor& gy, const Tensor& x, const Conv2dParams& prm, Tensor& gw) {
  const ConvGeom q = geometry(x.shape(), gw.shape(), gy.shape(), prm);
  const int64_t G = q.group(), p = q.p(), ckk = q.ckk(), groups = q.groups(), fk = q.f * ckk;
  const T* xp = x.data<T>();
  const T* gyp = gy.data<T>();
  T* gwp = gw.data<T>();  // [F, CKK]
  if (q.n == 0) {
    std::fill(gwp, gwp + fk, T(0));
    return;
  }
  const PatchTable table = patch_table(q);
  const int64_t slots =
      std::clamp<int64_t>(kFilterSlotBudget / std::max<int64_t>(1, fk), 1, std::min(groups, kFilterSlots));
  const bool per_thread = slots > 1 && q.work() >= kParallelMin;
  // Adds group gi's gy_g [F, gn*P] x col [gn*P, CKK] into acc (overwrites when first).
  auto add_group = [&](int64_t gi, T* acc, bool first) {
    const int64_t n0 = gi * G, gn = std::min(G, q.n - n0);
    T* col = scratch<T>(0, gn * p * ckk);
    group_im2col(q, table->offset.data(), xp, n0, gn, col);
    const T* gyt = group_grad_y(q, gyp, n0, gn);
    group_gemm(per_thread, false, false, q.f, ckk, gn * p, gyt, gn * p, col, ckk, first ? T(0) : T(1), acc, ckk);
  };
  if (!per_thread) {
    for (int64_t gi = 0; gi < groups; ++gi) add_group(gi, gwp, gi == 0);
    return;
  }
  std::vector<T> part(static_cast<size_t>(slots * fk));
#pragma omp parallel for schedule(dynamic, 1)
  for (int64_t s = 0; s < slots; ++s)
    for (int64_t gi = s; gi < groups; gi += slots) add_group(gi, part.data() + s * fk, gi == s);
  for (int64_t k = 0; k < fk; ++k) {
    T v = part[static_cast<size_t>(k)];
    for (int64_t s = 1; s < slots; ++s) v += part[static_cast<size_t>(s * fk + k)];
    gwp[k] = v;
  }
}

// One filter's bias gradient: its grad_y rows (n of them, p values each, `stride` apart) summed in double, each
// row into kBiasLanes independent partial sums, then the lanes added in order. Cloned for AVX-512 and AVX2: the
// lanes are one register there (two or four in the baseline build), and every clone adds the same values in the
// same order, so all give the same bits.
constexpr int64_t kBiasLanes = 8;
template <typename T>
__attribute__((target_clones("avx512f", "avx2", "default"))) double bias_sum(const T* src, int64_t n, int64_t stride,
                                                                             int64_t p) {
  double lane[kBiasLanes] = {};
  double tail = 0.0;
  const int64_t body = p / kBiasLanes * kBiasLanes;
  for (int64_t i = 0; i < n; ++i) {
    const T* r = src + i * stride;
    for (int64_t k = 0; k < body; k += kBiasLanes)
      for (int64_t l = 0; l < kBiasLanes; ++l) lane[l] += static_cast<double>(r[k + l]);
    for (int64_t k = body; k < p; ++k) tail += static_cast<double>(r[k]);
  }
  double s = tail;
  for (int64_t l = 0; l < kBiasLanes; ++l) s += lane[l];
  return s;
}

template <typename T>
void backward_bias_typed(const Tensor& gy, Tensor& gb) {
  // grad_y: [N, F, P] summed over N and P, per F, in a fixed order (bias_sum).
  const int64_t n = gy.size(0), f = gy.size(1), p = gy.size(2) * gy.size(3);
  const T* src = gy.data<T>();
  T* dst = gb.data<T>();
  auto one = [&](int64_t j) { dst[j] = static_cast<T>(bias_sum(src + j * p, n, f * p, p)); };
  if (gy.numel() >= kParallelMin && f > 1) {
#pragma omp parallel for schedule(static)
    for (int64_t j = 0; j < f; ++j) one(j);
  } else {
    for (int64_t j = 0; j < f; ++j) one(j);
  }
}

}  // namespace

void conv2d_im2col_forward(const Tensor& x, const Tensor& w, const Tensor& bias, const Conv2dParams& p, Tensor& y) {
  JEBM_DISPATCH_FLOAT(x.dtype(), "conv2d", [&] { forward_typed<scalar_t>(x, w, bias, p, y); });
}

void conv2d_im2col_backward_data(const Tensor& grad_y, const Tensor& w, const Conv2dParams& p, Tensor& grad_x) {
  JEBM_DISPATCH_FLOAT(grad_y.dtype(), "conv2d_backward_data", [&] { backward_data_typed<scalar_t>(grad_y, w, p, grad_x); });
}

// Thin layers (runtime/cpu/conv_direct.cpp) go direct; the rest through im2col + GEMM.
void conv2d_forward(const Tensor& x, const Tensor& w, const Tensor& bias, const Conv2dParams& p, Tensor& y) {
  if (conv2d_direct_forward_fits(x.shape(), w.shape(), p)) return conv2d_direct_forward(x, w, bias, p, y);
  conv2d_im2col_forward(x, w, bias, p, y);
}

void conv2d_backward_data(const Tensor& grad_y, const Tensor& w, const Conv2dParams& p, Tensor& grad_x) {
  if (conv2d_direct_backward_data_fits(grad_x.shape(), w.shape(), p))
    return conv2d_direct_backward_data(grad_y, w, p, grad_x);
  conv2d_im2col_backward_data(grad_y, w, p, grad_x);
}

void conv2d_im2col_backward_filter(const Tensor& grad_y, const Tensor& x, const Conv2dParams& p, Tensor& grad_w) {
  JEBM_DISPATCH_FLOAT(grad_y.dtype(), "conv2d_backward_filter", [&] { backward_filter_typed<scalar_t>(grad_y, x, p, grad_w); });
}

void conv2d_backward_filter(const Tensor& grad_y, const Tensor& x, const Conv2dParams& p, Tensor& grad_w) {
  if (conv2d_direct_backward_filter_fits(x.shape(), grad_w.shape(), p))
    return conv2d_direct_backward_filter(grad_y, x, p, grad_w);
  conv2d_im2col_backward_filter(grad_y, x, p, grad_w);
}

void conv2d_backward_bias(const Tensor& grad_y, Tensor& grad_b) {
  JEBM_DISPATCH_FLOAT(grad_y.dtype(), "conv2d_backward_bias", [&] { backward_bias_typed<scalar_t>(grad_y, grad_b); });
}

}  // namespace jebm::cpu
