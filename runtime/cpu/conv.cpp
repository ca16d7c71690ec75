// CPU conv2d (NCHW) by im2col/col2im + GEMM: forward, backward-data, backward-filter, backward-bias. The reference
// for runtime/cuda/conv.cu (cuDNN). Tested by tests/test_ops.cpp against direct 7-loop references.
//
// The batch is processed in groups of G samples whose im2col columns sit side by side, so each group is one large
// GEMM (BLAS threads it) while im2col/col2im run in parallel over (sample, channel). G depends only on the shapes,
// and group results are combined in group order, so results do not depend on the thread count.
#include <algorithm>
#include <cstdint>
#include <cstring>
#include <vector>

#include "runtime/backend.hpp"
#include "runtime/cpu/parallel.hpp"

namespace jebm::cpu {
namespace {

constexpr int64_t kColBudget = int64_t{1} << 22;  // elements of one group's im2col buffer

struct ConvGeom {
  int64_t n, c, h, w, f, kh, kw, oh, ow, stride, pad;
  int64_t ckk() const { return c * kh * kw; }
  int64_t p() const { return oh * ow; }
  int64_t group() const { return std::clamp<int64_t>(kColBudget / std::max<int64_t>(1, ckk() * p()), 1, std::max<int64_t>(n, 1)); }
};

ConvGeom geometry(const Shape& x, const Shape& w, const Shape& y, const Conv2dParams& p) {
  return {x[0], x[1], x[2], x[3], w[0], w[2], w[3], y[2], y[3], p.stride, p.padding};
}

// Runs f(g, c) for every sample g < gn and channel c, in parallel when the group is big.
template <typename F>
void for_sample_channel(const ConvGeom& q, int64_t gn, F f) {
  const int64_t tasks = gn * q.c;
  if (tasks > 1 && gn * q.ckk() * q.p() >= kParallelMin) {
#pragma omp parallel for schedule(static)
    for (int64_t t = 0; t < tasks; ++t) f(t / q.c, t % q.c);
  } else {
    for (int64_t t = 0; t < tasks; ++t) f(t / q.c, t % q.c);
  }
}

// The output columns [lo, hi) whose input column ix = ox*stride - pad + j lies inside [0, W): the loops below run
// branch-free between them and write zeros (im2col) or skip (col2im) outside.
inline void valid_columns(const ConvGeom& q, int64_t j, int64_t& lo, int64_t& hi) {
  const int64_t a = q.pad - j;                      // ox*stride >= a
  const int64_t b = q.w - 1 + q.pad - j;            // ox*stride <= b
  lo = a <= 0 ? 0 : (a + q.stride - 1) / q.stride;
  hi = b < 0 ? 0 : std::min(q.ow, b / q.stride + 1);
  lo = std::min(lo, hi);
}

// x_n: [C, H, W] -> rows c*KH*KW .. of col [CKK, ld], columns col0 .. col0 + OH*OW. Zero where the window hits padding.
template <typename T>
void im2col_channel(const ConvGeom& q, const T* xn, int64_t c, T* col, int64_t ld, int64_t col0) {
  const T* xc = xn + c * q.h * q.w;
  for (int64_t i = 0; i < q.kh; ++i)
    for (int64_t j = 0; j < q.kw; ++j) {
      int64_t lo, hi;
      valid_columns(q, j, lo, hi);
      T* row = col + ((c * q.kh + i) * q.kw + j) * ld + col0;
      for (int64_t oy = 0; oy < q.oh; ++oy) {
        const int64_t iy = oy * q.stride - q.pad + i;
        T* out = row + oy * q.ow;
        if (iy < 0 || iy >= q.h) {
          std::fill(out, out + q.ow, T(0));
          continue;
        }
        const T* xr = xc + iy * q.w + j - q.pad;  // xr[ox * stride] is x[iy, ox*stride - pad + j]
        for (int64_t ox = 0; ox < lo; ++ox) out[ox] = T(0);
        for (int64_t ox = lo; ox < hi; ++ox) out[ox] = xr[ox * q.stride];
        for (int64_t ox = hi; ox < q.ow; ++ox) out[ox] = T(0);
      }
    }
}

// The adjoint of im2col_channel: accumulates the column entries back into gx_n[c] (zeroed by the caller).
template <typename T>
void col2im_channel(const ConvGeom& q, const T* col, int64_t ld, int64_t col0, int64_t c, T* gxn) {
  T* gc = gxn + c * q.h * q.w;
  for (int64_t i = 0; i < q.kh; ++i)
    for (int64_t j = 0; j < q.kw; ++j) {
      int64_t lo, hi;
      valid_columns(q, j, lo, hi);
      const T* row = col + ((c * q.kh + i) * q.kw + j) * ld + col0;
      for (int64_t oy = 0; oy < q.oh; ++oy) {
        const int64_t iy = oy * q.stride - q.pad + i;
        if (iy < 0 || iy >= q.h) continue;
        const T* in = row + oy * q.ow;
        T* gr = gc + iy * q.w + j - q.pad;
        for (int64_t ox = lo; ox < hi; ++ox) gr[ox * q.stride] += in[ox];
      }
    }
}

// Builds the im2col buffer [CKK, gn*P] of samples n0 .. n0+gn.
template <typename T>
Tensor group_im2col(const ConvGeom& q, const Tensor& x, int64_t n0, int64_t gn) {
  Tensor col = Tensor::empty({q.ckk(), gn * q.p()}, x.dtype());
  const T* xp = x.data<T>();
  T* cp = col.data<T>();
  const int64_t ld = gn * q.p();
  for_sample_channel(q, gn, [&](int64_t g, int64_t c) {
    im2col_channel(q, xp + (n0 + g) * q.c * q.h * q.w, c, cp, ld, g * q.p());
  });
  return col;
}

// grad_y samples n0 .. n0+gn, [gn, F, P] -> [F, gn*P] (the layout the group GEMMs produce and consume).
template <typename T>
Tensor group_grad_y(const ConvGeom& q, const Tensor& gy, int64_t n0, int64_t gn) {
  Tensor t = Tensor::empty({q.f, gn * q.p()}, gy.dtype());
  const T* src = gy.data<T>();
  T* dst = t.data<T>();
  const int64_t p = q.p();
  for (int64_t g = 0; g < gn; ++g)
    for (int64_t f = 0; f < q.f; ++f)
      std::memcpy(dst + f * gn * p + g * p, src + ((n0 + g) * q.f + f) * p, static_cast<size_t>(p) * sizeof(T));
  return t;
}

template <typename T>
void forward_typed(const Tensor& x, const Tensor& w, const Tensor& bias, const Conv2dParams& prm, Tensor& y) {
  const ConvGeom q = geometry(x.shape(), w.shape(), y.shape(), prm);
  const int64_t G = q.group(), p = q.p();
  const Tensor w2 = w.reshape({q.f, q.ckk()});
  const T* bp = bias.defined() ? bias.data<T>() : nullptr;
  T* yp = y.data<T>();
  for (int64_t n0 = 0; n0 < q.n; n0 += G) {
    const int64_t gn = std::min(G, q.n - n0);
    const Tensor col = group_im2col<T>(q, x, n0, gn);
    Tensor out = Tensor::empty({q.f, gn * p}, y.dtype());  // [F, gn*P]
    gemm(false, false, 1.0, w2, col, 0.0, out);
    const T* op = out.data<T>();
    for (int64_t g = 0; g < gn; ++g)
      for (int64_t f = 0; f < q.f; ++f) {
        const T b = bp ? bp[f] : T(0);
        const T* s = op + f * gn * p + g * p;
        T* d = yp + ((n0 + g) * q.f + f) * p;
        for (int64_t k = 0; k < p; ++k) d[k] = s[k] + b;
      }
  }
}

template <typename T>
void backward_data_typed(const Tensor& gy, const Tensor& w, const Conv2dParams& prm, Tensor& gx) {
  const ConvGeom q = geometry(gx.shape(), w.shape(), gy.shape(), prm);
  const int64_t G = q.group(), p = q.p();
  const Tensor w2 = w.reshape({q.f, q.ckk()});
  T* gxp = gx.data<T>();
  for (int64_t n0 = 0; n0 < q.n; n0 += G) {
    const int64_t gn = std::min(G, q.n - n0);
    const Tensor gyt = group_grad_y<T>(q, gy, n0, gn);
    Tensor col = Tensor::empty({q.ckk(), gn * p}, gy.dtype());
    gemm(true, false, 1.0, w2, gyt, 0.0, col);  // w^T [CKK, F] x [F, gn*P]
    const T* cp = col.data<T>();
    for_sample_channel(q, gn, [&](int64_t g, int64_t c) {
      T* gxn = gxp + (n0 + g) * q.c * q.h * q.w;
      std::fill(gxn + c * q.h * q.w, gxn + (c + 1) * q.h * q.w, T(0));
      col2im_channel(q, cp, gn * p, g * p, c, gxn);
    });
  }
}

template <typename T>
void backward_filter_typed(const Tensor& gy, const Tensor& x, const Conv2dParams& prm, Tensor& gw) {
  const ConvGeom q = geometry(x.shape(), gw.shape(), gy.shape(), prm);
  const int64_t G = q.group();
  Tensor gw2 = gw.reshape({q.f, q.ckk()});
  if (q.n == 0) fill(gw2, 0.0);
  for (int64_t n0 = 0; n0 < q.n; n0 += G) {
    const int64_t gn = std::min(G, q.n - n0);
    const Tensor col = group_im2col<T>(q, x, n0, gn);
    const Tensor gyt = group_grad_y<T>(q, gy, n0, gn);
    gemm(false, true, 1.0, gyt, col, n0 == 0 ? 0.0 : 1.0, gw2);  // [F, gn*P] x col^T [gn*P, CKK]
  }
}

template <typename T>
void backward_bias_typed(const Tensor& gy, Tensor& gb) {
  // grad_y: [N, F, P] summed over N and P, per F in double, in a fixed order.
  const int64_t n = gy.size(0), f = gy.size(1), p = gy.size(2) * gy.size(3);
  const T* src = gy.data<T>();
  T* dst = gb.data<T>();
  auto one = [&](int64_t j) {
    double s = 0.0;
    for (int64_t i = 0; i < n; ++i) {
      const T* r = src + (i * f + j) * p;
      for (int64_t k = 0; k < p; ++k) s += static_cast<double>(r[k]);
    }
    dst[j] = static_cast<T>(s);
  };
  if (gy.numel() >= kParallelMin && f > 1) {
#pragma omp parallel for schedule(static)
    for (int64_t j = 0; j < f; ++j) one(j);
  } else {
    for (int64_t j = 0; j < f; ++j) one(j);
  }
}

}  // namespace

void conv2d_forward(const Tensor& x, const Tensor& w, const Tensor& bias, const Conv2dParams& p, Tensor& y) {
  JEBM_DISPATCH_FLOAT(x.dtype(), "conv2d", [&] { forward_typed<scalar_t>(x, w, bias, p, y); });
}

void conv2d_backward_data(const Tensor& grad_y, const Tensor& w, const Conv2dParams& p, Tensor& grad_x) {
  JEBM_DISPATCH_FLOAT(grad_y.dtype(), "conv2d_backward_data", [&] { backward_data_typed<scalar_t>(grad_y, w, p, grad_x); });
}

void conv2d_backward_filter(const Tensor& grad_y, const Tensor& x, const Conv2dParams& p, Tensor& grad_w) {
  JEBM_DISPATCH_FLOAT(grad_y.dtype(), "conv2d_backward_filter", [&] { backward_filter_typed<scalar_t>(grad_y, x, p, grad_w); });
}

void conv2d_backward_bias(const Tensor& grad_y, Tensor& grad_b) {
  JEBM_DISPATCH_FLOAT(grad_y.dtype(), "conv2d_backward_bias", [&] { backward_bias_typed<scalar_t>(grad_y, grad_b); });
}

}  // namespace jebm::cpu
