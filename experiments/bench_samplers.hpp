// Benchmark sections of `jebm bench` for the samplers on any device (registered in experiments/bench.cpp):
// "gmm" on CUDA (the same two rows as bench_gmm_timings in experiments/gmm.cpp: the fused kernel alone and one
// full iteration at d = 50, N = 10^4) and "ula_cnn" (one ULA move and one training iteration of the MNIST and
// CIFAR-10 energy CNNs). Not a test; the arithmetic is covered by tests/test_cuda_samplers.cpp and test_gmm.cpp.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "runtime/tensor.hpp"

namespace jebm {

struct SamplerTiming {
  std::string name;
  double median_ms = 0.0;
};

// bench_gmm_timings' rows on `device` (walkers, data and kernels on the device for CUDA).
std::vector<SamplerTiming> bench_gmm_timings_on(Device device, int repeat);

// Per energy CNN (MNIST, CIFAR-10), float32, `batch` walkers (the paper: 256):
//  "ula move": one forward+backward to U and grad_x U at the walkers plus the fused move kernel;
//  "iteration": DESIGN 1.3's image loop: one parameter update (forward of [data; walkers], the weighted surrogate
//  loss with alpha = 0.01, backward, grad-norm clip, Adam) followed by `moves` ULA moves (paper: MNIST 6 x 30 =
//  180, CIFAR-10 60; moves <= 0 means those).
std::vector<SamplerTiming> bench_ula_cnn(int64_t batch, int repeat, Device device, int64_t moves = 0);

}  // namespace jebm
