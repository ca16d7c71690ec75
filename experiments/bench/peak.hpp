// What "share of peak" in `jebm bench` is measured against, at the run's thread count: on the CPU the arithmetic
// peak of register-only FMA chains at the widest ISA (experiments/bench/fma_peak.hpp), on CUDA the large-GEMM rate;
// and the copy bandwidth. jebm's own large GEMM is measured beside them for context. Tested by
// tests/test_bench.cpp (`jebm bench --only gemm`).
#pragma once
#include <string>

#include "runtime/tensor.hpp"

namespace jebm {

struct MachinePeak {
  double gflops_f32 = 0.0, gflops_f64 = 0.0;  // the reference of FLOP rows: CPU FMA chains, CUDA 4096^3 GEMM
  double gemm_f32 = 0.0, gemm_f64 = 0.0;      // jebm's own square GEMM (CPU 1024^3, CUDA 4096^3), for context
  double copy_gbs = 0.0;                      // measured: a 256 MiB float32 copy, bytes read + written per second
  std::string how;                            // one line per figure: how it was obtained
};

// Measures the peaks on `device` (median of `repeat` calls each).
MachinePeak measure_peak(Device device, int repeat);

}  // namespace jebm
