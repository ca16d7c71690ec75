// LogZCorrection: the running first-order correction of the training walkers' log Z estimate, as both trainers
// keep it: the sum of every update's drift term so far and the last term (docs/method.md). Each trainer
// computes its terms its own way: Trainer from batch means over groups of the gradient walkers
// (TrainerOptions::correction_groups), GmmTrainer from the closed-form covariance of consecutive gradient estimates
// (and, cruder, the variance of each). Tested by tests/test_trainer_logz.cpp and tests/test_gmm_training.cpp.
#pragma once

namespace jebm {

struct LogZCorrection {
  double sum = 0.0;   // of the terms so far
  double last = 0.0;  // the last update's term
  void add(double term) {
    last = term;
    sum += term;
  }
  double corrected(double log_z) const { return log_z + sum; }
};

}  // namespace jebm
