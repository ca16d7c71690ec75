// The Gaussian-mixture fast path of `jebm gmm`: ONE pass over the walkers per iteration that evaluates the
// closed forms (U, grad_x U, responsibilities) at (theta_k, X_k), completes the pending Jarzynski increment,
// makes the next ULA move (the per-walker kernel of samplers/ula_jarzynski.hpp) and accumulates the weighted
// parameter gradient sum_i w_i grad_theta U(X_k^i) with an online (chunk-local, max-shifted) softmax, so that
// grad_x U never goes to memory. Tested by tests/test_gmm.cpp (equals the generic kernel + closed forms and
// the Trainer/autograd path).
#pragma once
#include <vector>

#include "models/gaussian_mixture.hpp"
#include "samplers/ula_jarzynski.hpp"
#include "samplers/walkers.hpp"

namespace jebm {

struct GmmWalkerPass {
  WeightStats stats;          // of the completed log-weights A_k (all walkers)
  std::vector<double> grad_a;  // [K*D]: sum_i w_i dU/da (X_k^i), w = softmax(A_k) (uniform when not weighted)
  std::vector<double> grad_z;  // [K]
};

// Every walker: evaluate at (theta, pop.x), complete (cfg.weighted), move. Float64 walkers [N, D] only.
// Deterministic: fixed chunks of walkers, partial sums combined in chunk order.
GmmWalkerPass gmm_walker_pass(const GmmParams& theta, WalkerPopulation& pop, const UlaConfig& cfg);

}  // namespace jebm
