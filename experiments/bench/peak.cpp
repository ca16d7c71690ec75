// measure_peak (see peak.hpp).
#include "experiments/bench/peak.hpp"

#include <omp.h>

#include <algorithm>
#include <fstream>
#include <sstream>

#include "experiments/bench/timing.hpp"
#include "runtime/ops.hpp"

namespace jebm {

namespace {

double gemm_gflops(Device device, DType dt, int64_t n, int repeat) {
  Generator gen{1, 0};
  const Tensor a = rand_uniform({n, n}, -1, 1, gen, dt, device);
  const Tensor b = rand_uniform({n, n}, -1, 1, gen, dt, device);
  Tensor c = Tensor::empty({n, n}, dt, device);
  const double ms = median_ms([&] { gemm_(false, false, 1.0, a, b, 0.0, c); }, repeat);
  return 2.0 * static_cast<double>(n) * static_cast<double>(n) * static_cast<double>(n) / (ms * 1e6);
}

// The clock /proc/cpuinfo reports for the first CPU, in GHz (0: unknown). A VM reports its nominal clock.
double cpuinfo_ghz() {
  std::ifstream in("/proc/cpuinfo");
  std::string line;
  while (std::getline(in, line))
    if (line.rfind("cpu MHz", 0) == 0) {
      const size_t colon = line.find(':');
      if (colon != std::string::npos) return std::strtod(line.c_str() + colon + 1, nullptr) / 1e3;
    }
  return 0.0;
}

}  // namespace

MachinePeak measure_peak(Device device, int repeat) {
  MachinePeak p;
  const int64_t n = device.is_cuda() ? 4096 : 1024;
  p.gflops_f32 = gemm_gflops(device, DType::Float32, n, repeat);
  p.gflops_f64 = gemm_gflops(device, DType::Float64, n, repeat);
  const int64_t floats = int64_t{64} << 20;  // 256 MiB: far beyond any cache
  const Tensor src = Tensor::zeros({floats}, DType::Float32, device);
  Tensor dst = Tensor::empty({floats}, DType::Float32, device);
  const double copy_ms = median_ms([&] { dst.copy_(src); }, repeat);
  p.copy_gbs = 2.0 * 4.0 * static_cast<double>(floats) / (copy_ms * 1e6);
  std::ostringstream how;
  how << "peak = measured on this " << device.str() << " in this run: GEMM " << n << "^3 float32 " << p.gflops_f32
      << " GFLOP/s, float64 " << p.gflops_f64 << " GFLOP/s (jebm's own gemm_); copy bandwidth " << p.copy_gbs
      << " GB/s (256 MiB float32 copy, read + write)";
  if (device.is_cpu()) {
    const double ghz = cpuinfo_ghz();
    const int threads = omp_get_max_threads();
    // AVX2 with two 256-bit FMA units: 2 x 8 float32 lanes x 2 FLOPs per FMA per cycle (half for float64). An
    // assumption about the core, not a measurement: it only puts the measured GEMM peak in context.
    how << "\n  nominal, for reference: " << threads << " threads x " << ghz << " GHz (/proc/cpuinfo) x 32 FLOP/cycle "
        << "(AVX2, 2 FMA units, assumed) = " << threads * ghz * 32.0 << " GFLOP/s float32, "
        << threads * ghz * 16.0 << " float64";
  }
  p.how = how.str();
  return p;
}

}  // namespace jebm
