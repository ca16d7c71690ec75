// `jebm bench` section "gmm": median wall times (ms) of (1) the generic fused ULA+Jarzynski kernel alone
// (U, grad_x U given), (2) one full iteration of the paper's run (GmmTrainer::iterate: walker pass + data pass
// + update + log Z + resampling check) and (3) the same without the CE correction's sums (`jebm gmm
// --no-correction`), at d = 50, N = 10^4, on the CPU or with walkers, data and kernels on a CUDA device. Not a
// test: the arithmetic it times is covered by tests/test_gmm.cpp and tests/test_cuda_gmm.cpp.
#pragma once
#include <vector>

#include "experiments/bench/bench_samplers.hpp"
#include "runtime/tensor.hpp"

namespace jebm {

// The suffix of row (3)'s name.
constexpr const char* kNoCorrection = ", no CE correction";

std::vector<SamplerTiming> bench_gmm_timings(Device device, int repeat);
// How one full iteration grows with the work: N = 10^3 ... 10^6 walkers at d = 50, and d = 10 ... 1000 at
// N = 10^4 (10^4 data points throughout). Each row's bytes are its memory floor, so its share of the measured
// copy bandwidth says how close it runs to that floor.
std::vector<SamplerTiming> bench_gmm_scaling(Device device, int repeat);

}  // namespace jebm
