// Algorithm 1 (docs/method.md) through autograd (see samplers/trainer.hpp for the step's parts), on
// the device of the walkers and the energy. Per-walker work goes through runtime ops (gather_rows,
// index_copy_rows_: exact row copies on every device) and the samplers' device-transparent API, so on CUDA no
// walker data comes to the host; only the random subsets' indices go up (on several ranks, the ranks' rows are
// gathered in place over the device communicator, NCCL, when there is one; else through host memory). Tested by
// tests/test_samplers.cpp, tests/test_gmm.cpp, tests/test_cuda_trainer.cpp (CUDA vs CPU),
// tests/test_trainer_logz.cpp and tests/test_image_ranks.cpp (1, 2 and 3 ranks).
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
#include <numeric>

#include "autograd/engine.hpp"
#include "autograd/ops.hpp"
#include "runtime/ops.hpp"
#include "runtime/philox.hpp"
#include "samplers/distributed.hpp"

namespace jebm {

namespace {

constexpr uint64_t kSubsetKey = 0x7375627365747321ULL;  // Philox key offset for random walker subsets
constexpr uint64_t kGroupKey = 0x67726f7570732121ULL;   // Philox key offset for the correction's groups

// The first b entries of a partial Fisher-Yates shuffle of [0, n) keyed by (seed, offset), in draw order.
std::vector<int64_t> shuffled_prefix(int64_t n, int64_t b, uint64_t seed, uint64_t offset) {
  std::vector<int64_t> perm(static_cast<size_t>(n));
  std::iota(perm.begin(), perm.end(), int64_t{0});
  for (int64_t i = 0; i < b; ++i) {
    double u0, u1;
    philox_uniform2(seed, static_cast<uint64_t>(i), offset, &u0, &u1);
    const int64_t j = std::min(n - 1, i + static_cast<int64_t>(u0 * static_cast<double>(n - i)));
    std::swap(perm[static_cast<size_t>(i)], perm[static_cast<size_t>(j)]);
  }
  perm.resize(static_cast<size_t>(b));
  return perm;
}

// b distinct indices of [0, n), sorted.
std::vector<int64_t> random_subset(int64_t n, int64_t b, uint64_t seed, uint64_t offset) {
  std::vector<int64_t> s = shuffled_prefix(n, b, seed, offset);
  std::sort(s.begin(), s.end());
  return s;
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

namespace {

CommType comm_type_of_dtype(DType d) {
  switch (d) {
    case DType::Float32: return CommType::Float32;
    case DType::Float64: return CommType::Float64;
    case DType::Int64: return CommType::Int64;
  }
  JEBM_FAIL("no communicator type for dtype " << static_cast<int>(d));
}

// Rows [starts[r], starts[r + 1]) of t are rank r's (possibly none); afterwards every rank's t holds all of them,
// gathered in place: host rows over `host`, device rows over `device` (NCCL) when given, else through a host copy
// of the tensor (this rank's rows down, all rows up).
void gather_row_ranges(Communicator& host, Communicator* device, Tensor& t, const std::vector<int64_t>& starts) {
  const int64_t row = t.size(0) > 0 ? t.numel() / t.size(0) : 0;
  std::vector<int64_t> counts;
  for (size_t q = 0; q + 1 < starts.size(); ++q) counts.push_back((starts[q + 1] - starts[q]) * row);
  const CommType type = comm_type_of_dtype(t.dtype());
  if (t.device().is_cpu()) {
    host.allgatherv_in_place(t.raw_data(), counts, type);
  } else if (device) {
    device->allgatherv_in_place(t.raw_data(), counts, type);
  } else {
    const size_t r = static_cast<size_t>(host.rank());
    Tensor h = Tensor::empty(t.shape(), t.dtype());
    h.rows(starts[r], starts[r + 1]).copy_(t.rows(starts[r], starts[r + 1]).to(Device::cpu()));
    host.allgatherv_in_place(h.raw_data(), counts, type);
    t.copy_(h.to(t.device()));
  }
}

}  // namespace

void Trainer::set_communicator(Communicator* comm, Communicator* device) {
  JEBM_CHECK(!comm || comm->size() == 1 || opt_.shard_block > 0,
             "Trainer: " << comm->size() << " ranks need evaluation blocks (shard_block > 0)");
  JEBM_CHECK(!device || (comm && device->device_buffers() && device->size() == comm->size() &&
                         device->rank() == comm->rank()),
             "Trainer: the device communicator must be a device-buffer one over the same ranks as the host one");
  comm_ = comm;
  device_comm_ = device;
}

std::vector<int64_t> Trainer::rank_split(int64_t items) const { return split_starts(items, comm_ ? comm_->size() : 1); }

std::vector<int64_t> Trainer::block_row_starts(int64_t n) const {
  const int64_t bs = opt_.shard_block;
  std::vector<int64_t> starts = rank_split((n + bs - 1) / bs);
  for (int64_t& v : starts) v = std::min(n, v * bs);
  return starts;
}

Trainer::EvalRange Trainer::eval_range(int64_t n) const {
  if (opt_.shard_block <= 0) return {0, n, opt_.eval_chunk > 0 ? opt_.eval_chunk : n};
  const std::vector<int64_t> s = block_row_starts(n);
  const size_t r = static_cast<size_t>(comm_ ? comm_->rank() : 0);
  return {s[r], s[r + 1], opt_.shard_block};
}

void Trainer::gather_evaluated(Tensor& t) const {
  if (splits_rows()) gather_row_ranges(*comm_, device_comm_, t, block_row_starts(t.size(0)));
}

void Trainer::evaluate_rows(const Tensor& x, int64_t lo, int64_t hi, int64_t chunk, Tensor& u, Tensor& g) const {
  for (int64_t b = lo; b < hi; b += chunk) {
    const int64_t e = std::min(hi, b + chunk);
    ag::Var xv(x.rows(b, e).clone(), true);
    ag::Var uv = energy_(xv);
    JEBM_CHECK(uv.dim() == 1 && uv.size(0) == e - b,
               "Trainer: the energy must map [N, ...] to [N], got " << shape_str(uv.shape()));
    u.rows(b, e).copy_(uv.value());  // to float64 on the same device (exact)
    const std::vector<Tensor> gr = ag::grad(ag::sum_all(uv), {xv});
    g.rows(b, e).copy_(gr[0]);
  }
}

void Trainer::evaluate_own(const Tensor& x, Tensor& u, Tensor& g) const {
  u = Tensor::empty({x.size(0)}, DType::Float64, x.device());
  g = Tensor::empty(x.shape(), x.dtype(), x.device());
  evaluate_rows(x, 0, x.size(0), opt_.shard_block, u, g);
}

void Trainer::energy_and_grad(const Tensor& x, Tensor& u, Tensor& g) const {
  const int64_t n = x.size(0);
  u = Tensor::empty({n}, DType::Float64, x.device());
  g = Tensor::empty(x.shape(), x.dtype(), x.device());
  const EvalRange er = eval_range(n);
  evaluate_rows(x, er.lo, er.hi, er.chunk, u, g);
  gather_evaluated(u);
  gather_evaluated(g);
}

Tensor Trainer::energy_only(const Tensor& x) const {
  ag::NoGradGuard no_grad;
  const int64_t n = x.size(0);
  Tensor u = Tensor::empty({n}, DType::Float64, x.device());
  const EvalRange er = eval_range(n);
  for (int64_t b = er.lo; b < er.hi; b += er.chunk) {
    const int64_t e = std::min(er.hi, b + er.chunk);
    u.rows(b, e).copy_(energy_(ag::Var(x.rows(b, e))).value());
  }
  gather_evaluated(u);
  return u;
}

void Trainer::set_holdout(WalkerPopulation* holdout) {
  JEBM_CHECK(holdout != &pop_, "Trainer::set_holdout: the held-out walkers must not be the training walkers");
  if (holdout && holdout->x.defined() && pop_.x.defined())
    JEBM_CHECK(holdout->x.device() == pop_.x.device(), "Trainer::set_holdout: held-out walkers on "
                                                           << holdout->x.device().str() << ", the walkers on "
                                                           << pop_.x.device().str());
  hold_ = Track{};
  hold_.pop = holdout;
}

void Trainer::bring_up_to_date() {
  bring_up_to_date(train_);
  if (hold_.pop) bring_up_to_date(hold_);
}

void Trainer::bring_up_to_date(Track& t) {
  WalkerPopulation& pop = *t.pop;
  const int64_t n = pop.size();
  const bool weighted = opt_.ula.weighted;
  if (!t.initialised || t.all_moved) {
    // Every walker is evaluated: completes every pending move (none on the first step or after a restart).
    Tensor u, g;
    const bool complete = weighted && t.initialised;
    if (splits_rows()) {
      // Each rank completes its own blocks' rows; their energies and weight state are gathered, not their
      // gradients (make_moves reads this rank's rows of g_all only).
      const EvalRange er = evaluate_split(pop, u, g);
      if (complete) {
        step_own(pop, u.rows(er.lo, er.hi), g, opt_.ula, MoveKind::CompleteOnly, er);
        gather_moved_rows(pop, Tensor(), n, {&pop.log_w, &pop.partial, &pop.pending});
      }
    } else {
      energy_and_grad(pop.x, u, g);
      if (complete) ula_jarzynski_step(pop, u, g, opt_.ula, MoveKind::CompleteOnly);
    }
    t.u_cache = u;
    t.g_all = g;
    t.g_all_valid = true;
    t.initialised = true;
    t.params_changed = false;
    t.all_moved = false;  // completed: a second call must not re-complete
    t.last_moved.clear();
    return;
  }
  t.g_all_valid = false;
  const Device dev = pop.x.device();
  if (!t.last_moved.empty() && splits_rows()) {
    // Each rank completes its own blocks' rows (as make_moves moved them); their energies and weight state are
    // gathered, not their gradients.
    const int64_t rows = static_cast<int64_t>(t.last_moved.size());
    const EvalRange er = eval_range(rows);
    const std::vector<int64_t> mine(t.last_moved.begin() + er.lo, t.last_moved.begin() + er.hi);
    Tensor u = Tensor::empty({rows}, DType::Float64, dev);
    if (!mine.empty()) {
      Tensor um, g;
      evaluate_own(gather_rows(pop.x, index_tensor(mine, dev)), um, g);
      if (weighted) ula_jarzynski_step(pop, um, g, opt_.ula, MoveKind::CompleteOnly, mine);
      u.rows(er.lo, er.hi).copy_(um);
    }
    gather_evaluated(u);
    const Tensor idx = index_tensor(t.last_moved, dev);
    if (weighted) gather_moved_rows(pop, idx, rows, {&pop.log_w, &pop.partial, &pop.pending});
    index_copy_rows_(t.u_cache, idx, u);
  } else if (!t.last_moved.empty()) {
    const Tensor idx = index_tensor(t.last_moved, dev);
    Tensor u, g;
    energy_and_grad(gather_rows(pop.x, idx), u, g);
    if (weighted) ula_jarzynski_step(pop, u, g, opt_.ula, MoveKind::CompleteOnly, t.last_moved);
    index_copy_rows_(t.u_cache, idx, u);
  }
  if (t.params_changed) {
    std::vector<char> moved(static_cast<size_t>(n), 0);
    for (int64_t i : t.last_moved) moved[static_cast<size_t>(i)] = 1;
    std::vector<int64_t> rest;
    for (int64_t i = 0; i < n; ++i)
      if (!moved[static_cast<size_t>(i)]) rest.push_back(i);
    if (!rest.empty()) {
      const Tensor idx = index_tensor(rest, dev);
      const Tensor u_new = energy_only(gather_rows(pop.x, idx));
      if (weighted) jarzynski_parameter_change(pop, gather_rows(t.u_cache, idx), u_new, rest, opt_.ula.energy_coef());
      index_copy_rows_(t.u_cache, idx, u_new);
    }
  }
  t.params_changed = false;
  t.last_moved.clear();
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
    blocked_surrogate_backward(data, xs, w, info);
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

void Trainer::blocked_surrogate_backward(const Tensor& data, const Tensor& xs, const Tensor& w, TrainerStepInfo& info) {
  const std::vector<ag::Var> params = energy_.parameters();
  std::vector<int64_t> offset(params.size() + 1, 0);
  for (size_t j = 0; j < params.size(); ++j) offset[j + 1] = offset[j] + params[j].value().numel();
  const int64_t np = offset.back(), bs = opt_.shard_block, nd = data.size(0), nw = xs.size(0);
  const int64_t dblocks = (nd + bs - 1) / bs, blocks = dblocks + (nw + bs - 1) / bs;
  // Per block: [loss, sum of the data energies, the gradient of every parameter] in float64.
  const int64_t rec = 2 + np;
  const std::vector<int64_t> split = rank_split(blocks);
  const size_t me_r = static_cast<size_t>(comm_ ? comm_->rank() : 0);
  const int64_t b0 = split[me_r], b1 = split[me_r + 1];
  std::vector<double> mine(static_cast<size_t>((b1 - b0) * rec), 0.0);
  for (int64_t blk = b0; blk < b1; ++blk) {
    double* out = mine.data() + (blk - b0) * rec;
    energy_.zero_grad();
    ag::Var loss;
    if (blk < dblocks) {  // the data part: (1/B) sum_b U(x_b) (+ alpha (1/B) sum_b U(x_b)^2)
      const int64_t b = blk * bs, e = std::min(nd, b + bs);
      const ag::Var ud = energy_(ag::Var(data.rows(b, e)));
      const ag::Var su = ag::sum_all(ud);
      out[1] = su.value().item();
      loss = ag::mul_scalar(su, 1.0 / static_cast<double>(nd));
      if (opt_.alpha != 0.0)
        loss = ag::add(loss, ag::mul_scalar(ag::sum_all(ag::square(ud)), opt_.alpha / static_cast<double>(nd)));
    } else {  // the walker part: -sum_i w_i U(X_i) (+ alpha sum_i w_i U(X_i)^2)
      const int64_t b = (blk - dblocks) * bs, e = std::min(nw, b + bs);
      const ag::Var uw = energy_(ag::Var(xs.rows(b, e)));
      const ag::Var wv(w.rows(b, e).to(uw.dtype()));
      loss = ag::neg(ag::sum_all(ag::mul(wv, uw)));
      if (opt_.alpha != 0.0) loss = ag::add(loss, ag::mul_scalar(ag::sum_all(ag::mul(wv, ag::square(uw))), opt_.alpha));
    }
    out[0] = loss.value().item();
    ag::backward(loss);
    for (size_t j = 0; j < params.size(); ++j) {
      if (!params[j].grad().defined()) continue;
      const std::vector<double> gj = params[j].grad().to_vector();
      std::copy(gj.begin(), gj.end(), out + 2 + offset[j]);
    }
  }
  // Every value is the sum over all blocks in block order, in float64: the same bits whatever the rank count.
  std::vector<double> tot(static_cast<size_t>(rec), 0.0);
  const int size = comm_ ? comm_->size() : 1;
  if (size == 1) {
    for (int64_t blk = 0; blk < blocks; ++blk)
      for (int64_t q = 0; q < rec; ++q) tot[static_cast<size_t>(q)] += mine[static_cast<size_t>(blk * rec + q)];
  } else {
    // A reproducible reduce-scatter: rank s sums slice s of the record over all blocks (alltoallv: every rank sends
    // each slice of its blocks to the slice's rank; they arrive by source rank, i.e. in block order), then the
    // slices are gathered. About 2 records per rank travel, not one per block.
    const std::vector<int64_t> lo = rank_split(rec);  // the slices of the record
    const int me = comm_->rank();
    const int64_t mine_n = b1 - b0, my_len = lo[static_cast<size_t>(me) + 1] - lo[static_cast<size_t>(me)];
    std::vector<double> send;
    std::vector<int64_t> send_counts(static_cast<size_t>(size)), recv_counts(static_cast<size_t>(size));
    for (int r = 0; r < size; ++r) {
      const int64_t a = lo[static_cast<size_t>(r)], len = lo[static_cast<size_t>(r) + 1] - a;
      for (int64_t j = 0; j < mine_n; ++j)
        send.insert(send.end(), mine.begin() + j * rec + a, mine.begin() + j * rec + a + len);
      send_counts[static_cast<size_t>(r)] = mine_n * len;
      recv_counts[static_cast<size_t>(r)] = (split[static_cast<size_t>(r) + 1] - split[static_cast<size_t>(r)]) * my_len;
    }
    std::vector<double> got(static_cast<size_t>(blocks * my_len));
    comm_->alltoallv(send.data(), send_counts, got.data(), recv_counts, CommType::Float64);
    std::vector<double> slice(static_cast<size_t>(my_len), 0.0);
    for (int64_t blk = 0; blk < blocks; ++blk)
      for (int64_t q = 0; q < my_len; ++q) slice[static_cast<size_t>(q)] += got[static_cast<size_t>(blk * my_len + q)];
    std::vector<int64_t> slice_counts(static_cast<size_t>(size));
    for (int r = 0; r < size; ++r) slice_counts[static_cast<size_t>(r)] = lo[static_cast<size_t>(r) + 1] - lo[static_cast<size_t>(r)];
    comm_->allgatherv(slice.data(), tot.data(), slice_counts, CommType::Float64);
  }
  for (size_t j = 0; j < params.size(); ++j) {
    ag::Var pj = params[j];  // shares the impl: its grad() is replaced in place
    const Tensor& v = params[j].value();
    pj.grad() = Tensor::from_vector(std::vector<double>(tot.begin() + 2 + offset[j], tot.begin() + 2 + offset[j + 1]),
                                    v.shape(), v.dtype(), v.device());
  }
  info.loss = tot[0];
  info.data_energy = tot[1] / static_cast<double>(nd);
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
  const std::vector<int64_t> perm = shuffled_prefix(b, b, pop_.seed ^ kGroupKey, static_cast<uint64_t>(iteration_));
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

void Trainer::make_moves(Track& t, int64_t moving_batch) {
  WalkerPopulation& pop = *t.pop;
  const int64_t n = pop.size();
  const Device dev = pop.x.device();
  const bool all = moving_batch == 0 || moving_batch >= n;
  const int64_t subsets = all ? 1 : opt_.moving_subsets;
  // With evaluation blocks on several ranks, each rank moves only its blocks' rows of the moving set, through all
  // of the subset's moves, and the moved walkers' state is gathered once after them: one gather of positions per
  // subset instead of one of energies and gradients per move. The bits are one process's: a walker's move reads
  // its own row only, its noise is keyed by its global index and by the move counter that every rank advances.
  const bool split = splits_rows();
  std::vector<int64_t> m;
  Tensor idx;  // m on the walkers' device
  std::vector<char> moved;  // union of the subsets (several subsets only)
  if (subsets > 1) moved.assign(static_cast<size_t>(n), 0);
  for (int64_t s = 0; s < subsets; ++s) {
    if (!all) {
      m = random_subset(n, moving_batch, pop.seed ^ kSubsetKey, t.subset_counter++);
      idx = index_tensor(m, dev);
    }
    const int64_t rows = all ? n : static_cast<int64_t>(m.size());
    const EvalRange er = split ? eval_range(rows) : EvalRange{0, rows, rows};
    std::vector<int64_t> mine;  // split: the walkers of this rank's rows of the moving set
    for (int64_t r = er.lo; split && r < er.hi; ++r) mine.push_back(all ? r : m[static_cast<size_t>(r)]);
    const Tensor mine_idx = mine.empty() ? Tensor() : index_tensor(mine, dev);
    for (int64_t k = 0; k < opt_.moves_per_update; ++k) {
      const MoveKind kind = k == 0 && s == 0 ? MoveKind::MoveOnly : MoveKind::CompleteAndMove;
      Tensor u, g;
      if (k == 0 && all && t.g_all_valid) {
        u = split ? t.u_cache.rows(er.lo, er.hi) : t.u_cache;
        g = t.g_all;  // split: this rank's rows only
      } else if (split) {
        if (!mine.empty()) evaluate_own(gather_rows(pop.x, mine_idx), u, g);
      } else {
        energy_and_grad(all ? pop.x : gather_rows(pop.x, idx), u, g);
      }
      // Nothing is pending before the very first move (part 1 completed everything); later moves complete the
      // previous one at the same theta (walkers of an earlier subset included).
      if (!split) {
        ula_jarzynski_step(pop, u, g, opt_.ula, kind, m);
        if (after_move) after_move(pop, m);
      } else if (!mine.empty()) {
        ula_jarzynski_step(pop, u, g, opt_.ula, kind, mine);
        if (after_move) after_move(pop, mine);
      } else {
        ++pop.moves;  // none of the rows is this rank's: its move counter advances with the others'
      }
    }
    if (split) gather_moved_rows(pop, all ? Tensor() : idx, rows);
    if (subsets > 1)
      for (int64_t i : m) moved[static_cast<size_t>(i)] = 1;
  }
  if (subsets > 1) {
    m.clear();
    for (int64_t i = 0; i < n; ++i)
      if (moved[static_cast<size_t>(i)]) m.push_back(i);
  }
  t.last_moved = m;
  t.all_moved = all;
  t.g_all_valid = false;
}

bool Trainer::splits_rows() const { return opt_.shard_block > 0 && comm_ && comm_->size() > 1; }

bool Trainer::plain_move(WalkerPopulation& pop, const UlaConfig& cfg, const std::function<bool(const Tensor&)>& check) {
  JEBM_CHECK(!cfg.weighted, "Trainer::plain_move: for unweighted moves (weighted = false)");
  Tensor u, g;
  if (!splits_rows()) {
    energy_and_grad(pop.x, u, g);
    if (!check(u)) return false;
    ula_jarzynski_step(pop, u, g, cfg, MoveKind::MoveOnly);
    if (after_move) after_move(pop, {});
    return true;
  }
  // This rank's rows only; the energies (N doubles) are gathered for `check`, the gradients (N rows) are not.
  const EvalRange er = evaluate_split(pop, u, g);
  if (!check(u)) return false;
  step_own(pop, u.rows(er.lo, er.hi), g, cfg, MoveKind::MoveOnly, er);
  return true;
}

Trainer::EvalRange Trainer::evaluate_split(const WalkerPopulation& pop, Tensor& u, Tensor& g) const {
  const int64_t n = pop.size();
  const EvalRange er = eval_range(n);
  u = Tensor::empty({n}, DType::Float64, pop.x.device());
  Tensor um;
  evaluate_own(pop.x.rows(er.lo, er.hi), um, g);
  u.rows(er.lo, er.hi).copy_(um);
  gather_evaluated(u);
  return er;
}

void Trainer::step_own(WalkerPopulation& pop, const Tensor& u, const Tensor& g, const UlaConfig& cfg, MoveKind kind,
                       const EvalRange& er) const {
  const bool moves = kind != MoveKind::CompleteOnly;
  if (er.hi == er.lo) {
    if (moves) ++pop.moves;  // none of the rows is this rank's: its move counter advances with the others'
    return;
  }
  std::vector<int64_t> mine(static_cast<size_t>(er.hi - er.lo));
  std::iota(mine.begin(), mine.end(), er.lo);
  ula_jarzynski_step(pop, u, g, cfg, kind, mine);
  if (moves && after_move) after_move(pop, mine);
}

void Trainer::gather_walkers(WalkerPopulation& pop) const {
  if (splits_rows()) gather_moved_rows(pop, Tensor(), pop.size());
}

void Trainer::gather_moved_rows(WalkerPopulation& pop, const Tensor& idx, int64_t rows,
                                std::vector<Tensor*> fields) const {
  if (fields.empty()) fields = {&pop.x, &pop.x_prev, &pop.log_w, &pop.partial, &pop.pending};
  const std::vector<int64_t> starts = block_row_starts(rows);
  for (Tensor* f : fields) {
    if (!idx.defined()) {
      gather_row_ranges(*comm_, device_comm_, *f, starts);
      continue;
    }
    Tensor sub = gather_rows(*f, idx);
    gather_row_ranges(*comm_, device_comm_, sub, starts);
    index_copy_rows_(*f, idx, sub);
  }
}

void Trainer::resample(Track& t) {
  const Tensor anc = population_ancestors(*t.pop, opt_.resample_rule.scheme);
  resample_population(*t.pop, anc);
  t.u_cache = gather_rows(t.u_cache, anc);
  if (t.g_all_valid && splits_rows()) {
    // g_all holds this rank's rows, and an ancestor may be another rank's: the rows are gathered (on resampling
    // updates only). Evaluating the copies afresh instead would not give the same bits: a row's float32 gradient
    // depends on its place in its evaluation block.
    const EvalRange er = eval_range(t.pop->size());
    Tensor all = Tensor::empty(t.pop->x.shape(), t.g_all.dtype(), t.g_all.device());
    all.rows(er.lo, er.hi).copy_(t.g_all);
    gather_evaluated(all);
    t.g_all = gather_rows(all, anc.rows(er.lo, er.hi));
  } else if (t.g_all_valid) {
    t.g_all = gather_rows(t.g_all, anc);
  }
  if (opt_.rejuvenation_moves > 0) rejuvenate(t);
}

void Trainer::rejuvenate(Track& t) {
  WalkerPopulation& pop = *t.pop;
  UlaConfig warm = opt_.ula;
  // sqrt(2h): the 2h and sigma kernels coincide. The tempered kernel's target exp(-U / T) keeps its own exact
  // temperature: its moves are already exact-temperature ULA moves for it.
  if (opt_.ula.weight_kernel != WeightKernel::Tempered) warm.sigma = 0.0;
  // Nothing is pending here (part 1 completed every walker); the last evaluation completes the last warm move
  // and leaves U and grad_x U of every walker for the step's own moves, as part 1 does. Split over ranks, each
  // rank moves its own rows through every warm move (as make_moves does) and the walkers are gathered once.
  const bool split = splits_rows();
  for (int64_t k = 0; k <= opt_.rejuvenation_moves; ++k) {
    const MoveKind kind = k == opt_.rejuvenation_moves ? MoveKind::CompleteOnly
                          : k == 0                     ? MoveKind::MoveOnly
                                                       : MoveKind::CompleteAndMove;
    Tensor u, g;
    EvalRange er = eval_range(pop.size());
    if (k == 0 && t.g_all_valid) {
      u = t.u_cache;
      g = t.g_all;  // split: this rank's rows
    } else if (split) {
      er = evaluate_split(pop, u, g);
    } else {
      energy_and_grad(pop.x, u, g);
    }
    if (split) {
      step_own(pop, u.rows(er.lo, er.hi), g, warm, kind, er);
    } else {
      ula_jarzynski_step(pop, u, g, warm, kind);
      if (kind != MoveKind::CompleteOnly && after_move) after_move(pop, {});
    }
    if (kind == MoveKind::CompleteOnly) {
      if (split) gather_walkers(pop);
      t.u_cache = u;
      t.g_all = g;
      t.g_all_valid = true;
    }
  }
}

bool Trainer::holdout_should_resample(const WeightStats& st, int64_t gradient_walkers) const {
  if (!std::isfinite(st.log_sum)) return false;
  // The batch-ESS rule counts the gradient walkers' ESS; the held-out walkers have none, so they use the same
  // fraction of their own ESS: ess / M < threshold / (gradient walkers).
  if (opt_.resample_batch_ess > 0)
    return st.ess * static_cast<double>(gradient_walkers) <
           opt_.resample_batch_ess * static_cast<double>(hold_.pop->size());
  return should_resample(st, hold_.pop->size(), opt_.resample_rule);
}

Trainer::State Trainer::state() const {
  State s;
  s.iteration = iteration_;
  s.initialised = train_.initialised;
  s.params_changed = train_.params_changed;
  s.all_moved = train_.all_moved;
  if (train_.u_cache.defined()) s.u_cache = copy_to(train_.u_cache, Device::cpu());
  s.last_moved = train_.last_moved;
  s.subset_counter = train_.subset_counter;
  s.holdout_initialised = hold_.initialised;
  s.holdout_params_changed = hold_.params_changed;
  s.holdout_all_moved = hold_.all_moved;
  if (hold_.u_cache.defined()) s.holdout_u_cache = copy_to(hold_.u_cache, Device::cpu());
  s.holdout_last_moved = hold_.last_moved;
  s.holdout_subset_counter = hold_.subset_counter;
  s.log_z_correction = log_z_correction_;
  return s;
}

namespace {

void check_track_state(bool initialised, const Tensor& u_cache, const std::vector<int64_t>& last_moved, int64_t n,
                       const char* which) {
  JEBM_CHECK(!initialised || (u_cache.defined() && u_cache.numel() == n),
             "Trainer::restore: " << which << "u_cache has " << (u_cache.defined() ? u_cache.numel() : 0)
                                  << " entries for " << n << " walkers");
  for (int64_t i : last_moved)
    JEBM_CHECK(i >= 0 && i < n, "Trainer::restore: " << which << "walker index " << i << " out of " << n);
}

}  // namespace

void Trainer::restore(const State& s) {
  check_track_state(s.initialised, s.u_cache, s.last_moved, pop_.size(), "");
  JEBM_CHECK(hold_.pop || !s.holdout_initialised,
             "Trainer::restore: the state has held-out walkers; attach them with set_holdout first");
  if (hold_.pop) check_track_state(s.holdout_initialised, s.holdout_u_cache, s.holdout_last_moved, hold_.pop->size(),
                                   "held-out ");
  iteration_ = s.iteration;
  train_.initialised = s.initialised;
  train_.params_changed = s.params_changed;
  train_.all_moved = s.all_moved;
  train_.u_cache = s.u_cache.defined() ? copy_to(s.u_cache, pop_.x.device()) : Tensor();
  train_.last_moved = s.last_moved;
  train_.subset_counter = s.subset_counter;
  train_.g_all_valid = false;  // a step() always ends with g_all invalid
  if (hold_.pop) {
    hold_.initialised = s.holdout_initialised;
    hold_.params_changed = s.holdout_params_changed;
    hold_.all_moved = s.holdout_all_moved;
    hold_.u_cache = s.holdout_u_cache.defined() ? copy_to(s.holdout_u_cache, hold_.pop->x.device()) : Tensor();
    hold_.last_moved = s.holdout_last_moved;
    hold_.subset_counter = s.holdout_subset_counter;
    hold_.g_all_valid = false;
  }
  log_z_correction_ = s.log_z_correction;
}

TrainerStepInfo Trainer::step() {
  JEBM_CHECK(data_batch && optimizer_step, "Trainer::step: data_batch and optimizer_step callbacks are required");
  const bool correcting = opt_.correction_groups > 0 && opt_.ula.weighted;
  JEBM_CHECK(!correcting || step_scale_dot, "Trainer::step: correction_groups = " << opt_.correction_groups
                                                                                 << " needs the step_scale_dot callback");
  TrainerStepInfo info;
  info.iteration = iteration_;
  if (opt_.algorithm == Algorithm::Cd && cd_should_restart(iteration_, opt_.cd_k)) {
    JEBM_CHECK(restart_walkers, "Trainer::step: CD needs the restart_walkers callback");
    restart_walkers(pop_, iteration_);
    train_.initialised = false;
    train_.all_moved = false;
    train_.last_moved.clear();
    info.restarted = true;
  }
  // The walkers whose moves bring_up_to_date() completes (it clears the list): the gradient walkers of
  // gradient_walkers_moved.
  const std::vector<int64_t> moved = opt_.gradient_walkers_moved && train_.initialised && !train_.all_moved
                                         ? train_.last_moved
                                         : std::vector<int64_t>{};
  bring_up_to_date();
  const WeightStats st = pop_.stats();
  info.ess = st.ess;
  info.cv2 = st.cv2;
  info.log_z = pop_.log_z_offset + st.log_mean;
  if (correcting) info.log_z_corrected = info.log_z + log_z_correction_;
  WeightStats hst;
  if (hold_.pop) {
    hst = hold_.pop->stats();
    info.holdout_ess = hst.ess;
    info.holdout_log_z = hold_.pop->log_z_offset + hst.log_mean;
  }
  if (weights_ready) weights_ready(pop_, info);
  const int64_t gradient_walkers = surrogate_backward(data_batch(iteration_), moved, info);
  // Non-finite weights (a diverged run) are left for the caller's guard: drawing ancestors from them throws.
  const bool fire = std::isfinite(st.log_sum) &&
                    (opt_.resample_batch_ess > 0 ? info.batch_ess < opt_.resample_batch_ess
                                                 : should_resample(st, pop_.size(), opt_.resample_rule));
  if (opt_.ula.weighted && opt_.resample && fire) {
    resample(train_);
    info.resampled = true;
  }
  make_moves(train_, opt_.moving_batch);
  if (hold_.pop) {
    const int64_t n = pop_.size(), m = hold_.pop->size();
    if (opt_.ula.weighted && opt_.resample && holdout_should_resample(hst, gradient_walkers)) {
      resample(hold_);
      info.holdout_resampled = true;
    }
    const int64_t mb = opt_.moving_batch == 0 || opt_.moving_batch >= n
                           ? 0
                           : std::max<int64_t>(1, (opt_.moving_batch * m + n / 2) / n);
    make_moves(hold_, mb);
  }
  optimizer_step(iteration_);
  if (correcting && !c_.empty()) log_z_correction_ += step_scale_dot(c_);
  c_.clear();
  train_.params_changed = true;
  if (hold_.pop) hold_.params_changed = true;
  if (log) log(info);
  ++iteration_;
  return info;
}

}  // namespace jebm
