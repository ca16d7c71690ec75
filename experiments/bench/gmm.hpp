// `jebm bench` section "gmm": median wall times (ms) of (1) the generic fused ULA+Jarzynski kernel alone
// (U, grad_x U given) and (2) one full iteration of the paper's run (GmmTrainer::iterate: walker pass + data pass
// + update + log Z + resampling check), at d = 50, N = 10^4, on the CPU or with walkers, data and kernels on a
// CUDA device. Not a test: the arithmetic it times is covered by tests/test_gmm.cpp and tests/test_cuda_gmm.cpp.
#pragma once
#include <vector>

#include "experiments/bench/bench_samplers.hpp"
#include "runtime/tensor.hpp"

namespace jebm {

std::vector<SamplerTiming> bench_gmm_timings(Device device, int repeat);

}  // namespace jebm
