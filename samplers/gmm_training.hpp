// GmmTrainer: Algorithm 1 (docs/method.md) on the Gaussian mixture's closed forms, one fused walker pass + one data
// pass per parameter update, on the CPU or with walkers and data on a CUDA device; or the same iteration through
// the generic Trainer/autograd path (GmmConfig::autograd). Besides the training walkers' running log Z estimate it
// reports the first-order correction of its drift and, optionally, held-out walkers' estimate (docs/method.md).
// How it maps onto Trainer's step (samplers/trainer.hpp): complete, estimate and move are ONE pass over every walker
// (gmm_walker_pass: the closed forms give grad_theta U without autograd, every walker moves every update); resample
// redoes that pass's move from the resampled pre-move state; update is plain gradient descent on theta.
// Tested by tests/test_gmm.cpp (fast path == autograd path, thread-count invariance, held-out walkers leave the
// trajectory bit-identical, corrected and held-out estimates track the exact log Z) and tests/test_cuda_gmm.cpp.
#pragma once
#include <cstdint>
#include <memory>
#include <vector>

#include "runtime/comm/communicator.hpp"
#include "samplers/contrastive.hpp"
#include "samplers/distributed.hpp"
#include "samplers/gmm_step.hpp"
#include "samplers/gmm_setup.hpp"
#include "samplers/holdout.hpp"
#include "samplers/log_z_correction.hpp"
#include "samplers/population_io.hpp"
#include "samplers/ula_jarzynski.hpp"
#include "samplers/walkers.hpp"

namespace jebm {

// Per logged iteration of one algorithm; the estimates refer to theta_k, the parameters before the update.
// The Jarzynski fields are NaN for PCD and CD; the held-out ones NaN without held-out walkers.
struct GmmRecord {
  int64_t iteration = 0;
  double exact_ce = 0.0, log_z_exact = 0.0, ess = 0.0;
  // The training walkers' estimate with the first-order correction of its drift from the covariance of
  // consecutive gradient estimates (the reported one), the uncorrected estimate, the correction
  // log_z_estimate - log_z_estimate_raw, and the cruder correction from the variance of each gradient estimate
  // (docs/method.md). Corrections are NaN on the autograd path (no per-walker gradients) and the lag one on
  // CUDA (not implemented there yet).
  double jarzynski_ce = 0.0, log_z_estimate = 0.0;
  double jarzynski_ce_raw = 0.0, log_z_estimate_raw = 0.0, log_z_correction = 0.0;
  double jarzynski_ce_var = 0.0, log_z_correction_var = 0.0;
  // Held-out walkers: log of the mean of the blocks' Z estimates, its standard error (from the spread of the
  // independent blocks, delta method), and the smallest block ESS.
  double holdout_ce = 0.0, holdout_log_z = 0.0, holdout_se = 0.0, holdout_ess = 0.0;
  int64_t holdout_resamplings = 0;
  std::vector<double> weights, mean_errors;
  int64_t resamplings = 0;
  bool resampled = false;
};

// Sharding: the closed-form CPU path always runs as shards over a communicator (comm, or a
// single-process one when null): this rank holds the walkers [o, o + n) and the data rows of chunk_shard's split
// (whole blocks of kGmmWalkerChunk walkers and kGmmRowChunk data rows), computes its chunks' sums, and every rank
// combines all chunks in global order. Parameters, records and the log Z offset are the same on every rank and
// bit for bit those of one process, whatever the rank count (tests/test_gmm_ranks.cpp, CTest at np 1, 2, 3).
// Held-out blocks are split over the ranks (contiguous ranges of blocks; their estimates are gathered in block
// order). The autograd and CUDA paths run on one rank only.
class GmmTrainer {
 public:
  GmmTrainer(const GmmConfig& c, Algorithm algo, const Tensor& data, const GmmParams& teacher,
             Communicator* comm = nullptr);
  ~GmmTrainer();
  // One parameter update (Algorithm 1). Returns the record of theta_k (before the update).
  GmmRecord iterate();
  // After the last update: completes the pending move at the final theta and returns its record.
  GmmRecord final_record();
  const GmmParams& params() const { return theta_; }
  const WalkerPopulation& walkers() const { return pop_; }  // this rank's shard (all walkers on one rank)
  const std::vector<WalkerPopulation>& holdout_walkers() const { return holdout_; }  // this rank's blocks
  int64_t iteration() const { return k_; }

  // Checkpoints (collective when sharded): everything the next iterate() depends on, with the whole population
  // (training walkers, the lag state of the CE correction, every held-out block) gathered from the ranks, so that a
  // run saved on K ranks resumes on any number, bit for bit (load_state keeps this rank's shard). save_state fills
  // `tensors`/`metadata` on every rank (rank 0 writes them); load_state reads a file every rank can open into a
  // trainer built with the same config. Not for the autograd path.
  void save_state(CheckpointTensors& tensors, CheckpointMetadata& metadata);
  void load_state(const SafeTensors& st);

 private:
  void start_holdout_blocks(uint64_t seed, const Communicator& comm);  // this rank's held-out blocks
  void start_autograd();  // GmmConfig::autograd: the generic Trainer on the mixture's energy
  GmmRecord record(double data_u, const WeightStats* st, const HoldoutEstimate* ho) const;
  void update_params(const std::vector<double>& ga, const std::vector<double>& gz);
  double lr_weighted_sum(const std::vector<double>& per_param) const;
  GmmRecord iterate_fast();
  GmmRecord iterate_autograd();
  // The held-out blocks at theta: complete, estimate, resample by the rule, move (advance = true), or only
  // complete and estimate (the final record).
  HoldoutEstimate holdout_pass(bool advance);
  // mean_data U(theta) and, with ga/gz, mean_data grad_theta U: over the whole data set, from this rank's rows.
  double data_term(double* ga, double* gz) const;
  // The walkers' weight statistics (all ranks' walkers).
  WeightStats walker_stats() const;

  GmmConfig c_;
  Algorithm algo_;
  std::unique_ptr<Communicator> own_comm_;  // the single-process communicator when none is given
  bool sharded_ = false;                    // the closed-form CPU path: walkers and data as shards
  WalkerShards shards_;                     // this rank's walkers
  ShardLayout data_layout_;                 // this rank's data rows
  Tensor data_;
  GmmParams teacher_, theta_;
  WalkerPopulation pop_;
  UlaConfig ula_;
  int64_t k_ = 0;
  // Sums of the per-update corrections so far (docs/method.md): from the lag covariance (the term of update
  // k is known after the pass at theta_{k+1}) and from the variance; the last update's variance term.
  LogZCorrection correction_lag_, correction_var_;
  bool lag_available_ = true;  // false once a pass could not give the lag covariance (CUDA)
  GmmGradientLag lag_;
  Tensor u_, g_;                   // walkers' U [N], grad_x U [N, D]: scratch for resampling and the final completion
  std::vector<WalkerPopulation> holdout_;  // this rank's held-out blocks: [holdout_first_, + size) of all
  int64_t holdout_first_ = 0;
  bool has_holdout_ = false;
  Tensor hu_, hg_;                 // the same scratch for one held-out block
  struct AutogradState;
  std::unique_ptr<AutogradState> ag_;
};

}  // namespace jebm
