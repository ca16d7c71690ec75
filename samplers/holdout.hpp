// Held-out walkers, as both trainers keep them: walkers moved, weighted and resampled like the training walkers
// under the same parameter sequence, never entering the loss, so their log Z estimate carries none of the drift
// that the training walkers' gradient noise gives theirs (docs/method.md). Here: the estimate from independent
// blocks of them and their resampling rule. Tested by tests/test_gmm.cpp, tests/test_gmm_ranks.cpp and
// tests/test_trainer_logz.cpp.
#pragma once
#include <cstdint>
#include <vector>

#include "samplers/resampling.hpp"
#include "samplers/walkers.hpp"

namespace jebm {

// One block's Jarzynski estimate of log Z, its ESS and its resamplings so far.
struct HoldoutBlock {
  double log_z = 0.0, ess = 0.0;
  int64_t resamplings = 0;
};
HoldoutBlock holdout_block(const WalkerPopulation& block, const WeightStats& st);

// Over the blocks: log of the mean of their Z estimates, its standard error from their spread (delta method; NaN
// for one block), the smallest block ESS and the resamplings of all. With one block, its own estimate exactly.
struct HoldoutEstimate {
  double log_z = 0.0, se = 0.0, min_ess = 0.0;
  int64_t resamplings = 0;
};
HoldoutEstimate combine_holdout_blocks(const std::vector<HoldoutBlock>& blocks);

// Whether a block of `walkers` held-out walkers with weight statistics st resamples: by `rule`, or, when the
// training walkers resample on the ESS of their gradient walkers (batch_ess > 0, a count), when the same fraction
// of its own walkers is not reached: ess / walkers < batch_ess / gradient_walkers. Never on non-finite weights.
bool holdout_should_resample(const WeightStats& st, int64_t walkers, const ResampleRule& rule, double batch_ess = 0.0,
                             int64_t gradient_walkers = 0);

}  // namespace jebm
