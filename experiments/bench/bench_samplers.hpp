// Benchmark sections of `jebm bench` for the image samplers (registered in experiments/bench/bench.cpp; the "gmm"
// section is experiments/bench/gmm.cpp): "ula_cnn", which times the product itself: one ULA move as Trainer::step makes it
// (Trainer::energy_and_grad + ula_jarzynski_step on a walker subset) and one whole Trainer::step with the
// `jebm mnist` / `jebm cifar10` defaults. Not run by the tests (minutes on a CPU; tests/test_bench.cpp runs a
// quick section); the arithmetic it times is covered by tests/test_samplers.cpp and tests/test_cuda_samplers.cpp.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "runtime/tensor.hpp"

namespace jebm {

struct SamplerTiming {
  std::string name;
  double median_ms = 0.0;
  double flops = 0.0;  // useful floating-point work of one call (0: not counted)
  double bytes = 0.0;  // memory traffic of one call, for memory-bound kernels (0: not counted)
};

// Per energy CNN (MNIST, CIFAR-10), float32, with the experiment's defaults (mnist_defaults(), cifar10_defaults())
// but `batch` walkers per moving subset and in the loss:
//  "ula move": one move of `batch` walkers as Trainer::step makes it (gather, Trainer::energy_and_grad, the fused
//  ula_jarzynski_step on the subset);
//  "iteration": one Trainer::step (completion, surrogate loss, the moves, grad-norm clip + Adam), resampling off.
//  moves > 0 replaces the defaults' moves per update (MNIST 6 subsets x 30, CIFAR-10 1 x 60) by one subset x moves.
//  net: "mnist", "cifar10" or "all".
std::vector<SamplerTiming> bench_ula_cnn(int64_t batch, int repeat, Device device, int64_t moves = 0,
                                         const std::string& net = "all");

// How one MNIST ULA move (as above) grows with the walkers it moves: 32, 64, ... up to the run's 1024, each row with
// its time per walker.
std::vector<SamplerTiming> bench_ula_scaling(int repeat, Device device);

}  // namespace jebm
