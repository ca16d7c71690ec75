// Shared helpers for the CPU kernels (runtime/cpu/*.cpp): the size below which loops stay serial, and a
// shape-free view of a tensor as [outer, n, inner]. Covered through tests/test_ops.cpp and tests/test_rng.cpp.
#pragma once
#include <cstdint>

namespace jebm::cpu {

// Below this many elements, OpenMP's fork/join costs more than the loop itself.
constexpr int64_t kParallelMin = 1 << 15;

// Full reductions are split into chunks of this fixed size (not per thread), combined in chunk order, so that
// the result does not depend on the thread count.
constexpr int64_t kReduceChunk = 1 << 14;

}  // namespace jebm::cpu
