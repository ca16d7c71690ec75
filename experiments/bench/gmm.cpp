// `jebm bench --only gmm` and `--only gmm_scaling` (experiments/bench/gmm.hpp): time the product's own fused
// kernel and GmmTrainer::iterate, on either device. Not a test; tests/test_gmm.cpp covers the arithmetic.
#include "experiments/bench/gmm.hpp"

#include <algorithm>
#include <iomanip>
#include <sstream>
#include <utility>

#include "experiments/bench/timing.hpp"
#include "runtime/cuda_api.hpp"
#include "samplers/gmm_training.hpp"

namespace jebm {

namespace {

// The least memory traffic of one pass over n walkers (or points) of dimension d in float64: read x, x_prev and
// G, write x_prev and x, plus the per-walker scalars (U, log-weight, partial term, pending flag: read and written).
double walker_pass_bytes(int64_t n, int64_t d) {
  return 8.0 * static_cast<double>(n) * (5.0 * static_cast<double>(d) + 7.0);
}

}  // namespace

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
    out.push_back({name.str(), ms, 0.0, walker_pass_bytes(c.walkers, c.dim)});
  }
  {
    GmmTrainer run(c, Algorithm::Jarzynski, data, teacher);
    out.push_back({"full iteration 1e4x50", median_ms([&] { run.iterate(); }, calls), 0.0, 0.0});
  }
  {
    // `jebm gmm --no-correction`: the work of the PyTorch twin (experiments/bench/torch_reference.py).
    GmmConfig nc = c;
    nc.ce_correction = false;
    GmmTrainer run(nc, Algorithm::Jarzynski, data, teacher);
    out.push_back({std::string("full iteration 1e4x50") + kNoCorrection, median_ms([&] { run.iterate(); }, calls),
                   0.0, 0.0});
  }
  return out;
}

std::vector<SamplerTiming> bench_gmm_scaling(Device device, int repeat) {
  if (device.is_cuda()) cuda_api::require("jebm bench --only gmm_scaling --device cuda");
  // (walkers, dim): N from 10^3 to 10^6 at the paper's d = 50, then d from 10 to 1000 at the paper's N = 10^4.
  const std::vector<std::pair<int64_t, int64_t>> sizes = {{1000, 50},   {10000, 50}, {100000, 50}, {1000000, 50},
                                                          {10000, 10},  {10000, 200}, {10000, 1000}};
  std::vector<SamplerTiming> out;
  for (const auto& [n, d] : sizes) {
    GmmConfig c;
    c.device = device;
    c.walkers = n;
    c.dim = d;
    const GmmParams teacher = gmm_teacher(c);
    const Tensor data = gmm_teacher_data(c, teacher);
    GmmTrainer run(c, Algorithm::Jarzynski, data, teacher);
    const double ms = median_ms([&] { run.iterate(); }, n >= 1000000 ? std::max(1, repeat / 2) : repeat);
    std::ostringstream name;
    name << "N=" << n << " d=" << d << " (" << std::setprecision(3)
         << ms * 1e6 / (static_cast<double>(n) * static_cast<double>(d)) << " ns/walker-dim)";
    // The floor: the walker pass (above) plus one read of the 10^4 data points.
    out.push_back({name.str(), ms, 0.0, walker_pass_bytes(n, d) + 8.0 * static_cast<double>(c.data * d)});
  }
  return out;
}

}  // namespace jebm
