// Philox-4x32-10 (Salmon et al., SC'11), usable from host and device code. Every random number in jebm is a
// pure function of (seed, stream, offset, index): results do not depend on thread count, CUDA grid size or
// how walkers are batched. Tested by tests/test_rng.cpp (known-answer vector, determinism, moments).
#pragma once
#include <cmath>
#include <cstdint>

#if defined(__CUDACC__)
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
JEBM_HD Philox4 philox_block(uint64_t seed, uint64_t stream, uint64_t offset) {
  return philox4x32_10(static_cast<uint32_t>(stream), static_cast<uint32_t>(stream >> 32),
                       static_cast<uint32_t>(offset), static_cast<uint32_t>(offset >> 32),
                       static_cast<uint32_t>(seed), static_cast<uint32_t>(seed >> 32));
}

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

}  // namespace jebm
