// The generic training loop of DESIGN 1.3 through autograd (see samplers/trainer.hpp for the step's parts), on
// the device of the walkers and the energy. Per-walker work goes through runtime ops (gather_rows,
// index_copy_rows_: exact row copies on every device) and the samplers' device-transparent API, so on CUDA no
// walker data comes to the host; only the random subsets' indices go up. Tested by tests/test_samplers.cpp,
// tests/test_gmm.cpp and tests/test_cuda_trainer.cpp (CUDA vs CPU).
#include "samplers/trainer.hpp"

#include <algorithm>
#include <cmath>
#include <numeric>

#include "autograd/engine.hpp"
#include "autograd/ops.hpp"
#include "runtime/ops.hpp"
#include "runtime/philox.hpp"

namespace jebm {

namespace {

constexpr uint64_t kSubsetKey = 0x7375627365747321ULL;  // Philox key offset for random walker subsets

// b distinct indices of [0, n), sorted, from a partial Fisher-Yates shuffle keyed by (seed, offset).
std::vector<int64_t> random_subset(int64_t n, int64_t b, uint64_t seed, uint64_t offset) {
  std::vector<int64_t> perm(static_cast<size_t>(n));
  std::iota(perm.begin(), perm.end(), int64_t{0});
  for (int64_t i = 0; i < b; ++i) {
    double u0, u1;
    philox_uniform2(seed, static_cast<uint64_t>(i), offset, &u0, &u1);
    const int64_t j = std::min(n - 1, i + static_cast<int64_t>(u0 * static_cast<double>(n - i)));
    std::swap(perm[static_cast<size_t>(i)], perm[static_cast<size_t>(j)]);
  }
  perm.resize(static_cast<size_t>(b));
  std::sort(perm.begin(), perm.end());
  return perm;
}

// Host indices as an Int64 tensor on `device`: subsets are chosen on the host (indices only) and uploaded.
Tensor index_tensor(const std::vector<int64_t>& idx, Device device) {
  return Tensor::from_vector(idx, {static_cast<int64_t>(idx.size())}, device);
}

// A copy of t on `device` that never shares t's storage.
Tensor copy_to(const Tensor& t, Device device) { return t.device() == device ? t.clone() : t.to(device); }

}  // namespace

Trainer::Trainer(Module& energy, WalkerPopulation& walkers, TrainerOptions options)
    : energy_(energy), pop_(walkers), opt_(options) {
  opt_.ula.weighted = opt_.algorithm == Algorithm::Jarzynski;
  JEBM_CHECK(opt_.moves_per_update >= 1, "Trainer: moves_per_update = " << opt_.moves_per_update);
  JEBM_CHECK(opt_.moving_batch >= 0 && opt_.gradient_batch >= 0,
             "Trainer: negative batch sizes " << opt_.moving_batch << ", " << opt_.gradient_batch);
  JEBM_CHECK(opt_.cd_k >= 1, "Trainer: cd_k = " << opt_.cd_k);
  JEBM_CHECK(opt_.moving_subsets >= 1, "Trainer: moving_subsets = " << opt_.moving_subsets);
  if (pop_.x.defined())
    for (const ag::Var& p : energy_.parameters())
      JEBM_CHECK(p.device() == pop_.x.device(), "Trainer: the energy's parameters are on "
                                                    << p.device().str() << ", the walkers on " << pop_.x.device().str()
                                                    << " (move them with Module::to and walkers_to)");
}

void Trainer::energy_and_grad(const Tensor& x, Tensor& u, Tensor& g) const {
  const int64_t n = x.size(0);
  u = Tensor::empty({n}, DType::Float64, x.device());
  g = Tensor::empty(x.shape(), x.dtype(), x.device());
  const int64_t chunk = opt_.eval_chunk > 0 ? opt_.eval_chunk : n;
  for (int64_t b = 0; b < n; b += chunk) {
    const int64_t e = std::min(n, b + chunk);
    ag::Var xv(x.rows(b, e).clone(), true);
    ag::Var uv = energy_(xv);
    JEBM_CHECK(uv.dim() == 1 && uv.size(0) == e - b,
               "Trainer: the energy must map [N, ...] to [N], got " << shape_str(uv.shape()));
    u.rows(b, e).copy_(uv.value());  // to float64 on the same device (exact)
    const std::vector<Tensor> gr = ag::grad(ag::sum_all(uv), {xv});
    g.rows(b, e).copy_(gr[0]);
  }
}

Tensor Trainer::energy_only(const Tensor& x) const {
  ag::NoGradGuard no_grad;
  const int64_t n = x.size(0);
  Tensor u = Tensor::empty({n}, DType::Float64, x.device());
  const int64_t chunk = opt_.eval_chunk > 0 ? opt_.eval_chunk : n;
  for (int64_t b = 0; b < n; b += chunk) {
    const int64_t e = std::min(n, b + chunk);
    u.rows(b, e).copy_(energy_(ag::Var(x.rows(b, e))).value());
  }
  return u;
}

void Trainer::bring_up_to_date() {
  const int64_t n = pop_.size();
  const bool weighted = opt_.ula.weighted;
  if (!initialised_ || all_moved_) {
    // Every walker is evaluated: completes every pending move (none on the first step or after a restart).
    Tensor u, g;
    energy_and_grad(pop_.x, u, g);
    if (weighted && initialised_) ula_jarzynski_step(pop_, u, g, opt_.ula, MoveKind::CompleteOnly);
    u_cache_ = u;
    g_all_ = g;
    g_all_valid_ = true;
    initialised_ = true;
    params_changed_ = false;
    all_moved_ = false;  // completed: a second call must not re-complete
    last_moved_.clear();
    return;
  }
  g_all_valid_ = false;
  const Device dev = pop_.x.device();
  if (!last_moved_.empty()) {
    const Tensor idx = index_tensor(last_moved_, dev);
    Tensor u, g;
    energy_and_grad(gather_rows(pop_.x, idx), u, g);
    if (weighted) ula_jarzynski_step(pop_, u, g, opt_.ula, MoveKind::CompleteOnly, last_moved_);
    index_copy_rows_(u_cache_, idx, u);
  }
  if (params_changed_) {
    std::vector<char> moved(static_cast<size_t>(n), 0);
    for (int64_t i : last_moved_) moved[static_cast<size_t>(i)] = 1;
    std::vector<int64_t> rest;
    for (int64_t i = 0; i < n; ++i)
      if (!moved[static_cast<size_t>(i)]) rest.push_back(i);
    if (!rest.empty()) {
      const Tensor idx = index_tensor(rest, dev);
      const Tensor u_new = energy_only(gather_rows(pop_.x, idx));
      if (weighted) jarzynski_parameter_change(pop_, gather_rows(u_cache_, idx), u_new, rest);
      index_copy_rows_(u_cache_, idx, u_new);
    }
  }
  params_changed_ = false;
  last_moved_.clear();
}

void Trainer::surrogate_backward(const Tensor& data, const std::vector<int64_t>& moved, TrainerStepInfo& info) {
  const int64_t n = pop_.size();
  std::vector<int64_t> s;
  const bool use_moved = opt_.gradient_walkers_moved && !moved.empty() && static_cast<int64_t>(moved.size()) < n;
  const bool all = !use_moved && (opt_.gradient_batch == 0 || opt_.gradient_batch >= n);
  if (use_moved) s = moved;
  else if (!all) s = random_subset(n, opt_.gradient_batch, pop_.seed ^ kSubsetKey, subset_counter_++);
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
  energy_.zero_grad();
  const ag::Var ud = energy_(ag::Var(data));
  const ag::Var uw = energy_(ag::Var(xs));
  const ag::Var wv(w.to(uw.dtype()));
  ag::Var loss = ag::sub(ag::mean_all(ud), ag::sum_all(ag::mul(wv, uw)));
  if (opt_.alpha != 0.0)
    loss = ag::add(loss, ag::mul_scalar(ag::add(ag::mean_all(ag::square(ud)), ag::sum_all(ag::mul(wv, ag::square(uw)))),
                                        opt_.alpha));
  info.data_energy = ag::mean_all(ud).value().item();
  info.loss = loss.value().item();
  ag::backward(loss);
}

void Trainer::make_moves() {
  const int64_t n = pop_.size();
  const bool all = opt_.moving_batch == 0 || opt_.moving_batch >= n;
  const int64_t subsets = all ? 1 : opt_.moving_subsets;
  std::vector<int64_t> m;
  Tensor idx;  // m on the walkers' device
  std::vector<char> moved;  // union of the subsets (several subsets only)
  if (subsets > 1) moved.assign(static_cast<size_t>(n), 0);
  for (int64_t s = 0; s < subsets; ++s) {
    if (!all) {
      m = random_subset(n, opt_.moving_batch, pop_.seed ^ kSubsetKey, subset_counter_++);
      idx = index_tensor(m, pop_.x.device());
    }
    for (int64_t k = 0; k < opt_.moves_per_update; ++k) {
      Tensor u, g;
      if (k == 0 && all && g_all_valid_) {
        u = u_cache_;
        g = g_all_;
      } else {
        energy_and_grad(all ? pop_.x : gather_rows(pop_.x, idx), u, g);
      }
      // Nothing is pending before the very first move (part 1 completed everything); later moves complete the
      // previous one at the same theta (walkers of an earlier subset included).
      ula_jarzynski_step(pop_, u, g, opt_.ula, k == 0 && s == 0 ? MoveKind::MoveOnly : MoveKind::CompleteAndMove, m);
      if (after_move) after_move(pop_, m);
    }
    if (subsets > 1)
      for (int64_t i : m) moved[static_cast<size_t>(i)] = 1;
  }
  if (subsets > 1) {
    m.clear();
    for (int64_t i = 0; i < n; ++i)
      if (moved[static_cast<size_t>(i)]) m.push_back(i);
  }
  last_moved_ = m;
  all_moved_ = all;
  g_all_valid_ = false;
}

Trainer::State Trainer::state() const {
  State s;
  s.iteration = iteration_;
  s.initialised = initialised_;
  s.params_changed = params_changed_;
  s.all_moved = all_moved_;
  if (u_cache_.defined()) s.u_cache = copy_to(u_cache_, Device::cpu());
  s.last_moved = last_moved_;
  s.subset_counter = subset_counter_;
  return s;
}

void Trainer::restore(const State& s) {
  JEBM_CHECK(!s.initialised || (s.u_cache.defined() && s.u_cache.numel() == pop_.size()),
             "Trainer::restore: u_cache has " << (s.u_cache.defined() ? s.u_cache.numel() : 0) << " entries for "
                                              << pop_.size() << " walkers");
  for (int64_t i : s.last_moved)
    JEBM_CHECK(i >= 0 && i < pop_.size(), "Trainer::restore: walker index " << i << " out of " << pop_.size());
  iteration_ = s.iteration;
  initialised_ = s.initialised;
  params_changed_ = s.params_changed;
  all_moved_ = s.all_moved;
  u_cache_ = s.u_cache.defined() ? copy_to(s.u_cache, pop_.x.device()) : Tensor();
  last_moved_ = s.last_moved;
  subset_counter_ = s.subset_counter;
  g_all_valid_ = false;  // a step() always ends with g_all_ invalid
}

TrainerStepInfo Trainer::step() {
  JEBM_CHECK(data_batch && optimizer_step, "Trainer::step: data_batch and optimizer_step callbacks are required");
  TrainerStepInfo info;
  info.iteration = iteration_;
  if (opt_.algorithm == Algorithm::Cd && cd_should_restart(iteration_, opt_.cd_k)) {
    JEBM_CHECK(restart_walkers, "Trainer::step: CD needs the restart_walkers callback");
    restart_walkers(pop_, iteration_);
    initialised_ = false;
    all_moved_ = false;
    last_moved_.clear();
    info.restarted = true;
  }
  // The walkers whose moves bring_up_to_date() completes (it clears the list): the gradient walkers of
  // gradient_walkers_moved.
  const std::vector<int64_t> moved = opt_.gradient_walkers_moved && initialised_ && !all_moved_ ? last_moved_
                                                                                                : std::vector<int64_t>{};
  bring_up_to_date();
  const WeightStats st = pop_.stats();
  info.ess = st.ess;
  info.cv2 = st.cv2;
  info.log_z = pop_.log_z_offset + st.log_mean;
  if (weights_ready) weights_ready(pop_, info);
  surrogate_backward(data_batch(iteration_), moved, info);
  // Non-finite weights (a diverged run) are left for the caller's guard: drawing ancestors from them throws.
  const bool fire = std::isfinite(st.log_sum) &&
                    (opt_.resample_batch_ess > 0 ? info.batch_ess < opt_.resample_batch_ess
                                                 : should_resample(st, pop_.size(), opt_.resample_rule));
  if (opt_.ula.weighted && opt_.resample && fire) {
    const Tensor anc = population_ancestors(pop_, opt_.resample_rule.scheme);
    resample_population(pop_, anc);
    u_cache_ = gather_rows(u_cache_, anc);
    if (g_all_valid_) g_all_ = gather_rows(g_all_, anc);
    info.resampled = true;
  }
  make_moves();
  optimizer_step(iteration_);
  params_changed_ = true;
  if (log) log(info);
  ++iteration_;
  return info;
}

}  // namespace jebm
