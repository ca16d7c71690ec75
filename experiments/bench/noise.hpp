// `jebm bench` section "noise": the walker loops' Gaussian noise alone (Philox + Box-Muller, samplers/
// ula_jarzynski.hpp's ula_normals_tile) on one thread, by the scalar reference and by its AVX-512 twin
// (runtime/philox_normals.hpp). Not a test: tests/test_rng.cpp shows that both give the same bits.
#pragma once
#include <vector>

#include "experiments/bench/bench_samplers.hpp"

namespace jebm {

// One GMM iteration's worth of normals (10^4 walkers x 50 coordinates), drawn in the walker loops' tiles, and one
// full GMM iteration (GmmTrainer::iterate at the paper's sizes), per noise path this CPU has, the paths
// interleaved over 3 rounds of `repeat` calls. Each row's name gives the median CPU time of a call (all threads),
// which a machine shared with other processes inflates less than the wall time.
std::vector<SamplerTiming> bench_noise_timings(int repeat);

}  // namespace jebm
