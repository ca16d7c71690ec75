// The ULA move + Jarzynski weight update of DESIGN 1.1 as ONE fused pass per move (DESIGN 1.4), its unfused
// reference, the parameter-change increment, and resampling before a move. Tested by tests/test_samplers.cpp
// (fused == reference, thread-count invariance, resampled copies move apart) and tests/test_gmm.cpp.
//
// Fused move (per walker i, coordinates d = 0..D-1; G clipped per coordinate to [-c, c] when c > 0, and the
// clipped drift is used on both sides of the weight formula):
//   if pending_i:  A_i += P_i - U(X_i) - |X_prev_i - X_i + h G(X_i)|^2 / (2 sigma^2)       (completes move k-1)
//   if moving:     X_prev_i = X_i;  X_i = X_i - h G(X_i) + sigma xi_i;  P_i = U(X_i) + |xi_i|^2 / 2;  pending_i = 1
// U(X_i), G(X_i) are the energy and its gradient at the walker's *current* position under the *current*
// parameters, so a move made under theta_k and completed under theta_{k+1} gets the paper's combined increment.
//
// Noise counter scheme (the CUDA twin samplers/ula_jarzynski.cu must use the same one): with P = ceil(D / 2),
//   (xi_i[2p], xi_i[2p+1]) = ula_normal2(seed, stream = i * P + p, offset = move counter)   (defined below)
// where i is the walker's index in the WHOLE population (so moving a subset draws what the full move would)
// and the move counter is WalkerPopulation::moves, incremented by every call that moves walkers. A draw is a
// pure function of (seed, i, d, counter): results do not depend on thread count or batching.
// ula_normal2 is Philox-4x32-10 (runtime/philox.hpp's philox_block) + Box-Muller, with a 52-bit uniform and
// branch-free polynomial log/sincos (|error| < 1e-15) instead of libm, so that the CPU loop vectorises.
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
#include <vector>

#include "runtime/philox.hpp"
#include "samplers/resampling.hpp"
#include "samplers/walkers.hpp"

// Host: always inline, so the per-walker code is compiled inside the AVX2 clones of the CPU loops
// (samplers/ula_jarzynski.cpp, samplers/gmm_step.cpp) rather than once for the baseline ISA.
#if defined(__CUDACC__)
#define JEBM_HD_ALWAYS_INLINE __host__ __device__ __forceinline__
#else
#define JEBM_HD_ALWAYS_INLINE inline __attribute__((always_inline))
#endif

namespace jebm {

struct UlaConfig {
  double h = 0.1;            // step size (DESIGN 3.1: h = 0.1 in the Gaussian mixture)
  double sigma = 0.0;        // noise scale; <= 0 means sqrt(2h), the paper's choice (DESIGN 1.1)
  double drift_clip = 0.0;   // > 0: each coordinate of G clipped to [-drift_clip, drift_clip]
  bool weighted = true;      // false: plain ULA (PCD/CD), log-weights untouched, nothing pending
  double noise_scale() const;
};

enum class MoveKind { CompleteAndMove, CompleteOnly, MoveOnly };

// --- the noise: Philox-4x32-10 + Box-Muller with branch-free polynomial log/sincos ------------------------
// philox_normal2 (runtime/philox.hpp) calls libm, which keeps the CPU loop scalar: one fused move of 10^4 x 50
// walkers spent ~20 ms there. These helpers are plain arithmetic (relative error < 1e-15 against libm), so the
// tile loops below vectorise; the CUDA twin calls the same functions, so CPU and GPU draw the same normals.
JEBM_HD double ula_bits_to_double(uint64_t b) {
  double d;
  std::memcpy(&d, &b, sizeof d);
  return d;
}
JEBM_HD uint64_t ula_double_to_bits(double d) {
  uint64_t b;
  std::memcpy(&b, &d, sizeof b);
  return b;
}
// Uniform in (0, 1): 52 random bits placed in the mantissa of [1, 2), minus 1, plus 2^-53 so never 0.
JEBM_HD double ula_u01(uint32_t hi, uint32_t lo) {
  const uint64_t b = ((static_cast<uint64_t>(hi) << 32 | lo) >> 12) | 0x3ff0000000000000ULL;
  return (ula_bits_to_double(b) - 1.0) + 1.1102230246251565e-16;
}
// log x for normal x > 0: x = 2^e m, m in (sqrt(1/2), sqrt(2)], log m = 2 atanh((m-1)/(m+1)) as a series.
JEBM_HD double ula_log(double x) {
  const uint64_t b = ula_double_to_bits(x);
  const double m0 = ula_bits_to_double((b & 0x000fffffffffffffULL) | 0x3ff0000000000000ULL);
  // Branch-free (so the loop vectorises): halve m and bump the exponent when m > sqrt(2).
  // Integer-to-double conversions go through the 2^52 trick: SSE2 has no packed 64-bit int -> double.
  // big = 1 when the mantissa exceeds sqrt(2)'s (0x6a09e667f3bcd), by the borrow of an unsigned subtraction.
  const uint64_t big = (0x6a09e667f3bcdULL - (b & 0x000fffffffffffffULL)) >> 63;
  const double m = m0 * ula_bits_to_double(0x3ff0000000000000ULL - (big << 52));
  const double e = ula_bits_to_double(((b >> 52) + big) | 0x4330000000000000ULL) - (4503599627370496.0 + 1023.0);
  const double f = (m - 1.0) / (m + 1.0), s = f * f;
  double p = 1.0 / 23;
  p = p * s + 1.0 / 21; p = p * s + 1.0 / 19; p = p * s + 1.0 / 17; p = p * s + 1.0 / 15; p = p * s + 1.0 / 13;
  p = p * s + 1.0 / 11; p = p * s + 1.0 / 9; p = p * s + 1.0 / 7; p = p * s + 1.0 / 5; p = p * s + 1.0 / 3;
  p = p * s + 1.0;
  return e * 0.6931471805599453094 + 2.0 * f * p;
}
// sin and cos of 2 pi u for u in (0, 1): quarter-turn reduction, then Taylor polynomials on [-pi/4, pi/4].
JEBM_HD void ula_sincos2pi(double u, double* s, double* c) {
  // q = nearest integer to 4u (0..4) by the 1.5 * 2^52 trick; its low bits sit in the mantissa of t.
  const double t = u * 4.0 + 6755399441055744.0;
  const double qd = t - 6755399441055744.0;
  const double r = (u - 0.25 * qd) * 6.283185307179586476925;
  const double r2 = r * r;
  double ps = 1.0 / 355687428096000.0;
  ps = ps * r2 - 1.0 / 1307674368000.0; ps = ps * r2 + 1.0 / 6227020800.0; ps = ps * r2 - 1.0 / 39916800.0;
  ps = ps * r2 + 1.0 / 362880.0; ps = ps * r2 - 1.0 / 5040.0; ps = ps * r2 + 1.0 / 120.0; ps = ps * r2 - 1.0 / 6.0;
  ps = ps * r2 + 1.0;
  const double sr = r * ps;
  double pc = -1.0 / 6402373705728000.0;
  pc = pc * r2 + 1.0 / 20922789888000.0; pc = pc * r2 - 1.0 / 87178291200.0; pc = pc * r2 + 1.0 / 479001600.0;
  pc = pc * r2 - 1.0 / 3628800.0; pc = pc * r2 + 1.0 / 40320.0; pc = pc * r2 - 1.0 / 720.0; pc = pc * r2 + 1.0 / 24.0;
  pc = pc * r2 - 0.5; pc = pc * r2 + 1.0;
  // Quadrant q: (sin, cos) = (sr, pc), (pc, -sr), (-sr, -pc), (-pc, sr); selects and sign flips on the bits.
  const uint64_t qm = ula_double_to_bits(t) & 3;
  const uint64_t swap = 0 - (qm & 1);  // all ones in odd quadrants
  const uint64_t bs = ula_double_to_bits(sr), bc = ula_double_to_bits(pc);
  const uint64_t a = (bc & swap) | (bs & ~swap), b = (bs & swap) | (bc & ~swap);
  *s = ula_bits_to_double(a ^ ((qm >> 1) << 63));
  *c = ula_bits_to_double(b ^ (((qm ^ (qm >> 1)) & 1) << 63));
}
// The definition of the sampler's noise: two standard normals from the Philox block (seed, stream, offset).
JEBM_HD void ula_normal2_from_words(uint32_t w0, uint32_t w1, uint32_t w2, uint32_t w3, double* z0, double* z1) {
  const double r = std::sqrt(-2.0 * ula_log(ula_u01(w0, w1)));
  double s, c;
  ula_sincos2pi(ula_u01(w2, w3), &s, &c);
  *z0 = r * c;
  *z1 = r * s;
}
JEBM_HD void ula_normal2(uint64_t seed, uint64_t stream, uint64_t offset, double* z0, double* z1) {
  const Philox4 w = philox_block(seed, stream, offset);
  ula_normal2_from_words(w.v[0], w.v[1], w.v[2], w.v[3], z0, z1);
}

constexpr int64_t kUlaTile = 16;  // normal pairs drawn per tile (stack arrays; the Philox loop vectorises)

// z[0 .. 2 np) = the normals of streams first .. first + np - 1 (np <= kUlaTile), exactly as ula_normal2 would
// give them: the Philox loop and the log/sincos loop vectorise; sqrt is done apart (libm's errno path would
// stop the vectoriser), with the same correctly rounded result.
JEBM_HD_ALWAYS_INLINE void ula_normals_tile(uint64_t seed, uint64_t first, uint64_t offset, int64_t np, double* z) {
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
    r2[p] = -2.0 * ula_log(ula_u01(w0[p], w1[p]));
    ula_sincos2pi(ula_u01(w2[p], w3[p]), &sn[p], &cs[p]);
  }
  for (int64_t p = 0; p < np; ++p) {
    const double r = std::sqrt(r2[p]);
    z[2 * p] = r * cs[p];
    z[2 * p + 1] = r * sn[p];
  }
}

// The per-walker math, shared with the CUDA twin. x_prev/x: this walker's rows, g: its gradient row, u: its
// energy; writes log_w, partial, pending (see the formulas at the top of this file). Positions: with
// x_next == nullptr the move is in place (x_prev = x, x = X_next); otherwise X_next goes to x_next (which may be
// x_prev itself: each coordinate of x_prev is read before it is written) and x is left alone, so a caller that
// moves every walker can swap the two buffers instead of copying x into x_prev.
template <typename T>
JEBM_HD_ALWAYS_INLINE void ula_jarzynski_walker(int64_t dims, T* x_prev, T* x, const T* g, double u, double* log_w,
                                  double* partial, int64_t* pending, bool complete, bool move, bool weighted,
                                  double h, double sigma, double clip, uint64_t seed, uint64_t walker,
                                  uint64_t offset, T* x_next = nullptr) {
  const bool do_complete = complete && weighted && *pending != 0;
  const int64_t pairs = (dims + 1) / 2;
  // Four partial sums (unrolled by 4): breaks the add-latency chain, which otherwise dominates this loop.
  double b0 = 0.0, b1 = 0.0, b2 = 0.0, b3 = 0.0, q0 = 0.0, q1 = 0.0, q2 = 0.0, q3 = 0.0;
  double z[2 * kUlaTile], gc[2 * kUlaTile], r[2 * kUlaTile];
  for (int64_t p0 = 0; p0 < pairs; p0 += kUlaTile) {
    const int64_t np = pairs - p0 < kUlaTile ? pairs - p0 : kUlaTile;
    const int64_t d0 = 2 * p0, nd = d0 + 2 * np < dims ? 2 * np : dims - d0;
    for (int64_t e = 0; e < nd; ++e) {
      const double gd = static_cast<double>(g[d0 + e]);
      gc[e] = clip > 0.0 ? (gd < -clip ? -clip : (gd > clip ? clip : gd)) : gd;
    }
    if (do_complete) {
      for (int64_t e = 0; e < nd; ++e)
        r[e] = static_cast<double>(x_prev[d0 + e]) - static_cast<double>(x[d0 + e]) + h * gc[e];
      int64_t e = 0;
      for (; e + 4 <= nd; e += 4) {
        b0 += r[e] * r[e];
        b1 += r[e + 1] * r[e + 1];
        b2 += r[e + 2] * r[e + 2];
        b3 += r[e + 3] * r[e + 3];
      }
      for (; e < nd; ++e) b0 += r[e] * r[e];
    }
    if (move) {
      ula_normals_tile(seed, walker * static_cast<uint64_t>(pairs) + static_cast<uint64_t>(p0), offset, np, z);
      int64_t e = 0;
      for (; e + 4 <= nd; e += 4) {
        q0 += z[e] * z[e];
        q1 += z[e + 1] * z[e + 1];
        q2 += z[e + 2] * z[e + 2];
        q3 += z[e + 3] * z[e + 3];
      }
      for (; e < nd; ++e) q0 += z[e] * z[e];
      for (int64_t k = 0; k < nd; ++k) r[k] = static_cast<double>(x[d0 + k]) - h * gc[k] + sigma * z[k];
      if (x_next) {
        for (int64_t k = 0; k < nd; ++k) x_next[d0 + k] = static_cast<T>(r[k]);
      } else {
        for (int64_t k = 0; k < nd; ++k) x_prev[d0 + k] = x[d0 + k];
        for (int64_t k = 0; k < nd; ++k) x[d0 + k] = static_cast<T>(r[k]);
      }
    }
  }
  const double back = (b0 + b1) + (b2 + b3), xi2 = (q0 + q1) + (q2 + q3);
  if (do_complete) *log_w += *partial - u - back / (2.0 * sigma * sigma);
  if (move && weighted) {
    *partial = u + 0.5 * xi2;
    *pending = 1;
  } else {
    *pending = 0;
  }
}

// One fused pass over the walkers (OpenMP over walkers). u: [B] float64, g: [B, ...] like pop.x's rows, for
// the walkers idx[b] (idx empty: all walkers, B = N). kind: complete the pending increments, move, or both.
// Moves use the Philox offset pop.moves and then increment it; `redo` reuses the previous offset (see
// resample_and_redo_move) and does not increment.
void ula_jarzynski_step(WalkerPopulation& pop, const Tensor& u, const Tensor& g, const UlaConfig& cfg,
                        MoveKind kind = MoveKind::CompleteAndMove, const std::vector<int64_t>& idx = {},
                        bool redo = false);

// The unfused reference, written the obvious way for the tests: draws the noise tensor xi [N, D] with the
// same counter scheme, then X_next = X - h G + sigma xi. The weight update is the literal formula of DESIGN 1.1.
Tensor ula_noise_reference(int64_t n, int64_t dims, uint64_t seed, uint64_t offset);
// x, g: [N, D] float64 -> X_next
Tensor ula_move_reference(const Tensor& x, const Tensor& g, const Tensor& xi, const UlaConfig& cfg);
// A += U_k(X_k) - U_{k+1}(X_{k+1}) + (|X_{k+1} - X_k + h G_k(X_k)|^2 - |X_k - X_{k+1} + h G_{k+1}(X_{k+1})|^2)
//      / (2 sigma^2), all [N]/[N, D] float64.
void jarzynski_increment_reference(Tensor& log_w, const Tensor& x_k, const Tensor& u_k, const Tensor& g_k,
                                   const Tensor& x_k1, const Tensor& u_k1, const Tensor& g_k1,
                                   const UlaConfig& cfg);

// Parameter change at fixed positions: A_i += U_theta(X_i) - U_theta'(X_i) for the walkers idx (all if empty).
void jarzynski_parameter_change(WalkerPopulation& pop, const Tensor& u_old, const Tensor& u_new,
                                const std::vector<int64_t>& idx = {});

// Resampling when EVERY walker has just made a fused complete+move: the increments are complete, but the new
// positions were drawn per walker, so copies of one ancestor would carry identical moves. So: undo the move,
// resample the pre-move state (x = x_prev[anc], A = 0, log Z offset += log mean exp A), and redo the move from
// the copies with the same Philox offset: copies sit at different indices, so they get different noise, and
// the discarded draw is independent of everything the new state depends on. u, g: the pre-move energies and
// gradients (per walker), gathered with the ancestors. One extra move pass on resampling iterations only.
void resample_and_redo_move(WalkerPopulation& pop, const std::vector<int64_t>& ancestors, const Tensor& u,
                            const Tensor& g, const UlaConfig& cfg);

}  // namespace jebm
