// The device side of samplers/gmm_step.hpp (samplers/gmm_step_cuda.cpp): every CUDA-specific call of the GMM
// training loop lives behind these, so the loop itself never branches on the device. Without CUDA they throw.
// Tested by tests/test_cuda_gmm.cpp (a few iterations on CUDA vs CPU agree).
#pragma once
#include "samplers/gmm_step.hpp"

namespace jebm::gmm_cuda {

GmmWalkerPass walker_pass(const GmmParams& theta, WalkerPopulation& pop, const UlaConfig& cfg, bool with_gradient,
                          GmmGradientLag* lag);
void resample_and_redo(WalkerPopulation& pop, ResampleScheme scheme, const UlaConfig& cfg, const Tensor& u,
                       const Tensor& g);
void restart_from_data(WalkerPopulation& pop, const Tensor& data, uint64_t seed, uint64_t offset);
WeightStats population_stats(const WalkerPopulation& pop);

}  // namespace jebm::gmm_cuda
