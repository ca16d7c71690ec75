// What the direct conv2d's files share (runtime/cpu/conv_direct.cpp, runtime/cpu/conv_direct_backward_data.cpp):
// the 64-byte vector type their clones compute with, per-thread scratch, the per-sample loop. Internal, not
// installed; covered by tests/test_conv_direct.cpp.
#pragma once
#include <cstdint>
#include <vector>

#include "runtime/cpu/parallel.hpp"

namespace jebm::cpu::conv_direct {

// The kernels are inlined into each clone, so they are compiled for its instruction set (a call out of a clone
// would run the baseline code).
#define JEBM_ALWAYS_INLINE inline __attribute__((always_inline))

// One 64-byte vector of T as a GCC vector type: its * and + are lane-wise in every clone (AVX-512: one register,
// AVX2: two, baseline: four), where loops over lanes with many accumulators were left scalar by GCC. No function
// returns one: its ABI differs between the clones.
template <typename T>
struct Vec {
  typedef T type __attribute__((vector_size(64)));
};
template <typename T>
using vec_t = typename Vec<T>::type;
template <typename T>
constexpr int64_t kLanes = 64 / sizeof(T);

inline int64_t round_up(int64_t v, int64_t m) { return (v + m - 1) / m * m; }

// Rounds p up to a 64-byte boundary: a 64-byte load that straddles two cache lines costs two.
template <typename T>
T* align64(T* p) {
  return reinterpret_cast<T*>((reinterpret_cast<uintptr_t>(p) + 63) / 64 * 64);
}

// Per-thread buffers, 64-byte aligned, that persist across calls (a Langevin run repeats the same shapes thousands
// of times). A slot holds data only during one call.
template <typename T>
T* buffer(int slot, int64_t count) {
  thread_local std::vector<T> buffers[3];
  std::vector<T>& b = buffers[slot];
  const int64_t want = count + 64 / static_cast<int64_t>(sizeof(T));
  if (static_cast<int64_t>(b.size()) < want) b.resize(static_cast<size_t>(want));
  return align64(b.data());
}

// Runs f(n) for every sample; each writes only its own output, so any schedule gives the same result.
template <typename F>
void for_samples(int64_t n, int64_t work, F f) {
#pragma omp parallel for schedule(static) if (n > 1 && work >= kParallelMin)
  for (int64_t i = 0; i < n; ++i) f(i);
}

}  // namespace jebm::cpu::conv_direct
