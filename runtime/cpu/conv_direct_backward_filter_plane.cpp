// The direct conv2d's filter gradient by taps of the plane (runtime/cpu/conv_direct.hpp), for layers with many taps
// and filters (MNIST's conv3 and conv4: 288 and 576 taps, 64 filters), where the per-sample kernel
// (conv_direct.cpp) keeps too few pixels per sample to fill its blocks. Tested by tests/test_conv_direct.cpp
// (against the loops and the im2col path, the same bits at 1 and 2 threads and in every version).
//
// grad_w[f, t] = sum over samples n and output pixels p of gy[n, f, p] * xpad_n[corner(p) + off(t)], with the lanes
// over filters: the plane kernel of conv_direct_parts.hpp with taps for its pixels (tap t's base: off(t) in the
// chunk's padded samples) and (n, p) for its steps (offset n * sample + corner(p), row gy[n, :, p]). Each tap's sum
// is one chain of fused multiply-adds in (n, p) order from zero, continued from one chunk of samples to the next,
// whatever the chunk, the thread that takes the tap or the version: the same bits (compiled with
// -ffp-contract=off, like the other direct kernels). It is another order than the per-sample kernel's, so the two
// layouts differ in the last bits.
#include <algorithm>
#include <cstdint>
#include <vector>

#include "runtime/backend.hpp"
#include "runtime/cpu/conv_direct.hpp"
#include "runtime/cpu/conv_direct_parts.hpp"

namespace jebm::cpu {
namespace {

using conv_direct::Geo;
using conv_direct::kLanes;
using conv_direct::round_up;

// Samples per chunk: about this many (sample, pixel) steps, so that the chunk's padded samples and grad_y rows stay
// in L2 while every block of taps goes by.
constexpr int64_t kChunkSteps = 256;
// Taps per share of a chunk's work between the threads (a multiple of every version's tap block).
constexpr int64_t kTapShare = 48;

// Sample i of a chunk: its padded copy and its grad_y as rows [P, FP] (zero filters padding F).
template <typename Isa, typename T>
JEBM_ALWAYS_INLINE void prepare_sample(const Geo& g, const T* xn, const T* gyn, T* xpad, T* gyt) {
  conv_direct::pad_sample(g, xn, xpad);
  conv_direct::transpose_grad_y<Isa>(g, gyn, gyt);
}

#define JEBM_PREP_ENTRY(name, attrs, isa, T)                                  \
  attrs void name(const Geo& g, const T* xn, const T* gyn, T* xpad, T* gyt) { \
    prepare_sample<isa, T>(g, xn, gyn, xpad, gyt);                            \
  }
#define JEBM_TAPS_ENTRY(name, attrs, isa, T)                                                                 \
  attrs void name(conv_direct::PlaneSum mode, const T* const* a, T* const* o, int64_t nt, const int64_t* ka, \
                  int64_t nk, const T* b, int64_t fp) {                                                      \
    conv_direct::plane_all_lanes<isa, T>(mode, a, o, nt, ka, nk, b, fp);                                     \
  }
JEBM_CONV_DIRECT_ENTRIES(JEBM_PREP_ENTRY, filter_prep)
JEBM_CONV_DIRECT_ENTRIES(JEBM_TAPS_ENTRY, filter_taps)
#undef JEBM_TAPS_ENTRY
#undef JEBM_PREP_ENTRY
JEBM_CONV_DIRECT_PICKER(prep_fn, filter_prep)
JEBM_CONV_DIRECT_PICKER(taps_fn, filter_taps)

template <typename T>
void backward_filter_plane_typed(const Tensor& gy, const Tensor& x, const Conv2dParams& prm, Tensor& gw) {
  const Geo g = conv_direct::geo(x.shape(), gw.shape(), gy.shape(), prm);
  const int64_t n = x.size(0), np = g.p(), ckk = g.ckk(), fp = round_up(g.f, kLanes<T>);
  const int64_t spad = g.c * g.hp() * g.wp(),
                chunk = std::clamp<int64_t>(kChunkSteps / std::max<int64_t>(1, np), 1, std::max<int64_t>(n, 1));
  std::vector<T> part(static_cast<size_t>(ckk * fp)), xbuf(static_cast<size_t>(chunk * spad + kLanes<T>)),
      gyt(static_cast<size_t>(chunk * np * fp + kLanes<T>));
  T* xb = conv_direct::align64(xbuf.data());
  T* gb = conv_direct::align64(gyt.data());
  const std::vector<int64_t> xoff = conv_direct::tap_offsets(g);
  std::vector<const T*> a(static_cast<size_t>(ckk));
  std::vector<T*> o(static_cast<size_t>(ckk));
  for (int64_t t = 0; t < ckk; ++t) {
    a[static_cast<size_t>(t)] = xb + xoff[static_cast<size_t>(t)];
    o[static_cast<size_t>(t)] = part.data() + t * fp;
  }
  std::vector<int64_t> ka;  // step (i, p) of a chunk -> sample i's window corner of pixel p, from the chunk's start
  for (int64_t i = 0; i < chunk; ++i)
    for (int64_t oy = 0; oy < g.oh; ++oy)
      for (int64_t ox = 0; ox < g.ow; ++ox) ka.push_back(i * spad + oy * g.s * g.wp() + ox * g.s);
  const T* xp = x.data<T>();
  const T* gyp = gy.data<T>();
  const auto prep = prep_fn<T>();
  const auto taps = taps_fn<T>();
  const int64_t shares = (ckk + kTapShare - 1) / kTapShare;
#pragma omp parallel if (n * np * ckk * g.f >= kParallelMin)
  for (int64_t i0 = 0; i0 < n; i0 += chunk) {
    const int64_t gn = std::min(chunk, n - i0);
#pragma omp for schedule(static)
    for (int64_t i = 0; i < gn; ++i)
      prep(g, xp + (i0 + i) * g.c * g.h * g.w, gyp + (i0 + i) * g.f * np, xb + i * spad, gb + i * np * fp);
#pragma omp for schedule(static)
    for (int64_t sh = 0; sh < shares; ++sh) {
      const int64_t t0 = sh * kTapShare, nt = std::min(kTapShare, ckk - t0);
      taps(i0 > 0 ? conv_direct::PlaneSum::kContinue : conv_direct::PlaneSum::kStore, a.data() + t0, o.data() + t0, nt,
           ka.data(), gn * np, gb, fp);
    }
  }
  conv_direct::transpose_matrix<conv_direct::IsaBase>(part.data(), fp, ckk, g.f, gw.data<T>(), ckk);
}

}  // namespace

void conv2d_direct_backward_filter_plane(const Tensor& grad_y, const Tensor& x, const Conv2dParams& p, Tensor& grad_w) {
  JEBM_DISPATCH_FLOAT(grad_y.dtype(), "conv2d_backward_filter",
                      [&] { backward_filter_plane_typed<scalar_t>(grad_y, x, p, grad_w); });
}

}  // namespace jebm::cpu
