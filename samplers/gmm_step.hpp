// The Gaussian-mixture fast path of `jebm gmm`: ONE pass over the walkers per iteration that evaluates the
// closed forms (U, grad_x U, responsibilities) at (theta_k, X_k), completes the pending Jarzynski increment,
// makes the next ULA move (the per-walker kernel of samplers/ula_jarzynski.hpp) and accumulates the weighted
// parameter gradient sum_i w_i grad_theta U(X_k^i) and its variance with an online (chunk-local, max-shifted)
// softmax, so that grad_x U never goes to memory. On CUDA the same results come from the unfused sequence
// of device-transparent calls (walker_pass_unfused in samplers/gmm_step.cpp). Tested by tests/test_gmm.cpp
// (equals the generic kernel + closed forms and the Trainer/autograd path; variance against the two-pass one)
// and tests/test_cuda_gmm.cpp.
#pragma once
#include <vector>

#include "models/gaussian_mixture.hpp"
#include "samplers/distributed.hpp"
#include "samplers/resampling.hpp"
#include "samplers/ula_jarzynski.hpp"
#include "samplers/walkers.hpp"

namespace jebm {

struct GmmWalkerPass {
  WeightStats stats;           // of the completed log-weights A_k (all walkers)
  // With the gradient (else empty):
  std::vector<double> grad_a;  // [K*D]: g_hat = sum_i w_i dU/da (X_k^i), w = softmax(A_k) (uniform when not weighted)
  std::vector<double> grad_z;  // [K]
  // With the gradient and weighted walkers (else empty): the variance of g_hat as a self-normalised
  // importance-sampling estimate, sum_i w_i^2 (dU/dtheta_p(X_k^i) - g_hat_p)^2 (gmm_param_grad_variance).
  std::vector<double> var_a;   // [K*D]
  std::vector<double> var_z;   // [K]
  // With a GmmGradientLag that holds the previous pass (else empty): [K*D | K], the covariance of the previous
  // and this pass's gradient estimates, sum_i w_prev,i w_i (f_prev,i - g_prev)(f_i - g) (docs/method.md).
  std::vector<double> lag_cov;
};

// What a pass leaves for the next one to estimate the covariance of consecutive gradient estimates: theta,
// g_hat, the normalised weights and the responsibilities at X_k. The next pass reads X_k from pop.x_prev.
struct GmmGradientLag {
  GmmParams theta;
  std::vector<double> grad;  // [K*D | K]
  std::vector<double> w;     // [N]
  std::vector<double> r;     // [N, K]
  // Walkers on a CUDA device: w and r stay there (float64 [N] and [N, K]; the vectors above are then empty), so that
  // a pass copies no walker data to the host. host_weights / host_responsibilities read them wherever they are.
  Tensor w_dev, r_dev;
  bool valid = false;
  std::vector<double> host_weights() const { return w_dev.defined() ? w_dev.to_vector() : w; }
  std::vector<double> host_responsibilities() const { return r_dev.defined() ? r_dev.to_vector() : r; }
};

// Every walker: evaluate at (theta, pop.x), complete (cfg.weighted), move; X_k is in pop.x_prev afterwards.
// cfg.weight_kernel must be WeightKernel::Consistent (refused otherwise): the pass computes that kernel only.
// with_gradient = false gives the weight statistics only (held-out walkers that never enter the gradient).
// lag (weighted walkers with the gradient only): reads the previous pass's state to fill lag_cov, and is
// updated for the next pass. Float64 walkers [N, D], on either device (on CUDA the lag state and sums stay there).
// CPU: deterministic (fixed chunks of walkers, partial sums combined in chunk order).
// shards: the population is this rank's shard (CPU only; its first_index a multiple of kGmmWalkerChunk, as
// chunk_shard gives): the statistics and gradients are those of the whole population, bit for bit what one
// process computes, because the pass's sums are per chunk of kGmmWalkerChunk walkers and every rank combines all
// chunks in global order (one allgatherv of the chunks' sums per pass).
constexpr int64_t kGmmWalkerChunk = 64;
GmmWalkerPass gmm_walker_pass(const GmmParams& theta, WalkerPopulation& pop, const UlaConfig& cfg,
                              bool with_gradient = true, GmmGradientLag* lag = nullptr,
                              const WalkerShards* shards = nullptr);

// After gmm_walker_pass moved every walker: resample the pre-move state by the population's own ancestor draw
// and redo the move (resample_and_redo_move). u [N], g [N, D]: scratch on the population's device, filled here
// with U, grad_x U at X_k. lag: its per-walker state follows the ancestors.
// shards: the global draw of samplers/distributed.hpp (the ancestors' rows travel between ranks).
void gmm_resample_and_redo(const GmmParams& theta, WalkerPopulation& pop, ResampleScheme scheme,
                           const UlaConfig& cfg, Tensor& u, Tensor& g, GmmGradientLag* lag = nullptr,
                           const WalkerShards* shards = nullptr);

// Completes every pending move under theta (the last update's increment); u, g as above.
void gmm_complete_pending(const GmmParams& theta, WalkerPopulation& pop, const UlaConfig& cfg, Tensor& u, Tensor& g);

}  // namespace jebm
