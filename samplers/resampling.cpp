// Systematic and multinomial resampling, the ESS/CV trigger and its effect on the log Z offset.
// Tested by tests/test_samplers.cpp (systematic counts within 1 of N w_i, multinomial unbiased over repeats).
#include "samplers/resampling.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "runtime/philox.hpp"

namespace jebm {

ResampleScheme resample_scheme_from_name(const std::string& name) {
  if (name == "systematic") return ResampleScheme::Systematic;
  if (name == "multinomial") return ResampleScheme::Multinomial;
  JEBM_FAIL("unknown resampling scheme '" << name << "' (expected systematic or multinomial)");
}

const char* resample_scheme_name(ResampleScheme s) {
  return s == ResampleScheme::Systematic ? "systematic" : "multinomial";
}

bool should_resample(const WeightStats& s, int64_t n, const ResampleRule& rule) {
  if (rule.cv2_max > 0.0) return s.cv2 > rule.cv2_max;
  if (rule.ess_fraction > 0.0) return s.ess < rule.ess_fraction * static_cast<double>(n);
  return false;
}

namespace {
// Inclusive prefix sums in double, the last forced to exactly 1 so that every search point lands in range.
std::vector<double> cumulative(const std::vector<double>& w) {
  JEBM_CHECK(!w.empty(), "resampling: no weights");
  std::vector<double> c(w.size());
  double s = 0.0;
  for (size_t i = 0; i < w.size(); ++i) {
    JEBM_CHECK(w[i] >= 0.0 && std::isfinite(w[i]), "resampling: weight " << i << " is " << w[i]);
    s += w[i];
    c[i] = s;
  }
  JEBM_CHECK(std::fabs(s - 1.0) < 1e-8, "resampling: weights sum to " << s << ", expected 1");
  for (double& v : c) v /= s;
  c.back() = 1.0;
  return c;
}
}  // namespace

std::vector<int64_t> systematic_ancestors(const std::vector<double>& w, double u) {
  JEBM_CHECK(u >= 0.0 && u < 1.0, "systematic_ancestors: u = " << u << " not in [0, 1)");
  const std::vector<double> c = cumulative(w);
  const size_t n = w.size();
  std::vector<int64_t> anc(n);
  size_t j = 0;
  for (size_t i = 0; i < n; ++i) {
    const double p = (static_cast<double>(i) + u) / static_cast<double>(n);
    while (j + 1 < n && c[j] <= p) ++j;  // first j with c[j] > p; points increase, so j only moves forward
    anc[i] = static_cast<int64_t>(j);
  }
  return anc;
}

std::vector<int64_t> multinomial_ancestors(const std::vector<double>& w, uint64_t seed, uint64_t offset) {
  const std::vector<double> c = cumulative(w);
  const size_t n = w.size();
  std::vector<int64_t> anc(n);
  for (size_t i = 0; i < n; ++i) {
    double u0, u1;
    philox_uniform2(seed, i, offset, &u0, &u1);
    const size_t j = static_cast<size_t>(std::upper_bound(c.begin(), c.end(), u0) - c.begin());
    anc[i] = static_cast<int64_t>(std::min(j, n - 1));
  }
  return anc;
}

std::vector<int64_t> draw_ancestors(const std::vector<double>& w, ResampleScheme scheme, uint64_t seed,
                                    uint64_t offset) {
  if (scheme == ResampleScheme::Multinomial) return multinomial_ancestors(w, seed, offset);
  double u0, u1;
  // A stream no walker index reaches, so the systematic offset is independent of multinomial draws.
  philox_uniform2(seed, ~uint64_t{0}, offset, &u0, &u1);
  return systematic_ancestors(w, u0);
}

std::vector<int64_t> draw_population_ancestors(const WalkerPopulation& pop, ResampleScheme scheme) {
  return draw_ancestors(pop.weights(), scheme, pop.seed ^ kResampleKey, static_cast<uint64_t>(pop.resamplings));
}

void resample_population(WalkerPopulation& pop, const std::vector<int64_t>& ancestors) {
  JEBM_CHECK(static_cast<int64_t>(ancestors.size()) == pop.size(),
             "resample_population: " << ancestors.size() << " ancestors for " << pop.size() << " walkers");
  JEBM_CHECK(!pop.any_pending(), "resample_population: walkers have pending moves; complete them first or use "
                                 "resample_and_redo_move");
  pop.fold_weights_into_offset();
  gather_rows_into(pop.x_prev, pop.x, ancestors);
  std::swap(pop.x, pop.x_prev);
  // Nothing is pending, so x_prev only needs to be a valid buffer of the same shape: keep it equal to x.
  std::memcpy(pop.x_prev.raw_data(), pop.x.raw_data(), pop.x.nbytes());
  ++pop.resamplings;
}

}  // namespace jebm
