// The generic training loop of DESIGN 1.3 through autograd (see samplers/trainer.hpp for the step's parts).
// Tested by tests/test_samplers.cpp and tests/test_gmm.cpp.
#include "samplers/trainer.hpp"

#include <algorithm>
#include <cstring>
#include <numeric>

#include "autograd/engine.hpp"
#include "autograd/ops.hpp"
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

// Writes the float64 values of src (any float dtype, n entries) to dst + offset.
void put_f64(Tensor& dst, int64_t offset, const Tensor& src) {
  const std::vector<double> v = src.to_vector();
  std::copy(v.begin(), v.end(), dst.data<double>() + offset);
}

void put_rows(Tensor& dst, int64_t row0, const Tensor& src) {
  const Tensor s = src.dtype() == dst.dtype() ? src : src.to(dst.dtype());
  const size_t row = dst.nbytes() / static_cast<size_t>(dst.size(0));
  std::memcpy(static_cast<char*>(dst.raw_data()) + static_cast<size_t>(row0) * row, s.raw_data(), s.nbytes());
}

}  // namespace

Trainer::Trainer(Module& energy, WalkerPopulation& walkers, TrainerOptions options)
    : energy_(energy), pop_(walkers), opt_(options) {
  opt_.ula.weighted = opt_.algorithm == Algorithm::Jarzynski;
  JEBM_CHECK(opt_.moves_per_update >= 1, "Trainer: moves_per_update = " << opt_.moves_per_update);
  JEBM_CHECK(opt_.moving_batch >= 0 && opt_.gradient_batch >= 0,
             "Trainer: negative batch sizes " << opt_.moving_batch << ", " << opt_.gradient_batch);
  JEBM_CHECK(opt_.cd_k >= 1, "Trainer: cd_k = " << opt_.cd_k);
  JEBM_CHECK(opt_.moving_subsets >= 1, "Trainer: moving_subsets = " << opt_.moving_subsets);
}

void Trainer::energy_and_grad(const Tensor& x, Tensor& u, Tensor& g) const {
  const int64_t n = x.size(0);
  u = Tensor::empty({n}, DType::Float64);
  g = Tensor::empty(x.shape(), x.dtype());
  const int64_t chunk = opt_.eval_chunk > 0 ? opt_.eval_chunk : n;
  for (int64_t b = 0; b < n; b += chunk) {
    const int64_t e = std::min(n, b + chunk);
    ag::Var xv(copy_tensor(x.rows(b, e)), true);
    ag::Var uv = energy_(xv);
    JEBM_CHECK(uv.dim() == 1 && uv.size(0) == e - b,
               "Trainer: the energy must map [N, ...] to [N], got " << shape_str(uv.shape()));
    put_f64(u, b, uv.value());
    const std::vector<Tensor> gr = ag::grad(ag::sum_all(uv), {xv});
    put_rows(g, b, gr[0]);
  }
}

Tensor Trainer::energy_only(const Tensor& x) const {
  ag::NoGradGuard no_grad;
  const int64_t n = x.size(0);
  Tensor u = Tensor::empty({n}, DType::Float64);
  const int64_t chunk = opt_.eval_chunk > 0 ? opt_.eval_chunk : n;
  for (int64_t b = 0; b < n; b += chunk) {
    const int64_t e = std::min(n, b + chunk);
    put_f64(u, b, energy_(ag::Var(x.rows(b, e))).value());
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
  if (!last_moved_.empty()) {
    Tensor u, g;
    energy_and_grad(gather_rows_copy(pop_.x, last_moved_), u, g);
    if (weighted) ula_jarzynski_step(pop_, u, g, opt_.ula, MoveKind::CompleteOnly, last_moved_);
    for (size_t j = 0; j < last_moved_.size(); ++j)
      u_cache_.data<double>()[last_moved_[j]] = u.data<double>()[j];
  }
  if (params_changed_) {
    std::vector<char> moved(static_cast<size_t>(n), 0);
    for (int64_t i : last_moved_) moved[static_cast<size_t>(i)] = 1;
    std::vector<int64_t> rest;
    for (int64_t i = 0; i < n; ++i)
      if (!moved[static_cast<size_t>(i)]) rest.push_back(i);
    if (!rest.empty()) {
      const Tensor u_new = energy_only(gather_rows_copy(pop_.x, rest));
      const Tensor u_old = gather_rows_copy(u_cache_, rest);
      if (weighted) jarzynski_parameter_change(pop_, u_old, u_new, rest);
      for (size_t j = 0; j < rest.size(); ++j) u_cache_.data<double>()[rest[j]] = u_new.data<double>()[j];
    }
  }
  params_changed_ = false;
  last_moved_.clear();
}

void Trainer::surrogate_backward(const Tensor& data, TrainerStepInfo& info) {
  const int64_t n = pop_.size();
  std::vector<int64_t> s;
  const bool all = opt_.gradient_batch == 0 || opt_.gradient_batch >= n;
  if (!all) s = random_subset(n, opt_.gradient_batch, pop_.seed ^ kSubsetKey, subset_counter_++);
  const int64_t b = all ? n : static_cast<int64_t>(s.size());
  std::vector<double> w(static_cast<size_t>(b), 1.0 / static_cast<double>(b));
  if (opt_.ula.weighted) {
    std::vector<double> lw(static_cast<size_t>(b));
    for (int64_t j = 0; j < b; ++j) lw[static_cast<size_t>(j)] = pop_.log_w.data<double>()[all ? j : s[static_cast<size_t>(j)]];
    w = normalized_weights(lw);
  }
  const Tensor xs = all ? pop_.x : gather_rows_copy(pop_.x, s);
  energy_.zero_grad();
  const ag::Var ud = energy_(ag::Var(data));
  const ag::Var uw = energy_(ag::Var(xs));
  const ag::Var wv(Tensor::from_vector(w, {b}, uw.dtype()));
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
  std::vector<char> moved;  // union of the subsets (several subsets only)
  if (subsets > 1) moved.assign(static_cast<size_t>(n), 0);
  for (int64_t s = 0; s < subsets; ++s) {
    if (!all) m = random_subset(n, opt_.moving_batch, pop_.seed ^ kSubsetKey, subset_counter_++);
    for (int64_t k = 0; k < opt_.moves_per_update; ++k) {
      Tensor u, g;
      if (k == 0 && all && g_all_valid_) {
        u = u_cache_;
        g = g_all_;
      } else {
        energy_and_grad(all ? pop_.x : gather_rows_copy(pop_.x, m), u, g);
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
  if (u_cache_.defined()) s.u_cache = copy_tensor(u_cache_);
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
  u_cache_ = s.u_cache.defined() ? copy_tensor(s.u_cache) : Tensor();
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
  bring_up_to_date();
  const WeightStats st = pop_.stats();
  info.ess = st.ess;
  info.cv2 = st.cv2;
  info.log_z = pop_.log_z_offset + st.log_mean;
  if (weights_ready) weights_ready(pop_, info);
  surrogate_backward(data_batch(iteration_), info);
  if (opt_.ula.weighted && opt_.resample && should_resample(st, pop_.size(), opt_.resample_rule)) {
    const std::vector<int64_t> anc = draw_population_ancestors(pop_, opt_.resample_rule.scheme);
    resample_population(pop_, anc);
    u_cache_ = gather_rows_copy(u_cache_, anc);
    if (g_all_valid_) g_all_ = gather_rows_copy(g_all_, anc);
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
