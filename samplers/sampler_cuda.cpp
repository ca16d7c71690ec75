// walkers_to (declared in samplers/sampler_cuda.hpp): moving a population between devices needs no CUDA code,
// so it lives here and links in every build. Tested by tests/test_cuda_samplers.cpp.
#include "samplers/sampler_cuda.hpp"

namespace jebm {

WalkerPopulation walkers_to(const WalkerPopulation& pop, Device device) {
  WalkerPopulation p = pop;
  // Tensor::to shares storage when already there; clone so the copy never aliases the original.
  auto move = [&](const Tensor& t) { return t.device() == device ? t.clone() : t.to(device); };
  p.x = move(pop.x);
  p.x_prev = move(pop.x_prev);
  p.log_w = move(pop.log_w);
  p.partial = move(pop.partial);
  p.pending = move(pop.pending);
  return p;
}

}  // namespace jebm
