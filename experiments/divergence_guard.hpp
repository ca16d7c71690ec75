// DivergenceGuard: the image runs' NaN/inf guard. It checks the energies of every burn-in
// step, and after every update the parameter gradient's norm, the parameters AND the optimiser state just after
// the optimiser step, the energies and loss, the log-weights (a -inf maximum is a divergence, not an internal
// error) and the walker positions. The loop stops on the first finding with the guard's message and exit code 3,
// and writes no checkpoint after it, so the last good one stays. Tested by tests/test_image_ebm.cpp and
// tests/test_cifar10.cpp (injected NaN energies; --lr 1e39 overflowing the parameters).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "autograd/variable.hpp"
#include "models/optim.hpp"
#include "samplers/trainer.hpp"
#include "samplers/walkers.hpp"

namespace jebm {

class DivergenceGuard {
 public:
  // weighted: the walkers carry Jarzynski log-weights (PCD's stay 0 and are not checked).
  DivergenceGuard(const std::vector<ag::Var>& params, const Optimizer& opt, const WalkerPopulation& pop,
                  bool weighted);

  // Forgets the last finding (at the start of each update).
  void clear() { reason_.clear(); }
  bool diverged() const { return !reason_.empty(); }
  const std::string& reason() const { return reason_; }

  // Each check records the first problem it finds (later ones keep the first) and returns !diverged().
  bool check_energies(const Tensor& u, const std::string& where);  // burn-in: U of every walker
  bool check_grad_norm(double grad_norm);  // before the optimiser step: a non-finite norm skips the step
  bool check_parameters_and_optimizer();   // just after the optimiser step
  bool check_log_weights();
  // After Trainer::step: the data energy and the loss, then the log-weights and the walker positions.
  bool check_update(const TrainerStepInfo& info);
  // When Trainer::step threw: whether the run's state explains it as a divergence (non-finite parameters,
  // log-weights or positions); a throw with a healthy state is a real error for the caller to rethrow.
  bool explains_failure();

 private:
  bool fail(const std::string& why);

  const std::vector<ag::Var>& params_;
  const Optimizer& opt_;
  const WalkerPopulation& pop_;
  bool weighted_;
  std::string reason_;
};

}  // namespace jebm
