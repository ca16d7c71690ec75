// The direct conv2d's input gradient by pixels of the plane (runtime/cpu/conv_direct.hpp), for layers with channels
// for a vector and small images (MNIST's conv3 and conv4: 32 and 64 channels at 8x8 and 4x4; conv2 on 14x14
// digits: 16 channels at 9x9), where the lanes hold input channels. Tested by tests/test_conv_direct.cpp (against the
// loops and bit for bit against the other layouts of the input gradient, in every version, at 1 and 2 threads).
//
// Input pixel (Y, X) (padded coordinates, Y = iy + pad) of phase (py, px) = (Y mod s, X mod s) takes the taps
// i = py + s*a, j = px + s*b and reads gy[f, Y div s - a, X div s - b]. Its channels' gradients, one vector of lanes,
// are the sum over (f, a, b), in that order, of gy[f, ...] broadcast times the vector w[f, 0..C, i, j]: for every
// pixel of a phase the same taps at the same offsets from a base of its own in a copy of grad_y with zero margins,
// so plane_kernel (conv_direct_parts.hpp) runs them, pixels of all the group's samples in one block. The filters go
// in the passes of the kernel by output phase (conv_direct_backward_data.cpp), each pass's sum from zero added to
// the previous ones; taps whose weight would lie outside the kernel are left out (their fused multiply-add of a
// zero weight leaves the sum unchanged), and reads outside grad_y find zeros in the margins: the same values as
// the other layouts (a zero's sign may differ). Compiled with -ffp-contract=off, like the other direct kernels.
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
using conv_direct::for_samples;
using conv_direct::kLanes;
using conv_direct::round_up;

// Pixels per phase in a group of samples, about: enough to fill the pixel blocks and to amortise each pass's
// weights. The grouping does not change any sum.
constexpr int64_t kGroupPixels = 64;

// One call's plan, the same for every group: the phases' pixels (per sample), taps and weights, and the grad_y
// copies' geometry (rows rlo .. rlo + rh, columns clo .. clo + cw of each filter's plane, zero outside grad_y).
template <typename T>
struct Plan {
  int64_t c, cp, f, fb, oh, ow, rlo, clo, rh, cw;
  int64_t pix_per_sample = 0;
  std::vector<int64_t> ph_pix;    // [phases + 1]: each phase's first pixel in a sample's list
  std::vector<int64_t> pix_idx;   // a sample's pixels, phase by phase: y*W + x
  std::vector<int64_t> pix_base;  // and their bases in a sample's grad_y copy
  std::vector<int64_t> ph_tap;    // [phases + 1]: each phase's first tap; a phase's taps per filter: ph_per_f
  std::vector<int64_t> ph_per_f;
  std::vector<int64_t> tap_off;  // each tap's offset from a pixel's base
  std::vector<T> wv;             // each tap's weights over the channels, [taps, CP]
  int64_t plane() const { return rh * cw; }
};

template <typename T>
Plan<T> make_plan(const Shape& x, const Shape& w, const Shape& y, const Conv2dParams& p) {
  const int64_t h = x[2], wd = x[3], kh = w[2], kw = w[3], s = p.stride, pad = p.padding;
  Plan<T> pl;
  pl.c = x[1];
  pl.cp = round_up(pl.c, kLanes<T>);
  pl.f = w[0];
  pl.fb = conv_direct::backward_data_pass_filters(x, w, y, p, sizeof(T));
  pl.oh = y[2];
  pl.ow = y[3];
  const int64_t ka = (kh + s - 1) / s, kb = (kw + s - 1) / s;
  pl.rlo = pad / s - (ka - 1);
  pl.clo = pad / s - (kb - 1);
  pl.rh = (h - 1 + pad) / s - pl.rlo + 1;
  pl.cw = (wd - 1 + pad) / s - pl.clo + 1;
  pl.ph_pix.push_back(0);
  pl.ph_tap.push_back(0);
  for (int64_t py = 0; py < s; ++py)
    for (int64_t px = 0; px < s; ++px) {
      for (int64_t iy = 0; iy < h; ++iy)
        for (int64_t ix = 0; ix < wd; ++ix) {
          const int64_t yy = iy + pad, xx = ix + pad;
          if (yy % s != py || xx % s != px) continue;
          pl.pix_idx.push_back(iy * wd + ix);
          pl.pix_base.push_back((yy / s - pl.rlo) * pl.cw + (xx / s - pl.clo));
        }
      pl.ph_pix.push_back(static_cast<int64_t>(pl.pix_idx.size()));
      const int64_t na = py < kh ? (kh - py + s - 1) / s : 0, nb = px < kw ? (kw - px + s - 1) / s : 0;
      pl.ph_per_f.push_back(na * nb);
      pl.ph_tap.push_back(pl.ph_tap.back() + pl.f * na * nb);
    }
  pl.pix_per_sample = static_cast<int64_t>(pl.pix_idx.size());
  return pl;
}

// The plan's taps and weights (w: [F, C, KH, KW]).
template <typename T>
void plan_taps(Plan<T>& pl, const T* w, int64_t kh, int64_t kw, int64_t s) {
  pl.tap_off.clear();
  pl.wv.assign(static_cast<size_t>(pl.ph_tap.back() * pl.cp), T(0));
  int64_t t = 0;
  for (int64_t py = 0; py < s; ++py)
    for (int64_t px = 0; px < s; ++px) {
      const int64_t na = py < kh ? (kh - py + s - 1) / s : 0, nb = px < kw ? (kw - px + s - 1) / s : 0;
      for (int64_t f = 0; f < pl.f; ++f)
        for (int64_t a = 0; a < na; ++a)
          for (int64_t b = 0; b < nb; ++b, ++t) {
            pl.tap_off.push_back(f * pl.plane() - a * pl.cw - b);
            const int64_t i = py + s * a, j = px + s * b;
            for (int64_t c = 0; c < pl.c; ++c)
              pl.wv[static_cast<size_t>(t * pl.cp + c)] = w[((f * pl.c + c) * kh + i) * kw + j];
          }
    }
}

// One phase's pixels of a group (np of them: bases a, output rows o), all its passes.
template <typename Isa, typename T>
JEBM_ALWAYS_INLINE void phase_passes(const Plan<T>& pl, int64_t ph, const T* const* a, T* const* o, int64_t np) {
  const int64_t per_f = pl.ph_per_f[static_cast<size_t>(ph)], t0 = pl.ph_tap[static_cast<size_t>(ph)];
  if (per_f == 0) {  // no tap reaches these pixels (a 1x1 kernel at stride 2): zero gradient
    for (int64_t p = 0; p < np; ++p) std::fill(o[p], o[p] + pl.cp, T(0));
    return;
  }
  for (int64_t f0 = 0; f0 < pl.f; f0 += pl.fb) {
    const int64_t k0 = t0 + f0 * per_f, nk = (std::min(pl.f, f0 + pl.fb) - f0) * per_f;
    conv_direct::plane_all_lanes<Isa, T>(f0 == 0 ? conv_direct::PlaneSum::kStore : conv_direct::PlaneSum::kAdd, a, o,
                                         np, pl.tap_off.data() + k0, nk, pl.wv.data() + k0 * pl.cp, pl.cp);
  }
}

// A group of gn samples: pix and outs hold its pixels' bases in the grad_y copies and their rows of acc [gn, H*W,
// CP] (phase by phase, sample by sample); then each sample's grad_x [C, H*W] = its acc transposed.
template <typename Isa, typename T>
JEBM_ALWAYS_INLINE void group_sample(const Plan<T>& pl, int64_t gn, const T* const* pix, T* const* outs, const T* acc,
                                     T* gx, int64_t hw) {
  const int64_t nph = static_cast<int64_t>(pl.ph_per_f.size());
  for (int64_t ph = 0, q = 0; ph < nph; ++ph) {
    const int64_t np = gn * (pl.ph_pix[static_cast<size_t>(ph + 1)] - pl.ph_pix[static_cast<size_t>(ph)]);
    phase_passes<Isa, T>(pl, ph, pix + q, outs + q, np);
    q += np;
  }
  for (int64_t i = 0; i < gn; ++i)
    conv_direct::transpose_matrix<Isa>(acc + i * hw * pl.cp, pl.cp, hw, pl.c, gx + i * pl.c * hw, hw);
}

#define JEBM_DATA_PLANE_ENTRY(name, attrs, isa, T)                                                         \
  attrs void name(const Plan<T>& pl, int64_t gn, const T* const* pix, T* const* outs, const T* acc, T* gx, \
                  int64_t hw) {                                                                            \
    group_sample<isa, T>(pl, gn, pix, outs, acc, gx, hw);                                                  \
  }
JEBM_CONV_DIRECT_ENTRIES(JEBM_DATA_PLANE_ENTRY, data_plane)
#undef JEBM_DATA_PLANE_ENTRY
JEBM_CONV_DIRECT_PICKER(data_plane_fn, data_plane)

template <typename T>
void backward_data_plane_typed(const Tensor& grad_y, const Tensor& w, const Conv2dParams& p, Tensor& grad_x) {
  const Shape& xs = grad_x.shape();
  Plan<T> pl = make_plan<T>(xs, w.shape(), grad_y.shape(), p);
  plan_taps(pl, w.data<T>(), w.size(2), w.size(3), p.stride);
  const int64_t n = xs[0], hw = xs[2] * xs[3], fpo = pl.f * pl.oh * pl.ow, copy = pl.f * pl.plane();
  const int64_t phases = p.stride * p.stride;
  const int64_t gs =
      std::clamp<int64_t>(kGroupPixels * phases / std::max<int64_t>(1, pl.pix_per_sample), 1, std::max<int64_t>(n, 1));
  const int64_t groups = (n + gs - 1) / gs;
  const T* gyp = grad_y.data<T>();
  T* gxp = grad_x.data<T>();
  const auto run = data_plane_fn<T>();
  for_samples(groups, n * hw * pl.c * pl.f * w.size(2) * w.size(3), [&](int64_t grp) {
    const int64_t i0 = grp * gs, gn = std::min(gs, n - i0);
    T* gyc = buffer<T>(0, gn * copy);
    T* acc = buffer<T>(1, gn * hw * pl.cp);
    thread_local std::vector<const T*> pix;
    thread_local std::vector<T*> outs;
    pix.resize(static_cast<size_t>(gn * pl.pix_per_sample));
    outs.resize(pix.size());
    std::fill(gyc, gyc + gn * copy, T(0));
    // The rows and columns of grad_y that some pixel reads (a padding wider than the kernel leaves others unread).
    const int64_t y0 = std::max<int64_t>(0, pl.rlo), y1 = std::min(pl.oh, pl.rlo + pl.rh);
    const int64_t x0 = std::max<int64_t>(0, pl.clo), x1 = std::min(pl.ow, pl.clo + pl.cw);
    for (int64_t i = 0; i < gn; ++i)
      for (int64_t f = 0; f < pl.f; ++f)
        for (int64_t oy = y0; oy < y1 && x0 < x1; ++oy)
          std::memcpy(gyc + i * copy + f * pl.plane() + (oy - pl.rlo) * pl.cw + (x0 - pl.clo),
                      gyp + (i0 + i) * fpo + (f * pl.oh + oy) * pl.ow + x0, sizeof(T) * static_cast<size_t>(x1 - x0));
    const int64_t nph = static_cast<int64_t>(pl.ph_per_f.size());
    for (int64_t ph = 0, q = 0; ph < nph; ++ph)
      for (int64_t i = 0; i < gn; ++i)
        for (int64_t k = pl.ph_pix[static_cast<size_t>(ph)]; k < pl.ph_pix[static_cast<size_t>(ph + 1)]; ++k, ++q) {
          pix[static_cast<size_t>(q)] = gyc + i * copy + pl.pix_base[static_cast<size_t>(k)];
          outs[static_cast<size_t>(q)] = acc + (i * hw + pl.pix_idx[static_cast<size_t>(k)]) * pl.cp;
        }
    run(pl, gn, pix.data(), outs.data(), acc, gxp + i0 * pl.c * hw, hw);
  });
}

}  // namespace

void conv2d_direct_backward_data_plane(const Tensor& grad_y, const Tensor& w, const Conv2dParams& p, Tensor& grad_x) {
  JEBM_DISPATCH_FLOAT(grad_y.dtype(), "conv2d_backward_data",
                      [&] { backward_data_plane_typed<scalar_t>(grad_y, w, p, grad_x); });
}

}  // namespace jebm::cpu
