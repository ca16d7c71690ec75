// Resampling of weighted walkers (step 4 of Algorithm 1): systematic (default) and multinomial ancestor draws from
// normalised weights with cumulative sums in double, the ESS/CV trigger, and applying the draw to a population
// (A = 0, log mean exp(A) carried into the log Z offset), on host vectors and, device-transparently, on tensors
// (kernels in samplers/{cpu,cuda}/weights). Tested by tests/test_samplers.cpp and tests/test_cuda_samplers.cpp.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "samplers/walkers.hpp"

namespace jebm {

enum class ResampleScheme { Systematic, Multinomial };
ResampleScheme resample_scheme_from_name(const std::string& name);  // "systematic" | "multinomial"
const char* resample_scheme_name(ResampleScheme s);

// When to resample. With cv2_max > 0 the trigger is CV^2 > cv2_max (GMM.py: cv^2 > 1, i.e. ESS < N/2);
// otherwise ESS < ess_fraction * N. ess_fraction <= 0 and cv2_max <= 0 together never resample.
struct ResampleRule {
  ResampleScheme scheme = ResampleScheme::Systematic;
  double ess_fraction = 0.5;
  double cv2_max = 0.0;
};
bool should_resample(const WeightStats& s, int64_t n, const ResampleRule& rule);

// Ancestor indices (N of them) from normalised weights w (sum 1). Systematic: one uniform u in [0, 1),
// points (i + u) / N; every walker gets floor(N w_i) or ceil(N w_i) copies. Multinomial: N independent draws,
// uniforms from Philox (seed, stream = i, offset).
std::vector<int64_t> systematic_ancestors(const std::vector<double>& w, double u);
std::vector<int64_t> multinomial_ancestors(const std::vector<double>& w, uint64_t seed, uint64_t offset);
// Draws with the rule's scheme; the randomness is Philox (seed, offset) so runs are reproducible.
std::vector<int64_t> draw_ancestors(const std::vector<double>& w, ResampleScheme scheme, uint64_t seed,
                                    uint64_t offset);
// The same on w's device: w [N] float64 -> ancestors [N] int64 there (identical indices on CUDA for the same
// uniforms, up to cumulative sums within rounding of a search point).
Tensor cumulative_weights(const Tensor& w);  // c_i = prefix sums / total, c_{N-1} = 1
Tensor systematic_ancestors(const Tensor& w, double u);
Tensor multinomial_ancestors(const Tensor& w, uint64_t seed, uint64_t offset);
Tensor draw_ancestors(const Tensor& w, ResampleScheme scheme, uint64_t seed, uint64_t offset);

// The population's own draw: normalised weights of pop, Philox key pop.seed ^ kResampleKey, offset =
// pop.resamplings (so a run is reproducible and the GMM fast path and the Trainer draw the same ancestors).
constexpr uint64_t kResampleKey = 0x7265736d706c6521ULL;
std::vector<int64_t> draw_population_ancestors(const WalkerPopulation& pop, ResampleScheme scheme);
// The same draw as an [N] int64 tensor on the population's device (nothing but the indices' inputs leave it).
Tensor population_ancestors(const WalkerPopulation& pop, ResampleScheme scheme);

// Resamples a population with no pending move: x = x[anc] (x_prev too), log Z offset += log mean exp(A), A = 0.
// Walkers with a pending move cannot be resampled this way (copies would share the move's noise): see
// resample_and_redo_move in samplers/ula_jarzynski.hpp.
void resample_population(WalkerPopulation& pop, const std::vector<int64_t>& ancestors);
void resample_population(WalkerPopulation& pop, const Tensor& ancestors);  // [N] int64 on the walkers' device

}  // namespace jebm
