// Algorithm 1 (docs/method.md) through autograd: step() and its parts in order (see samplers/trainer.hpp), on the
// device of the walkers and the energy; the rows go through RowEvaluator (samplers/row_evaluator.hpp). Per-walker
// work goes through runtime ops (gather_rows, index_copy_rows_: exact row copies on every device) and the
// samplers' device-transparent API, so on CUDA no walker data comes to the host; only the random subsets' indices
// go up. Tested by tests/test_samplers.cpp, tests/test_gmm.cpp, tests/test_cuda_trainer.cpp (CUDA vs CPU),
// tests/test_trainer_logz.cpp, tests/test_trainer_fixture.cpp and tests/test_image_ranks.cpp (1, 2 and 3 ranks).
//
// The first-order log Z correction (docs/method.md). Let w_i be all N walkers' normalised weights, S the gradient
// walkers with mass W_S = sum_{i in S} w_i and renormalised weights v_i = w_i / W_S, f_i = grad_theta U(X_i) and
// f'_i the walker part of the surrogate's gradient (f'_i = (1 + 2 alpha U_i) f_i). The optimiser uses
// g' = sum_{i in S} v_i f'_i: theta_{k+1} = theta_k - D (g_data - g') (+ terms free of walker noise). The next
// parameter-change increments use ALL walkers: log Z gains log sum_i w_i exp(U_k - U_{k+1}) ~ -dtheta . g with
// g = sum_i w_i f_i, so E[estimate - truth] ~ -sum_p D_p Cov(g'_p, g_p). Walkers outside S are independent of
// g', and walker i in S enters g' with v_i and g with w_i = W_S v_i, so Cov(g'_p, g_p) = W_S sum_{i in S} v_i^2
// Cov(f'_ip, f_ip) = W_S Var(g'_p) for alpha = 0 (a random half of the walkers: W_S ~ 1/2, twice the variance
// of the full estimate, the same covariance). Var(g'_p) comes from batch means over K random groups of S:
// G_k = sum_{i in group k} v_i f'_i, W_k its mass, and K/(K-1) sum_k (G_k - W_k g')^2 (see
// grouped_walker_backward). With alpha != 0 this is Var(g') where Cov(g', g) is wanted: first order in alpha.
// Ignored: walkers that are resampled copies of one ancestor inside and outside S (correlated), and the
// decorrelation by the moves between the gradient estimate and the increments (both second order here).
#include "samplers/trainer.hpp"

#include <algorithm>
#include <cmath>

#include "autograd/engine.hpp"
#include "autograd/ops.hpp"
#include "runtime/ops.hpp"
#include "runtime/shuffle.hpp"
#include "samplers/holdout.hpp"

namespace jebm {

namespace {

constexpr uint64_t kSubsetKey = 0x7375627365747321ULL;  // Philox key offset for random walker subsets
constexpr uint64_t kGroupKey = 0x67726f7570732121ULL;   // Philox key offset for the correction's groups

// b distinct indices of [0, n), sorted.
std::vector<int64_t> random_subset(int64_t n, int64_t b, uint64_t seed, uint64_t offset) {
  std::vector<int64_t> s = philox_shuffled_prefix(n, b, seed, offset);
  std::sort(s.begin(), s.end());
  return s;
}

// Host indices as an Int64 tensor on `device`: subsets are chosen on the host (indices only) and uploaded.
Tensor index_tensor(const std::vector<int64_t>& idx, Device device) {
  return Tensor::from_vector(idx, {static_cast<int64_t>(idx.size())}, device);
}

}  // namespace

Trainer::Trainer(Module& energy, WalkerPopulation& walkers, TrainerOptions options)
    : energy_(energy), pop_(walkers), opt_(options), rows_(energy, options.eval_chunk, options.shard_block) {
  train_.pop = &pop_;
  JEBM_CHECK(opt_.correction_groups == 0 || opt_.correction_groups >= 2,
             "Trainer: correction_groups = " << opt_.correction_groups << " (0: off, else at least 2)");
  opt_.ula.weighted = opt_.algorithm == Algorithm::Jarzynski;
  JEBM_CHECK(opt_.moves_per_update >= 1, "Trainer: moves_per_update = " << opt_.moves_per_update);
  JEBM_CHECK(opt_.moving_batch >= 0 && opt_.gradient_batch >= 0,
             "Trainer: negative batch sizes " << opt_.moving_batch << ", " << opt_.gradient_batch);
  JEBM_CHECK(opt_.cd_k >= 1, "Trainer: cd_k = " << opt_.cd_k);
  JEBM_CHECK(opt_.moving_subsets >= 1, "Trainer: moving_subsets = " << opt_.moving_subsets);
  JEBM_CHECK(opt_.shard_block >= 0 && (opt_.shard_block == 0 || opt_.correction_groups == 0),
             "Trainer: shard_block = " << opt_.shard_block << " (>= 0, and not with correction_groups)");
  if (pop_.x.defined())
    for (const ag::Var& p : energy_.parameters())
      JEBM_CHECK(p.device() == pop_.x.device(), "Trainer: the energy's parameters are on "
                                                    << p.device().str() << ", the walkers on " << pop_.x.device().str()
                                                    << " (move them with Module::to and walkers_to)");
}

void Trainer::set_communicator(Communicator* comm, Communicator* device) { rows_.set_communicator(comm, device); }

void Trainer::energy_and_grad(const Tensor& x, Tensor& u, Tensor& g) const { rows_.energy_and_grad(x, u, g); }

Tensor Trainer::energy_only(const Tensor& x) const { return rows_.energy_only(x); }

void Trainer::set_holdout(WalkerPopulation* holdout) {
  JEBM_CHECK(holdout != &pop_, "Trainer::set_holdout: the held-out walkers must not be the training walkers");
  if (holdout && holdout->x.defined() && pop_.x.defined())
    JEBM_CHECK(holdout->x.device() == pop_.x.device(), "Trainer::set_holdout: held-out walkers on "
                                                           << holdout->x.device().str() << ", the walkers on "
                                                           << pop_.x.device().str());
  hold_ = Track{};
  hold_.pop = holdout;
}

TrainerStepInfo Trainer::step() {
  JEBM_CHECK(data_batch && optimizer_step, "Trainer::step: data_batch and optimizer_step callbacks are required");
  JEBM_CHECK(opt_.correction_groups == 0 || !opt_.ula.weighted || step_scale_dot,
             "Trainer::step: correction_groups = " << opt_.correction_groups << " needs the step_scale_dot callback");
  TrainerStepInfo info;
  info.iteration = iteration_;
  restart_if_due(info);
  // 1. Complete. The walkers whose moves this completes are the gradient walkers of gradient_walkers_moved.
  const std::vector<int64_t> moved = opt_.gradient_walkers_moved && train_.initialised && !train_.all_moved
                                         ? train_.last_moved
                                         : std::vector<int64_t>{};
  bring_up_to_date();
  WeightStats holdout_st;
  const WeightStats st = estimate_weights(info, holdout_st);
  if (weights_ready) weights_ready(pop_, info);
  // 2. Estimate the gradient.
  const int64_t gradient_walkers = surrogate_backward(data_batch(iteration_), moved, info);
  // 3. Resample, each population by its rule.
  if (resample_fires(st, info.batch_ess)) {
    resample(train_);
    info.resampled = true;
  }
  if (hold_.pop && opt_.ula.weighted && opt_.resample &&
      holdout_should_resample(holdout_st, hold_.pop->size(), opt_.resample_rule, opt_.resample_batch_ess,
                              gradient_walkers)) {
    resample(hold_);
    info.holdout_resampled = true;
  }
  // 4. Move, at the current theta; the held-out walkers' subsets scale with their number (each walker moves as
  // often as a training walker).
  make_moves(train_, opt_.moving_batch);
  if (hold_.pop) {
    const int64_t n = pop_.size(), m = hold_.pop->size();
    const bool all = opt_.moving_batch == 0 || opt_.moving_batch >= n;
    make_moves(hold_, all ? 0 : std::max<int64_t>(1, (opt_.moving_batch * m + n / 2) / n));
  }
  // 5. Update theta.
  update();
  ++iteration_;
  return info;
}

void Trainer::restart_if_due(TrainerStepInfo& info) {
  if (opt_.algorithm != Algorithm::Cd || !cd_should_restart(iteration_, opt_.cd_k)) return;
  JEBM_CHECK(restart_walkers, "Trainer::step: CD needs the restart_walkers callback");
  restart_walkers(pop_, iteration_);
  train_.initialised = false;
  train_.all_moved = false;
  train_.last_moved.clear();
  info.restarted = true;
}

void Trainer::bring_up_to_date() {
  complete(train_);
  if (hold_.pop) complete(hold_);
}

void Trainer::complete(Track& t) {
  WalkerPopulation& pop = *t.pop;
  const bool weighted = opt_.ula.weighted;
  // Each rank completes its own rows; their energies and weight state are gathered, not their gradients.
  const auto complete_rows = [&](const RowSet& s, const RowValues& v) {
    rows_.move(pop, s, v, opt_.ula, MoveKind::CompleteOnly, after_move);
    rows_.gather(pop, s, {&pop.log_w, &pop.partial, &pop.pending});
  };
  if (!t.initialised || t.all_moved) {
    // Every walker is evaluated: completes every pending move (none on the first step or after a restart).
    const RowSet all = rows_.all_rows(pop);
    const RowValues v = rows_.evaluate(pop, all, true);
    if (weighted && t.initialised) complete_rows(all, v);
    t.u_cache = v.u;
    t.g_all = v.g;
    t.g_all_valid = true;
    t.initialised = true;
    t.params_changed = false;
    t.all_moved = false;  // completed: a second call must not re-complete
    t.last_moved.clear();
    return;
  }
  t.g_all_valid = false;
  if (!t.last_moved.empty()) {
    const RowSet s = rows_.rows(pop, t.last_moved);
    const RowValues v = rows_.evaluate(pop, s, true);
    if (weighted) complete_rows(s, v);
    index_copy_rows_(t.u_cache, s.idx, v.u);
  }
  if (t.params_changed) parameter_change(t);
  t.params_changed = false;
  t.last_moved.clear();
}

void Trainer::parameter_change(Track& t) {
  // The walkers that did not move: the increment U_old(X) - U_theta(X), one forward.
  WalkerPopulation& pop = *t.pop;
  const int64_t n = pop.size();
  std::vector<char> moved(static_cast<size_t>(n), 0);
  for (int64_t i : t.last_moved) moved[static_cast<size_t>(i)] = 1;
  std::vector<int64_t> rest;
  for (int64_t i = 0; i < n; ++i)
    if (!moved[static_cast<size_t>(i)]) rest.push_back(i);
  if (rest.empty()) return;
  const Tensor idx = index_tensor(rest, pop.x.device());
  const Tensor u_new = rows_.energy_only(gather_rows(pop.x, idx));
  if (opt_.ula.weighted)
    jarzynski_parameter_change(pop, gather_rows(t.u_cache, idx), u_new, rest, opt_.ula.energy_coef());
  index_copy_rows_(t.u_cache, idx, u_new);
}

WeightStats Trainer::estimate_weights(TrainerStepInfo& info, WeightStats& holdout) {
  const WeightStats st = pop_.stats();
  info.ess = st.ess;
  info.cv2 = st.cv2;
  info.log_z = pop_.log_z_offset + st.log_mean;
  if (opt_.correction_groups > 0 && opt_.ula.weighted) info.log_z_corrected = correction_.corrected(info.log_z);
  if (hold_.pop) {  // one block of held-out walkers
    holdout = hold_.pop->stats();
    const HoldoutEstimate e = combine_holdout_blocks({holdout_block(*hold_.pop, holdout)});
    info.holdout_ess = e.min_ess;
    info.holdout_log_z = e.log_z;
  }
  return st;
}

int64_t Trainer::surrogate_backward(const Tensor& data, const std::vector<int64_t>& moved, TrainerStepInfo& info) {
  const int64_t n = pop_.size();
  std::vector<int64_t> s;
  const bool use_moved = opt_.gradient_walkers_moved && !moved.empty() && static_cast<int64_t>(moved.size()) < n;
  const bool all = !use_moved && (opt_.gradient_batch == 0 || opt_.gradient_batch >= n);
  if (use_moved) s = moved;
  else if (!all) s = random_subset(n, opt_.gradient_batch, pop_.seed ^ kSubsetKey, train_.subset_counter++);
  const int64_t b = all ? n : static_cast<int64_t>(s.size());
  const Device dev = pop_.x.device();
  JEBM_CHECK(data.device() == dev, "Trainer: the data batch is on " << data.device().str() << ", the walkers on "
                                                                    << dev.str());
  const Tensor idx = all ? Tensor() : index_tensor(s, dev);
  Tensor w;  // [b] float64 on dev: the gradient walkers' renormalised weights
  if (opt_.ula.weighted) {
    w = normalized_weights(all ? pop_.log_w : gather_rows(pop_.log_w, idx), &info.batch_ess);
  } else {
    const std::vector<double> wu(static_cast<size_t>(b), 1.0 / static_cast<double>(b));
    double sum_w2 = 0.0;
    for (double v : wu) sum_w2 += v * v;
    info.batch_ess = 1.0 / sum_w2;
    w = Tensor::from_vector(wu, {b}, DType::Float64, dev);
  }
  const Tensor xs = all ? pop_.x : gather_rows(pop_.x, idx);
  if (opt_.shard_block > 0) {
    const RowEvaluator::Loss l = rows_.blocked_loss_backward(data, xs, w, opt_.alpha);
    info.loss = l.loss;
    info.data_energy = l.data_energy;
    return b;
  }
  energy_.zero_grad();
  const ag::Var ud = energy_(ag::Var(data));
  info.data_energy = ag::mean_all(ud).value().item();
  if (opt_.correction_groups > 0 && opt_.ula.weighted && b >= 2) {
    // The data part, then the walker part group by group (the same gradient, summed in another order).
    ag::Var ld = ag::mean_all(ud);
    if (opt_.alpha != 0.0) ld = ag::add(ld, ag::mul_scalar(ag::mean_all(ag::square(ud)), opt_.alpha));
    double loss = ld.value().item();
    ag::backward(ld);
    // W_S: the gradient walkers' share of all walkers' normalised weight (see the comment at the top).
    const double mass = all ? 1.0 : std::exp(weight_stats(gather_rows(pop_.log_w, idx)).log_sum - pop_.stats().log_sum);
    grouped_walker_backward(xs, w, mass, loss);
    info.loss = loss;
    return b;
  }
  const ag::Var uw = energy_(ag::Var(xs));
  const ag::Var wv(w.to(uw.dtype()));
  ag::Var loss = ag::sub(ag::mean_all(ud), ag::sum_all(ag::mul(wv, uw)));
  if (opt_.alpha != 0.0)
    loss = ag::add(loss, ag::mul_scalar(ag::add(ag::mean_all(ag::square(ud)), ag::sum_all(ag::mul(wv, ag::square(uw)))),
                                        opt_.alpha));
  info.loss = loss.value().item();
  ag::backward(loss);
  return b;
}

void Trainer::grouped_walker_backward(const Tensor& xs, const Tensor& w, double mass, double& loss) {
  const std::vector<ag::Var> params = energy_.parameters();
  const size_t np = params.size();
  std::vector<Tensor> total(np);  // the data part's gradient, then the running sum
  for (size_t j = 0; j < np; ++j)
    if (params[j].grad().defined()) total[j] = params[j].grad().clone();
  const int64_t b = xs.size(0);
  const int64_t k_groups = std::min(opt_.correction_groups, b);
  // Random groups of (nearly) equal size, from their own stream (the subsets' streams are untouched).
  const std::vector<int64_t> perm = philox_shuffled_prefix(b, b, pop_.seed ^ kGroupKey, static_cast<uint64_t>(iteration_));
  const Device dev = xs.device();
  std::vector<std::vector<Tensor>> gk(static_cast<size_t>(k_groups), std::vector<Tensor>(np));
  std::vector<double> wk(static_cast<size_t>(k_groups));
  for (int64_t k = 0; k < k_groups; ++k) {
    std::vector<int64_t> rows(perm.begin() + k * b / k_groups, perm.begin() + (k + 1) * b / k_groups);
    std::sort(rows.begin(), rows.end());
    const Tensor idx = index_tensor(rows, dev);
    const Tensor wg = gather_rows(w, idx);
    wk[static_cast<size_t>(k)] = sum_all(wg).item();
    energy_.zero_grad();
    const ag::Var uw = energy_(ag::Var(gather_rows(xs, idx)));
    const ag::Var wv(wg.to(uw.dtype()));
    ag::Var lk = ag::neg(ag::sum_all(ag::mul(wv, uw)));
    if (opt_.alpha != 0.0) lk = ag::add(lk, ag::mul_scalar(ag::sum_all(ag::mul(wv, ag::square(uw))), opt_.alpha));
    loss += lk.value().item();
    ag::backward(lk);
    for (size_t j = 0; j < np; ++j)
      if (params[j].grad().defined()) gk[static_cast<size_t>(k)][j] = params[j].grad().clone();
  }
  // Batch means: with G_k - W_k g' = Y_k - W_k sum_l Y_l (Y_k = G_k - W_k E[g'], independent, mean zero,
  // variance V/K when W_k = 1/K), E[sum_k (G_k - W_k g')^2] = V (1 - 2/K + 1/K) = V (K-1)/K: centring on the
  // estimate g' itself takes one group's worth of variance out, and K/(K-1) puts it back.
  const double scale = mass * static_cast<double>(k_groups) / static_cast<double>(k_groups - 1);
  c_.assign(np, Tensor());
  for (size_t j = 0; j < np; ++j) {
    Tensor walker_sum;  // g'_j (as the loss's gradient: minus the walker part's sign, irrelevant in squares)
    for (int64_t k = 0; k < k_groups; ++k) {
      const Tensor& gkj = gk[static_cast<size_t>(k)][j];
      if (!gkj.defined()) continue;
      if (!walker_sum.defined()) walker_sum = gkj.clone();
      else add_(walker_sum, gkj);
    }
    ag::Var pj = params[j];  // shares the impl: its grad() is replaced in place
    if (!walker_sum.defined()) {
      pj.grad() = total[j];
      continue;
    }
    Tensor c = Tensor::zeros(walker_sum.shape(), walker_sum.dtype(), walker_sum.device());
    for (int64_t k = 0; k < k_groups; ++k) {
      const Tensor& gkj = gk[static_cast<size_t>(k)][j];
      Tensor dev_k = gkj.defined() ? gkj.clone() : Tensor::zeros(c.shape(), c.dtype(), c.device());
      add_(dev_k, walker_sum, -wk[static_cast<size_t>(k)]);
      add_(c, square(dev_k));
    }
    c_[j] = mul_scalar(c, scale);
    if (total[j].defined()) add_(total[j], walker_sum);
    else total[j] = walker_sum;
    pj.grad() = total[j];
  }
}

bool Trainer::resample_fires(const WeightStats& st, double batch_ess) const {
  // Non-finite weights (a diverged run) are left for the caller's guard: drawing ancestors from them throws.
  if (!opt_.ula.weighted || !opt_.resample || !std::isfinite(st.log_sum)) return false;
  return opt_.resample_batch_ess > 0 ? batch_ess < opt_.resample_batch_ess
                                     : jebm::should_resample(st, pop_.size(), opt_.resample_rule);
}

void Trainer::resample(Track& t) {
  const Tensor anc = population_ancestors(*t.pop, opt_.resample_rule.scheme);
  resample_population(*t.pop, anc);
  t.u_cache = gather_rows(t.u_cache, anc);
  if (t.g_all_valid) t.g_all = rows_.follow_ancestors(t.g_all, anc);
  if (opt_.rejuvenation_moves > 0) rejuvenate(t);
}

void Trainer::rejuvenate(Track& t) {
  WalkerPopulation& pop = *t.pop;
  UlaConfig warm = opt_.ula;
  // sqrt(2h): the 2h and sigma kernels coincide. The tempered kernel's target exp(-U / T) keeps its own exact
  // temperature: its moves are already exact-temperature ULA moves for it.
  if (opt_.ula.weight_kernel != WeightKernel::Tempered) warm.sigma = 0.0;
  // Nothing is pending here (part 1 completed every walker); the last evaluation completes the last warm move
  // and leaves U and grad_x U of every walker for the step's own moves, as part 1 does.
  const RowSet all = rows_.all_rows(pop);
  for (int64_t k = 0; k <= opt_.rejuvenation_moves; ++k) {
    const bool last = k == opt_.rejuvenation_moves;
    const MoveKind kind = last ? MoveKind::CompleteOnly : k == 0 ? MoveKind::MoveOnly : MoveKind::CompleteAndMove;
    const RowValues v = k == 0 && t.g_all_valid ? RowValues{t.u_cache, t.g_all} : rows_.evaluate(pop, all, last);
    rows_.move(pop, all, v, warm, kind, after_move);
    if (!last) continue;
    rows_.gather(pop, all);
    t.u_cache = v.u;
    t.g_all = v.g;
    t.g_all_valid = true;
  }
}

void Trainer::make_moves(Track& t, int64_t moving_batch) {
  WalkerPopulation& pop = *t.pop;
  const int64_t n = pop.size();
  const bool all = moving_batch == 0 || moving_batch >= n;
  const int64_t subsets = all ? 1 : opt_.moving_subsets;
  std::vector<char> moved(static_cast<size_t>(n), 0);  // union of the subsets
  RowSet s;
  for (int64_t j = 0; j < subsets; ++j) {
    s = all ? rows_.all_rows(pop)
            : rows_.rows(pop, random_subset(n, moving_batch, pop.seed ^ kSubsetKey, t.subset_counter++));
    for (int64_t k = 0; k < opt_.moves_per_update; ++k) {
      // Nothing is pending before the very first move (part 1 completed everything); later moves complete the
      // previous one at the same theta (walkers of an earlier subset included).
      const MoveKind kind = k == 0 && j == 0 ? MoveKind::MoveOnly : MoveKind::CompleteAndMove;
      const RowValues v =
          k == 0 && all && t.g_all_valid ? RowValues{t.u_cache, t.g_all} : rows_.evaluate(pop, s, false);
      rows_.move(pop, s, v, opt_.ula, kind, after_move);
    }
    // On several ranks each rank moved its own rows through all of the subset's moves: one gather of walker
    // state per subset instead of one of energies and gradients per move.
    rows_.gather(pop, s);
    for (int64_t i : s.walkers) moved[static_cast<size_t>(i)] = 1;
  }
  t.last_moved.clear();
  if (subsets == 1) t.last_moved = s.walkers;
  for (int64_t i = 0; subsets > 1 && i < n; ++i)
    if (moved[static_cast<size_t>(i)]) t.last_moved.push_back(i);
  t.all_moved = all;
  t.g_all_valid = false;
}

void Trainer::update() {
  optimizer_step(iteration_);
  if (opt_.correction_groups > 0 && opt_.ula.weighted && !c_.empty()) correction_.add(step_scale_dot(c_));
  c_.clear();
  train_.params_changed = true;
  if (hold_.pop) hold_.params_changed = true;
}

bool Trainer::plain_move(WalkerPopulation& pop, const UlaConfig& cfg, const std::function<bool(const Tensor&)>& check) {
  JEBM_CHECK(!cfg.weighted, "Trainer::plain_move: for unweighted moves (weighted = false)");
  // On several ranks: this rank's rows only; the energies (N doubles) are gathered for `check`, not the gradients.
  const RowSet all = rows_.all_rows(pop);
  const RowValues v = rows_.evaluate(pop, all, true);
  if (!check(v.u)) return false;
  rows_.move(pop, all, v, cfg, MoveKind::MoveOnly, after_move);
  return true;
}

void Trainer::gather_walkers(WalkerPopulation& pop) const { rows_.gather(pop, rows_.all_rows(pop)); }

Trainer::State Trainer::state() const {
  State s;
  s.iteration = iteration_;
  s.walkers = train_;
  if (train_.u_cache.defined()) s.walkers.u_cache = train_.u_cache.copy_to(Device::cpu());
  s.holdout = hold_;
  if (hold_.u_cache.defined()) s.holdout.u_cache = hold_.u_cache.copy_to(Device::cpu());
  s.log_z_correction = correction_.sum;
  return s;
}

namespace {

void check_track(const WalkerTrack& t, int64_t n, const char* which) {
  JEBM_CHECK(!t.initialised || (t.u_cache.defined() && t.u_cache.numel() == n),
             "Trainer::restore: " << which << "u_cache has " << (t.u_cache.defined() ? t.u_cache.numel() : 0)
                                  << " entries for " << n << " walkers");
  for (int64_t i : t.last_moved)
    JEBM_CHECK(i >= 0 && i < n, "Trainer::restore: " << which << "walker index " << i << " out of " << n);
}

}  // namespace

void Trainer::restore(const State& s) {
  check_track(s.walkers, pop_.size(), "");
  JEBM_CHECK(hold_.pop || !s.holdout.initialised,
             "Trainer::restore: the state has held-out walkers; attach them with set_holdout first");
  if (hold_.pop) check_track(s.holdout, hold_.pop->size(), "held-out ");
  iteration_ = s.iteration;
  for (Track* t : {&train_, &hold_}) {
    if (!t->pop) continue;
    static_cast<WalkerTrack&>(*t) = t == &train_ ? s.walkers : s.holdout;
    if (t->u_cache.defined()) t->u_cache = t->u_cache.copy_to(t->pop->x.device());
    t->g_all_valid = false;  // a step() always ends with g_all invalid
  }
  correction_ = LogZCorrection{s.log_z_correction, 0.0};
}

}  // namespace jebm
