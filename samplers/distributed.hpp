// Weight statistics and resampling over walkers sharded across ranks, bit-identical for any rank count: global
// log-sum-exp, ESS, CV^2, log mean exp, column sums, and global systematic/multinomial resampling with the plan
// and exchange of walker rows. Pure functions of (local log-weights, the shard's global offset, a Communicator).
// Tested by tests/test_distributed.cpp (CTest runs it at np 1, 2 and 3, uneven shards, against one process).
//
// Reproducible summation: every sum over walkers is cut into blocks of kWeightBlock consecutive GLOBAL indices;
// each block is summed sequentially from 0.0 in index order, and the block sums are added sequentially in block
// order. A block inside one shard is summed by its rank; the few walkers of a block that straddles shards travel
// (as values) to every rank, which continues the same sequential sum. Every floating operation is therefore the
// same whatever the partition, so the results are bit for bit those of one process. Cost per call: one
// allreduce(max) of a double and one allgatherv of about k * (N / kWeightBlock + 2 kWeightBlock) doubles per rank.
#pragma once
#include <cstdint>
#include <vector>

#include "runtime/comm/communicator.hpp"
#include "samplers/resampling.hpp"
#include "samplers/walkers.hpp"

namespace jebm {

constexpr int64_t kWeightBlock = 256;  // walkers per summation block; results depend on it, not on the rank count

// Which global walkers each rank holds: rank r has [offsets[r], offsets[r] + counts[r]), shards in rank order,
// contiguous, each non-empty. Gathered once (one allgather) and reused while the partition does not change.
struct ShardLayout {
  std::vector<int64_t> offsets, counts;
  int64_t total = 0;
  int rank = 0;  // this rank
  int64_t offset() const { return offsets[static_cast<size_t>(rank)]; }
  int64_t count() const { return counts[static_cast<size_t>(rank)]; }
};
// Collective. Fails (on every rank, same message) when the shards are not contiguous in rank order or one is empty.
ShardLayout gather_shard_layout(Communicator& comm, int64_t offset, int64_t count);

// Global column sums of local values [count, k] (row-major, one row per local walker), reproducible as above.
std::vector<double> distributed_sums(Communicator& comm, const ShardLayout& layout, const double* local, int64_t k);

// WeightStats (samplers/walkers.hpp) of the global log-weights, from this rank's count() log-weights.
WeightStats distributed_weight_stats(Communicator& comm, const ShardLayout& layout, const double* local_log_w);

// Work cut into chunks of `chunk` consecutive global items and sharded in whole chunks (the GMM pass and its data
// term: their one-process sums are already per chunk, combined in chunk order, so a chunk-aligned partition leaves
// every floating operation unchanged). This rank's shard of n items: whole chunks, shared as evenly as shard_of
// shares them; the last chunk may be short. Fails when there are fewer chunks than ranks, naming `what`.
Shard chunk_shard(int64_t n, int64_t chunk, int rank, int size, const char* what);
// Every rank's per-chunk rows (`width` values per chunk) in global chunk order, from this rank's rows for its
// chunks (layout: chunk-aligned shards, as chunk_shard gives). One allgatherv. chunk = 1: per-walker rows.
std::vector<double> gather_chunk_rows(Communicator& comm, const ShardLayout& layout, int64_t chunk,
                                      const std::vector<double>& local, int64_t width);

// A population that is one rank's shard of a larger one: the communicator and the layout of the whole population
// (WalkerPopulation::first_index == layout.offset()).
struct WalkerShards {
  Communicator* comm = nullptr;
  ShardLayout layout;
};

// Every rank's rows of a tensor (rank r holds layout.counts[r] rows, possibly none), in rank order: [layout.total,
// ...] on the host, any dtype (sent as bytes). One allgatherv. t: this rank's rows, on the host.
Tensor gather_tensor_rows(Communicator& comm, const ShardLayout& layout, const Tensor& t);

// The whole population on every rank, from each rank's shard (one allgatherv per per-walker tensor; the counters,
// seed and log Z offset are this rank's, equal on all ranks): what one process would hold, for a checkpoint.
WalkerPopulation gather_population(Communicator& comm, const ShardLayout& layout, const WalkerPopulation& local);
// This rank's shard of a whole population (CPU): rows [layout.offset(), + count()) of every per-walker tensor, with
// first_index = layout.offset(). The inverse of gather_population, for any layout: resuming on another rank count.
WalkerPopulation shard_population(const WalkerPopulation& whole, const ShardLayout& layout);

// Global resampling. The new population has the same layout; its global walker k (slot k) is a copy of global
// walker ancestor(k), drawn exactly as samplers/resampling.hpp draws it in one process (systematic points
// (k + u) / N, or multinomial uniforms Philox(seed, k, offset)) from cumulative weights summed in fixed blocks.
// Every rank computes where each shard's cumulative weights begin and end, so the plan needs no extra messages.
struct ResamplePlan {
  std::vector<int64_t> send_rows;      // local rows to send, grouped by destination rank, in rank order
  std::vector<int64_t> send_counts;    // rows for each destination rank
  std::vector<int64_t> recv_counts;    // rows from each source rank
  std::vector<int64_t> recv_to_local;  // received row j (in arrival order) becomes new local row recv_to_local[j]
  std::vector<int64_t> ancestors;      // new local row -> global index of its ancestor
  int64_t rows_moved = 0;              // rows that change rank, over the whole job (for logs and cost estimates)
};
// u in [0, 1) for Systematic (the same on every rank); seed/offset key the multinomial uniforms.
ResamplePlan plan_resampling(Communicator& comm, const ShardLayout& layout, const double* local_log_w,
                             ResampleScheme scheme, double u, uint64_t seed, uint64_t offset);
// Moves rows of `row_bytes` bytes (host memory) as the plan says: new_local gets count() rows.
void exchange_rows(Communicator& comm, const ResamplePlan& plan, const void* local, size_t row_bytes,
                   void* new_local);

// The plan of draw_population_ancestors for a sharded population: the same Philox key and offset (and systematic
// uniform) as one process; *log_mean (when non-null) gets the global log mean exp(A) that resampling folds into
// the log Z offset. The caller exchanges each walker's rows with exchange_rows (the GMM's redo of the move sends
// its pre-move state). A CPU population (its log-weights are read on the host).
ResamplePlan plan_population_resampling(Communicator& comm, const ShardLayout& layout, const WalkerPopulation& pop,
                                        ResampleScheme scheme, double* log_mean);

}  // namespace jebm
