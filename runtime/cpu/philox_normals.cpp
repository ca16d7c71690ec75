// The AVX-512 and AVX2 twins of philox_normal2_poly and the noise path choice (runtime/philox_normals.hpp). Tested
// by tests/test_rng.cpp and tests/test_walker_noise.cpp.
//
// One Philox block per 64-bit lane, each 32-bit word in the low half: _mm512_mul_epu32 / _mm256_mul_epu32 then give
// the full 32x32 -> 64 product. The key is the seed, the same in every lane, so the round keys are scalars. The
// log and sincos polynomials are runtime/philox.hpp's: the same constants, the same order, IEEE division and square
// root, and no fused multiply-add (this file is compiled with -ffp-contract=off), so every lane rounds exactly as
// the scalar code does. Both twins take a few other exact routes that save instructions (each step is exact or
// rounds exactly as the reference's does):
// - Philox's first round: the counter's words 2 and 3 are the offset, the same in every lane, so one of its two
//   products is a scalar; the last round XORs straight into the 64-bit words that philox_u01_52 reads.
// - poly_log: m0 / 2 by decrementing the exponent field (not by multiplying by 0.5); the Horner chain carries -4 p
//   (a power of two times every step, so every step rounds alike), and -2 log = e (-2 ln 2) + f (-4 p).
// - poly_sincos2pi: round(4u) / 4 as (u + 1.5 2^50) - 1.5 2^50, the reference's rounding scaled by 1/4, without its
//   multiplications by 4 and 0.25; t's mantissa keeps the quadrant in the same low bits.
// Both are software-pipelined (group8, group4): while one group of streams runs its polynomials' Horner steps, the
// Philox rounds of the next group run between the steps, that group's transform starts (u01, division) at the last
// step, and the previous group's square roots and stores run at the second. Philox is vector-integer work and the
// polynomials are chains of dependent multiply-adds, so each fills the other's stalls.
#include "runtime/philox_normals.hpp"

// GCC 12's AVX-512 shift and logic intrinsics pass an intentionally undefined vector (_mm512_undefined_epi32) as the
// unused merge source, which -Wmaybe-uninitialized reports at every use once inlined.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
#include <immintrin.h>

#include <atomic>
#include <cstdlib>
#include <cstring>

#include "runtime/check.hpp"
#include "runtime/cpu_features.hpp"

namespace jebm::cpu {
namespace {

// The Horner coefficients of runtime/philox.hpp's poly_log and poly_sincos2pi, highest power first, shared by the
// AVX-512 and AVX2 twins (the same constants in the same order as the scalar code: the same bits).
constexpr double kLogFirst = 1.0 / 23;
constexpr double kLogSteps[] = {1.0 / 21, 1.0 / 19, 1.0 / 17, 1.0 / 15, 1.0 / 13, 1.0 / 11,
                                1.0 / 9,  1.0 / 7,  1.0 / 5,  1.0 / 3,  1.0};
constexpr double kSinFirst = 1.0 / 355687428096000.0;
constexpr double kSinSteps[] = {-1.0 / 1307674368000.0, 1.0 / 6227020800.0, -1.0 / 39916800.0, 1.0 / 362880.0,
                                -1.0 / 5040.0,          1.0 / 120.0,         -1.0 / 6.0,         1.0};
constexpr double kCosFirst = -1.0 / 6402373705728000.0;
constexpr double kCosSteps[] = {1.0 / 20922789888000.0, -1.0 / 87178291200.0, 1.0 / 479001600.0, -1.0 / 3628800.0,
                                1.0 / 40320.0,          -1.0 / 720.0,         1.0 / 24.0,        -0.5,
                                1.0};
// The pipeline stages' Horner steps: the longest chain's (poly_log's); sin's and cos's end within them.
constexpr int kNormalsSteps = 11;
static_assert(sizeof kLogSteps / sizeof(double) == kNormalsSteps &&
              sizeof kSinSteps / sizeof(double) <= kNormalsSteps && sizeof kCosSteps / sizeof(double) <= kNormalsSteps);

// Philox4x32-10's multipliers and key increments.
constexpr uint32_t kPhiloxM0 = 0xD2511F53u, kPhiloxM1 = 0xCD9E8D57u, kPhiloxW0 = 0x9E3779B9u, kPhiloxW1 = 0xBB67AE85u;

// Round 1's scalars. The counter's words 2 and 3 are the offset, the same in every lane, so offset lo * M1 is one
// scalar product: its low half is n1 for every lane, its high half ^ k0 the mask that makes n0, and offset hi ^ k1
// the mask that makes n2.
struct PhiloxFirstRound {
  uint32_t lo1, x0, x2;
  uint32_t k0, k1;  // round 2's key
};
inline PhiloxFirstRound philox_first_round_scalars(uint64_t seed, uint64_t offset) {
  const uint32_t k0 = static_cast<uint32_t>(seed), k1 = static_cast<uint32_t>(seed >> 32);
  const uint64_t p1 = static_cast<uint64_t>(kPhiloxM1) * static_cast<uint32_t>(offset);
  return {static_cast<uint32_t>(p1), static_cast<uint32_t>(p1 >> 32) ^ k0, static_cast<uint32_t>(offset >> 32) ^ k1,
          k0 + kPhiloxW0, k1 + kPhiloxW1};
}

// --- the AVX-512 twin: 8 streams per vector, software-pipelined ------------------------------------------------
// The AVX2 twin's steps, where AVX-512 has one instruction for AVX2's two: ternary logic for the three-way XORs, mask
// blends for the quadrant swap, masked stores for a part vector. Lanes hold streams in order; a two-source permute
// interleaves the pairs.

#define JEBM_AVX512 __attribute__((target("avx512f"), always_inline)) inline

// Vectors of 8 streams per group. On the Xeon (model 167), per normal at 1 thread (process CPU, 10^4 x 50 normals
// in chunks of 64 walkers, medians of 5 alternating runs): 1 vector 2.5 ns, 2: 2.1, 3: 2.15, 4: 2.4 (spills);
// the unpipelined twin before it, 4 vectors at a time: 2.7.
constexpr int kAvx512Vectors = 2;

JEBM_AVX512 __m512i set1_u64(uint64_t v) { return _mm512_set1_epi64(static_cast<long long>(v)); }
JEBM_AVX512 __m512d as_pd(__m512i v) { return _mm512_castsi512_pd(v); }
JEBM_AVX512 __m512i as_si(__m512d v) { return _mm512_castpd_si512(v); }
JEBM_AVX512 __m512d c_pd(double v) { return _mm512_set1_pd(v); }

// philox4x32_10 on N x 8 counters, a round at a time; c0..c3 carry junk in their high halves, as Philox4Rounds'.
template <int N>
struct Philox8Rounds {
  __m512i c0[N], c1[N], c2[N], c3[N];
  uint32_t k0, k1;  // the next round's key
};

template <int N>
JEBM_AVX512 void philox8_first_round(const __m512i* stream, uint64_t offset, uint64_t seed, Philox8Rounds<N>& s) {
  const PhiloxFirstRound f = philox_first_round_scalars(seed, offset);
  const __m512i m0 = set1_u64(kPhiloxM0), lo1 = set1_u64(f.lo1), x0 = set1_u64(f.x0), x2 = set1_u64(f.x2);
  for (int v = 0; v < N; ++v) {
    const __m512i p0 = _mm512_mul_epu32(stream[v], m0);
    s.c0[v] = _mm512_xor_si512(_mm512_srli_epi64(stream[v], 32), x0);
    s.c2[v] = _mm512_xor_si512(_mm512_srli_epi64(p0, 32), x2);
    s.c1[v] = lo1;
    s.c3[v] = p0;
  }
  s.k0 = f.k0;
  s.k1 = f.k1;
}

// Rounds 2 to 9. 0x96: a ^ b ^ c.
template <int N>
JEBM_AVX512 void philox8_round(Philox8Rounds<N>& s) {
  const __m512i m0 = set1_u64(kPhiloxM0), m1 = set1_u64(kPhiloxM1), key0 = set1_u64(s.k0), key1 = set1_u64(s.k1);
  for (int v = 0; v < N; ++v) {
    const __m512i p0 = _mm512_mul_epu32(s.c0[v], m0), p1 = _mm512_mul_epu32(s.c2[v], m1);
    s.c0[v] = _mm512_ternarylogic_epi64(_mm512_srli_epi64(p1, 32), s.c1[v], key0, 0x96);
    s.c2[v] = _mm512_ternarylogic_epi64(_mm512_srli_epi64(p0, 32), s.c3[v], key1, 0x96);
    s.c1[v] = p1;
    s.c3[v] = p0;
  }
  s.k0 += kPhiloxW0;
  s.k1 += kPhiloxW1;
}

// Round 10, as the 64-bit words (w0 << 32 | w1) and (w2 << 32 | w3): p1 ^ (c1 << 32) ^ (k0 << 32); likewise w23.
template <int N>
JEBM_AVX512 void philox8_last_round(const Philox8Rounds<N>& s, __m512i* w01, __m512i* w23) {
  const __m512i m0 = set1_u64(kPhiloxM0), m1 = set1_u64(kPhiloxM1);
  const __m512i key0 = set1_u64(static_cast<uint64_t>(s.k0) << 32), key1 = set1_u64(static_cast<uint64_t>(s.k1) << 32);
  for (int v = 0; v < N; ++v) {
    const __m512i p0 = _mm512_mul_epu32(s.c0[v], m0), p1 = _mm512_mul_epu32(s.c2[v], m1);
    w01[v] = _mm512_ternarylogic_epi64(p1, _mm512_slli_epi64(s.c1[v], 32), key0, 0x96);
    w23[v] = _mm512_ternarylogic_epi64(p0, _mm512_slli_epi64(s.c3[v], 32), key1, 0x96);
  }
}

// Streams first + 8v + 0..7 (modulo 2^64) in vector v's lanes.
template <int N>
JEBM_AVX512 void streams8(uint64_t first, __m512i* stream) {
  const __m512i lane = _mm512_set_epi64(7, 6, 5, 4, 3, 2, 1, 0);
  for (int v = 0; v < N; ++v) stream[v] = _mm512_add_epi64(set1_u64(first + 8 * static_cast<uint64_t>(v)), lane);
}

template <int N>
JEBM_AVX512 void philox8(uint64_t seed, uint64_t first, uint64_t offset, __m512i* w01, __m512i* w23) {
  __m512i stream[N];
  streams8<N>(first, stream);
  Philox8Rounds<N> s;
  philox8_first_round<N>(stream, offset, seed, s);
  for (int r = 1; r < 9; ++r) philox8_round<N>(s);
  philox8_last_round<N>(s, w01, w23);
}

// philox_u01_52 of the 64-bit word (hi << 32 | lo).
JEBM_AVX512 __m512d u01_52x8(__m512i w) {
  const __m512i b = _mm512_or_si512(_mm512_srli_epi64(w, 12), set1_u64(0x3ff0000000000000ULL));
  return _mm512_add_pd(_mm512_sub_pd(as_pd(b), c_pd(1.0)), c_pd(1.1102230246251565e-16));
}

// philox_normal2_poly_words on N x 8 blocks between the polynomials' steps; the fields are Normals4's.
template <int N>
struct Normals8 {
  __m512d e[N], f[N], s[N], q[N];
  __m512d t[N], r[N], r2[N], ps[N], pc[N];
};

template <int N>
JEBM_AVX512 void normals8_start(const __m512i* w01, const __m512i* w23, Normals8<N>& g) {
  const __m512i one = set1_u64(0x3ff0000000000000ULL), bit52 = set1_u64(1ULL << 52);
  for (int v = 0; v < N; ++v) {
    const __m512i b = as_si(u01_52x8(w01[v]));
    const __m512i mant = _mm512_and_si512(b, set1_u64(0x000fffffffffffffULL));
    const __m512i big = _mm512_and_si512(_mm512_sub_epi64(set1_u64(0x6a09e667f3bcdULL), mant), bit52);
    const __m512d m = as_pd(_mm512_sub_epi64(_mm512_or_si512(mant, one), big));
    const __m512i eb = _mm512_or_si512(_mm512_srli_epi64(_mm512_add_epi64(b, big), 52),
                                       set1_u64(0x4330000000000000ULL));
    g.e[v] = _mm512_sub_pd(as_pd(eb), c_pd(4503599627370496.0 + 1023.0));
    g.f[v] = _mm512_div_pd(_mm512_sub_pd(m, c_pd(1.0)), _mm512_add_pd(m, c_pd(1.0)));
    g.s[v] = _mm512_mul_pd(g.f[v], g.f[v]);
    g.q[v] = c_pd(-4.0 * kLogFirst);
    const __m512d u = u01_52x8(w23[v]);
    g.t[v] = _mm512_add_pd(u, c_pd(1688849860263936.0));  // 1.5 2^50
    const __m512d q4 = _mm512_sub_pd(g.t[v], c_pd(1688849860263936.0));
    g.r[v] = _mm512_mul_pd(_mm512_sub_pd(u, q4), c_pd(6.283185307179586476925));
    g.r2[v] = _mm512_mul_pd(g.r[v], g.r[v]);
    g.ps[v] = c_pd(kSinFirst);
    g.pc[v] = c_pd(kCosFirst);
  }
}

// normals4_step's Horner step i.
template <int N>
JEBM_AVX512 void normals8_step(int i, Normals8<N>& g) {
  constexpr int kSin = sizeof kSinSteps / sizeof(double), kCos = sizeof kCosSteps / sizeof(double);
  for (int v = 0; v < N; ++v) {
    g.q[v] = _mm512_add_pd(_mm512_mul_pd(g.q[v], g.s[v]), c_pd(-4.0 * kLogSteps[i]));
    if (i < kSin) g.ps[v] = _mm512_add_pd(_mm512_mul_pd(g.ps[v], g.r2[v]), c_pd(kSinSteps[i]));
    if (i < kCos) g.pc[v] = _mm512_add_pd(_mm512_mul_pd(g.pc[v], g.r2[v]), c_pd(kCosSteps[i]));
  }
}

template <int N>
struct Ends8 {
  __m512d r2[N], sn[N], cs[N];  // -2 poly_log(u1); sin and cos of 2 pi u2
};

template <int N>
JEBM_AVX512 void normals8_end(const Normals8<N>& g, Ends8<N>& d) {
  const __m512i one = set1_u64(1);
  for (int v = 0; v < N; ++v) {
    d.r2[v] = _mm512_add_pd(_mm512_mul_pd(g.e[v], c_pd(-2.0 * 0.6931471805599453094)), _mm512_mul_pd(g.f[v], g.q[v]));
    // Quadrant bits of t: bit 0 (odd: swap sin and cos), sin's sign bit 1, cos's bit 0 ^ bit 1.
    const __m512i tb = as_si(g.t[v]);
    const __mmask8 odd = _mm512_test_epi64_mask(tb, one);
    const __m512i bs = as_si(_mm512_mul_pd(g.r[v], g.ps[v])), bc = as_si(g.pc[v]);
    const __m512i sign_s = _mm512_slli_epi64(_mm512_srli_epi64(tb, 1), 63);
    d.sn[v] = as_pd(_mm512_xor_si512(_mm512_mask_blend_epi64(odd, bs, bc), sign_s));
    d.cs[v] = as_pd(_mm512_ternarylogic_epi64(_mm512_mask_blend_epi64(odd, bc, bs), _mm512_slli_epi64(tb, 63), sign_s,
                                              0x96));
  }
}

// The first `pairs` pairs go to z[0 .. 2 pairs), interleaved.
template <int N>
JEBM_AVX512 void normals8_store(const Ends8<N>& d, int64_t pairs, double* z) {
  const __m512i lo = _mm512_set_epi64(11, 3, 10, 2, 9, 1, 8, 0), hi = _mm512_set_epi64(15, 7, 14, 6, 13, 5, 12, 4);
  for (int v = 0; v < N && pairs > 0; ++v, pairs -= 8, z += 16) {
    const __m512d r = _mm512_sqrt_pd(d.r2[v]);
    const __m512d z0 = _mm512_mul_pd(r, d.cs[v]), z1 = _mm512_mul_pd(r, d.sn[v]);
    const __m512d a = _mm512_permutex2var_pd(z0, lo, z1), b = _mm512_permutex2var_pd(z0, hi, z1);
    if (pairs >= 8) {
      _mm512_storeu_pd(z, a);
      _mm512_storeu_pd(z + 8, b);
      continue;
    }
    const int n = static_cast<int>(2 * pairs);  // doubles left to store, < 16
    _mm512_mask_storeu_pd(z, static_cast<__mmask8>(n >= 8 ? 0xff : (1u << n) - 1u), a);
    if (n > 8) _mm512_mask_storeu_pd(z + 8, static_cast<__mmask8>((1u << (n - 8)) - 1u), b);
  }
}

// group4's pipeline stage with 8 streams per vector ("+v": the pinned vectors may sit in any of the 32 registers).
// Without the pins, 6 % slower on the Xeon.
template <int N, bool kPrev, bool kNext>
JEBM_AVX512 void group8(uint64_t seed, uint64_t offset, uint64_t next, Normals8<N>& g, Ends8<N>& d, int64_t prev_pairs,
                        double* prev_z) {
  constexpr int kRounds = 8, kStartAt = kNormalsSteps - 1, kStoreAt = 1;  // rounds 2..9 at steps 0..7
  Philox8Rounds<N> s;
  Normals8<N> h;
  __m512i w01[N], w23[N];
  if (kNext) {
    __m512i stream[N];
    streams8<N>(next, stream);
    philox8_first_round<N>(stream, offset, seed, s);
  }
#pragma GCC unroll 11
  for (int i = 0; i < kNormalsSteps; ++i) {
    normals8_step<N>(i, g);
    if (kNext && i < kRounds) philox8_round<N>(s);
    if (kNext && i == kRounds) philox8_last_round<N>(s, w01, w23);
    if (kNext && i == kStartAt) normals8_start<N>(w01, w23, h);
    if (kPrev && i == kStoreAt) normals8_store<N>(d, prev_pairs, prev_z);
    for (int v = 0; v < N; ++v) {
      if (kNext && i < kRounds)
        asm volatile("" : "+v"(g.q[v]), "+v"(s.c0[v]));
      else
        asm volatile("" : "+v"(g.q[v]));
    }
  }
  normals8_end<N>(g, d);
  if constexpr (kNext) g = h;
}

__attribute__((target("avx512f"))) void normals_avx512(uint64_t seed, uint64_t first, uint64_t offset, int64_t np,
                                                        double* z) {
  constexpr int N = kAvx512Vectors;
  constexpr int64_t kGroup = 8 * N;
  if (np <= 0) return;
  __m512i w01[N], w23[N];
  philox8<N>(seed, first, offset, w01, w23);
  Normals8<N> g;
  normals8_start<N>(w01, w23, g);
  Ends8<N> d;
  if (np <= kGroup) {
    group8<N, false, false>(seed, offset, 0, g, d, 0, z);
    normals8_store<N>(d, np, z);
    return;
  }
  group8<N, false, true>(seed, offset, first + static_cast<uint64_t>(kGroup), g, d, 0, z);
  int64_t p = kGroup;
#pragma GCC unroll 1
  for (; np - p > kGroup; p += kGroup)
    group8<N, true, true>(seed, offset, first + static_cast<uint64_t>(p + kGroup), g, d, kGroup, z + 2 * (p - kGroup));
  group8<N, true, false>(seed, offset, 0, g, d, kGroup, z + 2 * (p - kGroup));
  normals8_store<N>(d, np - p, z + 2 * p);
}

// n (<= 8) words, zero-extended to 64-bit lanes (the rest 0).
JEBM_AVX512 __m512i load8(const uint32_t* w, int64_t n) {
  uint32_t v[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  std::memcpy(v, w, static_cast<size_t>(n) * sizeof(uint32_t));
  return _mm512_cvtepu32_epi64(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(v)));
}

__attribute__((target("avx512f"))) void words_avx512(const uint32_t* w0, const uint32_t* w1, const uint32_t* w2,
                                                      const uint32_t* w3, int64_t np, double* z) {
  for (int64_t p = 0; p < np; p += 8) {
    const int64_t n = np - p < 8 ? np - p : 8;
    const __m512i w01 = _mm512_or_si512(_mm512_slli_epi64(load8(w0 + p, n), 32), load8(w1 + p, n));
    const __m512i w23 = _mm512_or_si512(_mm512_slli_epi64(load8(w2 + p, n), 32), load8(w3 + p, n));
    Normals8<1> g;
    normals8_start<1>(&w01, &w23, g);
    Ends8<1> d;
    group8<1, false, false>(0, 0, 0, g, d, 0, z);
    normals8_store<1>(d, n, z + 2 * p);
  }
}

// --- the AVX2 twin: 4 streams per vector, software-pipelined ---------------------------------------------------
// Lanes hold streams in the order (0, 2, 1, 3), so that two in-lane unpacks interleave the pairs (no lane permute).
// Where AVX2 lacks an AVX-512 instruction: two XORs for the ternary logic, a sign-bit blend for the mask blend, a
// stack copy for the masked tail store. No FMA (target "avx2" alone, and -ffp-contract=off).

#define JEBM_AVX2 __attribute__((target("avx2"), always_inline)) inline

// Vectors of 4 streams per group. On Zen 3, per normal at 1 thread (thread CPU, 10^4 x 50 normals in chunks of 64
// walkers): 1 vector 3.5 ns, 2: 2.8, 3: 3.25 (3 spill AVX2's 16 registers inside the steps).
constexpr int kAvx2Vectors = 2;

JEBM_AVX2 __m256i set1_u64x4(uint64_t v) { return _mm256_set1_epi64x(static_cast<long long>(v)); }
JEBM_AVX2 __m256d as_pd4(__m256i v) { return _mm256_castsi256_pd(v); }
JEBM_AVX2 __m256i as_si4(__m256d v) { return _mm256_castpd_si256(v); }
JEBM_AVX2 __m256d c_pd4(double v) { return _mm256_set1_pd(v); }

// philox4x32_10 on N x 4 counters, a round at a time. _mm256_mul_epu32 reads only the low 32 bits of each lane, so
// c0..c3 carry junk in their high halves (c1 and c3 are whole products); only the low halves are ever combined.
template <int N>
struct Philox4Rounds {
  __m256i c0[N], c1[N], c2[N], c3[N];
  uint32_t k0, k1;  // the next round's key
};

// Round 1 of 10 on counters (stream lo, stream hi, offset lo, offset hi).
template <int N>
JEBM_AVX2 void philox4_first_round(const __m256i* stream, uint64_t offset, uint64_t seed, Philox4Rounds<N>& s) {
  const PhiloxFirstRound f = philox_first_round_scalars(seed, offset);
  const __m256i m0 = set1_u64x4(kPhiloxM0), lo1 = set1_u64x4(f.lo1), x0 = set1_u64x4(f.x0), x2 = set1_u64x4(f.x2);
  for (int v = 0; v < N; ++v) {
    const __m256i p0 = _mm256_mul_epu32(stream[v], m0);
    s.c0[v] = _mm256_xor_si256(_mm256_srli_epi64(stream[v], 32), x0);
    s.c2[v] = _mm256_xor_si256(_mm256_srli_epi64(p0, 32), x2);
    s.c1[v] = lo1;
    s.c3[v] = p0;
  }
  s.k0 = f.k0;
  s.k1 = f.k1;
}

// Rounds 2 to 9: n0 = hi1 ^ c1 ^ k0, n2 = hi0 ^ c3 ^ k1; the products' low halves move to c1 and c3.
template <int N>
JEBM_AVX2 void philox4_round(Philox4Rounds<N>& s) {
  const __m256i m0 = set1_u64x4(kPhiloxM0), m1 = set1_u64x4(kPhiloxM1);
  const __m256i key0 = set1_u64x4(s.k0), key1 = set1_u64x4(s.k1);
  for (int v = 0; v < N; ++v) {
    const __m256i p0 = _mm256_mul_epu32(s.c0[v], m0), p1 = _mm256_mul_epu32(s.c2[v], m1);
    s.c0[v] = _mm256_xor_si256(_mm256_srli_epi64(p1, 32), _mm256_xor_si256(s.c1[v], key0));
    s.c2[v] = _mm256_xor_si256(_mm256_srli_epi64(p0, 32), _mm256_xor_si256(s.c3[v], key1));
    s.c1[v] = p1;
    s.c3[v] = p0;
  }
  s.k0 += kPhiloxW0;
  s.k1 += kPhiloxW1;
}

// Round 10, as the 64-bit words (w0 << 32 | w1) and (w2 << 32 | w3): (n0, lo1) is p1 ^ (c1 ^ k0) << 32, since p1's
// high half is hi1; likewise (n2, lo0).
template <int N>
JEBM_AVX2 void philox4_last_round(const Philox4Rounds<N>& s, __m256i* w01, __m256i* w23) {
  const __m256i m0 = set1_u64x4(kPhiloxM0), m1 = set1_u64x4(kPhiloxM1);
  const __m256i key0 = set1_u64x4(s.k0), key1 = set1_u64x4(s.k1);
  for (int v = 0; v < N; ++v) {
    const __m256i p0 = _mm256_mul_epu32(s.c0[v], m0), p1 = _mm256_mul_epu32(s.c2[v], m1);
    w01[v] = _mm256_xor_si256(p1, _mm256_slli_epi64(_mm256_xor_si256(s.c1[v], key0), 32));
    w23[v] = _mm256_xor_si256(p0, _mm256_slli_epi64(_mm256_xor_si256(s.c3[v], key1), 32));
  }
}

// Streams first + 4v + (0, 2, 1, 3) in vector v's lanes: in that order normals4_store's in-lane unpacks put the
// pairs in stream order.
template <int N>
JEBM_AVX2 void streams4(uint64_t first, __m256i* stream) {
  const __m256i lane = _mm256_set_epi64x(3, 1, 2, 0);
  for (int v = 0; v < N; ++v) stream[v] = _mm256_add_epi64(set1_u64x4(first + 4 * static_cast<uint64_t>(v)), lane);
}

template <int N>
JEBM_AVX2 void philox4(uint64_t seed, uint64_t first, uint64_t offset, __m256i* w01, __m256i* w23) {
  __m256i stream[N];
  streams4<N>(first, stream);
  Philox4Rounds<N> s;
  philox4_first_round<N>(stream, offset, seed, s);
  for (int r = 1; r < 9; ++r) philox4_round<N>(s);
  philox4_last_round<N>(s, w01, w23);
}

// philox_u01_52 of the 64-bit word (hi << 32 | lo).
JEBM_AVX2 __m256d u01_52x4(__m256i w) {
  const __m256i b = _mm256_or_si256(_mm256_srli_epi64(w, 12), set1_u64x4(0x3ff0000000000000ULL));
  return _mm256_add_pd(_mm256_sub_pd(as_pd4(b), c_pd4(1.0)), c_pd4(1.1102230246251565e-16));
}

// philox_normal2_poly_words on N x 4 blocks between the polynomials' steps.
template <int N>
struct Normals4 {
  __m256d e[N], f[N], s[N], q[N];           // poly_log: exponent, (m - 1) / (m + 1), f^2, -4 p
  __m256d t[N], r[N], r2[N], ps[N], pc[N];  // poly_sincos2pi: quadrant in t's bits, angle, its square, polynomials
};

template <int N>
JEBM_AVX2 void normals4_start(const __m256i* w01, const __m256i* w23, Normals4<N>& g) {
  const __m256i one = set1_u64x4(0x3ff0000000000000ULL), bit52 = set1_u64x4(1ULL << 52);
  for (int v = 0; v < N; ++v) {
    const __m256i b = as_si4(u01_52x4(w01[v]));
    const __m256i mant = _mm256_and_si256(b, set1_u64x4(0x000fffffffffffffULL));
    // 2^52 where the mantissa exceeds sqrt(2)'s: the borrow of the subtraction sets bits 52..63.
    const __m256i big = _mm256_and_si256(_mm256_sub_epi64(set1_u64x4(0x6a09e667f3bcdULL), mant), bit52);
    const __m256d m = as_pd4(_mm256_sub_epi64(_mm256_or_si256(mant, one), big));
    const __m256i eb = _mm256_or_si256(_mm256_srli_epi64(_mm256_add_epi64(b, big), 52),
                                       set1_u64x4(0x4330000000000000ULL));
    g.e[v] = _mm256_sub_pd(as_pd4(eb), c_pd4(4503599627370496.0 + 1023.0));
    g.f[v] = _mm256_div_pd(_mm256_sub_pd(m, c_pd4(1.0)), _mm256_add_pd(m, c_pd4(1.0)));
    g.s[v] = _mm256_mul_pd(g.f[v], g.f[v]);
    g.q[v] = c_pd4(-4.0 * kLogFirst);
    const __m256d u = u01_52x4(w23[v]);
    g.t[v] = _mm256_add_pd(u, c_pd4(1688849860263936.0));  // 1.5 2^50
    const __m256d q4 = _mm256_sub_pd(g.t[v], c_pd4(1688849860263936.0));
    g.r[v] = _mm256_mul_pd(_mm256_sub_pd(u, q4), c_pd4(6.283185307179586476925));
    g.r2[v] = _mm256_mul_pd(g.r[v], g.r[v]);
    g.ps[v] = c_pd4(kSinFirst);
    g.pc[v] = c_pd4(kCosFirst);
  }
}

// Horner step i of each polynomial that has one (the sign-alternating steps add -(1/n!), which the scalar code
// subtracts: the same rounding).
template <int N>
JEBM_AVX2 void normals4_step(int i, Normals4<N>& g) {
  constexpr int kSin = sizeof kSinSteps / sizeof(double), kCos = sizeof kCosSteps / sizeof(double);
  for (int v = 0; v < N; ++v) {
    g.q[v] = _mm256_add_pd(_mm256_mul_pd(g.q[v], g.s[v]), c_pd4(-4.0 * kLogSteps[i]));
    if (i < kSin) g.ps[v] = _mm256_add_pd(_mm256_mul_pd(g.ps[v], g.r2[v]), c_pd4(kSinSteps[i]));
    if (i < kCos) g.pc[v] = _mm256_add_pd(_mm256_mul_pd(g.pc[v], g.r2[v]), c_pd4(kCosSteps[i]));
  }
}

// The polynomials' results for N x 4 blocks, waiting for their square roots and stores.
template <int N>
struct Ends4 {
  __m256d r2[N], sn[N], cs[N];  // -2 poly_log(u1); sin and cos of 2 pi u2
};

template <int N>
JEBM_AVX2 void normals4_end(const Normals4<N>& g, Ends4<N>& d) {
  for (int v = 0; v < N; ++v) {
    d.r2[v] = _mm256_add_pd(_mm256_mul_pd(g.e[v], c_pd4(-2.0 * 0.6931471805599453094)), _mm256_mul_pd(g.f[v], g.q[v]));
    // Quadrant bits of t: bit 0 (odd: swap sin and cos) to the sign bit, where blendv looks; sin's sign is bit 1,
    // cos's is bit 0 ^ bit 1.
    const __m256i tb = as_si4(g.t[v]);
    const __m256i odd = _mm256_slli_epi64(tb, 63), sign_s = _mm256_slli_epi64(_mm256_srli_epi64(tb, 1), 63);
    const __m256d bs = _mm256_mul_pd(g.r[v], g.ps[v]), bc = g.pc[v], oddm = as_pd4(odd);
    d.sn[v] = _mm256_xor_pd(_mm256_blendv_pd(bs, bc, oddm), as_pd4(sign_s));
    d.cs[v] = _mm256_xor_pd(_mm256_blendv_pd(bc, bs, oddm), as_pd4(_mm256_xor_si256(odd, sign_s)));
  }
}

// The first `pairs` pairs go to z[0 .. 2 pairs), interleaved.
template <int N>
JEBM_AVX2 void normals4_store(const Ends4<N>& d, int64_t pairs, double* z) {
  for (int v = 0; v < N && pairs > 0; ++v, pairs -= 4, z += 8) {
    const __m256d r = _mm256_sqrt_pd(d.r2[v]);
    const __m256d z0 = _mm256_mul_pd(r, d.cs[v]), z1 = _mm256_mul_pd(r, d.sn[v]);
    // Lanes hold streams (0, 2, 1, 3): the in-lane unpacks give (z0_0 z1_0 z0_1 z1_1) and (z0_2 z1_2 z0_3 z1_3).
    const __m256d a = _mm256_unpacklo_pd(z0, z1), b = _mm256_unpackhi_pd(z0, z1);
    if (pairs >= 4) {
      _mm256_storeu_pd(z, a);
      _mm256_storeu_pd(z + 4, b);
      continue;
    }
    double t[8];
    _mm256_storeu_pd(t, a);
    _mm256_storeu_pd(t + 4, b);
    std::memcpy(z, t, static_cast<size_t>(2 * pairs) * sizeof(double));
  }
}

// One pipeline stage: the Horner steps of group g (its transform started in g's words); with kNext, the Philox
// rounds of the N x 4 streams from `next` on between them and their transform's start at the last step (g then
// holds it); with kPrev, group g - 1's square roots and stores (d, the first prev_pairs pairs to prev_z) at the
// second step. d then holds group g's ends. The empty asm statements pin the order: without them GCC regroups the
// rounds and the Horner chains by dependency, undoing the interleave (2.95 instead of 3.45 ns per normal with the
// Philox rounds alone interleaved; 2.8 with this three-stage pipeline; Zen 3, 1 thread).
template <int N, bool kPrev, bool kNext>
JEBM_AVX2 void group4(uint64_t seed, uint64_t offset, uint64_t next, Normals4<N>& g, Ends4<N>& d, int64_t prev_pairs,
                      double* prev_z) {
  constexpr int kRounds = 8, kStartAt = kNormalsSteps - 1, kStoreAt = 1;  // rounds 2..9 at steps 0..7
  Philox4Rounds<N> s;
  Normals4<N> h;
  __m256i w01[N], w23[N];
  if (kNext) {
    __m256i stream[N];
    streams4<N>(next, stream);
    philox4_first_round<N>(stream, offset, seed, s);
  }
#pragma GCC unroll 11
  for (int i = 0; i < kNormalsSteps; ++i) {
    normals4_step<N>(i, g);
    if (kNext && i < kRounds) philox4_round<N>(s);
    if (kNext && i == kRounds) philox4_last_round<N>(s, w01, w23);
    if (kNext && i == kStartAt) normals4_start<N>(w01, w23, h);
    if (kPrev && i == kStoreAt) normals4_store<N>(d, prev_pairs, prev_z);
    for (int v = 0; v < N; ++v) {
      if (kNext && i < kRounds)
        asm volatile("" : "+x"(g.q[v]), "+x"(s.c0[v]));
      else
        asm volatile("" : "+x"(g.q[v]));
    }
  }
  normals4_end<N>(g, d);
  if constexpr (kNext) g = h;
}

__attribute__((target("avx2"))) void normals_avx2(uint64_t seed, uint64_t first, uint64_t offset, int64_t np,
                                                   double* z) {
  constexpr int N = kAvx2Vectors;
  constexpr int64_t kGroup = 4 * N;
  if (np <= 0) return;
  __m256i w01[N], w23[N];
  philox4<N>(seed, first, offset, w01, w23);
  Normals4<N> g;
  normals4_start<N>(w01, w23, g);
  Ends4<N> d;
  if (np <= kGroup) {
    group4<N, false, false>(seed, offset, 0, g, d, 0, z);
    normals4_store<N>(d, np, z);
    return;
  }
  group4<N, false, true>(seed, offset, first + static_cast<uint64_t>(kGroup), g, d, 0, z);
  int64_t p = kGroup;
#pragma GCC unroll 1
  for (; np - p > kGroup; p += kGroup)
    group4<N, true, true>(seed, offset, first + static_cast<uint64_t>(p + kGroup), g, d, kGroup, z + 2 * (p - kGroup));
  group4<N, true, false>(seed, offset, 0, g, d, kGroup, z + 2 * (p - kGroup));
  normals4_store<N>(d, np - p, z + 2 * p);
}

__attribute__((target("avx2"))) void words_avx2(const uint32_t* w0, const uint32_t* w1, const uint32_t* w2,
                                                 const uint32_t* w3, int64_t np, double* z) {
  constexpr int kLane[4] = {0, 2, 1, 3};  // streams4's order
  for (int64_t p = 0; p < np; p += 4) {
    const int64_t n = np - p < 4 ? np - p : 4;
    uint64_t a[4] = {0, 0, 0, 0}, b[4] = {0, 0, 0, 0};
    for (int64_t k = 0; k < n; ++k) {
      a[kLane[k]] = static_cast<uint64_t>(w0[p + k]) << 32 | w1[p + k];
      b[kLane[k]] = static_cast<uint64_t>(w2[p + k]) << 32 | w3[p + k];
    }
    const __m256i w01 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(a));
    const __m256i w23 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b));
    Normals4<1> g;
    normals4_start<1>(&w01, &w23, g);
    Ends4<1> d;
    group4<1, false, false>(0, 0, 0, g, d, 0, z);
    normals4_store<1>(d, n, z + 2 * p);
  }
}

// The widest twin the CPU runs; JEBM_NOISE=reference or avx2 narrows it (avx2 where the CPU has AVX2).
NoisePath initial_path() {
  const char* env = std::getenv("JEBM_NOISE");
  if (env && std::strcmp(env, "reference") == 0) return NoisePath::Reference;
  if (cpu_features().avx512f && !(env && std::strcmp(env, "avx2") == 0)) return NoisePath::Avx512;
  return cpu_features().avx2 ? NoisePath::Avx2 : NoisePath::Reference;
}

std::atomic<NoisePath> g_path{initial_path()};

}  // namespace

NoisePath noise_path() { return g_path.load(std::memory_order_relaxed); }

const char* noise_path_name(NoisePath p) {
  switch (p) {
    case NoisePath::Avx512: return "avx512";
    case NoisePath::Avx2: return "avx2";
    case NoisePath::Reference: break;
  }
  return "reference";
}

bool noise_avx512_supported() { return cpu_features().avx512f; }

bool noise_avx2_supported() { return cpu_features().avx2; }

void set_noise_path(NoisePath p) {
  JEBM_CHECK(p != NoisePath::Avx512 || noise_avx512_supported(), "set_noise_path: this CPU has no AVX-512F");
  JEBM_CHECK(p != NoisePath::Avx2 || noise_avx2_supported(), "set_noise_path: this CPU has no AVX2");
  g_path.store(p, std::memory_order_relaxed);
}

void philox_normals_avx512(uint64_t seed, uint64_t first, uint64_t offset, int64_t np, double* z) {
  JEBM_CHECK(noise_avx512_supported(), "philox_normals_avx512: this CPU has no AVX-512F");
  normals_avx512(seed, first, offset, np, z);
}

void philox_normals_from_words_avx512(const uint32_t* w0, const uint32_t* w1, const uint32_t* w2, const uint32_t* w3,
                                      int64_t np, double* z) {
  JEBM_CHECK(noise_avx512_supported(), "philox_normals_from_words_avx512: this CPU has no AVX-512F");
  words_avx512(w0, w1, w2, w3, np, z);
}

void philox_normals_avx2(uint64_t seed, uint64_t first, uint64_t offset, int64_t np, double* z) {
  JEBM_CHECK(noise_avx2_supported(), "philox_normals_avx2: this CPU has no AVX2");
  normals_avx2(seed, first, offset, np, z);
}

void philox_normals_from_words_avx2(const uint32_t* w0, const uint32_t* w1, const uint32_t* w2, const uint32_t* w3,
                                    int64_t np, double* z) {
  JEBM_CHECK(noise_avx2_supported(), "philox_normals_from_words_avx2: this CPU has no AVX2");
  words_avx2(w0, w1, w2, w3, np, z);
}

bool philox_normals_fast(uint64_t seed, uint64_t first, uint64_t offset, int64_t np, double* z) {
  switch (g_path.load(std::memory_order_relaxed)) {
    case NoisePath::Avx512: normals_avx512(seed, first, offset, np, z); return true;
    case NoisePath::Avx2: normals_avx2(seed, first, offset, np, z); return true;
    case NoisePath::Reference: break;
  }
  return false;
}

}  // namespace jebm::cpu
