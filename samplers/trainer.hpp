// Trainer: Algorithm 1 and its image variant (docs/method.md) for ANY energy Module through autograd:
// Jarzynski-weighted walkers, or the PCD / CD-k baselines, with mini-batch moves, gradient walkers, the
// surrogate loss and resampling. The optimizer and the data are callbacks; step() returns the update's scalars.
// Optional: a held-out walker population and a first-order correction of the running log Z estimate
// (docs/method.md). How rows are evaluated and moved (one pass, chunks, blocks shared over ranks) is
// samplers/row_evaluator.hpp's business. Tested by tests/test_samplers.cpp (a Gaussian target), tests/test_gmm.cpp
// (agrees with the closed-form GMM path), tests/test_trainer_logz.cpp (held-out walkers, corrected log Z) and
// tests/test_trainer_fixture.cpp (an earlier release's checkpoint resumes).
//
// One step (= one parameter update) with the Jarzynski algorithm:
//  1. Complete: walkers whose last move is pending get U, grad_x U at their new positions under the current
//     theta (one forward+backward over them) and their weight increment (moved under the previous theta,
//     completed under this one: the paper's combined formula). Walkers that did not move get the parameter-
//     change increment A += U_old(X) - U_theta(X) (one forward, no backward; skipped when all walkers moved).
//  2. Gradient estimate: the surrogate loss mean_b U(x_b) - sum_i w_i U(X_i) + alpha (mean_b U(x_b)^2 +
//     sum_i w_i U(X_i)^2) over the data batch and the gradient walkers (all, or a random subset with weights
//     renormalised within it), backward into the parameters' .grad(). The weights depend on grad_x U, so this
//     is a second forward+backward over the gradient walkers; the closed-form GMM path avoids it.
//  3. Resample (all walkers; none is pending now) when the rule fires.
//  4. Moves at the current theta: the moving walkers (all, or a fresh random subset) make `moves_per_update`
//     fused ULA moves; the first reuses grad_x U from step 1 when the moving set is all walkers, each later one
//     is one forward+backward. The last move stays pending and is completed in the next step's part 1.
//  5. optimizer_step() (the caller's: plain GD, Adam + clipping, ...).
// Held-out walkers (set_holdout) take parts 1, 3 and 4 alongside the training walkers, under the same theta_k,
// with their own noise and subset streams, and never enter part 2.
// PCD: the same loop with equal weights, no completion and no resampling. CD-k: also restarts the walkers
// (restart_walkers callback) before every k-th update.
//
// Devices: the energy's parameters, the population and the data batches must share one device. On CUDA every
// per-walker operation (subset gather/scatter, completion, parameter-change increment, weights, ESS, surrogate
// loss weights, resampling, the cached energies) stays on the device; the random subsets are drawn on the host
// (indices only) and uploaded, and only scalars come back (ESS, log Z, loss, batch ESS). The CPU path is the
// reference (tests/test_cuda_trainer.cpp compares the two).
#pragma once
#include <cstdint>
#include <functional>
#include <limits>
#include <vector>

#include "models/module.hpp"
#include "runtime/comm/communicator.hpp"
#include "samplers/contrastive.hpp"
#include "samplers/log_z_correction.hpp"
#include "samplers/resampling.hpp"
#include "samplers/row_evaluator.hpp"
#include "samplers/ula_jarzynski.hpp"
#include "samplers/walker_track.hpp"
#include "samplers/walkers.hpp"

namespace jebm {

struct TrainerOptions {
  Algorithm algorithm = Algorithm::Jarzynski;
  UlaConfig ula;                 // h, sigma, drift clip (weighted is set from the algorithm)
  int64_t moves_per_update = 1;  // ULA moves of the moving walkers per parameter update
  int64_t moving_batch = 0;      // 0: every walker moves each update; else a random subset of this size
  // Fresh random moving subsets per update, each making moves_per_update moves in turn (the official MNIST code:
  // 6 subsets of 256 walkers x 30 moves). Subsets may overlap: a walker still pending from an earlier subset has
  // its move completed by the next one's first move (same theta). Needs moving_batch > 0 when above 1.
  int64_t moving_subsets = 1;
  int64_t gradient_batch = 0;    // 0: all walkers enter the loss; else a random subset (weights renormalised)
  // The official CIFAR-10 code: the loss uses the walkers whose moves part 1 just completed (the last step's
  // moving walkers), weights renormalised within them, instead of a fresh random subset. Falls back to
  // gradient_batch when nothing was pending (the first step) or when every walker moved.
  bool gradient_walkers_moved = false;
  double alpha = 0.0;            // weight of the squared-energy regulariser of the surrogate loss
  bool resample = true;          // Jarzynski only
  ResampleRule resample_rule;
  // > 0: resample when the ESS of the gradient walkers' renormalised weights (TrainerStepInfo::batch_ess, a
  // count) is below this, instead of resample_rule's trigger on all walkers (the official CIFAR-10 code: 64).
  double resample_batch_ess = 0.0;
  // > 0: after each resampling, every walker makes this many warm ULA moves (noise sqrt(2h), whatever ula.sigma
  // is) at the current theta, completed before the step's own moves. At sigma = sqrt(2h) the two weight kernels
  // are the same formula, so these moves are weighted exactly whatever ula.weight_kernel is; they spread the
  // copies that resampling made, which a cold chain barely separates (resample-move, Gilks & Berzuini 2001).
  // With WeightKernel::Tempered they are moves of the run's own noise: those are exact-temperature moves for its
  // target exp(-U / T), and a warm move would not leave that target invariant.
  int64_t rejuvenation_moves = 0;
  int64_t cd_k = 1;              // CD-k restart period
  // > 0: forward/backward over the walkers in pieces of this many rows; 0: RowEvaluator::kCpuPiece rows on the CPU
  // (in parallel over the threads), all rows at once on a GPU. float32 results can differ in the last bits with
  // the piece size, not with the thread count.
  int64_t eval_chunk = 0;
  // > 0: evaluation blocks. Every forward/backward over rows (walkers, data) runs in blocks of this
  // many rows, and the loss's parameter gradient is the sum of the blocks' gradients in block order; with a
  // communicator of K ranks (set_communicator) the blocks are shared out and their results gathered, so each rank
  // does 1/K of the network work while the walkers and the data stay replicated. Moves and their completions stay
  // on the rank that evaluates the rows: each rank moves its own blocks' walkers through a subset's moves, and the
  // walker state is gathered once per subset (not each move's gradients); so do the completions of every walker
  // and the rejuvenation moves (only energies and walker state travel). The trajectory depends on the block
  // size, not on the rank count: bit for bit the same on 1, 2, 3... ranks. 0: one pass (eval_chunk), one rank.
  int64_t shard_block = 0;
  // > 1: the first-order log Z correction of docs/method.md (TrainerStepInfo::log_z_corrected) from batch means over
  // this many random groups of the gradient walkers (Jarzynski only; needs Trainer::step_scale_dot). The walker
  // part of the loss is then backpropagated group by group: the gradient is the same sum in another order, so
  // the trajectory differs from the default's in the last bits. 0: off (today's single backward).
  int64_t correction_groups = 0;
};

struct TrainerStepInfo {
  int64_t iteration = 0;
  double ess = 0.0, cv2 = 0.0;   // of all walkers' weights at the gradient estimate
  double batch_ess = 0.0;        // of the gradient walkers' renormalised weights (their count for PCD)
  double log_z = 0.0;            // Jarzynski estimate of log Z_theta (WalkerPopulation::log_z_estimate)
  double data_energy = 0.0;      // mean_b U(x_b) of the batch
  double loss = 0.0;             // the surrogate loss value
  bool resampled = false;
  bool restarted = false;        // CD restart before this update
  // log_z plus the running first-order correction of the updates so far (NaN when correction_groups is off).
  double log_z_corrected = std::numeric_limits<double>::quiet_NaN();
  // The held-out walkers' log Z estimate and ESS at theta_k (NaN without held-out walkers).
  double holdout_log_z = std::numeric_limits<double>::quiet_NaN();
  double holdout_ess = std::numeric_limits<double>::quiet_NaN();
  bool holdout_resampled = false;
};

class Trainer {
 public:
  Trainer(Module& energy, WalkerPopulation& walkers, TrainerOptions options);

  // Required: the data batch for update `iteration` (same dtype and row shape as the walkers).
  std::function<Tensor(int64_t iteration)> data_batch;
  // Required: apply the gradients in the energy's parameters' .grad() (zeroed by the Trainer before each loss).
  std::function<void(int64_t iteration)> optimizer_step;
  // CD only: put the walkers back on data (e.g. restart_from_data).
  std::function<void(WalkerPopulation& walkers, int64_t iteration)> restart_walkers;
  // Optional: called once the weights at theta_k are complete (after part 1, before the gradient estimate and
  // any resampling), e.g. for weighted metrics of the walkers. info holds iteration, ess, cv2, log_z.
  std::function<void(const WalkerPopulation& walkers, const TrainerStepInfo& info)> weights_ready;
  // Optional: called after every move-kernel call on the walkers idx (empty: all). Whatever it changes in the
  // positions is NOT accounted for in the weights (e.g. the official code's [-1,1] box revert).
  AfterMove after_move;

  // With correction_groups: sum_p D_p C_p for the C tensors (one per energy parameter, in parameters() order;
  // undefined where a parameter got no gradient), D_p the effective per-parameter step of the update just
  // applied by optimizer_step (plain GD: lr; Adam: Adam::step_scale_dot). Called after optimizer_step.
  std::function<double(const std::vector<Tensor>& c)> step_scale_dot;

  // Held-out walkers (null: none): moved, weighted and resampled like the training walkers under the same
  // theta_k sequence, with their own noise (their seed) and subsets, never entering the loss. The moving subset
  // size scales with the population (moving_batch * M / N, at least 1) so each walker moves as often; the
  // caller keeps the population alive and checkpoints it like the training one. after_move applies to them too;
  // CD restarts do not (held-out walkers serve the Jarzynski algorithm). Attach before the first step (or before
  // restore()); must be on the walkers' device and distinct from them.
  void set_holdout(WalkerPopulation* holdout);
  const WalkerPopulation* holdout() const { return hold_.pop; }

  // The ranks that share the evaluation blocks (null: this process alone). Needs shard_block > 0 when it has
  // more than one rank; every rank must hold the same population, parameters and data and make the same calls.
  // device (optional): the same ranks over device buffers (NCCL), which then gathers the walkers' rows in place
  // when they are on a GPU; without it such rows travel through host memory over `comm`.
  void set_communicator(Communicator* comm, Communicator* device = nullptr);

  // Switches resampling on/off between steps (the image experiments enable it after an epoch threshold).
  void set_resample(bool on) { opt_.resample = on; }

  // Everything besides the energy, the optimizer and the populations that the next step() depends on, so a run
  // can be checkpointed between steps and resumed bit-for-bit (restore() into a fresh Trainer on the restored
  // energy and populations): each population's walker track (u_cache on the host) and the running correction.
  struct State {
    int64_t iteration = 0;
    WalkerTrack walkers;  // the training walkers'
    WalkerTrack holdout;  // the held-out walkers' (unused without them)
    double log_z_correction = 0.0;
  };
  State state() const;
  void restore(const State& s);

  TrainerStepInfo step();
  // Part 1 of a step on its own: completes pending moves and gives the other walkers the parameter-change
  // increment, so the weights refer to the current parameters (e.g. to read estimates after the last step).
  // Idempotent; step() calls it first.
  void bring_up_to_date();
  // One unweighted ULA move of every walker of pop (the image runs' burn-in; cfg.weighted must be false), made
  // once `check` has accepted the walkers' energies at their current positions (all N of them, on every rank;
  // false: no move, returns false). after_move applies. With evaluation blocks on several ranks, each rank moves
  // only its own blocks' rows and only the energies are gathered (N doubles, not N gradient rows): call
  // gather_walkers(pop) after the last such move, before anything reads every walker's position.
  bool plain_move(WalkerPopulation& pop, const UlaConfig& cfg, const std::function<bool(const Tensor& u)>& check);
  void gather_walkers(WalkerPopulation& pop) const;
  int64_t iteration() const { return iteration_; }
  const TrainerOptions& options() const { return opt_; }

  // U and grad_x U of the energy at rows of x ([B] float64 energies, gradient shaped like the rows), through
  // one forward+backward (in chunks of eval_chunk rows when set). Public for tests and experiments.
  void energy_and_grad(const Tensor& x, Tensor& u, Tensor& g) const;
  Tensor energy_only(const Tensor& x) const;  // forward only, [B] float64

 private:
  // One population's track and what a step keeps beside it: grad_x U of every walker from part 1 (this rank's rows
  // of them on several ranks), valid when part 1 or the warm moves evaluated every walker.
  struct Track : WalkerTrack {
    WalkerPopulation* pop = nullptr;
    Tensor g_all;
    bool g_all_valid = false;
  };
  // The step's parts, in order.
  void restart_if_due(TrainerStepInfo& info);
  void complete(Track& t);
  void parameter_change(Track& t);
  WeightStats estimate_weights(TrainerStepInfo& info, WeightStats& holdout);
  // moved: the walkers whose moves part 1 just completed (for gradient_walkers_moved; empty: none/all).
  // Returns the number of gradient walkers.
  int64_t surrogate_backward(const Tensor& data, const std::vector<int64_t>& moved, TrainerStepInfo& info);
  // The walker part of the loss group by group (correction_groups); fills c_ (scaled by the gradient walkers'
  // weight mass `mass`).
  void grouped_walker_backward(const Tensor& xs, const Tensor& w, double mass, double& loss);
  bool resample_fires(const WeightStats& st, double batch_ess) const;  // the training walkers' rule
  void resample(Track& t);
  void rejuvenate(Track& t);  // TrainerOptions::rejuvenation_moves, after resample()
  void make_moves(Track& t, int64_t moving_batch);
  void update();

  Module& energy_;
  WalkerPopulation& pop_;
  TrainerOptions opt_;
  RowEvaluator rows_;
  int64_t iteration_ = 0;
  Track train_, hold_;
  std::vector<Tensor> c_;        // this update's C tensors (correction_groups)
  LogZCorrection correction_;   // the running log Z correction (correction_groups)
};

}  // namespace jebm
