// Benchmark section "energy_cnn" for `jebm bench` (registered in experiments/bench/bench.cpp): one forward+backward of
// the image energies (MNIST and CIFAR-10 CNNs) giving grad_x U and grad_theta U together, the unit of work of
// every Langevin move (the cost rule). Not a test; the arithmetic it times is covered by tests/test_models.cpp.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "models/layers.hpp"
#include "runtime/tensor.hpp"

namespace jebm {

struct EnergyCnnTiming {
  std::string model;  // "mnist_energy_cnn", "cifar_energy_cnn"
  int64_t batch = 0;
  double median_ms = 0.0;
  double flops = 0.0;  // conv/linear multiply-adds x 2 x 3 (forward, backward-data, backward-filter)
};

// Multiply-adds of the Conv2d/Linear layers of `net` for an input of shape x (activations are negligible): the
// FLOP count of a forward pass is 2x this, of an input gradient another 2x, of a parameter gradient another 2x.
double sequential_macs(const Sequential& net, Shape x);

// Median of `repeat` timed forward+backward passes (after one untimed warm-up) of each energy on a uniform
// [-1, 1] float32 batch on `device`. batch 256 is the paper's walker mini-batch; on the CPU the CIFAR-10 net
// takes seconds per pass at that size, hence `jebm bench --batch`.
std::vector<EnergyCnnTiming> bench_energy_cnn(int64_t batch, int repeat, Device device, const std::string& net = "all",
                                              uint64_t seed = 0);

}  // namespace jebm
