// The held-out walkers' block estimate and resampling rule (samplers/holdout.hpp). Tested by tests/test_gmm.cpp,
// tests/test_gmm_ranks.cpp and tests/test_trainer_logz.cpp.
#include "samplers/holdout.hpp"

#include <algorithm>
#include <cmath>
#include <limits>

namespace jebm {

HoldoutBlock holdout_block(const WalkerPopulation& block, const WeightStats& st) {
  return {block.log_z_offset + st.log_mean, st.ess, block.resamplings};
}

HoldoutEstimate combine_holdout_blocks(const std::vector<HoldoutBlock>& blocks) {
  // Each block is an SMC estimate for a protocol fixed independently of it; the blocks are independent given the
  // theta sequence, so the spread of their Z estimates gives the standard error of their mean.
  HoldoutEstimate out{0.0, std::numeric_limits<double>::quiet_NaN(), std::numeric_limits<double>::infinity(), 0};
  double m = -std::numeric_limits<double>::infinity();
  for (const HoldoutBlock& b : blocks) {
    out.min_ess = std::min(out.min_ess, b.ess);
    out.resamplings += b.resamplings;
    m = std::max(m, b.log_z);
  }
  double s1 = 0.0, s2 = 0.0;
  for (const HoldoutBlock& b : blocks) {
    const double e = std::exp(b.log_z - m);
    s1 += e;
    s2 += e * e;
  }
  const double nb = static_cast<double>(blocks.size()), mean = s1 / nb;
  out.log_z = m + std::log(mean);
  if (blocks.size() > 1) {
    const double var = std::max(s2 / nb - mean * mean, 0.0) * nb / (nb - 1.0);
    out.se = std::sqrt(var / nb) / mean;  // delta method: SE(log mean) = SE(mean) / mean
  }
  return out;
}

bool holdout_should_resample(const WeightStats& st, int64_t walkers, const ResampleRule& rule, double batch_ess,
                             int64_t gradient_walkers) {
  if (!std::isfinite(st.log_sum)) return false;
  if (batch_ess > 0)
    return st.ess * static_cast<double>(gradient_walkers) < batch_ess * static_cast<double>(walkers);
  return should_resample(st, walkers, rule);
}

}  // namespace jebm
