// GmmTrainer (samplers/gmm_training.hpp): the Gaussian-mixture training loop, its records, the log Z drift
// correction and the held-out walkers. Tested by tests/test_gmm.cpp and tests/test_cuda_gmm.cpp.
#include "samplers/gmm_training.hpp"

#include <algorithm>
#include <cmath>
#include <limits>

#include "runtime/cuda_api.hpp"
#include "runtime/user_error.hpp"
#include "samplers/gmm_step.hpp"
#include "samplers/trainer.hpp"

namespace jebm {

namespace {
constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
constexpr uint64_t kHoldoutKey = 0x686f6c646f7574ULL;  // "holdout": the held-out blocks' seeds

// Exact samples of the student at theta_0, so that log Z_theta_0 is known and the estimate is absolute: walkers
// [first, first + count) of n (every rank draws all n, once, and keeps its rows).
WalkerPopulation exact_start(const GmmParams& theta, int64_t n, uint64_t seed, int64_t first = 0, int64_t count = -1) {
  if (count < 0) count = n;
  std::vector<double> all(static_cast<size_t>(n * theta.d));
  gmm_sample(theta, n, seed ^ kGmmInitKey, 1, all.data());
  Tensor x0 = Tensor::empty({count, theta.d}, DType::Float64);
  std::copy_n(all.begin() + first * theta.d, count * theta.d, x0.data<double>());
  WalkerPopulation p = WalkerPopulation::create(x0, seed, gmm_log_z(theta));
  p.first_index = first;
  return p;
}
}  // namespace

// --- the autograd path: the same iteration through the generic Trainer ----------------------------------
struct GmmTrainer::AutogradState {
  GaussianMixtureEnergy energy;
  Trainer trainer;
  AutogradState(const GmmParams& p, WalkerPopulation& pop, const TrainerOptions& o)
      : energy(p), trainer(energy, pop, o) {}
};

GmmTrainer::GmmTrainer(const GmmConfig& c, Algorithm algo, const Tensor& data, const GmmParams& teacher,
                       Communicator* comm)
    : c_(c), algo_(algo), data_(data), teacher_(teacher), theta_(gmm_student_init(c)) {
  JEBM_CHECK(c.walkers > 0 && c.data > 0 && c.iterations >= 0, "gmm: --walkers " << c.walkers << ", --data "
                                                                                  << c.data << ", --iterations "
                                                                                  << c.iterations);
  JEBM_CHECK(c.holdout_walkers >= 0 && c.holdout_blocks >= 1 &&
                 (c.holdout_walkers == 0 || (c.holdout_walkers % c.holdout_blocks == 0 &&
                                             c.holdout_walkers / c.holdout_blocks >= 2)),
             "gmm: --holdout-walkers " << c.holdout_walkers << " must be 0 or a multiple of --holdout-blocks "
                                       << c.holdout_blocks << " with at least 2 walkers per block");
  ula_.h = c.h;
  ula_.sigma = c.sigma;
  ula_.drift_clip = c.drift_clip;
  ula_.weighted = algo == Algorithm::Jarzynski;
  lag_available_ = c.ce_correction;
  JEBM_CHECK(data.defined() && data.dim() == 2 && data.size(0) == c.data && data.size(1) == c.dim,
             "gmm: the data set is " << (data.defined() ? shape_str(data.shape()) : std::string("undefined"))
                                     << ", expected [" << c.data << ", " << c.dim << "]");
  if (!comm) {
    own_comm_ = make_single_process_communicator();
    comm = own_comm_.get();
  }
  sharded_ = !c.autograd && c.device.is_cpu();
  JEBM_CHECK(sharded_ || comm->size() == 1, "gmm: " << (c.autograd ? "--autograd" : "--device cuda")
                                                    << " runs on one rank only, not on " << comm->size()
                                                    << " (the closed-form CPU path shards over ranks)");
  Shard mine{0, c.walkers}, rows{0, c.data};
  if (sharded_) {
    mine = chunk_shard(c.walkers, kGmmWalkerChunk, comm->rank(), comm->size(), "walkers");
    rows = chunk_shard(c.data, kGmmRowChunk, comm->rank(), comm->size(), "data points");
    shards_.comm = comm;
    shards_.layout = gather_shard_layout(*comm, mine.offset, mine.count);
    data_layout_ = gather_shard_layout(*comm, rows.offset, rows.count);
  }
  const uint64_t seed = c.seed * 3 + static_cast<uint64_t>(algo);
  if (algo == Algorithm::Jarzynski) {
    pop_ = exact_start(theta_, c.walkers, seed, mine.offset, mine.count);
    start_holdout_blocks(seed, *comm);
  } else {
    // PCD and CD start at data points (the official code).
    pop_ = WalkerPopulation::create(Tensor::empty({mine.count, c.dim}, DType::Float64), seed);
    pop_.first_index = mine.offset;
    restart_from_data(pop_, data_, seed ^ kGmmRestartKey, ~uint64_t{0});
  }
  u_ = Tensor::empty({mine.count}, DType::Float64, c.device);
  g_ = Tensor::empty({mine.count, c.dim}, DType::Float64, c.device);
  if (!holdout_.empty()) {  // scratch for one block
    hu_ = Tensor::empty({holdout_[0].size()}, DType::Float64, c.device);
    hg_ = Tensor::empty({holdout_[0].size(), c.dim}, DType::Float64, c.device);
  }
  if (c.device.is_cuda()) {  // set up on the host, then everything the iterations touch moves to the device
    JEBM_CHECK(!c.autograd, "gmm: --autograd runs on the CPU only (use --device cpu)");
    cuda_api::require("jebm gmm --device cuda");
    pop_ = walkers_to(pop_, c.device);
    for (auto& h : holdout_) h = walkers_to(h, c.device);
    data_ = data_.to(c.device);
  }
  if (c.autograd) start_autograd();
}

void GmmTrainer::start_holdout_blocks(uint64_t seed, const Communicator& comm) {
  // The same start and dynamics as the walkers, independent draws (their own Philox keys). Sharded, the blocks are
  // split over the ranks in contiguous ranges (a rank may hold none). Each block has its own seed, so the rank that
  // holds it draws what one process would.
  const int64_t per_block = c_.holdout_walkers / c_.holdout_blocks;
  const int64_t nb = c_.holdout_walkers > 0 ? c_.holdout_blocks : 0;
  has_holdout_ = nb > 0;
  const std::vector<int64_t> split = split_starts(nb, sharded_ ? comm.size() : 1);
  const size_t r = static_cast<size_t>(sharded_ ? comm.rank() : 0);
  holdout_first_ = split[r];
  for (int64_t b = holdout_first_; b < split[r + 1]; ++b)
    holdout_.push_back(
        exact_start(theta_, per_block, (seed ^ kHoldoutKey) + 0x9e3779b97f4a7c15ULL * static_cast<uint64_t>(b + 1)));
}

void GmmTrainer::start_autograd() {
  TrainerOptions o;
  o.algorithm = algo_;
  o.ula = ula_;
  o.resample = c_.resample;
  o.resample_rule = c_.resample_rule;
  o.cd_k = c_.cd_k;
  ag_ = std::make_unique<AutogradState>(theta_, pop_, o);
  Trainer& t = ag_->trainer;
  t.data_batch = [this](int64_t) { return data_; };
  t.restart_walkers = [this](WalkerPopulation& p, int64_t it) {
    restart_from_data(p, data_, p.seed ^ kGmmRestartKey, static_cast<uint64_t>(it));
  };
  t.optimizer_step = [this](int64_t) {
    const std::vector<double> ga = ag_->energy.means().grad().to_vector();
    const std::vector<double> gz = ag_->energy.z().grad().to_vector();
    update_params(ga, gz);
    ag_->energy.set_params(theta_);
  };
}

GmmTrainer::~GmmTrainer() = default;

void GmmTrainer::update_params(const std::vector<double>& ga, const std::vector<double>& gz) {
  // Plain gradient descent on the cross-entropy (GMM.py: theta += lr * F with F = -grad CE); z_0 stays frozen.
  const double f = algo_ == Algorithm::Cd ? c_.cd_lr_factor : 1.0;
  const double la = f * c_.lr_means * c_.h, lz = f * c_.lr_z * c_.h;
  for (size_t q = 0; q < theta_.a.size(); ++q) theta_.a[q] -= la * ga[q];
  for (size_t j = 1; j < theta_.z.size(); ++j) theta_.z[j] -= lz * gz[j];
}

// The expected drift of the running log Z estimate caused by one update: sum over the parameters that move of
// learning rate x Cov(g_hat_p, g_hat'_p) (docs/method.md); per_param is [K*D | K]. Mirrors update_params
// (the Jarzynski learning rates; z_0 is frozen, so it has no term).
double GmmTrainer::lr_weighted_sum(const std::vector<double>& per_param) const {
  const size_t kd = theta_.a.size();
  double sa = 0.0, sz = 0.0;
  for (size_t q = 0; q < kd; ++q) sa += per_param[q];
  for (size_t j = 1; j < theta_.z.size(); ++j) sz += per_param[kd + j];
  return c_.lr_means * c_.h * sa + c_.lr_z * c_.h * sz;
}

GmmRecord GmmTrainer::record(double data_u, const WeightStats* st, const HoldoutEstimate* ho) const {
  GmmRecord r;
  r.iteration = k_;
  r.log_z_exact = gmm_log_z(theta_);
  r.exact_ce = data_u + r.log_z_exact;
  r.log_z_estimate_raw = st ? pop_.log_z_offset + st->log_mean : kNaN;
  r.jarzynski_ce_raw = data_u + r.log_z_estimate_raw;
  r.log_z_correction = st && !ag_ && lag_available_ ? correction_lag_.sum : kNaN;
  r.log_z_estimate = r.log_z_estimate_raw + r.log_z_correction;
  r.jarzynski_ce = data_u + r.log_z_estimate;
  r.log_z_correction_var = st && !ag_ ? correction_var_.sum : kNaN;
  r.jarzynski_ce_var = data_u + r.log_z_estimate_raw + r.log_z_correction_var;
  r.holdout_log_z = ho ? ho->log_z : kNaN;
  r.holdout_ce = data_u + r.holdout_log_z;
  r.holdout_se = ho ? ho->se : kNaN;
  r.holdout_ess = ho ? ho->min_ess : kNaN;
  r.holdout_resamplings = ho ? ho->resamplings : 0;
  r.ess = st ? st->ess : static_cast<double>(c_.walkers);
  r.weights = gmm_mode_weights(theta_);
  for (int64_t j = 0; j < theta_.k; ++j) {
    double best = std::numeric_limits<double>::infinity();
    for (int64_t t = 0; t < teacher_.k; ++t) {
      if (theta_.k == teacher_.k && t != j) continue;  // same number of modes: mode j is teacher mode j
      double s = 0.0;
      for (int64_t q = 0; q < c_.dim; ++q) {
        const double e = theta_.mean(j)[q] - teacher_.mean(t)[q];
        s += e * e;
      }
      best = std::min(best, std::sqrt(s));
    }
    r.mean_errors.push_back(best);
  }
  r.resamplings = pop_.resamplings;
  return r;
}

HoldoutEstimate GmmTrainer::holdout_pass(bool advance) {
  // This rank's blocks: (log Z estimate, ESS, resamplings) each; sharded, then every block's in block order.
  std::vector<double> mine;
  for (WalkerPopulation& h : holdout_) {
    HoldoutBlock b;
    if (advance) {
      const WeightStats st = gmm_walker_pass(theta_, h, ula_, false).stats;
      // The block's estimate is read before a resampling folds its log mean into the offset (after, it would
      // count that log mean twice), as the training walkers' record is.
      b = holdout_block(h, st);
      if (c_.resample && holdout_should_resample(st, h.size(), c_.resample_rule)) {
        gmm_resample_and_redo(theta_, h, c_.resample_rule.scheme, ula_, hu_, hg_);
        b.resamplings = h.resamplings;
      }
    } else {
      gmm_complete_pending(theta_, h, ula_, hu_, hg_);
      b = holdout_block(h, h.stats());
    }
    mine.insert(mine.end(), {b.log_z, b.ess, static_cast<double>(b.resamplings)});
  }
  std::vector<double> all = mine;
  if (sharded_ && shards_.comm->size() > 1) {
    const std::vector<int64_t> split = split_starts(c_.holdout_blocks, shards_.comm->size());
    std::vector<int64_t> counts;
    for (size_t r = 0; r + 1 < split.size(); ++r) counts.push_back(3 * (split[r + 1] - split[r]));
    all.resize(static_cast<size_t>(3 * c_.holdout_blocks));
    shards_.comm->allgatherv(mine.data(), all.data(), counts, CommType::Float64);
  }
  std::vector<HoldoutBlock> blocks;
  for (size_t q = 0; q < all.size(); q += 3) blocks.push_back({all[q], all[q + 1], static_cast<int64_t>(all[q + 2])});
  return combine_holdout_blocks(blocks);
}

double GmmTrainer::data_term(double* ga, double* gz) const {
  if (!sharded_) return gmm_data_term(theta_, data_, ga, gz);
  const bool with_grad = ga && gz;
  const int64_t o = data_layout_.offset(), w = 1 + (with_grad ? theta_.k * theta_.d + theta_.k : 0);
  const std::vector<double> mine =
      gmm_data_partials(theta_, data_.data<double>() + o * c_.dim, data_layout_.count(), with_grad);
  return gmm_data_finish(theta_, gather_chunk_rows(*shards_.comm, data_layout_, kGmmRowChunk, mine, w), c_.data,
                         ga, gz);
}

WeightStats GmmTrainer::walker_stats() const {
  return sharded_ ? distributed_weight_stats(*shards_.comm, shards_.layout, pop_.log_w.data<double>()) : pop_.stats();
}

GmmRecord GmmTrainer::iterate() { return ag_ ? iterate_autograd() : iterate_fast(); }

GmmRecord GmmTrainer::iterate_fast() {
  const int64_t n = c_.walkers;
  const WalkerShards* shards = sharded_ ? &shards_ : nullptr;
  const bool jarzynski = algo_ == Algorithm::Jarzynski;
  GmmGradientLag* lag = jarzynski && c_.ce_correction ? &lag_ : nullptr;
  if (algo_ == Algorithm::Cd && cd_should_restart(k_, c_.cd_k))
    restart_from_data(pop_, data_, pop_.seed ^ kGmmRestartKey, static_cast<uint64_t>(k_));
  // The iteration's one pass over the walkers: U, G, r at (theta_k, X_k) -> complete move k-1 (made under
  // theta_{k-1}) -> move k with G_k -> sum_i w_i grad_theta U(X_k^i) and its variance. X_k is in x_prev after.
  const GmmWalkerPass wp = gmm_walker_pass(theta_, pop_, ula_, true, lag, shards);
  // The previous update's drift term: its log Z increment was just completed by the walkers that also gave this
  // gradient estimate. Reporting only: the corrections never feed back into training.
  if (lag && k_ > 0) {
    if (wp.lag_cov.empty()) lag_available_ = false;
    else correction_lag_.add(lr_weighted_sum(wp.lag_cov));
  }
  // ... and the one pass over the data: grad CE(theta_k) = mean_data dU/dtheta - sum_i w_i dU/dtheta(X_k^i).
  std::vector<double> ga(theta_.a.size()), gz(theta_.z.size());
  const double data_u = data_term(ga.data(), gz.data());
  HoldoutEstimate ho{};
  if (has_holdout_) ho = holdout_pass(true);
  GmmRecord rec = record(data_u, jarzynski ? &wp.stats : nullptr, has_holdout_ ? &ho : nullptr);
  if (jarzynski && c_.resample && should_resample(wp.stats, n, c_.resample_rule)) {
    // Resample the pre-move state and redo the move (samplers/ula_jarzynski.hpp says why).
    gmm_resample_and_redo(theta_, pop_, c_.resample_rule.scheme, ula_, u_, g_, lag, shards);
    rec.resampled = true;
    rec.resamplings = pop_.resamplings;
  }
  for (size_t q = 0; q < ga.size(); ++q) ga[q] -= wp.grad_a[q];
  for (size_t j = 0; j < gz.size(); ++j) gz[j] -= wp.grad_z[j];
  update_params(ga, gz);
  if (jarzynski) {
    std::vector<double> var = wp.var_a;
    var.insert(var.end(), wp.var_z.begin(), wp.var_z.end());
    correction_var_.add(lr_weighted_sum(var));
  }
  ++k_;
  return rec;
}

GmmRecord GmmTrainer::iterate_autograd() {
  HoldoutEstimate ho{};
  if (has_holdout_) ho = holdout_pass(true);  // at theta_k, before the step changes it
  const GmmParams before = theta_;
  const TrainerStepInfo info = ag_->trainer.step();  // calls update_params through optimizer_step
  // The record describes theta_k, the parameters this step's estimates refer to.
  const GmmParams after = theta_;
  theta_ = before;
  WeightStats st{};
  st.ess = info.ess;
  st.log_mean = info.log_z - pop_.log_z_offset;
  GmmRecord rec = record(info.data_energy, algo_ == Algorithm::Jarzynski ? &st : nullptr,
                         has_holdout_ ? &ho : nullptr);
  if (algo_ == Algorithm::Jarzynski) {  // the Trainer's own estimate, exactly as it reports it
    rec.log_z_estimate_raw = info.log_z;
    rec.jarzynski_ce_raw = info.data_energy + info.log_z;
  }
  rec.resampled = info.resampled;
  theta_ = after;
  ++k_;
  return rec;
}

GmmRecord GmmTrainer::final_record() {
  if (ag_) {
    ag_->trainer.bring_up_to_date();
  } else if (k_ > 0) {
    gmm_complete_pending(theta_, pop_, ula_, u_, g_);
  }
  HoldoutEstimate ho{};
  if (has_holdout_) ho = holdout_pass(false);
  const double data_u = data_term(nullptr, nullptr);
  const WeightStats st = walker_stats();
  // No pass evaluates the gradient after the last update: its drift term falls back to the variance one.
  const LogZCorrection lag = correction_lag_;
  correction_lag_.sum += correction_var_.last;
  GmmRecord rec = record(data_u, algo_ == Algorithm::Jarzynski ? &st : nullptr, has_holdout_ ? &ho : nullptr);
  correction_lag_ = lag;
  return rec;
}

namespace {

Tensor vec_tensor(const std::vector<double>& v) {
  return Tensor::from_vector(v, {static_cast<int64_t>(v.size())}, DType::Float64);
}

std::vector<double> vec_of(const SafeTensors& st, const std::string& name, int64_t n) {
  return get(st, name, Shape{n}, DType::Float64).to_vector();
}

// Every per-walker tensor and counter of `pop` from rank `root` (the others hold a population of the same shapes).
void broadcast_population(Communicator& comm, WalkerPopulation& pop, int root) {
  for (Tensor* t : {&pop.x, &pop.x_prev, &pop.log_w, &pop.partial, &pop.pending})
    comm.broadcast(t->raw_data(), static_cast<int64_t>(t->nbytes()), CommType::Byte, root);
  int64_t ints[3] = {static_cast<int64_t>(pop.seed), static_cast<int64_t>(pop.moves), pop.resamplings};
  comm.broadcast(ints, 3, CommType::Int64, root);
  comm.broadcast(&pop.log_z_offset, 1, CommType::Float64, root);
  pop.seed = static_cast<uint64_t>(ints[0]);
  pop.moves = static_cast<uint64_t>(ints[1]);
  pop.resamplings = ints[2];
}

}  // namespace

void GmmTrainer::save_state(CheckpointTensors& t, CheckpointMetadata& m) {
  JEBM_CHECK(!ag_, "gmm checkpoints: the --autograd path has none (its state is the Trainer's)");
  Communicator* comm = shards_.comm;
  m["gmm.algorithm"] = algorithm_name(algo_);
  m["gmm.iteration"] = std::to_string(k_);
  m["gmm.walkers"] = std::to_string(c_.walkers);
  m["gmm.holdout_blocks"] = std::to_string(has_holdout_ ? c_.holdout_blocks : 0);
  t.emplace_back("gmm.theta.a", vec_tensor(theta_.a));
  t.emplace_back("gmm.theta.z", vec_tensor(theta_.z));
  t.emplace_back("gmm.corrections",
                 vec_tensor({correction_lag_.sum, correction_var_.sum, correction_var_.last, lag_available_ ? 1.0 : 0.0}));
  const WalkerPopulation host = pop_.x.device().is_cpu() ? pop_ : walkers_to(pop_, Device::cpu());
  save_population(sharded_ ? gather_population(*comm, shards_.layout, host) : host, t, m, "walkers.");
  m["gmm.lag.valid"] = lag_.valid ? "1" : "0";
  if (lag_.valid) {
    t.emplace_back("gmm.lag.theta.a", vec_tensor(lag_.theta.a));
    t.emplace_back("gmm.lag.theta.z", vec_tensor(lag_.theta.z));
    t.emplace_back("gmm.lag.grad", vec_tensor(lag_.grad));
    const std::vector<double> w = lag_.host_weights(), r = lag_.host_responsibilities();
    t.emplace_back("gmm.lag.w", vec_tensor(sharded_ ? gather_chunk_rows(*comm, shards_.layout, 1, w, 1) : w));
    t.emplace_back("gmm.lag.r", vec_tensor(sharded_ ? gather_chunk_rows(*comm, shards_.layout, 1, r, theta_.k) : r));
  }
  if (!has_holdout_) return;
  const int64_t nb = c_.holdout_blocks, per_block = c_.holdout_walkers / nb;
  const int size = sharded_ ? comm->size() : 1;
  const std::vector<int64_t> split = split_starts(nb, size);
  for (int64_t b = 0; b < nb; ++b) {
    // The rank whose range holds block b (the last one that starts at or before it).
    const int owner = static_cast<int>(std::upper_bound(split.begin(), split.end() - 1, b) - split.begin()) - 1;
    WalkerPopulation blk;
    if (!sharded_ || owner == comm->rank()) {
      const WalkerPopulation& h = holdout_[static_cast<size_t>(b - holdout_first_)];
      blk = h.x.device().is_cpu() ? h : walkers_to(h, Device::cpu());
    } else {
      blk = WalkerPopulation::create(Tensor::zeros({per_block, c_.dim}, DType::Float64), 0);
    }
    if (size > 1) broadcast_population(*comm, blk, owner);
    save_population(blk, t, m, "holdout" + std::to_string(b) + ".");
  }
}

void GmmTrainer::load_state(const SafeTensors& st) {
  JEBM_CHECK(!ag_, "gmm checkpoints: the --autograd path has none");
  const std::string algo = checkpoint_meta(st, "gmm.algorithm");
  JEBM_USER_CHECK(algo == algorithm_name(algo_), st.path << ": gmm.algorithm \"" << algo << "\": a checkpoint of the "
                                                         << algo << " run, not of " << algorithm_name(algo_));
  const uint64_t walkers = checkpoint_meta_u64(st, "gmm.walkers"), blocks = checkpoint_meta_u64(st, "gmm.holdout_blocks");
  JEBM_USER_CHECK(walkers == static_cast<uint64_t>(c_.walkers) &&
                      blocks == static_cast<uint64_t>(has_holdout_ ? c_.holdout_blocks : 0),
                  st.path << ": " << walkers << " walkers and " << blocks << " held-out blocks, the run has "
                          << c_.walkers << " and " << (has_holdout_ ? c_.holdout_blocks : 0)
                          << " (metadata gmm.walkers, gmm.holdout_blocks)");
  const int64_t kd = theta_.k * theta_.d;
  k_ = static_cast<int64_t>(checkpoint_meta_u64(st, "gmm.iteration"));
  theta_.a = vec_of(st, "gmm.theta.a", kd);
  theta_.z = vec_of(st, "gmm.theta.z", theta_.k);
  const std::vector<double> corr = vec_of(st, "gmm.corrections", 4);
  correction_lag_ = LogZCorrection{corr[0], 0.0};
  correction_var_ = LogZCorrection{corr[1], corr[2]};
  lag_available_ = corr[3] != 0.0;
  WalkerPopulation whole = WalkerPopulation::create(Tensor::zeros({c_.walkers, c_.dim}, DType::Float64), 0);
  load_population(st, whole, "walkers.");
  pop_ = sharded_ ? shard_population(whole, shards_.layout) : whole;
  if (c_.device.is_cuda()) pop_ = walkers_to(pop_, c_.device);
  lag_ = GmmGradientLag{};
  if (checkpoint_meta(st, "gmm.lag.valid") == "1") {
    const int64_t n = c_.walkers, o = pop_.first_index, local = pop_.size(), k = theta_.k;
    lag_.theta = theta_;
    lag_.theta.a = vec_of(st, "gmm.lag.theta.a", kd);
    lag_.theta.z = vec_of(st, "gmm.lag.theta.z", k);
    lag_.grad = vec_of(st, "gmm.lag.grad", kd + k);
    const std::vector<double> w = vec_of(st, "gmm.lag.w", n), r = vec_of(st, "gmm.lag.r", n * k);
    lag_.w.assign(w.begin() + o, w.begin() + o + local);
    lag_.r.assign(r.begin() + o * k, r.begin() + (o + local) * k);
    lag_.valid = true;
  }
  for (size_t i = 0; i < holdout_.size(); ++i) {
    WalkerPopulation& h = holdout_[i];
    WalkerPopulation blk = WalkerPopulation::create(Tensor::zeros({h.size(), c_.dim}, DType::Float64), 0);
    load_population(st, blk, "holdout" + std::to_string(holdout_first_ + static_cast<int64_t>(i)) + ".");
    h = c_.device.is_cuda() ? walkers_to(blk, c_.device) : blk;
  }
}

}  // namespace jebm
