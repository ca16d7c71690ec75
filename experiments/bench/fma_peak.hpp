// The CPU's arithmetic peak as `jebm bench` measures it: independent chains of fused multiply-adds held in
// registers (no memory traffic), at the widest vector ISA the CPU has (AVX-512, else AVX2 + FMA, else SSE2
// multiply + add), on every OpenMP thread at once. A machine figure, not jebm's own GEMM: rows are reported as a
// share of it. Tested by tests/test_bench.cpp.
#pragma once
#include <string>

#include "runtime/dtype.hpp"

namespace jebm {

struct FmaPeak {
  double gflops = 0.0;  // FLOPs (2 per FMA lane) per second, all threads together
  std::string isa;      // "AVX-512", "AVX2+FMA" or "SSE2"
  int threads = 0;
};

// The median of `repeat` timed runs (after one warm-up) of the register-only FMA loop for `dt` on every thread
// of the current OpenMP team size.
FmaPeak measure_fma_peak(DType dt, int repeat);

}  // namespace jebm
