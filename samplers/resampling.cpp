// The resampling rule, ancestor draws and applying them to a population: the dispatch point (validation here,
// kernels in samplers/{cpu,cuda}/weights). Tested by tests/test_samplers.cpp (systematic counts within 1 of N w_i,
// multinomial unbiased over repeats) and tests/test_cuda_samplers.cpp (identical ancestors on the device).
#include "samplers/resampling.hpp"

#include <algorithm>
#include <cmath>
#include <string>

#include "runtime/ops.hpp"
#include "runtime/philox.hpp"
#include "runtime/user_error.hpp"
#include "samplers/backend.hpp"
#include "samplers/cpu/weights.hpp"

namespace jebm {

ResampleScheme resample_scheme_from_name(const std::string& name) {
  if (name == "systematic") return ResampleScheme::Systematic;
  if (name == "multinomial") return ResampleScheme::Multinomial;
  JEBM_USER_FAIL("unknown resampling scheme '" << name << "' (expected systematic or multinomial)");
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

std::vector<double> cumulative(const std::vector<double>& w) {
  JEBM_CHECK(!w.empty(), "resampling: no weights");
  std::vector<double> c(w.size());
  cpu::cumulative_weights(w.data(), static_cast<int64_t>(w.size()), c.data());
  return c;
}

void check_weights(const Tensor& w, const char* what) {
  JEBM_CHECK(w.defined() && w.dtype() == DType::Float64 && w.dim() == 1 && w.numel() > 0,
             what << ": weights must be a non-empty [N] float64 tensor, got "
                  << (w.defined() ? shape_str(w.shape()) + " " + dtype_name(w.dtype()) : std::string("undefined")));
}

// The systematic draw's uniform: a stream no walker index reaches, so it is independent of multinomial draws.
double systematic_uniform(uint64_t seed, uint64_t offset) {
  double u0, u1;
  philox_uniform2(seed, ~uint64_t{0}, offset, &u0, &u1);
  return u0;
}

}  // namespace

std::vector<int64_t> systematic_ancestors(const std::vector<double>& w, double u) {
  JEBM_CHECK(u >= 0.0 && u < 1.0, "systematic_ancestors: u = " << u << " not in [0, 1)");
  const std::vector<double> c = cumulative(w);
  std::vector<int64_t> anc(w.size());
  cpu::systematic_ancestors(c.data(), static_cast<int64_t>(c.size()), u, anc.data());
  return anc;
}

std::vector<int64_t> multinomial_ancestors(const std::vector<double>& w, uint64_t seed, uint64_t offset) {
  const std::vector<double> c = cumulative(w);
  std::vector<int64_t> anc(w.size());
  cpu::multinomial_ancestors(c.data(), static_cast<int64_t>(c.size()), seed, offset, anc.data());
  return anc;
}

std::vector<int64_t> draw_ancestors(const std::vector<double>& w, ResampleScheme scheme, uint64_t seed,
                                    uint64_t offset) {
  if (scheme == ResampleScheme::Multinomial) return multinomial_ancestors(w, seed, offset);
  return systematic_ancestors(w, systematic_uniform(seed, offset));
}

Tensor cumulative_weights(const Tensor& w) {
  check_weights(w, "cumulative_weights");
  Tensor c = Tensor::empty({w.numel()}, DType::Float64, w.device());
  JEBM_DISPATCH(w.device(), cumulative_weights, w, c);
  return c;
}

Tensor systematic_ancestors(const Tensor& w, double u) {
  JEBM_CHECK(u >= 0.0 && u < 1.0, "systematic_ancestors: u = " << u << " not in [0, 1)");
  const Tensor c = cumulative_weights(w);
  Tensor anc = Tensor::empty({w.numel()}, DType::Int64, w.device());
  JEBM_DISPATCH(w.device(), systematic_ancestors, c, u, anc);
  return anc;
}

Tensor multinomial_ancestors(const Tensor& w, uint64_t seed, uint64_t offset) {
  const Tensor c = cumulative_weights(w);
  Tensor anc = Tensor::empty({w.numel()}, DType::Int64, w.device());
  JEBM_DISPATCH(w.device(), multinomial_ancestors, c, seed, offset, anc);
  return anc;
}

Tensor draw_ancestors(const Tensor& w, ResampleScheme scheme, uint64_t seed, uint64_t offset) {
  if (scheme == ResampleScheme::Multinomial) return multinomial_ancestors(w, seed, offset);
  return systematic_ancestors(w, systematic_uniform(seed, offset));
}

Tensor population_ancestors(const WalkerPopulation& pop, ResampleScheme scheme) {
  return draw_ancestors(normalized_weights(pop.log_w), scheme, pop.seed ^ kResampleKey,
                        static_cast<uint64_t>(pop.resamplings));
}

std::vector<int64_t> draw_population_ancestors(const WalkerPopulation& pop, ResampleScheme scheme) {
  return population_ancestors(pop, scheme).host_vector<int64_t>();
}

void resample_population(WalkerPopulation& pop, const Tensor& ancestors) {
  JEBM_CHECK(ancestors.defined() && ancestors.dtype() == DType::Int64 && ancestors.numel() == pop.size() &&
                 ancestors.device() == pop.x.device(),
             "resample_population: ancestors must be " << pop.size() << " int64 on " << pop.x.device().str()
                                                      << ", got "
                                                      << (ancestors.defined()
                                                              ? shape_str(ancestors.shape()) + " " +
                                                                    dtype_name(ancestors.dtype()) + " on " +
                                                                    ancestors.device().str()
                                                              : std::string("undefined")));
  JEBM_CHECK(!pop.any_pending(), "resample_population: walkers have pending moves; complete them first or use "
                                 "resample_and_redo_move");
  pop.fold_weights_into_offset();
  pop.x = gather_rows(pop.x, ancestors);
  // Nothing is pending, so x_prev only needs to be a valid buffer of the same shape: keep it equal to x.
  pop.x_prev = pop.x.clone();
  ++pop.resamplings;
}

void resample_population(WalkerPopulation& pop, const std::vector<int64_t>& ancestors) {
  JEBM_CHECK(static_cast<int64_t>(ancestors.size()) == pop.size(),
             "resample_population: " << ancestors.size() << " ancestors for " << pop.size() << " walkers");
  resample_population(pop, Tensor::from_vector(ancestors, {pop.size()}, pop.x.device()));
}

}  // namespace jebm
