// Transitional names: the old `*_cuda` sampler functions, now thin forwarders to the device-transparent API
// (samplers/walkers.hpp, resampling.hpp, ula_jarzynski.hpp), which dispatches on the population's device. New
// code calls the replacements named on each line; this header goes once no caller is left. Tested through the
// replacements (tests/test_samplers.cpp, tests/test_cuda_samplers.cpp).
#pragma once
#include <cstdint>

#include "samplers/resampling.hpp"
#include "samplers/ula_jarzynski.hpp"
#include "samplers/walkers.hpp"

namespace jebm {

inline Tensor ula_noise_cuda(int64_t n, int64_t dims, uint64_t seed, uint64_t offset, Device device) {
  return ula_noise(n, dims, seed, offset, device);  // -> ula_noise
}
inline WeightStats weight_stats_cuda(const Tensor& log_w) { return weight_stats(log_w); }  // -> weight_stats(Tensor)
inline Tensor normalized_weights_cuda(const Tensor& log_w) { return normalized_weights(log_w); }
inline Tensor cumulative_weights_cuda(const Tensor& w) { return cumulative_weights(w); }
inline Tensor systematic_ancestors_cuda(const Tensor& w, double u) { return systematic_ancestors(w, u); }
inline Tensor multinomial_ancestors_cuda(const Tensor& w, uint64_t seed, uint64_t offset) {
  return multinomial_ancestors(w, seed, offset);
}
inline Tensor draw_population_ancestors_cuda(const WalkerPopulation& pop, ResampleScheme scheme) {
  return population_ancestors(pop, scheme);  // -> population_ancestors
}
inline void resample_population_cuda(WalkerPopulation& pop, const Tensor& ancestors) {
  resample_population(pop, ancestors);  // -> resample_population(pop, Tensor)
}
inline void resample_and_redo_move_cuda(WalkerPopulation& pop, const Tensor& ancestors, const Tensor& u,
                                        const Tensor& g, const UlaConfig& cfg) {
  resample_and_redo_move(pop, ancestors, u, g, cfg);  // -> resample_and_redo_move(pop, Tensor, ...)
}

}  // namespace jebm
