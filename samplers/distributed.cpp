// Reproducible weight statistics and global resampling over sharded walkers (see samplers/distributed.hpp for the
// summation scheme). Tested by tests/test_distributed.cpp at np 1, 2, 3 against one process, bit for bit.
#include "samplers/distributed.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <memory>
#include <numeric>

#include "runtime/check.hpp"
#include "runtime/checked_size.hpp"
#include "runtime/philox.hpp"

namespace jebm {

ShardLayout gather_shard_layout(Communicator& comm, int64_t offset, int64_t count) {
  const int64_t mine[2] = {offset, count};
  std::vector<int64_t> all(2 * static_cast<size_t>(comm.size()));
  comm.allgather(mine, 2, all.data(), CommType::Int64);
  ShardLayout l;
  l.rank = comm.rank();
  for (int r = 0; r < comm.size(); ++r) {
    const int64_t o = all[2 * static_cast<size_t>(r)], c = all[2 * static_cast<size_t>(r) + 1];
    // The same check on every rank with the same data: all ranks throw together, none waits.
    JEBM_CHECK(o == l.total && c > 0, "shard layout: rank " << r << " holds [" << o << ", " << o + c
                                          << ") but the shards must be non-empty and contiguous in rank order (the "
                                             "ranks before it end at "
                                          << l.total << ")");
    l.offsets.push_back(o);
    l.counts.push_back(c);
    l.total += c;
  }
  return l;
}

namespace {

// The part of one summation block that a shard holds: global [lo, hi) of block `block`.
struct Piece {
  int64_t block, lo, hi;
  bool whole;  // the shard holds the whole block: it sends the block's sum, not its values
};

std::vector<Piece> pieces_of(int64_t offset, int64_t count, int64_t total) {
  std::vector<Piece> p;
  for (int64_t at = offset; at < offset + count;) {
    const int64_t b = at / kWeightBlock, b_lo = b * kWeightBlock, b_hi = std::min(b_lo + kWeightBlock, total);
    const int64_t hi = std::min(b_hi, offset + count);
    p.push_back({b, at, hi, at == b_lo && hi == b_hi});
    at = hi;
  }
  return p;
}

int64_t message_size(const std::vector<Piece>& pieces, int64_t k) {
  int64_t n = 0;
  for (const Piece& p : pieces) n += p.whole ? k : (p.hi - p.lo) * k;
  return n;
}

// Everything every rank knows after the exchange, for k columns: the block sums, their running prefix, and the
// in-block prefix carried into each shard (its first block may have begun on earlier ranks) and out of it.
struct BlockSums {
  int64_t k = 1;
  std::vector<double> prefix;     // [J + 1, k]: P_0 = 0, P_{j+1} = P_j + S_j, sequentially
  std::vector<double> carry_in;   // [size, k]: in-block sum of the walkers of the shard's first block before it
  std::vector<double> shard_end;  // [size, k]: cumulative sum up to and including the shard's last walker
  const double* total() const { return prefix.data() + (prefix.size() - static_cast<size_t>(k)); }
};

// local: [count, k]. One allgatherv; the arithmetic is the same sequential sums whatever the partition.
BlockSums reduce_blocks(Communicator& comm, const ShardLayout& l, const double* local, int64_t k) {
  const size_t ku = static_cast<size_t>(k), size = l.counts.size();
  std::vector<std::vector<Piece>> pieces(size);
  std::vector<int64_t> msg_counts(size);
  for (size_t r = 0; r < size; ++r) {
    pieces[r] = pieces_of(l.offsets[r], l.counts[r], l.total);
    msg_counts[r] = message_size(pieces[r], k);
  }
  std::vector<double> mine;
  mine.reserve(static_cast<size_t>(msg_counts[static_cast<size_t>(l.rank)]));
  for (const Piece& p : pieces[static_cast<size_t>(l.rank)]) {
    const double* v = local + static_cast<size_t>(p.lo - l.offset()) * ku;
    if (!p.whole) {
      mine.insert(mine.end(), v, v + static_cast<size_t>(p.hi - p.lo) * ku);
      continue;
    }
    for (size_t c = 0; c < ku; ++c) {
      double s = 0.0;
      for (int64_t i = 0; i < p.hi - p.lo; ++i) s += v[static_cast<size_t>(i) * ku + c];
      mine.push_back(s);
    }
  }
  std::vector<int64_t> displ(size + 1, 0);
  for (size_t r = 0; r < size; ++r) displ[r + 1] = displ[r] + msg_counts[r];
  std::vector<double> all(static_cast<size_t>(displ[size]));
  comm.allgatherv(mine.data(), all.data(), msg_counts, CommType::Float64);

  const int64_t n_blocks = (l.total + kWeightBlock - 1) / kWeightBlock;
  std::vector<double> sums(static_cast<size_t>(n_blocks) * ku, 0.0), run(ku, 0.0);
  BlockSums out;
  out.k = k;
  out.carry_in.assign(size * ku, 0.0);
  std::vector<double> end_run(size * ku, 0.0);
  std::vector<int64_t> end_block(size, 0);
  for (size_t r = 0; r < size; ++r) {
    const double* m = all.data() + displ[r];
    for (size_t pi = 0; pi < pieces[r].size(); ++pi) {
      const Piece& p = pieces[r][pi];
      const bool starts_block = p.lo == p.block * kWeightBlock;
      if (starts_block) std::fill(run.begin(), run.end(), 0.0);
      if (pi == 0) std::copy(run.begin(), run.end(), out.carry_in.begin() + static_cast<std::ptrdiff_t>(r * ku));
      if (p.whole) {
        std::copy(m, m + ku, run.begin());
        m += ku;
      } else {
        for (int64_t i = 0; i < p.hi - p.lo; ++i, m += ku)
          for (size_t c = 0; c < ku; ++c) run[c] += m[c];
      }
      std::copy(run.begin(), run.end(), sums.begin() + static_cast<std::ptrdiff_t>(static_cast<size_t>(p.block) * ku));
    }
    std::copy(run.begin(), run.end(), end_run.begin() + static_cast<std::ptrdiff_t>(r * ku));
    end_block[r] = pieces[r].back().block;
  }
  out.prefix.assign(static_cast<size_t>(n_blocks + 1) * ku, 0.0);
  for (size_t j = 0; j < static_cast<size_t>(n_blocks); ++j)
    for (size_t c = 0; c < ku; ++c) out.prefix[(j + 1) * ku + c] = out.prefix[j * ku + c] + sums[j * ku + c];
  out.shard_end.resize(size * ku);
  for (size_t r = 0; r < size; ++r)
    for (size_t c = 0; c < ku; ++c)
      out.shard_end[r * ku + c] = out.prefix[static_cast<size_t>(end_block[r]) * ku + c] + end_run[r * ku + c];
  return out;
}

double global_max(Communicator& comm, const ShardLayout& l, const double* local_log_w) {
  double m = -std::numeric_limits<double>::infinity();
  for (int64_t i = 0; i < l.count(); ++i) m = std::max(m, local_log_w[i]);
  m = comm.allreduce_value(m, CommReduce::Max);
  JEBM_CHECK(std::isfinite(m), "distributed weights: the largest log-weight is " << m);
  return m;
}

}  // namespace

std::vector<double> distributed_sums(Communicator& comm, const ShardLayout& layout, const double* local, int64_t k) {
  JEBM_CHECK(k >= 1, "distributed_sums: " << k << " columns");
  const BlockSums b = reduce_blocks(comm, layout, local, k);
  return std::vector<double>(b.total(), b.total() + k);
}

WeightStats distributed_weight_stats(Communicator& comm, const ShardLayout& layout, const double* local_log_w) {
  const double m = global_max(comm, layout, local_log_w);
  std::vector<double> v(2 * static_cast<size_t>(layout.count()));
  for (size_t i = 0; i < static_cast<size_t>(layout.count()); ++i) {
    const double e = std::exp(local_log_w[i] - m);
    v[2 * i] = e;
    v[2 * i + 1] = e * e;
  }
  const std::vector<double> s = distributed_sums(comm, layout, v.data(), 2);
  // The formulas of weight_stats (samplers/walkers.cpp), on the reproducible totals.
  WeightStats st;
  st.log_sum = m + std::log(s[0]);
  st.log_mean = st.log_sum - std::log(static_cast<double>(layout.total));
  st.ess = s[0] * s[0] / s[1];
  st.cv2 = static_cast<double>(layout.total) * s[1] / (s[0] * s[0]) - 1.0;
  return st;
}

ResamplePlan plan_resampling(Communicator& comm, const ShardLayout& l, const double* local_log_w,
                             ResampleScheme scheme, double u, uint64_t seed, uint64_t offset) {
  JEBM_CHECK(scheme != ResampleScheme::Systematic || (u >= 0.0 && u < 1.0),
             "plan_resampling: systematic u = " << u << " not in [0, 1)");
  const double m = global_max(comm, l, local_log_w);
  const size_t n = static_cast<size_t>(l.count()), size = l.counts.size(), me = static_cast<size_t>(l.rank);
  std::vector<double> e(n);
  for (size_t i = 0; i < n; ++i) e[i] = std::exp(local_log_w[i] - m);
  const BlockSums b = reduce_blocks(comm, l, e.data(), 1);
  const double total = *b.total();
  JEBM_CHECK(total > 0.0 && std::isfinite(total), "plan_resampling: weights sum to " << total);

  // Normalised cumulative weights of this shard, c_i = P_block + in-block prefix, exactly as reduce_blocks summed.
  std::vector<double> cum(n);
  {
    double run = b.carry_in[me];
    for (size_t i = 0; i < n; ++i) {
      const int64_t g = l.offset() + static_cast<int64_t>(i), blk = g / kWeightBlock;
      if (g == blk * kWeightBlock) run = 0.0;
      run += e[i];
      cum[i] = (b.prefix[static_cast<size_t>(blk)] + run) / total;
    }
  }
  // Where each shard's cumulative weights end; the last is forced to 1 so that every point lands somewhere.
  std::vector<double> ends(size);
  for (size_t r = 0; r < size; ++r) ends[r] = b.shard_end[r] / total;
  ends.back() = 1.0;
  if (me + 1 == size) cum.back() = 1.0;

  const double n_total = static_cast<double>(l.total);
  auto point = [&](int64_t k) {
    if (scheme == ResampleScheme::Systematic) return (static_cast<double>(k) + u) / n_total;
    double u0, u1;
    philox_uniform2(seed, static_cast<uint64_t>(k), offset, &u0, &u1);  // as multinomial_ancestors
    return u0;
  };
  // Slot k's ancestor is the first walker whose cumulative weight exceeds point(k); its source rank is the first
  // shard whose end exceeds it. Every rank walks all N slots (cheap) so both sides of each transfer agree.
  ResamplePlan plan;
  plan.send_counts.assign(size, 0);
  plan.recv_counts.assign(size, 0);
  std::vector<std::vector<int64_t>> recv_slots(size);  // by source rank, in slot order
  for (size_t d = 0; d < size; ++d) {
    for (int64_t k = l.offsets[d]; k < l.offsets[d] + l.counts[d]; ++k) {
      const double p = point(k);
      const size_t src = static_cast<size_t>(std::upper_bound(ends.begin(), ends.end(), p) - ends.begin());
      JEBM_CHECK(src < size, "plan_resampling: point " << p << " beyond the last shard");
      if (src != d) ++plan.rows_moved;
      if (src == me) {
        const size_t i = static_cast<size_t>(std::upper_bound(cum.begin(), cum.end(), p) - cum.begin());
        plan.send_rows.push_back(static_cast<int64_t>(std::min(i, n - 1)));
        ++plan.send_counts[d];
      }
      if (d == me) {
        recv_slots[src].push_back(k - l.offset());
        ++plan.recv_counts[src];
      }
    }
  }
  for (const auto& slots : recv_slots) plan.recv_to_local.insert(plan.recv_to_local.end(), slots.begin(), slots.end());
  // The ancestors' global indices travel like rows, so that each rank knows what it received.
  std::vector<int64_t> global_rows(plan.send_rows.size());
  for (size_t j = 0; j < global_rows.size(); ++j) global_rows[j] = l.offset() + plan.send_rows[j];
  std::vector<int64_t> received(n);
  comm.alltoallv(global_rows.data(), plan.send_counts, received.data(), plan.recv_counts, CommType::Int64);
  plan.ancestors.assign(n, -1);
  for (size_t j = 0; j < n; ++j) plan.ancestors[static_cast<size_t>(plan.recv_to_local[j])] = received[j];
  return plan;
}

void exchange_rows(Communicator& comm, const ResamplePlan& plan, const void* local, size_t row_bytes,
                   void* new_local) {
  JEBM_CHECK(!comm.device_buffers(), "exchange_rows: host rows only (the communicator is " << comm.backend() << ")");
  const size_t me = static_cast<size_t>(comm.rank());
  JEBM_CHECK(plan.send_counts.size() == static_cast<size_t>(comm.size()) &&
                 plan.recv_counts[me] == plan.send_counts[me],
             "exchange_rows: the plan was made for another communicator");
  const char* src = static_cast<const char*>(local);
  char* dst = static_cast<char*>(new_local);
  // Rows that stay on this rank (most of them, with systematic resampling) are copied directly; the others are
  // packed in rank order, sent with one alltoallv, and unpacked into their slots.
  const auto before_me = [me](const std::vector<int64_t>& c) {
    return std::accumulate(c.begin(), c.begin() + static_cast<std::ptrdiff_t>(me), int64_t{0});
  };
  const int64_t send_self = before_me(plan.send_counts), recv_self = before_me(plan.recv_counts);
  auto row_of = [row_bytes](auto* base, int64_t i) { return base + static_cast<size_t>(i) * row_bytes; };
  for (int64_t j = 0; j < plan.send_counts[me]; ++j)
    std::memcpy(row_of(dst, plan.recv_to_local[static_cast<size_t>(recv_self + j)]),
                row_of(src, plan.send_rows[static_cast<size_t>(send_self + j)]), row_bytes);
  std::vector<int64_t> send_bytes(plan.send_counts), recv_bytes(plan.recv_counts);
  send_bytes[me] = recv_bytes[me] = 0;
  const int64_t n_send = static_cast<int64_t>(plan.send_rows.size()) - plan.send_counts[me];
  const int64_t n_recv = static_cast<int64_t>(plan.recv_to_local.size()) - plan.recv_counts[me];
  if (comm.allreduce_value(n_send, CommReduce::Max) == 0) return;  // nothing crosses ranks: skip the alltoallv
  for (int64_t& v : send_bytes) v *= static_cast<int64_t>(row_bytes);
  for (int64_t& v : recv_bytes) v *= static_cast<int64_t>(row_bytes);
  // Uninitialised buffers: every byte is written before it is read.
  std::unique_ptr<char[]> send(new char[static_cast<size_t>(n_send) * row_bytes + 1]);
  std::unique_ptr<char[]> recv(new char[static_cast<size_t>(n_recv) * row_bytes + 1]);
  int64_t at = 0;
  for (size_t j = 0; j < plan.send_rows.size(); ++j) {
    if (static_cast<int64_t>(j) == send_self) j += static_cast<size_t>(plan.send_counts[me]);
    if (j >= plan.send_rows.size()) break;
    std::memcpy(row_of(send.get(), at++), row_of(src, plan.send_rows[j]), row_bytes);
  }
  comm.alltoallv(send.get(), send_bytes, recv.get(), recv_bytes, CommType::Byte);
  at = 0;
  for (size_t j = 0; j < plan.recv_to_local.size(); ++j) {
    if (static_cast<int64_t>(j) == recv_self) j += static_cast<size_t>(plan.recv_counts[me]);
    if (j >= plan.recv_to_local.size()) break;
    std::memcpy(row_of(dst, plan.recv_to_local[j]), row_of(recv.get(), at++), row_bytes);
  }
}

Shard chunk_shard(int64_t n, int64_t chunk, int rank, int size, const char* what) {
  JEBM_CHECK(chunk >= 1 && n >= 1, "chunk_shard: " << n << " " << what << " in chunks of " << chunk);
  const int64_t chunks = ceil_div(n, chunk);  // not (n + chunk - 1) / chunk, which overflows near INT64_MAX
  JEBM_CHECK(chunks >= size, what << ": " << n << " make " << chunks << " block(s) of " << chunk
                                  << ", fewer than the " << size << " ranks (each rank needs a whole block); use "
                                  << "fewer ranks (mpirun -np) or at least " << (size - 1) * chunk + 1 << " " << what);
  const Shard c = shard_of(chunks, rank, size, what);
  Shard s;
  s.offset = c.offset * chunk;
  s.count = std::min(n, (c.offset + c.count) * chunk) - s.offset;
  return s;
}

std::vector<double> gather_chunk_rows(Communicator& comm, const ShardLayout& layout, int64_t chunk,
                                      const std::vector<double>& local, int64_t width) {
  std::vector<int64_t> counts(layout.counts.size());
  for (size_t r = 0; r < counts.size(); ++r) {
    JEBM_CHECK(layout.offsets[r] % chunk == 0, "gather_chunk_rows: rank " << r << "'s shard begins at "
                                                   << layout.offsets[r] << ", inside a chunk of " << chunk);
    counts[r] = (layout.counts[r] + chunk - 1) / chunk * width;
  }
  JEBM_CHECK(static_cast<int64_t>(local.size()) == counts[static_cast<size_t>(layout.rank)],
             "gather_chunk_rows: " << local.size() << " values from this rank, " << counts[static_cast<size_t>(layout.rank)]
                                   << " expected");
  std::vector<double> all(static_cast<size_t>(std::accumulate(counts.begin(), counts.end(), int64_t{0})));
  comm.allgatherv(local.data(), all.data(), counts, CommType::Float64);
  return all;
}

Tensor gather_tensor_rows(Communicator& comm, const ShardLayout& layout, const Tensor& t) {
  JEBM_CHECK(t.defined() && t.device().is_cpu() && t.dim() >= 1 && t.size(0) == layout.count(),
             "gather_tensor_rows: a tensor of " << (t.defined() ? shape_str(t.shape()) : std::string("undefined"))
                                                << " for a shard of " << layout.count() << " rows (host tensors)");
  // From the shape, not nbytes / rows: a rank may hold no rows.
  int64_t row_bytes = static_cast<int64_t>(dtype_size(t.dtype()));
  for (int64_t dim = 1; dim < t.dim(); ++dim) row_bytes *= t.size(dim);
  Shape shape = t.shape();
  shape[0] = layout.total;
  Tensor all = Tensor::empty(shape, t.dtype());
  std::vector<int64_t> counts(layout.counts.size());
  for (size_t r = 0; r < counts.size(); ++r) counts[r] = layout.counts[r] * row_bytes;
  comm.allgatherv(t.raw_data(), all.raw_data(), counts, CommType::Byte);
  return all;
}

namespace {

Tensor shard_rows(const Tensor& t, const ShardLayout& layout) {
  JEBM_CHECK(t.defined() && t.size(0) == layout.total, "shard_population: a tensor of "
                                                           << (t.defined() ? shape_str(t.shape()) : std::string("undefined"))
                                                           << " for a population of " << layout.total);
  return t.rows(layout.offset(), layout.offset() + layout.count()).clone();
}

}  // namespace

WalkerPopulation gather_population(Communicator& comm, const ShardLayout& layout, const WalkerPopulation& local) {
  WalkerPopulation p = local;
  p.x = gather_tensor_rows(comm, layout, local.x);
  p.x_prev = gather_tensor_rows(comm, layout, local.x_prev);
  p.log_w = gather_tensor_rows(comm, layout, local.log_w);
  p.partial = gather_tensor_rows(comm, layout, local.partial);
  p.pending = gather_tensor_rows(comm, layout, local.pending);
  p.first_index = 0;
  return p;
}

WalkerPopulation shard_population(const WalkerPopulation& whole, const ShardLayout& layout) {
  WalkerPopulation p = whole;
  p.x = shard_rows(whole.x, layout);
  p.x_prev = shard_rows(whole.x_prev, layout);
  p.log_w = shard_rows(whole.log_w, layout);
  p.partial = shard_rows(whole.partial, layout);
  p.pending = shard_rows(whole.pending, layout);
  p.first_index = layout.offset();
  return p;
}

ResamplePlan plan_population_resampling(Communicator& comm, const ShardLayout& layout, const WalkerPopulation& pop,
                                        ResampleScheme scheme, double* log_mean) {
  JEBM_CHECK(pop.log_w.device().is_cpu(), "distributed resampling: the population is on "
                                              << pop.log_w.device().str() << "; sharded walkers live on the CPU");
  JEBM_CHECK(pop.size() == layout.count() && pop.first_index == layout.offset(),
             "distributed resampling: the population holds walkers [" << pop.first_index << ", "
                                                                     << pop.first_index + pop.size()
                                                                     << "), the layout gives this rank ["
                                                                     << layout.offset() << ", "
                                                                     << layout.offset() + layout.count() << ")");
  // The key and offset of draw_population_ancestors, and of draw_ancestors' systematic uniform.
  const uint64_t seed = pop.seed ^ kResampleKey, offset = static_cast<uint64_t>(pop.resamplings);
  double u0, u1;
  philox_uniform2(seed, ~uint64_t{0}, offset, &u0, &u1);
  const double* log_w = pop.log_w.data<double>();
  if (log_mean) *log_mean = distributed_weight_stats(comm, layout, log_w).log_mean;
  return plan_resampling(comm, layout, log_w, scheme, u0, seed, offset);
}

}  // namespace jebm
