// The walker loops' Gaussian noise on the CPU, many streams at once: AVX-512 and AVX2 twins of philox_normal2_poly
// (runtime/philox.hpp) that give the same bits, and the load-time choice among them and the scalar reference.
// Tested by tests/test_rng.cpp (twins == reference bit for bit) and tests/test_walker_noise.cpp (whole walker passes).
#pragma once
#include <cstdint>

namespace jebm::cpu {

// Which code draws the walker loops' noise (samplers/ula_jarzynski.hpp, ula_normals_tile). Reference: the
// scalar philox_normal2_poly, compiled into the loops' AVX2 and baseline clones. Avx512: the intrinsics twin,
// 8 streams per step. Avx2: its 4-stream twin. Chosen at load time: the widest the CPU has (AVX-512F, else
// AVX2, else the reference); the environment variable JEBM_NOISE=reference selects the reference, and
// JEBM_NOISE=avx2 the AVX2 twin on an AVX-512 CPU. All give identical bits, so the choice changes speed only.
enum class NoisePath { Reference, Avx512, Avx2 };
NoisePath noise_path();
const char* noise_path_name(NoisePath p);  // "reference" | "avx512" | "avx2"
bool noise_avx512_supported();             // the CPU has AVX-512F
bool noise_avx2_supported();               // the CPU has AVX2
// For tests and benchmarks; not while a walker loop runs. A twin on a CPU without its ISA is an internal error.
void set_noise_path(NoisePath p);

// z[2p], z[2p + 1] = philox_normal2_poly(seed, first + p, offset) for p < np (streams wrap modulo 2^64), by the
// AVX-512 twin. Only on a CPU with AVX-512F.
void philox_normals_avx512(uint64_t seed, uint64_t first, uint64_t offset, int64_t np, double* z);
// The same from given Philox words (w0..w3 [np]: philox_normal2_poly_words of each quadruple), so that tests can
// reach the transform's edge inputs (all-zero and all-one words, the log's and the quadrants' boundaries).
void philox_normals_from_words_avx512(const uint32_t* w0, const uint32_t* w1, const uint32_t* w2, const uint32_t* w3,
                                      int64_t np, double* z);

// The AVX2 twins of the two above, 4 streams per vector. Only on a CPU with AVX2.
void philox_normals_avx2(uint64_t seed, uint64_t first, uint64_t offset, int64_t np, double* z);
void philox_normals_from_words_avx2(const uint32_t* w0, const uint32_t* w1, const uint32_t* w2, const uint32_t* w3,
                                    int64_t np, double* z);

// The walker loops' hook: draws z as above by the selected twin and returns true; returns false, touching
// nothing, when the reference path is selected and the caller must run it itself.
bool philox_normals_fast(uint64_t seed, uint64_t first, uint64_t offset, int64_t np, double* z);

}  // namespace jebm::cpu
