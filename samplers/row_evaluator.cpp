// RowEvaluator (samplers/row_evaluator.hpp): pieces of rows through the energy, evaluation blocks shared out over
// ranks, and the gathers of rows and block sums. Tested by tests/test_row_evaluator.cpp (1, 2, 3 ranks),
// tests/test_trainer_blocks.cpp and tests/test_image_ranks.cpp.
#include "samplers/row_evaluator.hpp"

#include <omp.h>

#include <algorithm>
#include <exception>
#include <numeric>

#include "autograd/engine.hpp"
#include "autograd/ops.hpp"
#include "runtime/checked_size.hpp"
#include "runtime/ops.hpp"

namespace jebm {

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

Tensor index_tensor(const std::vector<int64_t>& idx, Device device) {
  return Tensor::from_vector(idx, {static_cast<int64_t>(idx.size())}, device);
}

// f(b, e) for the pieces [b, e) of [0, n), `step` rows each. In parallel, one piece per thread at a time, when
// `parallel` and there are at least as many pieces as threads (with fewer, each piece's ops use the threads
// instead): a piece's rows stay in the core's L2 cache through the whole network (on a 2 MB L2, 256 MNIST walkers
// took 13 % less time in pieces of 64 than in one pass at 1 thread, and 1024 took 9 % less at 2 threads in parallel
// pieces of 64 than in pieces of 256 one after another; docs/performance.md, "Pieces of walkers"). The pieces are
// the same whichever thread evaluates them, so the bits do not depend on the thread count. An exception in a piece
// is rethrown after the loop (the first piece's that failed).
template <typename F>
void for_pieces(int64_t n, int64_t step, bool parallel, F f) {
  // Without overflow for any step (--eval-chunk may be as large as int64 allows): p * step < n for every piece.
  const int64_t pieces = n > 0 ? ceil_div(n, step) : 0;
  auto piece = [&](int64_t p) {
    const int64_t b = p * step;
    f(b, b + std::min(step, n - b));
  };
  const int threads = omp_in_parallel() ? 1 : omp_get_max_threads();
  if (!parallel || threads < 2 || pieces < threads) {
    for (int64_t p = 0; p < pieces; ++p) piece(p);
    return;
  }
  std::vector<std::exception_ptr> failed(static_cast<size_t>(pieces));
#pragma omp parallel for schedule(dynamic, 1)
  for (int64_t p = 0; p < pieces; ++p) {
    try {
      piece(p);
    } catch (...) {
      failed[static_cast<size_t>(p)] = std::current_exception();
    }
  }
  for (const std::exception_ptr& e : failed)
    if (e) std::rethrow_exception(e);
}

}  // namespace

RowEvaluator::RowEvaluator(Module& energy, int64_t chunk, int64_t block)
    : energy_(energy), chunk_(chunk), block_(block) {
  JEBM_CHECK(chunk >= 0 && block >= 0, "RowEvaluator: chunk " << chunk << ", block " << block << " (>= 0)");
}

void RowEvaluator::set_communicator(Communicator* comm, Communicator* device) {
  JEBM_CHECK(!comm || comm->size() == 1 || block_ > 0,
             "Trainer: " << comm->size() << " ranks need evaluation blocks (shard_block > 0)");
  JEBM_CHECK(!device || (comm && device->device_buffers() && device->size() == comm->size() &&
                         device->rank() == comm->rank()),
             "Trainer: the device communicator must be a device-buffer one over the same ranks as the host one");
  comm_ = comm;
  device_comm_ = device;
}

bool RowEvaluator::splits_rows() const { return block_ > 0 && size() > 1; }

std::vector<int64_t> RowEvaluator::row_starts(int64_t n) const {
  std::vector<int64_t> starts = split_starts(ceil_div(n, block_), size());  // n + block - 1 may overflow
  for (int64_t& v : starts) v = std::min(n, v * block_);
  return starts;
}

std::pair<int64_t, int64_t> RowEvaluator::own_range(int64_t n) const {
  if (block_ <= 0) return {0, n};
  const std::vector<int64_t> s = row_starts(n);
  const size_t r = static_cast<size_t>(rank());
  return {s[r], s[r + 1]};
}

int64_t RowEvaluator::piece(int64_t rows, Device device) const {
  if (block_ > 0) return block_;
  if (chunk_ > 0) return chunk_;
  return device.is_cpu() ? kCpuPiece : std::max<int64_t>(rows, 1);
}

RowSet RowEvaluator::all_rows(const WalkerPopulation& pop) const {
  RowSet s;
  s.count = pop.size();
  std::tie(s.lo, s.hi) = own_range(s.count);
  if (splits_rows()) {
    s.own.resize(static_cast<size_t>(s.hi - s.lo));
    std::iota(s.own.begin(), s.own.end(), s.lo);
  }
  return s;
}

RowSet RowEvaluator::rows(const WalkerPopulation& pop, std::vector<int64_t> walkers) const {
  RowSet s;
  s.walkers = std::move(walkers);
  s.count = static_cast<int64_t>(s.walkers.size());
  s.idx = index_tensor(s.walkers, pop.x.device());
  std::tie(s.lo, s.hi) = own_range(s.count);
  if (splits_rows()) {
    s.own.assign(s.walkers.begin() + s.lo, s.walkers.begin() + s.hi);
    if (!s.own.empty()) s.own_idx = index_tensor(s.own, pop.x.device());
  } else {
    s.own_idx = s.idx;
  }
  return s;
}

void RowEvaluator::evaluate_pieces(const Tensor& x, Tensor u, Tensor g) const {
  const int64_t n = x.size(0);
  const bool parallel = x.device().is_cpu() && energy_.concurrent_forward();
  for_pieces(n, piece(n, x.device()), parallel, [&](int64_t b, int64_t e) {
    ag::Var xv(x.rows(b, e), true);  // a view: nothing writes x while its energy and gradient are evaluated
    ag::Var uv = energy_(xv);
    JEBM_CHECK(uv.dim() == 1 && uv.size(0) == e - b,
               "Trainer: the energy must map [N, ...] to [N], got " << shape_str(uv.shape()));
    u.rows(b, e).copy_(uv.value());  // to float64 on the same device (exact)
    const std::vector<Tensor> gr = ag::grad(ag::sum_all(uv), {xv});
    g.rows(b, e).copy_(gr[0]);
  });
}

RowValues RowEvaluator::evaluate(const WalkerPopulation& pop, const RowSet& s, bool gather_energies) const {
  const Device dev = pop.x.device();
  Shape gs = pop.x.shape();
  gs[0] = s.hi - s.lo;
  RowValues v{Tensor::empty({s.count}, DType::Float64, dev), Tensor::empty(gs, pop.x.dtype(), dev)};
  if (s.hi > s.lo)
    evaluate_pieces(s.all() ? pop.x.rows(s.lo, s.hi) : gather_rows(pop.x, s.own_idx), v.u.rows(s.lo, s.hi), v.g);
  if (gather_energies) gather_own_rows(v.u);
  return v;
}

void RowEvaluator::move(WalkerPopulation& pop, const RowSet& s, const RowValues& v, const UlaConfig& cfg,
                        MoveKind kind, const AfterMove& after) const {
  const bool moves = kind != MoveKind::CompleteOnly;
  if (!splits_rows()) {
    ula_jarzynski_step(pop, v.u, v.g, cfg, kind, s.walkers);
    if (moves && after) after(pop, s.walkers);
    return;
  }
  if (s.own.empty()) {
    if (moves) ++pop.moves;  // none of the rows is this rank's: its move counter advances with the others'
    return;
  }
  ula_jarzynski_step(pop, v.u.rows(s.lo, s.hi), v.g, cfg, kind, s.own);
  if (moves && after) after(pop, s.own);
}

void RowEvaluator::gather(WalkerPopulation& pop, const RowSet& s, std::vector<Tensor*> fields) const {
  if (!splits_rows()) return;
  if (fields.empty()) fields = {&pop.x, &pop.x_prev, &pop.log_w, &pop.partial, &pop.pending};
  const std::vector<int64_t> starts = row_starts(s.count);
  for (Tensor* f : fields) {
    if (s.all()) {
      gather_row_ranges(*comm_, device_comm_, *f, starts);
      continue;
    }
    Tensor sub = gather_rows(*f, s.idx);
    gather_row_ranges(*comm_, device_comm_, sub, starts);
    index_copy_rows_(*f, s.idx, sub);
  }
}

Tensor RowEvaluator::follow_ancestors(const Tensor& own, const Tensor& anc) const {
  if (!splits_rows()) return gather_rows(own, anc);
  // An ancestor may be another rank's row: the rows are gathered first. Evaluating the copies afresh instead would
  // not give the same bits: a row's float32 gradient depends on its place in its evaluation block.
  const int64_t n = anc.size(0);
  const auto [lo, hi] = own_range(n);
  Shape shape = own.shape();
  shape[0] = n;
  Tensor all = Tensor::empty(shape, own.dtype(), own.device());
  all.rows(lo, hi).copy_(own);
  gather_own_rows(all);
  return gather_rows(all, anc.rows(lo, hi));
}

void RowEvaluator::gather_own_rows(Tensor& t) const {
  if (splits_rows()) gather_row_ranges(*comm_, device_comm_, t, row_starts(t.size(0)));
}

void RowEvaluator::energy_and_grad(const Tensor& x, Tensor& u, Tensor& g) const {
  const int64_t n = x.size(0);
  u = Tensor::empty({n}, DType::Float64, x.device());
  g = Tensor::empty(x.shape(), x.dtype(), x.device());
  const auto [lo, hi] = own_range(n);
  evaluate_pieces(x.rows(lo, hi), u.rows(lo, hi), g.rows(lo, hi));
  gather_own_rows(u);
  gather_own_rows(g);
}

Tensor RowEvaluator::energy_only(const Tensor& x) const {
  const int64_t n = x.size(0);
  Tensor u = Tensor::empty({n}, DType::Float64, x.device());
  const auto [lo, hi] = own_range(n);
  const bool parallel = x.device().is_cpu() && energy_.concurrent_forward();
  for_pieces(hi - lo, piece(n, x.device()), parallel, [&](int64_t b, int64_t e) {
    ag::NoGradGuard no_grad;  // per piece: the flag is per thread
    u.rows(lo + b, lo + e).copy_(energy_(ag::Var(x.rows(lo + b, lo + e))).value());
  });
  gather_own_rows(u);
  return u;
}

RowEvaluator::Loss RowEvaluator::blocked_loss_backward(const Tensor& data, const Tensor& xs, const Tensor& w,
                                                       double alpha) const {
  const std::vector<ag::Var> params = energy_.parameters();
  std::vector<int64_t> offset(params.size() + 1, 0);
  for (size_t j = 0; j < params.size(); ++j) offset[j + 1] = offset[j] + params[j].value().numel();
  const int64_t bs = block_, nd = data.size(0), nw = xs.size(0);
  const int64_t dblocks = ceil_div(nd, bs), blocks = dblocks + ceil_div(nw, bs);
  // Per block: [loss, sum of the data energies, the gradient of every parameter] in float64.
  const int64_t rec = 2 + offset.back();
  const std::vector<int64_t> split = split_starts(blocks, size());
  const int64_t b0 = split[static_cast<size_t>(rank())], b1 = split[static_cast<size_t>(rank()) + 1];
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
      if (alpha != 0.0)
        loss = ag::add(loss, ag::mul_scalar(ag::sum_all(ag::square(ud)), alpha / static_cast<double>(nd)));
    } else {  // the walker part: -sum_i w_i U(X_i) (+ alpha sum_i w_i U(X_i)^2)
      const int64_t b = (blk - dblocks) * bs, e = std::min(nw, b + bs);
      const ag::Var uw = energy_(ag::Var(xs.rows(b, e)));
      const ag::Var wv(w.rows(b, e).to(uw.dtype()));
      loss = ag::neg(ag::sum_all(ag::mul(wv, uw)));
      if (alpha != 0.0) loss = ag::add(loss, ag::mul_scalar(ag::sum_all(ag::mul(wv, ag::square(uw))), alpha));
    }
    out[0] = loss.value().item();
    ag::backward(loss);
    for (size_t j = 0; j < params.size(); ++j) {
      if (!params[j].grad().defined()) continue;
      const std::vector<double> gj = params[j].grad().to_vector();
      std::copy(gj.begin(), gj.end(), out + 2 + offset[j]);
    }
  }
  const std::vector<double> tot = sum_blocks(mine, blocks, rec);
  for (size_t j = 0; j < params.size(); ++j) {
    ag::Var pj = params[j];  // shares the impl: its grad() is replaced in place
    const Tensor& v = params[j].value();
    pj.grad() = Tensor::from_vector(std::vector<double>(tot.begin() + 2 + offset[j], tot.begin() + 2 + offset[j + 1]),
                                    v.shape(), v.dtype(), v.device());
  }
  return {tot[0], tot[1] / static_cast<double>(nd)};
}

std::vector<double> RowEvaluator::sum_blocks(const std::vector<double>& mine, int64_t blocks, int64_t rec) const {
  // Every value is the sum over all blocks in block order, in float64: the same bits whatever the rank count.
  std::vector<double> tot(static_cast<size_t>(rec), 0.0);
  if (size() == 1) {
    for (int64_t blk = 0; blk < blocks; ++blk)
      for (int64_t q = 0; q < rec; ++q) tot[static_cast<size_t>(q)] += mine[static_cast<size_t>(blk * rec + q)];
    return tot;
  }
  // A reproducible reduce-scatter: rank s sums slice s of the record over all blocks (alltoallv: every rank sends
  // each slice of its blocks to the slice's rank; they arrive by source rank, i.e. in block order), then the
  // slices are gathered. About 2 records per rank travel, not one per block.
  const std::vector<int64_t> split = split_starts(blocks, size()), lo = split_starts(rec, size());
  const size_t me = static_cast<size_t>(rank());
  const int64_t mine_n = split[me + 1] - split[me], my_len = lo[me + 1] - lo[me];
  std::vector<double> send;
  std::vector<int64_t> send_counts, recv_counts, slice_counts;
  for (size_t r = 0; r + 1 < lo.size(); ++r) {
    const int64_t a = lo[r], len = lo[r + 1] - a;
    for (int64_t j = 0; j < mine_n; ++j)
      send.insert(send.end(), mine.begin() + j * rec + a, mine.begin() + j * rec + a + len);
    send_counts.push_back(mine_n * len);
    recv_counts.push_back((split[r + 1] - split[r]) * my_len);
    slice_counts.push_back(len);
  }
  std::vector<double> got(static_cast<size_t>(blocks * my_len));
  comm_->alltoallv(send.data(), send_counts, got.data(), recv_counts, CommType::Float64);
  std::vector<double> slice(static_cast<size_t>(my_len), 0.0);
  for (int64_t blk = 0; blk < blocks; ++blk)
    for (int64_t q = 0; q < my_len; ++q) slice[static_cast<size_t>(q)] += got[static_cast<size_t>(blk * my_len + q)];
  comm_->allgatherv(slice.data(), tot.data(), slice_counts, CommType::Float64);
  return tot;
}

}  // namespace jebm
