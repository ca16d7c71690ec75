// `jebm bench` section "gmm" on the CPU: median wall times (ms) of (1) the generic fused ULA+Jarzynski kernel
// alone (U, grad_x U given) and (2) one full iteration of the paper's run (GmmTrainer::iterate: walker pass +
// data pass + update + log Z + resampling check), at d = 50, N = 10^4. Not a test: the arithmetic it times is
// covered by tests/test_gmm.cpp.
#pragma once
#include <string>
#include <vector>

namespace jebm {

struct GmmBenchTiming {
  std::string name;
  double median_ms;
  double flops;  // 0: not meaningful
};
std::vector<GmmBenchTiming> bench_gmm_timings(int repeat);

}  // namespace jebm
