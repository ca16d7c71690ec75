// `jebm bench --only gmm` on the CPU (experiments/bench/gmm.hpp): times the product's own fused kernel and
// GmmTrainer::iterate. Not a test; tests/test_gmm.cpp covers the arithmetic.
#include "experiments/bench/gmm.hpp"

#include <algorithm>
#include <chrono>
#include <functional>
#include <iomanip>
#include <sstream>

#include "samplers/gmm_training.hpp"

namespace jebm {

std::vector<GmmBenchTiming> bench_gmm_timings(int repeat) {
  auto median = [repeat](const std::function<void()>& f) {
    f();  // warm-up: first touch of the buffers
    std::vector<double> t;
    for (int r = 0; r < std::max(repeat, 1); ++r) {
      const auto a = std::chrono::steady_clock::now();
      f();
      t.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - a).count());
    }
    std::sort(t.begin(), t.end());
    return t[t.size() / 2];
  };
  GmmConfig c;  // the paper's sizes: d = 50, N = 10^4 walkers, 10^4 data points
  const GmmParams teacher = gmm_teacher(c);
  const Tensor data = gmm_teacher_data(c, teacher);
  std::vector<GmmBenchTiming> out;
  {
    // The generic kernel on its own, U and grad_x U given (as a network's backward would provide them).
    GmmParams p = gmm_student_init(c);
    Tensor x0 = Tensor::empty({c.walkers, c.dim}, DType::Float64);
    gmm_sample(p, c.walkers, 1, 0, x0.data<double>());
    WalkerPopulation pop = WalkerPopulation::create(x0, 2);
    Tensor u = Tensor::empty({c.walkers}, DType::Float64), g = Tensor::empty({c.walkers, c.dim}, DType::Float64);
    gmm_eval(p, pop.x.data<double>(), c.walkers, u.data<double>(), g.data<double>(), nullptr);
    UlaConfig cfg;
    const double ms = median([&] { ula_jarzynski_step(pop, u, g, cfg); });
    std::ostringstream name;
    name << "fused step 1e4x50 (" << std::setprecision(3) << c.walkers / ms / 1e3 << " Mmoves/s)";
    out.push_back({name.str(), ms, 0.0});
  }
  {
    GmmTrainer run(c, Algorithm::Jarzynski, data, teacher);
    const double ms = median([&] { run.iterate(); });
    out.push_back({"full iteration 1e4x50 (README fused)", ms, 0.0});
  }
  return out;
}

}  // namespace jebm
