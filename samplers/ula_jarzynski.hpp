// The ULA move + Jarzynski weight update (docs/method.md) as ONE fused pass per move, its unfused
// reference, the parameter-change increment, and resampling before a move: the device-transparent API (kernels in
// samplers/{cpu,cuda}/ula_jarzynski, dispatch in samplers/ula_jarzynski.cpp). Tested by tests/test_samplers.cpp
// (fused == reference, thread-count invariance, resampled copies move apart) and tests/test_gmm.cpp.
//
// Fused move (per walker i, coordinates d = 0..D-1; G clipped per coordinate to [-c, c] when c > 0, and the
// clipped drift is used on both sides of the weight formula):
//   if pending_i:  A_i += P_i - s U(X_i) - |X_prev_i - X_i + h G(X_i)|^2 / (2 v)          (completes move k-1)
//   if moving:     X_prev_i = X_i;  X_i = X_i - h G(X_i) + sigma xi_i;  P_i = s U(X_i) + sigma^2 |xi_i|^2 / (2 v);
//                  pending_i = 1
// with v = sigma^2 (WeightKernel::Consistent, so P_i = U(X_i) + |xi_i|^2 / 2) or v = 2h (WeightKernel::Paper2h),
// and the energy scale s = 1, except for WeightKernel::Tempered: v = sigma^2 and s = 1 / T, T = sigma^2 / (2h),
// the exact weights for the density exp(-U / T) that the moves sample (docs/method.md).
// U(X_i), G(X_i) are the energy and its gradient at the walker's *current* position under the *current*
// parameters, so a move made under theta_k and completed under theta_{k+1} gets the paper's combined increment.
//
// Noise counter scheme (the CUDA twin samplers/cuda/ula_jarzynski.cu uses the same one): with P = ceil(D / 2),
//   (xi_i[2p], xi_i[2p+1]) = philox_normal2_poly(seed, stream = i * P + p, offset = move counter)
// where i is the walker's index in the WHOLE population (so moving a subset draws what the full move would, and
// a rank's shard, whose walker 0 is global walker WalkerPopulation::first_index, what one process would)
// and the move counter is WalkerPopulation::moves, incremented by every call that moves walkers. A draw is a
// pure function of (seed, i, d, counter): results do not depend on thread count or batching.
// philox_normal2_poly (runtime/philox.hpp) is Philox-4x32-10 + Box-Muller, with a 52-bit uniform and branch-free
// polynomial log/sincos (|error| < 1e-15) instead of libm, so that the CPU loop vectorises; on the device the
// words come from cuRAND's Philox4_32_10 (the same words, see runtime/philox.hpp).
//
// Resampling and the fused kernel: the ESS test needs the completed weights, which the fused pass produces
// together with the next move. jebm keeps the single pass on every iteration and, when the test fires, undoes
// the move, resamples the pre-move state and redoes the move (resample_and_redo_move): one extra move pass on
// resampling iterations only, instead of splitting complete/move into two passes on every iteration.
// When every walker moves, X_next is written into the x_prev buffer and the two buffers are swapped (one write
// stream instead of two); a subset move updates the rows in place.
#pragma once
#include <cmath>
#include <cstdint>
#include <cstring>
#include <string>
#include <type_traits>
#include <vector>

#include "runtime/philox_normals.hpp"
#include "runtime/philox.hpp"
#include "samplers/resampling.hpp"
#include "samplers/walkers.hpp"

// Host: always inline, so the per-walker code is compiled inside the AVX2 clones of the CPU loops
// (samplers/cpu/ula_jarzynski.cpp, samplers/gmm_step.cpp) rather than once for the baseline ISA.
#if defined(__CUDACC__)
#define JEBM_HD_ALWAYS_INLINE __host__ __device__ __forceinline__
#else
#define JEBM_HD_ALWAYS_INLINE inline __attribute__((always_inline))
#endif

namespace jebm {

// The variance v of the Gaussian transition kernels in the weight's two kernel terms:
//   Consistent ("sigma"): v = sigma^2, the kernel the moves are actually drawn from (jebm's default);
//   Paper2h ("2h"):       v = 2h whatever sigma is, as the official image code computes its weights (its 1/(4h)).
// With sigma = sqrt(2h) the two coincide. Paper2h is not the Jarzynski weight of the chain simulated when
// sigma != sqrt(2h); it exists to reproduce the paper's runs.
//   Tempered ("tempered"): v = sigma^2 and every energy divided by T = sigma^2 / (2h): a move with step h and noise
// sigma is an exact-temperature ULA for exp(-U / T) (step sigma^2 / 2 on U / T), and these are the Jarzynski
// weights for that density, so the weighted walkers, log Z and the CE refer to exp(-U / T). At sigma = sqrt(2h)
// (T = 1) all three coincide. The Paper2h increments are exactly T times the Tempered ones (tests/test_samplers.cpp).
enum class WeightKernel { Consistent, Paper2h, Tempered };
WeightKernel weight_kernel_from_name(const std::string& name);  // "sigma" | "2h" | "tempered"
const char* weight_kernel_name(WeightKernel k);

struct UlaConfig {
  double h = 0.1;            // step size (the paper's h = 0.1 in the Gaussian mixture)
  double sigma = 0.0;        // noise scale; <= 0 means sqrt(2h), the paper's choice
  double drift_clip = 0.0;   // > 0: each coordinate of G clipped to [-drift_clip, drift_clip]
  bool weighted = true;      // false: plain ULA (PCD/CD), log-weights untouched, nothing pending
  WeightKernel weight_kernel = WeightKernel::Consistent;
  double noise_scale() const;
  // The forward term |X_next - X + h G|^2 / (2 v) = sigma^2 |xi|^2 / (2 v) is partial_coef() * |xi|^2 (0.5 when
  // consistent); the backward term is |X_prev - X + h G|^2 / back_denominator() with back_denominator() = 2 v.
  double partial_coef() const;
  double back_denominator() const;
  // T = sigma^2 / (2h), the temperature of the density exp(-U / T) the moves sample.
  double temperature() const;
  // s: the factor on every energy in the weights (1 / T for Tempered, else exactly 1).
  double energy_coef() const;
};

enum class MoveKind { CompleteAndMove, CompleteOnly, MoveOnly };

// One fused-move kernel call with its arguments resolved (ula_jarzynski_step fills it; samplers/kernels.inc).
struct UlaMove {
  bool complete = true, move = true, weighted = true;
  double h = 0.1, sigma = 0.0, clip = 0.0;  // sigma: the resolved noise scale
  double partial_coef = 0.5, back_den = 0.0;  // UlaConfig::partial_coef(), back_denominator()
  double energy_coef = 1.0;                   // UlaConfig::energy_coef()
  uint64_t offset = 0;                        // Philox offset of this move (the key is the population's seed)
  uint64_t first_walker = 0;                  // global index of walker 0 (WalkerPopulation::first_index)
};

constexpr int64_t kUlaTile = 16;  // normal pairs drawn per tile (stack arrays; the Philox loop vectorises)

// z[0 .. 2 np) = the normals of streams first .. first + np - 1 (np <= kUlaTile), exactly as philox_normal2_poly would
// give them. With AVX-512F or AVX2, an intrinsics twin (runtime/philox_normals.hpp: same bits, 8 or 4 streams per
// step); otherwise, and with JEBM_NOISE=reference, the code below, in the caller's clone: the Philox loop and the
// log/sincos loop vectorise; sqrt is done apart (libm's errno path would stop the vectoriser), with the same
// correctly rounded result.
JEBM_HD_ALWAYS_INLINE void ula_normals_tile(uint64_t seed, uint64_t first, uint64_t offset, int64_t np, double* z) {
#if !defined(__CUDA_ARCH__)
  if (cpu::philox_normals_fast(seed, first, offset, np, z)) return;
#endif
  uint32_t w0[kUlaTile], w1[kUlaTile], w2[kUlaTile], w3[kUlaTile];
  double r2[kUlaTile], sn[kUlaTile], cs[kUlaTile];
  for (int64_t p = 0; p < np; ++p) {
    const Philox4 w = philox_block(seed, first + static_cast<uint64_t>(p), offset);
    w0[p] = w.v[0];
    w1[p] = w.v[1];
    w2[p] = w.v[2];
    w3[p] = w.v[3];
  }
  for (int64_t p = 0; p < np; ++p) {
    r2[p] = -2.0 * poly_log(philox_u01_52(w0[p], w1[p]));
    poly_sincos2pi(philox_u01_52(w2[p], w3[p]), &sn[p], &cs[p]);
  }
  for (int64_t p = 0; p < np; ++p) {
    const double r = std::sqrt(r2[p]);
    z[2 * p] = r * cs[p];
    z[2 * p + 1] = r * sn[p];
  }
}

#if !defined(__CUDA_ARCH__)
// Host: the noise of `count` consecutive walkers (global indices first, first + 1, ...) of dimension `dims` at
// Philox offset `offset`, walker after walker, each 2 ceil(dims / 2) normals long, into buf, which is resized; or
// false, leaving buf alone, when the reference path is selected (the walkers then draw tile by tile). Consecutive
// walkers' streams are consecutive, so the twins fill whole vectors across walkers (a walker of d = 50 alone
// leaves 7 of 32 AVX-512 lanes idle).
inline bool ula_walkers_noise(uint64_t seed, uint64_t first, int64_t count, int64_t dims, uint64_t offset,
                              std::vector<double>& buf) {
  if (cpu::noise_path() == cpu::NoisePath::Reference) return false;
  const int64_t pairs = (dims + 1) / 2;
  buf.resize(static_cast<size_t>(2 * pairs * count));
  return cpu::philox_normals_fast(seed, first * static_cast<uint64_t>(pairs), offset, pairs * count, buf.data());
}
#endif

// Four doubles as one value: GCC's vector extension, one AVX2 register (two SSE2 halves in a baseline clone; the
// same operations lane by lane, so the same bits). The per-walker sweep below is written with it because GCC
// compiled the plain loops' four running sums as stack arrays, reloaded and stored back every tile.
// CUDA device code has no vector extension (nvcc refuses it in __device__ functions), so a .cu translation unit
// gets the same four lanes as a struct with lane-by-lane operators: the same operations per lane, the same bits.
#if defined(__CUDACC__)
struct UlaV4 {
  double l[4];
  JEBM_HD_ALWAYS_INLINE double& operator[](int i) { return l[i]; }
  JEBM_HD_ALWAYS_INLINE double operator[](int i) const { return l[i]; }
};
JEBM_HD_ALWAYS_INLINE UlaV4 operator+(const UlaV4& a, const UlaV4& b) {
  return {{a[0] + b[0], a[1] + b[1], a[2] + b[2], a[3] + b[3]}};
}
JEBM_HD_ALWAYS_INLINE UlaV4 operator-(const UlaV4& a, const UlaV4& b) {
  return {{a[0] - b[0], a[1] - b[1], a[2] - b[2], a[3] - b[3]}};
}
JEBM_HD_ALWAYS_INLINE UlaV4 operator*(const UlaV4& a, const UlaV4& b) {
  return {{a[0] * b[0], a[1] * b[1], a[2] * b[2], a[3] * b[3]}};
}
JEBM_HD_ALWAYS_INLINE UlaV4 operator*(double s, const UlaV4& a) { return {{s * a[0], s * a[1], s * a[2], s * a[3]}}; }
JEBM_HD_ALWAYS_INLINE UlaV4& operator+=(UlaV4& a, const UlaV4& b) { return a = a + b; }
#else
typedef double UlaV4 __attribute__((vector_size(32)));
#endif

// Loads and stores take the vector by reference: a function returning one by value draws GCC's ABI
// note (-Wpsabi) in the baseline clone, which the build turns into an error.
template <typename T>
JEBM_HD_ALWAYS_INLINE void ula_load4(const T* p, UlaV4& v) {
#if !defined(__CUDACC__)
  if constexpr (std::is_same<T, double>::value) {
    std::memcpy(&v, p, sizeof v);
    return;
  }
#endif
  for (int l = 0; l < 4; ++l) v[l] = static_cast<double>(p[l]);
}

template <typename T>
JEBM_HD_ALWAYS_INLINE void ula_store4(T* p, const UlaV4& v) {
#if !defined(__CUDACC__)
  if constexpr (std::is_same<T, double>::value) {
    std::memcpy(p, &v, sizeof v);
    return;
  }
#endif
  for (int l = 0; l < 4; ++l) p[l] = static_cast<T>(v[l]);
}

// Coordinates [0, n) of one walker's rows (the callers offset the pointers; G: the drift, clipped beforehand
// where it is): the squares of the backward residual X_prev - X + h G (with `complete`) go to b, those of the
// noise z (with `move`) to q, coordinate e in lane e % 4 and the last n % 4 in lane 0 (so a row swept in spans
// whose lengths are multiples of 4, the last one excepted, gets the sums of one sweep: the summation order is
// fixed); X_next = X - h G + sigma z goes to x_next, or, when x_next is null, X to x_prev and X_next to x. Each
// 4-block is read before it is written, so x_next may be x_prev.
template <typename T, typename G>
JEBM_HD_ALWAYS_INLINE void ula_walker_span(int64_t n, T* x_prev, T* x, const G* g, const double* z, bool complete,
                                           bool move, double h, double sigma, T* x_next, UlaV4& b, UlaV4& q) {
  int64_t e = 0;
  for (; e + 4 <= n; e += 4) {
    UlaV4 xv, gv;
    ula_load4(x + e, xv);
    ula_load4(g + e, gv);
    if (complete) {
      UlaV4 r;
      ula_load4(x_prev + e, r);
      r = r - xv + h * gv;
      b += r * r;
    }
    if (move) {
      UlaV4 zv;
      ula_load4(z + e, zv);
      q += zv * zv;
      const UlaV4 next = xv - h * gv + sigma * zv;
      if (x_next) {
        ula_store4(x_next + e, next);
      } else {
        ula_store4(x_prev + e, xv);
        ula_store4(x + e, next);
      }
    }
  }
  for (; e < n; ++e) {
    const double xe = static_cast<double>(x[e]), ge = static_cast<double>(g[e]);
    if (complete) {
      const double r = static_cast<double>(x_prev[e]) - xe + h * ge;
      b[0] += r * r;
    }
    if (move) {
      q[0] += z[e] * z[e];
      const T next = static_cast<T>(xe - h * ge + sigma * z[e]);
      if (x_next) {
        x_next[e] = next;
      } else {
        x_prev[e] = x[e];
        x[e] = next;
      }
    }
  }
}

// The per-walker math, shared with the CUDA twin. x_prev/x: this walker's rows, g: its gradient row, u: its
// energy; writes log_w, partial, pending (see the formulas at the top of this file; partial_coef and back_den
// are UlaConfig::partial_coef() and back_denominator(), back_den <= 0 meaning 2 sigma^2; energy_coef is
// UlaConfig::energy_coef(), and 1 leaves every product exact, so the other kernels' bits do not change). Positions: with
// x_next == nullptr the move is in place (x_prev = x, x = X_next); otherwise X_next goes to x_next (which may be
// x_prev itself: each coordinate of x_prev is read before it is written) and x is left alone, so a caller that
// moves every walker can swap the two buffers instead of copying x into x_prev. noise (host callers only): this
// walker's 2 ceil(D / 2) normals drawn beforehand (ula_walkers_noise): the row is then swept once, instead of
// tile by tile with each tile's noise drawn here (the same sums: see ula_walker_span).
template <typename T>
JEBM_HD_ALWAYS_INLINE void ula_jarzynski_walker(int64_t dims, T* x_prev, T* x, const T* g, double u, double* log_w,
                                  double* partial, int64_t* pending, bool complete, bool move, bool weighted,
                                  double h, double sigma, double clip, uint64_t seed, uint64_t walker,
                                  uint64_t offset, T* x_next = nullptr, double partial_coef = 0.5,
                                  double back_den = 0.0, double energy_coef = 1.0,
                                  const double* noise = nullptr) {
  const bool do_complete = complete && weighted && *pending != 0;
  const int64_t pairs = (dims + 1) / 2;
  UlaV4 b{}, q{};
  if ((noise || !move) && !(clip > 0.0)) {
    ula_walker_span(dims, x_prev, x, g, noise, do_complete, move, h, sigma, x_next, b, q);
  } else {
    // Tile by tile: the tile's noise drawn here unless given, its drift clipped into gc (a vectorised clip inside
    // the sweep measured 25 % slower on float32 rows).
    double z[2 * kUlaTile], gc[2 * kUlaTile];
    for (int64_t p0 = 0; p0 < pairs; p0 += kUlaTile) {  // 2 kUlaTile coordinates per tile: a multiple of 4
      const int64_t np = pairs - p0 < kUlaTile ? pairs - p0 : kUlaTile;
      const int64_t d0 = 2 * p0, nd = d0 + 2 * np < dims ? 2 * np : dims - d0;
      const double* zt = noise ? noise + d0 : z;
      if (move && !noise)
        ula_normals_tile(seed, walker * static_cast<uint64_t>(pairs) + static_cast<uint64_t>(p0), offset, np, z);
      if (clip > 0.0) {
        for (int64_t e = 0; e < nd; ++e) {
          const double gd = static_cast<double>(g[d0 + e]);
          gc[e] = gd < -clip ? -clip : (gd > clip ? clip : gd);
        }
        ula_walker_span(nd, x_prev + d0, x + d0, static_cast<const double*>(gc), zt, do_complete, move, h, sigma,
                        x_next ? x_next + d0 : nullptr, b, q);
      } else {
        ula_walker_span(nd, x_prev + d0, x + d0, g + d0, zt, do_complete, move, h, sigma,
                        x_next ? x_next + d0 : nullptr, b, q);
      }
    }
  }
  const double back = (b[0] + b[1]) + (b[2] + b[3]), xi2 = (q[0] + q[1]) + (q[2] + q[3]);
  const double su = energy_coef * u;
  if (do_complete) *log_w += *partial - su - back / (back_den > 0.0 ? back_den : 2.0 * sigma * sigma);
  if (move && weighted) {
    *partial = su + partial_coef * xi2;
    *pending = 1;
  } else {
    *pending = 0;
  }
}

// One fused pass over the walkers on the population's device (CPU: OpenMP over walkers, samplers/cpu/
// ula_jarzynski.cpp; CUDA: one warp per walker, samplers/cuda/ula_jarzynski.cu). u: [B] float64, g: [B, ...] like
// pop.x's rows (both on the walkers' device), for
// the walkers idx[b] (idx empty: all walkers, B = N). kind: complete the pending increments, move, or both.
// Moves use the Philox offset pop.moves and then increment it; `redo` reuses the previous offset (see
// resample_and_redo_move) and does not increment.
void ula_jarzynski_step(WalkerPopulation& pop, const Tensor& u, const Tensor& g, const UlaConfig& cfg,
                        MoveKind kind = MoveKind::CompleteAndMove, const std::vector<int64_t>& idx = {},
                        bool redo = false);

// The fused move's noise for walkers 0..n-1 at Philox offset `offset`: xi [n, dims] float64 on `device`
// (CUDA: drawn by the kernels' code path; equal to the CPU's up to FMA rounding).
Tensor ula_noise(int64_t n, int64_t dims, uint64_t seed, uint64_t offset, Device device);
// The raw Philox blocks (seed, stream = first_stream + i, offset), i < n, as [n, 4] int64 on `device`: cuRAND's
// words on CUDA, runtime/philox.hpp's on the CPU (they must be identical; tests/test_cuda_samplers.cpp).
Tensor philox_words(int64_t n, uint64_t seed, uint64_t first_stream, uint64_t offset, Device device);

// The unfused reference, written the obvious way for the tests: draws the noise tensor xi [N, D] with the
// same counter scheme, then X_next = X - h G + sigma xi. The weight update is the literal formula.
Tensor ula_noise_reference(int64_t n, int64_t dims, uint64_t seed, uint64_t offset);  // = ula_noise on the CPU
// x, g: [N, D] float64 -> X_next
Tensor ula_move_reference(const Tensor& x, const Tensor& g, const Tensor& xi, const UlaConfig& cfg);
// A += s (U_k(X_k) - U_{k+1}(X_{k+1})) + (|X_{k+1} - X_k + h G_k(X_k)|^2 - |X_k - X_{k+1} + h G_{k+1}(X_{k+1})|^2)
//      / (2 v), v = sigma^2 or 2h and s = 1 or 1 / T by cfg.weight_kernel, all [N]/[N, D] float64 on the CPU.
void jarzynski_increment_reference(Tensor& log_w, const Tensor& x_k, const Tensor& u_k, const Tensor& g_k,
                                   const Tensor& x_k1, const Tensor& u_k1, const Tensor& g_k1,
                                   const UlaConfig& cfg);

// Parameter change at fixed positions: A_i += s (U_theta(X_i) - U_theta'(X_i)) for the walkers idx (all if
// empty), s = energy_coef (UlaConfig::energy_coef(): 1 / T for the tempered kernel), on the population's device
// (u_old, u_new there too). No walker may be pending (checked on the CPU only: on CUDA the check would cost a
// synchronisation).
void jarzynski_parameter_change(WalkerPopulation& pop, const Tensor& u_old, const Tensor& u_new,
                                const std::vector<int64_t>& idx = {}, double energy_coef = 1.0);

// Resampling when EVERY walker has just made a fused complete+move: the increments are complete, but the new
// positions were drawn per walker, so copies of one ancestor would carry identical moves. So: undo the move,
// resample the pre-move state (x = x_prev[anc], A = 0, log Z offset += log mean exp A), and redo the move from
// the copies with the same Philox offset: copies sit at different indices, so they get different noise, and
// the discarded draw is independent of everything the new state depends on. u, g: the pre-move energies and
// gradients (per walker), gathered with the ancestors. One extra move pass on resampling iterations only.
// Any device: ancestors [N] int64 on the population's device (e.g. population_ancestors). That every walker just
// moved is checked on the CPU only (a synchronisation on CUDA).
void resample_and_redo_move(WalkerPopulation& pop, const Tensor& ancestors, const Tensor& u, const Tensor& g,
                            const UlaConfig& cfg);
void resample_and_redo_move(WalkerPopulation& pop, const std::vector<int64_t>& ancestors, const Tensor& u,
                            const Tensor& g, const UlaConfig& cfg);
// Its second half, for a caller that gathered the ancestors' rows itself (a population sharded over ranks, whose
// ancestors may live on other ranks: samplers/gmm_step.cpp): A = 0 after adding log_mean (the log mean exp(A) of
// the whole population) to the log Z offset, x = x_anc, then the move is redone from u_anc, g_anc. x_anc is taken
// as the new position tensor (not copied).
void redo_move_from(WalkerPopulation& pop, const Tensor& x_anc, const Tensor& u_anc, const Tensor& g_anc,
                    double log_mean, const UlaConfig& cfg);

}  // namespace jebm
