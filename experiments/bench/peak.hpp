// What "share of peak" in `jebm bench` is measured against: this machine's large-GEMM rate (float32 and float64)
// and its copy bandwidth, both measured with jebm's own kernels at the start of the run, plus (CPU) the nominal
// cores x clock x FLOPs/cycle for reference. Smoke-tested by tests/test_bench.cpp (`jebm bench --only gemm`).
#pragma once
#include <string>

#include "runtime/tensor.hpp"

namespace jebm {

struct MachinePeak {
  double gflops_f32 = 0.0, gflops_f64 = 0.0;  // measured: the best of square GEMMs (CPU 1024^3, CUDA 4096^3)
  double copy_gbs = 0.0;                      // measured: a 256 MiB float32 copy, bytes read + written per second
  std::string how;                            // one line per figure: how it was obtained
};

// Measures the peaks on `device` (median of `repeat` calls each).
MachinePeak measure_peak(Device device, int repeat);

}  // namespace jebm
