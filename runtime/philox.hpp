// Philox-4x32-10 (Salmon et al., SC'11) and the transforms jebm applies to its words, usable from host and device
// code: the one generator header. Every random number in jebm is a pure function of (seed, stream, offset, index):
// results do not depend on thread count, CUDA grid size or how walkers are batched. Tested by tests/test_rng.cpp
// (known-answer vector, determinism, moments), tests/test_samplers.cpp (polynomial log/sincos vs libm) and,
// against cuRAND's device generator, tests/test_cuda_samplers.cpp (raw words and normals).
//
// Mapping onto cuRAND (curand_philox4x32_x.h, curand_kernel.h). cuRAND's Philox4_32_10 state holds a 128-bit
// counter ctr = (x, y, z, w) and the key (seed lo, seed hi); curand_init(seed, subsequence, offset) sets
// (z, w) = subsequence and (x, y) = offset / 4 (offset % 4 selects a word within the block), and curand4 returns
// the block at the current counter. jebm's block (seed, stream, offset) uses counter = (stream lo, stream hi,
// offset lo, offset hi), so it is cuRAND's
//     curand_init(seed, subsequence = offset, offset = 4 * stream) + curand4
// i.e. jebm's "offset" (the move or fill counter) selects cuRAND's subsequence and jebm's "stream" (the walker
// pair or element pair) the block within it. Device code draws through cuRAND (philox_block below); the host
// evaluates the same rounds itself and is the bit-exact reference. 4 * stream must fit in 64 bits: streams from
// 2^62 up (only the systematic-resampling stream ~0, drawn on the host) take the hand-written rounds on the device.
#pragma once
#include <cmath>
#include <cstdint>
#include <cstring>

#if defined(__CUDACC__)
#include <curand_kernel.h>
#define JEBM_HD __host__ __device__ __forceinline__
#else
#define JEBM_HD inline
#endif

namespace jebm {

struct Philox4 {
  uint32_t v[4];
};

JEBM_HD uint32_t philox_mulhilo(uint32_t a, uint32_t b, uint32_t* hi) {
  const uint64_t p = static_cast<uint64_t>(a) * b;
  *hi = static_cast<uint32_t>(p >> 32);
  return static_cast<uint32_t>(p);
}

// counter (c0..c3) and key (k0, k1) -> four 32-bit words.
JEBM_HD Philox4 philox4x32_10(uint32_t c0, uint32_t c1, uint32_t c2, uint32_t c3, uint32_t k0, uint32_t k1) {
  constexpr uint32_t kM0 = 0xD2511F53u, kM1 = 0xCD9E8D57u, kW0 = 0x9E3779B9u, kW1 = 0xBB67AE85u;
  for (int r = 0; r < 10; ++r) {
    uint32_t hi0, hi1;
    const uint32_t lo0 = philox_mulhilo(kM0, c0, &hi0);
    const uint32_t lo1 = philox_mulhilo(kM1, c2, &hi1);
    const uint32_t n0 = hi1 ^ c1 ^ k0, n2 = hi0 ^ c3 ^ k1;
    c0 = n0; c1 = lo1; c2 = n2; c3 = lo0;
    k0 += kW0; k1 += kW1;
  }
  return Philox4{{c0, c1, c2, c3}};
}

// The block of four words for (seed, stream, offset): key = seed, counter = (stream lo/hi, offset lo/hi).
// On the device: cuRAND's Philox4_32_10 with the mapping of the header comment.
JEBM_HD Philox4 philox_block(uint64_t seed, uint64_t stream, uint64_t offset) {
#if defined(__CUDA_ARCH__)
  if ((stream >> 62) == 0) {
    curandStatePhilox4_32_10_t state;
    curand_init(seed, offset, stream << 2, &state);
    const uint4 w = curand4(&state);
    return Philox4{{w.x, w.y, w.z, w.w}};
  }
#endif
  return philox4x32_10(static_cast<uint32_t>(stream), static_cast<uint32_t>(stream >> 32),
                       static_cast<uint32_t>(offset), static_cast<uint32_t>(offset >> 32),
                       static_cast<uint32_t>(seed), static_cast<uint32_t>(seed >> 32));
}

// --- libm transform: the random fills (runtime/{cpu,cuda}/rng) and initial positions -------------------------

// Uniform in (0, 1) with 53 random bits; never 0, so log() is safe.
JEBM_HD double philox_u01(uint32_t a, uint32_t b) {
  const uint64_t k = ((static_cast<uint64_t>(a) << 32) | b) >> 11;
  return (static_cast<double>(k) + 0.5) * (1.0 / 9007199254740992.0);
}

// Two independent standard normals (Box-Muller) from one Philox block.
JEBM_HD void philox_normal2(uint64_t seed, uint64_t stream, uint64_t offset, double* z0, double* z1) {
  const Philox4 w = philox_block(seed, stream, offset);
  const double u1 = philox_u01(w.v[0], w.v[1]);
  const double u2 = philox_u01(w.v[2], w.v[3]);
  const double r = std::sqrt(-2.0 * std::log(u1));
  const double t = 6.283185307179586476925 * u2;
  *z0 = r * std::cos(t);
  *z1 = r * std::sin(t);
}

// Two independent uniforms in (0, 1) from one Philox block.
JEBM_HD void philox_uniform2(uint64_t seed, uint64_t stream, uint64_t offset, double* u0, double* u1) {
  const Philox4 w = philox_block(seed, stream, offset);
  *u0 = philox_u01(w.v[0], w.v[1]);
  *u1 = philox_u01(w.v[2], w.v[3]);
}

// --- branch-free polynomial transform: the sampler's noise (samplers/ula_jarzynski.hpp) -----------------------
// philox_normal2 calls libm, which keeps a CPU loop scalar: one fused move of 10^4 x 50 walkers spent ~20 ms
// there. These are plain arithmetic (relative error < 1e-15 against libm), so the sampler's tile loops vectorise;
// the CUDA kernels call the same functions, so CPU and GPU draw the same normals up to FMA rounding.
// runtime/cpu/philox_normals.cpp repeats them operation for operation in AVX-512 and with exact rewrites in AVX2
// (same bits, tested): a change here must be made there too.
JEBM_HD double philox_bits_to_double(uint64_t b) {
  double d;
  std::memcpy(&d, &b, sizeof d);
  return d;
}
JEBM_HD uint64_t philox_double_to_bits(double d) {
  uint64_t b;
  std::memcpy(&b, &d, sizeof b);
  return b;
}
// Uniform in (0, 1): 52 random bits placed in the mantissa of [1, 2), minus 1, plus 2^-53 so never 0.
JEBM_HD double philox_u01_52(uint32_t hi, uint32_t lo) {
  const uint64_t b = ((static_cast<uint64_t>(hi) << 32 | lo) >> 12) | 0x3ff0000000000000ULL;
  return (philox_bits_to_double(b) - 1.0) + 1.1102230246251565e-16;
}
// log x for normal x > 0: x = 2^e m, m in (sqrt(1/2), sqrt(2)], log m = 2 atanh((m-1)/(m+1)) as a series.
JEBM_HD double poly_log(double x) {
  const uint64_t b = philox_double_to_bits(x);
  const double m0 = philox_bits_to_double((b & 0x000fffffffffffffULL) | 0x3ff0000000000000ULL);
  // Branch-free (so the loop vectorises): halve m and bump the exponent when m > sqrt(2).
  // Integer-to-double conversions go through the 2^52 trick: SSE2 has no packed 64-bit int -> double.
  // big = 1 when the mantissa exceeds sqrt(2)'s (0x6a09e667f3bcd), by the borrow of an unsigned subtraction.
  const uint64_t big = (0x6a09e667f3bcdULL - (b & 0x000fffffffffffffULL)) >> 63;
  const double m = m0 * philox_bits_to_double(0x3ff0000000000000ULL - (big << 52));
  const double e = philox_bits_to_double(((b >> 52) + big) | 0x4330000000000000ULL) - (4503599627370496.0 + 1023.0);
  const double f = (m - 1.0) / (m + 1.0), s = f * f;
  double p = 1.0 / 23;
  p = p * s + 1.0 / 21; p = p * s + 1.0 / 19; p = p * s + 1.0 / 17; p = p * s + 1.0 / 15; p = p * s + 1.0 / 13;
  p = p * s + 1.0 / 11; p = p * s + 1.0 / 9; p = p * s + 1.0 / 7; p = p * s + 1.0 / 5; p = p * s + 1.0 / 3;
  p = p * s + 1.0;
  return e * 0.6931471805599453094 + 2.0 * f * p;
}
// sin and cos of 2 pi u for u in (0, 1): quarter-turn reduction, then Taylor polynomials on [-pi/4, pi/4].
JEBM_HD void poly_sincos2pi(double u, double* s, double* c) {
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
  const uint64_t qm = philox_double_to_bits(t) & 3;
  const uint64_t swap = 0 - (qm & 1);  // all ones in odd quadrants
  const uint64_t bs = philox_double_to_bits(sr), bc = philox_double_to_bits(pc);
  const uint64_t a = (bc & swap) | (bs & ~swap), b = (bs & swap) | (bc & ~swap);
  *s = philox_bits_to_double(a ^ ((qm >> 1) << 63));
  *c = philox_bits_to_double(b ^ (((qm ^ (qm >> 1)) & 1) << 63));
}
// Two standard normals from one block's words (the definition of the sampler's noise).
JEBM_HD void philox_normal2_poly_words(uint32_t w0, uint32_t w1, uint32_t w2, uint32_t w3, double* z0, double* z1) {
  const double r = std::sqrt(-2.0 * poly_log(philox_u01_52(w0, w1)));
  double s, c;
  poly_sincos2pi(philox_u01_52(w2, w3), &s, &c);
  *z0 = r * c;
  *z1 = r * s;
}
JEBM_HD void philox_normal2_poly(uint64_t seed, uint64_t stream, uint64_t offset, double* z0, double* z1) {
  const Philox4 w = philox_block(seed, stream, offset);
  philox_normal2_poly_words(w.v[0], w.v[1], w.v[2], w.v[3], z0, z1);
}

}  // namespace jebm
