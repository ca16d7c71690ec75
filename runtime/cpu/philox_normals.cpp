// The AVX-512 and AVX2 twins of philox_normal2_poly and the noise path choice (runtime/philox_normals.hpp). Tested
// by tests/test_rng.cpp and tests/test_walker_noise.cpp.
//
// Eight Philox blocks per step, one per 64-bit lane, each 32-bit word zero-extended: _mm512_mul_epu32 then gives
// the full 32x32 -> 64 product. The key is the seed, the same in every lane, so the round keys are scalars. The
// log and sincos polynomials are runtime/philox.hpp's, operation for operation: the same constants, the same
// order, IEEE division and square root, and no fused multiply-add (this file is compiled with -ffp-contract=off),
// so every lane rounds exactly as the scalar code does.
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


#define JEBM_AVX512 __attribute__((target("avx512f"), always_inline)) inline

struct Words8 {
  __m512i w0, w1, w2, w3;  // word k of 8 blocks, zero-extended to 64 bits
};

JEBM_AVX512 __m512i set1_u64(uint64_t v) { return _mm512_set1_epi64(static_cast<long long>(v)); }
JEBM_AVX512 __m512d as_pd(__m512i v) { return _mm512_castsi512_pd(v); }
JEBM_AVX512 __m512i as_si(__m512d v) { return _mm512_castpd_si512(v); }
JEBM_AVX512 __m512d c_pd(double v) { return _mm512_set1_pd(v); }

// philox4x32_10 on N x 8 counters (stream lo, stream hi, offset lo, offset hi) with key (seed lo, seed hi). N
// independent vectors side by side, so that one's multiply latency hides behind the others' work.
template <int N>
JEBM_AVX512 void philox8(const __m512i* stream, uint64_t offset, uint64_t seed, Words8* out) {
  constexpr uint32_t kM0 = 0xD2511F53u, kM1 = 0xCD9E8D57u, kW0 = 0x9E3779B9u, kW1 = 0xBB67AE85u;
  const __m512i lo32 = set1_u64(0xffffffffULL), m0 = set1_u64(kM0), m1 = set1_u64(kM1);
  __m512i c0[N], c1[N], c2[N], c3[N];
  for (int v = 0; v < N; ++v) {
    c0[v] = _mm512_and_si512(stream[v], lo32);
    c1[v] = _mm512_srli_epi64(stream[v], 32);
    c2[v] = set1_u64(offset & 0xffffffffULL);
    c3[v] = set1_u64(offset >> 32);
  }
  uint32_t k0 = static_cast<uint32_t>(seed), k1 = static_cast<uint32_t>(seed >> 32);
  for (int r = 0; r < 10; ++r) {
    const __m512i key0 = set1_u64(k0), key1 = set1_u64(k1);
    for (int v = 0; v < N; ++v) {
      const __m512i p0 = _mm512_mul_epu32(c0[v], m0), p1 = _mm512_mul_epu32(c2[v], m1);
      // 0x96: a ^ b ^ c. n0 = hi1 ^ c1 ^ k0, n2 = hi0 ^ c3 ^ k1; the products' low halves move to c1 and c3.
      c0[v] = _mm512_ternarylogic_epi64(_mm512_srli_epi64(p1, 32), c1[v], key0, 0x96);
      c2[v] = _mm512_ternarylogic_epi64(_mm512_srli_epi64(p0, 32), c3[v], key1, 0x96);
      c1[v] = _mm512_and_si512(p1, lo32);
      c3[v] = _mm512_and_si512(p0, lo32);
    }
    k0 += kW0;
    k1 += kW1;
  }
  for (int v = 0; v < N; ++v) out[v] = Words8{c0[v], c1[v], c2[v], c3[v]};
}

// philox_u01_52: 52 bits of (hi, lo) in the mantissa of [1, 2), minus 1, plus 2^-53.
JEBM_AVX512 __m512d u01_52(__m512i hi, __m512i lo) {
  const __m512i b = _mm512_or_si512(_mm512_srli_epi64(_mm512_or_si512(_mm512_slli_epi64(hi, 32), lo), 12),
                                    set1_u64(0x3ff0000000000000ULL));
  return _mm512_add_pd(_mm512_sub_pd(as_pd(b), c_pd(1.0)), c_pd(1.1102230246251565e-16));
}

// -2 poly_log(x) for N vectors.
template <int N>
JEBM_AVX512 void minus2_log8(const __m512d* x, __m512d* out) {
  const __m512i one = set1_u64(0x3ff0000000000000ULL);
  __m512d e[N], f[N], s[N], p[N];
  for (int v = 0; v < N; ++v) {
    const __m512i b = as_si(x[v]);
    const __m512i mant = _mm512_and_si512(b, set1_u64(0x000fffffffffffffULL));
    const __m512d m0 = as_pd(_mm512_or_si512(mant, one));
    const __m512i big = _mm512_srli_epi64(_mm512_sub_epi64(set1_u64(0x6a09e667f3bcdULL), mant), 63);
    const __m512d m = _mm512_mul_pd(m0, as_pd(_mm512_sub_epi64(one, _mm512_slli_epi64(big, 52))));
    const __m512i eb = _mm512_or_si512(_mm512_add_epi64(_mm512_srli_epi64(b, 52), big), set1_u64(0x4330000000000000ULL));
    e[v] = _mm512_sub_pd(as_pd(eb), c_pd(4503599627370496.0 + 1023.0));
    f[v] = _mm512_div_pd(_mm512_sub_pd(m, c_pd(1.0)), _mm512_add_pd(m, c_pd(1.0)));
    s[v] = _mm512_mul_pd(f[v], f[v]);
    p[v] = c_pd(kLogFirst);
  }
  for (const double c : kLogSteps)
    for (int v = 0; v < N; ++v) p[v] = _mm512_add_pd(_mm512_mul_pd(p[v], s[v]), c_pd(c));
  for (int v = 0; v < N; ++v) {
    const __m512d lg = _mm512_add_pd(_mm512_mul_pd(e[v], c_pd(0.6931471805599453094)),
                                     _mm512_mul_pd(_mm512_mul_pd(c_pd(2.0), f[v]), p[v]));
    out[v] = _mm512_mul_pd(c_pd(-2.0), lg);
  }
}

// poly_sincos2pi for N vectors. The Horner steps alternate signs: the scalar code subtracts 1/n!, which is adding
// -(1/n!) exactly.
template <int N>
JEBM_AVX512 void sincos8(const __m512d* u, __m512d* sn, __m512d* cs) {
  __m512d t[N], r[N], r2[N], ps[N], pc[N];
  for (int v = 0; v < N; ++v) {
    t[v] = _mm512_add_pd(_mm512_mul_pd(u[v], c_pd(4.0)), c_pd(6755399441055744.0));
    const __m512d qd = _mm512_sub_pd(t[v], c_pd(6755399441055744.0));
    r[v] = _mm512_mul_pd(_mm512_sub_pd(u[v], _mm512_mul_pd(c_pd(0.25), qd)), c_pd(6.283185307179586476925));
    r2[v] = _mm512_mul_pd(r[v], r[v]);
    ps[v] = c_pd(kSinFirst);
    pc[v] = c_pd(kCosFirst);
  }
  for (const double c : kSinSteps)
    for (int v = 0; v < N; ++v) ps[v] = _mm512_add_pd(_mm512_mul_pd(ps[v], r2[v]), c_pd(c));
  for (const double c : kCosSteps)
    for (int v = 0; v < N; ++v) pc[v] = _mm512_add_pd(_mm512_mul_pd(pc[v], r2[v]), c_pd(c));
  const __m512i one = set1_u64(1);
  for (int v = 0; v < N; ++v) {
    // Quadrant q = the low bits of t: odd swaps sin and cos; sin's sign is bit 1, cos's is bit 0 ^ bit 1.
    const __m512i tb = as_si(t[v]);
    const __mmask8 odd = _mm512_test_epi64_mask(tb, one);
    const __m512i bs = as_si(_mm512_mul_pd(r[v], ps[v])), bc = as_si(pc[v]);
    const __m512i a = _mm512_mask_blend_epi64(odd, bs, bc), b = _mm512_mask_blend_epi64(odd, bc, bs);
    const __m512i sign_s = _mm512_slli_epi64(_mm512_and_si512(_mm512_srli_epi64(tb, 1), one), 63);
    const __m512i sign_c = _mm512_slli_epi64(_mm512_and_si512(_mm512_xor_si512(tb, _mm512_srli_epi64(tb, 1)), one), 63);
    sn[v] = as_pd(_mm512_xor_si512(a, sign_s));
    cs[v] = as_pd(_mm512_xor_si512(b, sign_c));
  }
}

// philox_normal2_poly_words on N x 8 blocks; the first `pairs` pairs go to z[0 .. 2 pairs), interleaved.
template <int N>
JEBM_AVX512 void normals8(const Words8* w, int64_t pairs, double* z) {
  __m512d u1[N], u2[N], r2[N], sn[N], cs[N];
  for (int v = 0; v < N; ++v) {
    u1[v] = u01_52(w[v].w0, w[v].w1);
    u2[v] = u01_52(w[v].w2, w[v].w3);
  }
  minus2_log8<N>(u1, r2);
  sincos8<N>(u2, sn, cs);
  const __m512i lo = _mm512_set_epi64(11, 3, 10, 2, 9, 1, 8, 0), hi = _mm512_set_epi64(15, 7, 14, 6, 13, 5, 12, 4);
  for (int v = 0; v < N; ++v, pairs -= 8, z += 16) {
    if (pairs <= 0) return;
    const __m512d r = _mm512_sqrt_pd(r2[v]);
    const __m512d z0 = _mm512_mul_pd(r, cs[v]), z1 = _mm512_mul_pd(r, sn[v]);
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

// Streams first + 0 .. 8N - 1 (modulo 2^64) -> their normals, the first `pairs` of them stored.
template <int N>
JEBM_AVX512 void streams8(uint64_t seed, uint64_t first, uint64_t offset, int64_t pairs, double* z) {
  const __m512i lane = _mm512_set_epi64(7, 6, 5, 4, 3, 2, 1, 0);
  __m512i stream[N];
  for (int v = 0; v < N; ++v) stream[v] = _mm512_add_epi64(set1_u64(first + 8 * static_cast<uint64_t>(v)), lane);
  Words8 w[N];
  philox8<N>(stream, offset, seed, w);
  normals8<N>(w, pairs, z);
}

__attribute__((target("avx512f"))) void normals_avx512(uint64_t seed, uint64_t first, uint64_t offset, int64_t np,
                                                        double* z) {
  int64_t p = 0;
  // Four vectors at a time while they fill: their polynomial chains hide each other's latency (4-7 % faster per
  // normal than two at a time; six were slower).
  for (; np - p > 24; p += 32) streams8<4>(seed, first + static_cast<uint64_t>(p), offset, np - p, z + 2 * p);
  for (; np - p > 8; p += 16) streams8<2>(seed, first + static_cast<uint64_t>(p), offset, np - p, z + 2 * p);
  if (p < np) streams8<1>(seed, first + static_cast<uint64_t>(p), offset, np - p, z + 2 * p);
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
    const Words8 w{load8(w0 + p, n), load8(w1 + p, n), load8(w2 + p, n), load8(w3 + p, n)};
    normals8<1>(&w, n, z + 2 * p);
  }
}

// --- the AVX2 twin: the same steps on 4 streams per vector ----------------------------------------------------
// Where AVX2 lacks an AVX-512 instruction: two XORs for the ternary logic, a sign-bit blend for the mask blend,
// unpack + lane permute for the two-source permute, a stack copy for the masked tail store. No FMA (target
// "avx2" alone, and -ffp-contract=off), so the bits are the reference's.

#define JEBM_AVX2 __attribute__((target("avx2"), always_inline)) inline

// Vectors of 4 streams side by side in the long runs. On Zen 3, per normal at 1 thread (thread CPU, medians of 41
// draws of 10^4 x 50 in chunks of 64 walkers, three interleaved rounds): 1 vector 5.7 ns, 2: 4.7, 3: 3.95, 4: 4.1,
// 6: 3.9, 8: 3.9. Three fill AVX2's 16 registers; more spill and gain nothing.
constexpr int kAvx2Vectors = 3;

struct Words4 {
  __m256i w0, w1, w2, w3;  // word k of 4 blocks, zero-extended to 64 bits
};

JEBM_AVX2 __m256i set1_u64x4(uint64_t v) { return _mm256_set1_epi64x(static_cast<long long>(v)); }
JEBM_AVX2 __m256d as_pd4(__m256i v) { return _mm256_castsi256_pd(v); }
JEBM_AVX2 __m256i as_si4(__m256d v) { return _mm256_castpd_si256(v); }
JEBM_AVX2 __m256d c_pd4(double v) { return _mm256_set1_pd(v); }

// philox8 on N x 4 counters. _mm256_mul_epu32 reads only the low 32 bits of each lane, so the rounds keep the
// products' low halves unmasked (c1, c3 and, through the XORs, c0, c2 carry junk in their high halves) and the
// words are masked once at the end: two fewer instructions per round than masking every round.
template <int N>
JEBM_AVX2 void philox4(const __m256i* stream, uint64_t offset, uint64_t seed, Words4* out) {
  constexpr uint32_t kM0 = 0xD2511F53u, kM1 = 0xCD9E8D57u, kW0 = 0x9E3779B9u, kW1 = 0xBB67AE85u;
  const __m256i lo32 = set1_u64x4(0xffffffffULL), m0 = set1_u64x4(kM0), m1 = set1_u64x4(kM1);
  __m256i c0[N], c1[N], c2[N], c3[N];
  for (int v = 0; v < N; ++v) {
    c0[v] = stream[v];
    c1[v] = _mm256_srli_epi64(stream[v], 32);
    c2[v] = set1_u64x4(offset & 0xffffffffULL);
    c3[v] = set1_u64x4(offset >> 32);
  }
  uint32_t k0 = static_cast<uint32_t>(seed), k1 = static_cast<uint32_t>(seed >> 32);
  for (int r = 0; r < 10; ++r) {
    const __m256i key0 = set1_u64x4(k0), key1 = set1_u64x4(k1);
    for (int v = 0; v < N; ++v) {
      const __m256i p0 = _mm256_mul_epu32(c0[v], m0), p1 = _mm256_mul_epu32(c2[v], m1);
      // n0 = hi1 ^ c1 ^ k0, n2 = hi0 ^ c3 ^ k1 (low halves); the products' low halves move to c1 and c3.
      c0[v] = _mm256_xor_si256(_mm256_xor_si256(_mm256_srli_epi64(p1, 32), c1[v]), key0);
      c2[v] = _mm256_xor_si256(_mm256_xor_si256(_mm256_srli_epi64(p0, 32), c3[v]), key1);
      c1[v] = p1;
      c3[v] = p0;
    }
    k0 += kW0;
    k1 += kW1;
  }
  for (int v = 0; v < N; ++v)
    out[v] = Words4{_mm256_and_si256(c0[v], lo32), _mm256_and_si256(c1[v], lo32), _mm256_and_si256(c2[v], lo32),
                    _mm256_and_si256(c3[v], lo32)};
}

// philox_u01_52 (u01_52 above).
JEBM_AVX2 __m256d u01_52x4(__m256i hi, __m256i lo) {
  const __m256i b = _mm256_or_si256(_mm256_srli_epi64(_mm256_or_si256(_mm256_slli_epi64(hi, 32), lo), 12),
                                    set1_u64x4(0x3ff0000000000000ULL));
  return _mm256_add_pd(_mm256_sub_pd(as_pd4(b), c_pd4(1.0)), c_pd4(1.1102230246251565e-16));
}

// -2 poly_log(x) for N vectors (minus2_log8 above).
template <int N>
JEBM_AVX2 void minus2_log4(const __m256d* x, __m256d* out) {
  const __m256i one = set1_u64x4(0x3ff0000000000000ULL);
  __m256d e[N], f[N], s[N], p[N];
  for (int v = 0; v < N; ++v) {
    const __m256i b = as_si4(x[v]);
    const __m256i mant = _mm256_and_si256(b, set1_u64x4(0x000fffffffffffffULL));
    const __m256d m0 = as_pd4(_mm256_or_si256(mant, one));
    const __m256i big = _mm256_srli_epi64(_mm256_sub_epi64(set1_u64x4(0x6a09e667f3bcdULL), mant), 63);
    const __m256d m = _mm256_mul_pd(m0, as_pd4(_mm256_sub_epi64(one, _mm256_slli_epi64(big, 52))));
    const __m256i eb =
        _mm256_or_si256(_mm256_add_epi64(_mm256_srli_epi64(b, 52), big), set1_u64x4(0x4330000000000000ULL));
    e[v] = _mm256_sub_pd(as_pd4(eb), c_pd4(4503599627370496.0 + 1023.0));
    f[v] = _mm256_div_pd(_mm256_sub_pd(m, c_pd4(1.0)), _mm256_add_pd(m, c_pd4(1.0)));
    s[v] = _mm256_mul_pd(f[v], f[v]);
    p[v] = c_pd4(kLogFirst);
  }
  for (const double c : kLogSteps)
    for (int v = 0; v < N; ++v) p[v] = _mm256_add_pd(_mm256_mul_pd(p[v], s[v]), c_pd4(c));
  for (int v = 0; v < N; ++v) {
    const __m256d lg = _mm256_add_pd(_mm256_mul_pd(e[v], c_pd4(0.6931471805599453094)),
                                     _mm256_mul_pd(_mm256_mul_pd(c_pd4(2.0), f[v]), p[v]));
    out[v] = _mm256_mul_pd(c_pd4(-2.0), lg);
  }
}

// poly_sincos2pi for N vectors (sincos8 above).
template <int N>
JEBM_AVX2 void sincos4(const __m256d* u, __m256d* sn, __m256d* cs) {
  __m256d t[N], r[N], r2[N], ps[N], pc[N];
  for (int v = 0; v < N; ++v) {
    t[v] = _mm256_add_pd(_mm256_mul_pd(u[v], c_pd4(4.0)), c_pd4(6755399441055744.0));
    const __m256d qd = _mm256_sub_pd(t[v], c_pd4(6755399441055744.0));
    r[v] = _mm256_mul_pd(_mm256_sub_pd(u[v], _mm256_mul_pd(c_pd4(0.25), qd)), c_pd4(6.283185307179586476925));
    r2[v] = _mm256_mul_pd(r[v], r[v]);
    ps[v] = c_pd4(kSinFirst);
    pc[v] = c_pd4(kCosFirst);
  }
  for (const double c : kSinSteps)
    for (int v = 0; v < N; ++v) ps[v] = _mm256_add_pd(_mm256_mul_pd(ps[v], r2[v]), c_pd4(c));
  for (const double c : kCosSteps)
    for (int v = 0; v < N; ++v) pc[v] = _mm256_add_pd(_mm256_mul_pd(pc[v], r2[v]), c_pd4(c));
  for (int v = 0; v < N; ++v) {
    // Quadrant bits of t: bit 0 (odd: swap sin and cos) to the sign bit, where blendv looks; sin's sign is bit 1,
    // cos's is bit 0 ^ bit 1.
    const __m256i tb = as_si4(t[v]);
    const __m256i odd = _mm256_slli_epi64(tb, 63), sign_s = _mm256_slli_epi64(_mm256_srli_epi64(tb, 1), 63);
    const __m256d bs = _mm256_mul_pd(r[v], ps[v]), bc = pc[v], oddm = as_pd4(odd);
    const __m256d a = _mm256_blendv_pd(bs, bc, oddm), b = _mm256_blendv_pd(bc, bs, oddm);
    sn[v] = _mm256_xor_pd(a, as_pd4(sign_s));
    cs[v] = _mm256_xor_pd(b, as_pd4(_mm256_xor_si256(odd, sign_s)));
  }
}

// philox_normal2_poly_words on N x 4 blocks; the first `pairs` pairs go to z[0 .. 2 pairs), interleaved.
template <int N>
JEBM_AVX2 void normals4(const Words4* w, int64_t pairs, double* z) {
  __m256d u1[N], u2[N], r2[N], sn[N], cs[N];
  for (int v = 0; v < N; ++v) {
    u1[v] = u01_52x4(w[v].w0, w[v].w1);
    u2[v] = u01_52x4(w[v].w2, w[v].w3);
  }
  minus2_log4<N>(u1, r2);
  sincos4<N>(u2, sn, cs);
  for (int v = 0; v < N; ++v, pairs -= 4, z += 8) {
    if (pairs <= 0) return;
    const __m256d r = _mm256_sqrt_pd(r2[v]);
    const __m256d z0 = _mm256_mul_pd(r, cs[v]), z1 = _mm256_mul_pd(r, sn[v]);
    // (z0_0 z1_0 z0_2 z1_2), (z0_1 z1_1 z0_3 z1_3) -> (z0_0 z1_0 z0_1 z1_1), (z0_2 z1_2 z0_3 z1_3)
    const __m256d lo = _mm256_unpacklo_pd(z0, z1), hi = _mm256_unpackhi_pd(z0, z1);
    const __m256d a = _mm256_permute2f128_pd(lo, hi, 0x20), b = _mm256_permute2f128_pd(lo, hi, 0x31);
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

// Streams first + 0 .. 4N - 1 (modulo 2^64) -> their normals, the first `pairs` of them stored.
template <int N>
JEBM_AVX2 void streams4(uint64_t seed, uint64_t first, uint64_t offset, int64_t pairs, double* z) {
  const __m256i lane = _mm256_set_epi64x(3, 2, 1, 0);
  __m256i stream[N];
  for (int v = 0; v < N; ++v) stream[v] = _mm256_add_epi64(set1_u64x4(first + 4 * static_cast<uint64_t>(v)), lane);
  Words4 w[N];
  philox4<N>(stream, offset, seed, w);
  normals4<N>(w, pairs, z);
}

__attribute__((target("avx2"))) void normals_avx2(uint64_t seed, uint64_t first, uint64_t offset, int64_t np,
                                                   double* z) {
  int64_t p = 0;
  for (; np - p > 4 * (kAvx2Vectors - 1); p += 4 * kAvx2Vectors)
    streams4<kAvx2Vectors>(seed, first + static_cast<uint64_t>(p), offset, np - p, z + 2 * p);
  for (; p < np; p += 4) streams4<1>(seed, first + static_cast<uint64_t>(p), offset, np - p, z + 2 * p);
}

// n (<= 4) words, zero-extended to 64-bit lanes (the rest 0).
JEBM_AVX2 __m256i load4(const uint32_t* w, int64_t n) {
  uint32_t v[4] = {0, 0, 0, 0};
  std::memcpy(v, w, static_cast<size_t>(n) * sizeof(uint32_t));
  return _mm256_cvtepu32_epi64(_mm_loadu_si128(reinterpret_cast<const __m128i*>(v)));
}

__attribute__((target("avx2"))) void words_avx2(const uint32_t* w0, const uint32_t* w1, const uint32_t* w2,
                                                 const uint32_t* w3, int64_t np, double* z) {
  for (int64_t p = 0; p < np; p += 4) {
    const int64_t n = np - p < 4 ? np - p : 4;
    const Words4 w{load4(w0 + p, n), load4(w1 + p, n), load4(w2 + p, n), load4(w3 + p, n)};
    normals4<1>(&w, n, z + 2 * p);
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
