// DivergenceGuard (see divergence_guard.hpp). Tested by tests/test_image_ebm.cpp and tests/test_cifar10.cpp.
#include "experiments/divergence_guard.hpp"

#include <cmath>
#include <sstream>

#include "runtime/ops.hpp"

namespace jebm {

namespace {

std::string fmt(double v) {
  std::ostringstream os;
  os.precision(17);
  os << v;
  return os.str();
}

}  // namespace

DivergenceGuard::DivergenceGuard(const std::vector<ag::Var>& params, const Optimizer& opt,
                                 const WalkerPopulation& pop, bool weighted)
    : params_(params), opt_(opt), pop_(pop), weighted_(weighted) {}

bool DivergenceGuard::fail(const std::string& why) {
  if (reason_.empty()) reason_ = why;
  return false;
}

bool DivergenceGuard::check_energies(const Tensor& u, const std::string& where) {
  double bad = 0.0;
  if (const int64_t i = first_non_finite(u, &bad); i >= 0)
    return fail(where + ": non-finite energy " + fmt(bad) + " of walker " + std::to_string(i));
  return !diverged();
}

bool DivergenceGuard::check_grad_norm(double grad_norm) {
  if (!std::isfinite(grad_norm)) return fail("non-finite parameter gradient (norm " + fmt(grad_norm) + ")");
  return !diverged();
}

bool DivergenceGuard::check_parameters_and_optimizer() {
  double bad = 0.0;
  for (size_t k = 0; k < params_.size(); ++k)
    if (const int64_t i = first_non_finite(params_[k].value(), &bad); i >= 0)
      return fail("non-finite parameter after the optimiser step (parameter " + std::to_string(k) + ", entry " +
                  std::to_string(i) + " = " + fmt(bad) + ")");
  for (const auto& [name, t] : opt_.state_tensors())
    if (const int64_t i = first_non_finite(t, &bad); i >= 0)
      return fail("non-finite optimiser state after the optimiser step (" + name + ", entry " + std::to_string(i) +
                  " = " + fmt(bad) + ")");
  return !diverged();
}

bool DivergenceGuard::check_log_weights() {
  if (!weighted_) return !diverged();
  double bad = 0.0;
  // A -inf entry is a divergence too: when every walker gets one, the weights are undefined.
  if (const int64_t i = first_non_finite(pop_.log_w, &bad); i >= 0)
    return fail("non-finite log-weight " + fmt(bad) + " of walker " + std::to_string(i));
  return !diverged();
}

bool DivergenceGuard::check_update(const TrainerStepInfo& info) {
  if (!(std::isfinite(info.data_energy) && std::isfinite(info.loss)))
    fail("non-finite energy (mean data energy " + fmt(info.data_energy) + ", surrogate loss " + fmt(info.loss) + ")");
  check_log_weights();
  if (const int64_t i = first_non_finite(pop_.x); i >= 0)
    fail("non-finite walker position (walker " + std::to_string(i / pop_.walker_numel()) + ")");
  return !diverged();
}

bool DivergenceGuard::explains_failure() {
  if (diverged()) return true;
  check_parameters_and_optimizer();
  check_log_weights();
  if (const int64_t i = first_non_finite(pop_.x); i >= 0)
    fail("non-finite walker position (walker " + std::to_string(i / pop_.walker_numel()) + ")");
  return diverged();
}

}  // namespace jebm
