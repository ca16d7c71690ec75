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
#include <new>
#include <type_traits>
#include <vector>

#include "runtime/backend.hpp"
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
// [F, G*P]; slot 2: col2im's frame of one sample; slot 3: im2col's (sample_frame).
template <typename T>
T* scratch(int slot, int64_t count) {
  struct Buffer {
    void* p = nullptr;
    size_t bytes = 0;
    ~Buffer() { std::free(p); }
  };
  thread_local Buffer buffers[4];
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

// group_gemm with beta = 0 for the forward (NT) and backward-data (TN) products, whose c [m, n] is dense. OpenBLAS
// clears c for beta = 0 with a scalar loop (sgemm_beta, one float per cycle: ~6 % of MNIST conv3/conv4's passes on
// Zen 3); clearing it here and adding the products with beta = 1 gives the same bits, its kernels adding them to the
// cleared c either way. Only above 100^3 multiply-adds: below, OpenBLAS on AVX-512 CPUs may take small-matrix
// kernels whose beta = 0 variant stores the products instead (a -0.0 product would stay -0.0).
template <typename T>
void group_gemm_overwrite(bool per_thread, bool ta, bool tb, int64_t m, int64_t n, int64_t k, const T* a,
                          int64_t lda, const T* b, int64_t ldb, T* c) {
  constexpr int64_t kSmallMatrix = 100 * 100 * 100;
  if (m * n * k <= kSmallMatrix) return group_gemm(per_thread, ta, tb, m, n, k, a, lda, b, ldb, T(0), c, n);
  std::fill(c, c + m * n, T(0));
  group_gemm(per_thread, ta, tb, m, n, k, a, lda, b, ldb, T(1), c, n);
}

// --- patches ------------------------------------------------------------------------------------------------
// A sample is first copied into a zeroed frame [C, HP, WP], pixel (c, iy, ix) at (c, iy + pad, ix + pad), so that
// every window lies inside it and patch[(oy, ox), (c, i, j)] = frame[c, oy*s + i, ox*s + j]: each patch row (c, i)
// is KW contiguous elements, moved kLanes at a time. For MNIST's 3x3 layers that is one 4-wide load and store per
// row where a gather through a table of offsets (the code before) spent one indexed load per element; on Zen 3
// hardware gathers were slower still than that scalar loop.

constexpr int64_t kLanes = 4;  // elements moved at once; rows of KW elements take ceil(KW / kLanes) moves

struct Frame {
  int64_t hp, wp, size;  // size: C*HP*WP plus kLanes of slack for the wide moves past the last row's end
};

Frame frame(const ConvGeom& q) {
  const int64_t hp = std::max(q.h + q.pad, (q.oh - 1) * q.stride + q.kh);
  const int64_t wp = std::max(q.w + q.pad, (q.ow - 1) * q.stride + q.kw);
  return {hp, wp, q.c * hp * wp + kLanes};
}

// Moves of kLanes elements: copy d[0 .. kLanes) = s[0 .. kLanes); add d[l] += s[l] for the lanes a mask keeps, and
// d[l] += +0.0 for the rest, which leaves d[l] as it is (see sample_col2im). SSE2, which every x86-64 has.
#if defined(__x86_64__)
template <typename T>
struct Lanes;
template <>
struct Lanes<float> {
  using Mask = __m128;
  static Mask mask(int64_t keep) {
    alignas(16) static const int32_t bits[8] = {-1, -1, -1, -1, 0, 0, 0, 0};
    return _mm_loadu_ps(reinterpret_cast<const float*>(bits + kLanes - keep));
  }
  static void copy(const float* s, float* d) { _mm_storeu_ps(d, _mm_loadu_ps(s)); }
  static void add(const float* s, Mask m, float* d) {
    _mm_storeu_ps(d, _mm_add_ps(_mm_loadu_ps(d), _mm_and_ps(_mm_loadu_ps(s), m)));
  }
};
template <>
struct Lanes<double> {
  struct Mask {
    __m128d lo, hi;
  };
  static Mask mask(int64_t keep) {
    alignas(16) static const int64_t bits[8] = {-1, -1, -1, -1, 0, 0, 0, 0};
    const double* m = reinterpret_cast<const double*>(bits + kLanes - keep);
    return {_mm_loadu_pd(m), _mm_loadu_pd(m + 2)};
  }
  static void copy(const double* s, double* d) {
    _mm_storeu_pd(d, _mm_loadu_pd(s));
    _mm_storeu_pd(d + 2, _mm_loadu_pd(s + 2));
  }
  static void add(const double* s, Mask m, double* d) {
    _mm_storeu_pd(d, _mm_add_pd(_mm_loadu_pd(d), _mm_and_pd(_mm_loadu_pd(s), m.lo)));
    _mm_storeu_pd(d + 2, _mm_add_pd(_mm_loadu_pd(d + 2), _mm_and_pd(_mm_loadu_pd(s + 2), m.hi)));
  }
};
#else
template <typename T>
struct Lanes {
  using Mask = int64_t;  // how many lanes to add
  static Mask mask(int64_t keep) { return keep; }
  static void copy(const T* s, T* d) {
    for (int64_t l = 0; l < kLanes; ++l) d[l] = s[l];
  }
  static void add(const T* s, Mask keep, T* d) {
    for (int64_t l = 0; l < keep; ++l) d[l] += s[l];
  }
};
#endif

// Copies n elements, kLanes at a time and the rest one by one (rows of the frame and of the sample).
template <typename T>
void copy_exact(const T* s, T* d, int64_t n) {
  int64_t k = 0;
  for (; k + kLanes <= n; k += kLanes) Lanes<T>::copy(s + k, d + k);
  for (; k < n; ++k) d[k] = s[k];
}

// x_n: [C, H, W] -> its zero-bordered frame. The zeros are written once per thread and shape: a frame of the same
// shape as this thread's previous one still has them, and only the pixels are copied.
template <typename T>
const T* sample_frame(const ConvGeom& q, const Frame& fr, const T* xn) {
  struct Shape {
    const T* buf;
    int64_t c, h, w, pad, hp, wp;
    bool operator==(const Shape& o) const {
      return buf == o.buf && c == o.c && h == o.h && w == o.w && pad == o.pad && hp == o.hp && wp == o.wp;
    }
  };
  thread_local Shape last{nullptr, 0, 0, 0, 0, 0, 0};
  T* buf = scratch<T>(3, fr.size);
  const Shape now{buf, q.c, q.h, q.w, q.pad, fr.hp, fr.wp};
  if (!(now == last)) {
    std::fill(buf, buf + fr.size, T(0));
    last = now;
  }
  const int64_t h = q.h, w = q.w, wp = fr.wp;
  T* d = buf + q.pad * wp + q.pad;
  for (int64_t c = 0; c < q.c; ++c, d += (fr.hp - h) * wp)
    for (int64_t iy = 0; iy < h; ++iy, xn += w, d += wp) copy_exact(xn, d, w);
  return buf;
}

// x_n: [C, H, W] -> its patches [P, CKK]. A row's wide stores run up to kLanes - 1 elements into the next rows,
// which are written after it; in the last window, rows that would run past the sample's block (the next sample's
// block may be another thread's) are copied exactly. KW: the kernel width when known at compile time (3x3 layers:
// the row loop unrolls), else 0.
template <int64_t KW, typename T>
void sample_im2col(const ConvGeom& q, const Frame& fr, const T* xn, T* patches) {
  const T* buf = sample_frame(q, fr, xn);
  const int64_t kw = KW ? KW : q.kw, kh = q.kh, c_count = q.c, wp = fr.wp, next_channel = (fr.hp - kh) * wp;
  const int64_t windows = q.p(), span = (kw + kLanes - 1) / kLanes * kLanes;
  T* const end = patches + windows * q.ckk();
  T* d = patches;
  for (int64_t k = 0; k < windows; ++k) {
    const T* s = buf + (k / q.ow) * q.stride * wp + (k % q.ow) * q.stride;
    const bool last = k == windows - 1;
    for (int64_t c = 0; c < c_count; ++c, s += next_channel)
      for (int64_t i = 0; i < kh; ++i, s += wp, d += kw) {
        if (last && d + span > end) {
          for (int64_t j = 0; j < kw; ++j) d[j] = s[j];
        } else {
          for (int64_t j = 0; j < kw; j += kLanes) Lanes<T>::copy(s + j, d + j);
        }
      }
  }
}

// The adjoint of sample_im2col: gx_n = sum of the patch entries that read each pixel, added in patch order
// ((oy, ox) ascending) from +0.0, the same sums as a gather per pixel through the inverted offset table (the code
// before). Each patch row is added into the frame kLanes at a time; lanes past the row's end add +0.0 to whatever
// they hit, which changes nothing: a sum started at +0.0 is never -0.0 in round-to-nearest (a + b is -0.0 only when
// both are), and v + (+0.0) == v, bit for bit, for every other v, NaN included. Reads up to kLanes - 1 elements past
// the block's end (masked off). KW as for sample_im2col.
template <int64_t KW, typename T>
void sample_col2im(const ConvGeom& q, const Frame& fr, const T* patches, T* gxn) {
  T* buf = scratch<T>(2, fr.size);
  std::fill(buf, buf + fr.size, T(0));
  const int64_t kw = KW ? KW : q.kw, kh = q.kh, c_count = q.c, wp = fr.wp, next_channel = (fr.hp - kh) * wp;
  const int64_t body = kw / kLanes * kLanes, rest = kw - body, windows = q.p();
  const typename Lanes<T>::Mask all = Lanes<T>::mask(kLanes), tail = Lanes<T>::mask(rest);
  const T* s = patches;
  for (int64_t k = 0; k < windows; ++k) {
    T* d = buf + (k / q.ow) * q.stride * wp + (k % q.ow) * q.stride;
    for (int64_t c = 0; c < c_count; ++c, d += next_channel)
      for (int64_t i = 0; i < kh; ++i, s += kw, d += wp) {
        for (int64_t j = 0; j < body; j += kLanes) Lanes<T>::add(s + j, all, d + j);
        if (rest) Lanes<T>::add(s + body, tail, d + body);
      }
  }
  const int64_t h = q.h, w = q.w;
  const T* r = buf + q.pad * wp + q.pad;
  for (int64_t c = 0; c < c_count; ++c, r += (fr.hp - h) * wp)
    for (int64_t iy = 0; iy < h; ++iy, r += wp, gxn += w) copy_exact(r, gxn, w);
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
void group_im2col(const ConvGeom& q, const Frame& fr, const T* x, int64_t n0, int64_t gn, T* col) {
  for_samples(q, gn, [&](int64_t g) {
    const T* xn = x + (n0 + g) * q.c * q.h * q.w;
    T* patches = col + g * q.p() * q.ckk();
    if (q.kw == 3) sample_im2col<3>(q, fr, xn, patches);
    else sample_im2col<0>(q, fr, xn, patches);
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
  const Frame fr = frame(q);
  for_groups(q, [&](int64_t gi) {
    const int64_t n0 = gi * G, gn = std::min(G, q.n - n0);
    T* col = scratch<T>(0, gn * p * ckk);  // [gn*P, CKK]
    group_im2col(q, fr, xp, n0, gn, col);
    // w [F, CKK] x col^T. One sample's product [F, P] lands in y directly; a group's [F, gn*P] is spread over its
    // samples.
    T* out = gn == 1 ? yp + n0 * q.f * p : scratch<T>(1, q.f * gn * p);
    group_gemm_overwrite(groups_in_parallel(q), false, true, q.f, gn * p, ckk, wp, ckk, col, ckk, out);
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
  const Frame fr = frame(q);
  for_groups(q, [&](int64_t gi) {
    const int64_t n0 = gi * G, gn = std::min(G, q.n - n0);
    const T* gyt = group_grad_y(q, gyp, n0, gn);
    // [gn*P, CKK] = gy_g^T [gn*P, F] x w [F, CKK], and the kLanes that sample_col2im reads past its end
    T* col = scratch<T>(0, gn * p * ckk + kLanes);
    group_gemm_overwrite(groups_in_parallel(q), true, false, gn * p, ckk, q.f, gyt, gn * p, wp, ckk, col);
    for_samples(q, gn, [&](int64_t g) {
      const T* patches = col + g * p * ckk;
      T* gxn = gxp + (n0 + g) * q.c * q.h * q.w;
      if (q.kw == 3) sample_col2im<3>(q, fr, patches, gxn);
      else sample_col2im<0>(q, fr, patches, gxn);
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
  const Frame fr = frame(q);
  const int64_t slots =
      std::clamp<int64_t>(kFilterSlotBudget / std::max<int64_t>(1, fk), 1, std::min(groups, kFilterSlots));
  const bool per_thread = slots > 1 && q.work() >= kParallelMin;
  // Adds group gi's gy_g [F, gn*P] x col [gn*P, CKK] into acc (overwrites when first).
  auto add_group = [&](int64_t gi, T* acc, bool first) {
    const int64_t n0 = gi * G, gn = std::min(G, q.n - n0);
    T* col = scratch<T>(0, gn * p * ckk);
    group_im2col(q, fr, xp, n0, gn, col);
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

// The bias gradients of NF consecutive filters: each filter's grad_y rows (n of them, p values each, `stride` apart;
// filter b's rows start b * p after filter 0's) summed in double, each row into kBiasLanes independent partial sums,
// then the lanes added in order. One filter's sum is one chain of dependent adds, so a filter at a time was bound by
// the add's latency (3.5 % of the MNIST energy's forward + backward at 1 thread); NF filters' chains advance side by
// side, each adding the same values in the same order as alone. Cloned for AVX-512 and AVX2: a filter's lanes are
// one register there (two or four in the baseline build), and every clone adds the same values in the same order,
// so all give the same bits (tests/test_ops.cpp pins the order).
constexpr int64_t kBiasLanes = 8, kBiasFilters = 4;
typedef double BiasLanes __attribute__((vector_size(kBiasLanes * sizeof(double))));
typedef float BiasLanesF32 __attribute__((vector_size(kBiasLanes * sizeof(float))));

// acc[l] += p[l] for the kBiasLanes lanes, p widened to double (GCC's vector types: the same lane-wise adds in every
// clone). By reference: a 64-byte vector returned by value would change the ABI between clones.
template <typename T>
inline __attribute__((always_inline)) void add_bias_lanes(BiasLanes& acc, const T* p) {
  if constexpr (std::is_same_v<T, float>) {
    BiasLanesF32 f;
    std::memcpy(&f, p, sizeof f);
    acc += __builtin_convertvector(f, BiasLanes);
  } else {
    BiasLanes d;
    std::memcpy(&d, p, sizeof d);
    acc += d;
  }
}

template <int64_t NF, typename T>
__attribute__((target_clones("avx512f", "avx2", "default"))) void bias_sums(const T* src, int64_t n, int64_t stride,
                                                                            int64_t p, double* out) {
  BiasLanes lane[NF] = {};
  double tail[NF] = {};
  const int64_t body = p / kBiasLanes * kBiasLanes;
  for (int64_t i = 0; i < n; ++i) {
    const T* r = src + i * stride;
    for (int64_t k = 0; k < body; k += kBiasLanes)
      for (int64_t b = 0; b < NF; ++b) add_bias_lanes(lane[b], r + b * p + k);
    for (int64_t k = body; k < p; ++k)
      for (int64_t b = 0; b < NF; ++b) tail[b] += static_cast<double>(r[b * p + k]);
  }
  for (int64_t b = 0; b < NF; ++b) {
    double s = tail[b];
    for (int64_t l = 0; l < kBiasLanes; ++l) s += lane[b][l];
    out[b] = s;
  }
}

template <typename T>
void backward_bias_typed(const Tensor& gy, Tensor& gb) {
  // grad_y: [N, F, P] summed over N and P, per F, in a fixed order (bias_sums), kBiasFilters filters at a time.
  const int64_t n = gy.size(0), f = gy.size(1), p = gy.size(2) * gy.size(3);
  const int64_t blocks = (f + kBiasFilters - 1) / kBiasFilters;
  const T* src = gy.data<T>();
  T* dst = gb.data<T>();
  auto block = [&](int64_t q) {
    const int64_t j0 = q * kBiasFilters, nf = std::min(kBiasFilters, f - j0);
    double s[kBiasFilters];
    if (nf == kBiasFilters) {
      bias_sums<kBiasFilters>(src + j0 * p, n, f * p, p, s);
    } else {
      for (int64_t b = 0; b < nf; ++b) bias_sums<1>(src + (j0 + b) * p, n, f * p, p, s + b);
    }
    for (int64_t b = 0; b < nf; ++b) dst[j0 + b] = static_cast<T>(s[b]);
  };
  if (gy.numel() >= kParallelMin && blocks > 1) {
#pragma omp parallel for schedule(static)
    for (int64_t q = 0; q < blocks; ++q) block(q);
  } else {
    for (int64_t q = 0; q < blocks; ++q) block(q);
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
