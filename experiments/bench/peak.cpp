// measure_peak (see peak.hpp).
#include "experiments/bench/peak.hpp"

#include <omp.h>

#include <algorithm>
#include <sstream>

#include "experiments/bench/fma_peak.hpp"
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

}  // namespace

MachinePeak measure_peak(Device device, int repeat) {
  MachinePeak p;
  const int64_t n = device.is_cuda() ? 4096 : 1024;
  p.gemm_f32 = gemm_gflops(device, DType::Float32, n, repeat);
  p.gemm_f64 = gemm_gflops(device, DType::Float64, n, repeat);
  const int64_t floats = int64_t{64} << 20;  // 256 MiB: far beyond any cache
  const Tensor src = Tensor::zeros({floats}, DType::Float32, device);
  Tensor dst = Tensor::empty({floats}, DType::Float32, device);
  const double copy_ms = median_ms([&] { dst.copy_(src); }, repeat);
  p.copy_gbs = 2.0 * 4.0 * static_cast<double>(floats) / (copy_ms * 1e6);
  std::ostringstream how;
  how.precision(4);
  if (device.is_cpu()) {
    const FmaPeak f32 = measure_fma_peak(DType::Float32, repeat), f64 = measure_fma_peak(DType::Float64, repeat);
    p.gflops_f32 = f32.gflops;
    p.gflops_f64 = f64.gflops;
    how << "peak = measured on this cpu in this run, " << f32.threads << " thread(s): " << f32.isa
        << " FMA chains in registers " << p.gflops_f32 << " GFLOP/s float32, " << p.gflops_f64 << " float64; copy "
        << p.copy_gbs << " GB/s (256 MiB float32, read + write)\n  for context, jebm's " << n << "^3 GEMM: "
        << p.gemm_f32 << " GFLOP/s float32, " << p.gemm_f64 << " float64";
  } else {
    // A device FMA loop would need a kernel of its own; the large GEMM is close to the device's FLOP peak.
    p.gflops_f32 = p.gemm_f32;
    p.gflops_f64 = p.gemm_f64;
    how << "peak = measured on this " << device.str() << " in this run: GEMM " << n << "^3 float32 " << p.gflops_f32
        << " GFLOP/s, float64 " << p.gflops_f64 << " GFLOP/s (jebm's own gemm_); copy bandwidth " << p.copy_gbs
        << " GB/s (256 MiB float32 copy, read + write)";
  }
  p.how = how.str();
  return p;
}

}  // namespace jebm
