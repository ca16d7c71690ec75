// `jebm bench --only gmm` (experiments/bench/gmm.hpp): times the product's own fused kernel and
// GmmTrainer::iterate, on either device. Not a test; tests/test_gmm.cpp covers the arithmetic.
#include "experiments/bench/gmm.hpp"

#include <iomanip>
#include <sstream>

#include "experiments/bench/timing.hpp"
#include "runtime/cuda_api.hpp"
#include "samplers/gmm_training.hpp"

namespace jebm {

std::vector<SamplerTiming> bench_gmm_timings(Device device, int repeat) {
  if (device.is_cuda()) cuda_api::require("jebm bench --only gmm --device cuda");
  // A device iteration is ~0.1 ms: more calls for a stable median there.
  const int calls = device.is_cuda() ? repeat * 20 : repeat;
  GmmConfig c;  // the paper's sizes: d = 50, N = 10^4 walkers, 10^4 data points
  c.device = device;
  const GmmParams teacher = gmm_teacher(c);
  const Tensor data = gmm_teacher_data(c, teacher);
  std::vector<SamplerTiming> out;
  {
    // The generic kernel on its own, U and grad_x U given (as a network's backward would provide them).
    GmmParams p = gmm_student_init(c);
    Tensor x0 = Tensor::empty({c.walkers, c.dim}, DType::Float64);
    gmm_sample(p, c.walkers, 1, 0, x0.data<double>());
    WalkerPopulation pop = walkers_to(WalkerPopulation::create(x0, 2), device);
    Tensor u = Tensor::empty({c.walkers}, DType::Float64, device);
    Tensor g = Tensor::empty({c.walkers, c.dim}, DType::Float64, device);
    gmm_eval(p, pop.x, u, &g, nullptr);
    UlaConfig cfg;
    const double ms = median_ms([&] { ula_jarzynski_step(pop, u, g, cfg); }, calls);
    std::ostringstream name;
    name << "fused step 1e4x50 (" << std::setprecision(3) << c.walkers / ms / 1e3 << " Mmoves/s)";
    // Memory-bound: one pass reads x, x_prev and G and writes x_prev and x (N x d float64 each), plus a few
    // per-walker scalars (U, log-weight, partial term, pending flag: read and written).
    const double bytes = 8.0 * static_cast<double>(c.walkers) * (5.0 * static_cast<double>(c.dim) + 7.0);
    out.push_back({name.str(), ms, 0.0, bytes});
  }
  {
    GmmTrainer run(c, Algorithm::Jarzynski, data, teacher);
    out.push_back({"full iteration 1e4x50 (README fused)", median_ms([&] { run.iterate(); }, calls), 0.0, 0.0});
  }
  return out;
}

}  // namespace jebm
