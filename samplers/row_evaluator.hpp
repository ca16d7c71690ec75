// RowEvaluator: how the Trainer evaluates an energy over rows of walkers and moves them. In one process it is a
// loop over pieces of rows (kCpuPiece or eval_chunk rows, or evaluation blocks; on the CPU the pieces can run in
// parallel over the threads, which does not change the bits); with evaluation blocks on several
// ranks each rank evaluates and moves its own blocks' rows, and energies and walker state are gathered. Tested on
// its own by tests/test_row_evaluator.cpp (1 rank, and 2 and 3 ranks under mpirun), with the Trainer by
// tests/test_trainer_blocks.cpp and tests/test_image_ranks.cpp.
//
// Why the bits do not depend on the rank count: a row's values depend on the block it is evaluated in, and the
// blocks are the same (rows [b * block, (b + 1) * block) of the set) whichever rank evaluates them; a walker's move
// reads its own row only, its noise is keyed by its global index and by the move counter that every rank advances;
// the loss gradient is summed block by block in block order in float64 (blocked_loss_backward).
#pragma once
#include <cstdint>
#include <functional>
#include <vector>

#include "models/module.hpp"
#include "runtime/comm/communicator.hpp"
#include "samplers/ula_jarzynski.hpp"
#include "samplers/walkers.hpp"

namespace jebm {

// The walkers a call acts on, and of them the rows [lo, hi) of the set that this rank evaluates and moves (all of
// them in one process).
struct RowSet {
  std::vector<int64_t> walkers;  // the walkers, in row order (empty: every walker of the population, in order)
  Tensor idx;                    // walkers on the population's device (undefined: every walker)
  int64_t count = 0;             // rows in the set
  int64_t lo = 0, hi = 0;        // this rank's rows of the set
  std::vector<int64_t> own;      // the walkers of rows [lo, hi) (several ranks only)
  Tensor own_idx;                // own on the device (several ranks, a subset, rows of its own)
  bool all() const { return !idx.defined(); }
};

// U of the set's rows ([count] float64: this rank's rows, every row once gathered) and grad_x U of this rank's rows
// ([hi - lo, ...], the walkers' dtype).
struct RowValues {
  Tensor u, g;
};

// Called after every move of the walkers idx (empty: all); see Trainer::after_move.
using AfterMove = std::function<void(WalkerPopulation& walkers, const std::vector<int64_t>& idx)>;

class RowEvaluator {
 public:
  // chunk > 0: one process evaluates in pieces of this many rows (0: kCpuPiece rows on the CPU, all rows at once on
  // a GPU); block > 0: evaluation blocks of this many rows (then chunk is unused), shared out over the ranks of
  // set_communicator. On the CPU, with several OpenMP threads and at least as many pieces as threads, pieces run
  // in parallel, one per thread, when the energy allows it (Module::concurrent_forward).
  static constexpr int64_t kCpuPiece = 64;
  RowEvaluator(Module& energy, int64_t chunk, int64_t block);
  // The ranks that share the blocks (null: this process alone); device: the same ranks over device buffers
  // (NCCL) for rows on a GPU (else they travel through host memory over comm).
  void set_communicator(Communicator* comm, Communicator* device = nullptr);
  // Evaluation blocks on several ranks: each rank evaluates and moves its own rows.
  bool splits_rows() const;

  RowSet all_rows(const WalkerPopulation& pop) const;
  RowSet rows(const WalkerPopulation& pop, std::vector<int64_t> walkers) const;

  // Evaluate these rows: U and grad_x U of this rank's rows of s (U of every row on every rank with
  // gather_energies; a collective then).
  RowValues evaluate(const WalkerPopulation& pop, const RowSet& s, bool gather_energies) const;
  // Move these rows: `kind` applied to this rank's rows of s with their values v, then `after` on them (for the
  // kinds that move). A rank without rows advances the move counter with the others. No gather.
  void move(WalkerPopulation& pop, const RowSet& s, const RowValues& v, const UlaConfig& cfg, MoveKind kind,
            const AfterMove& after) const;
  // After moves on several ranks: the walker state of s gathered on every rank. fields: the population's tensors
  // to gather (empty: x, x_prev, log_w, partial, pending). A collective; nothing to do in one process.
  void gather(WalkerPopulation& pop, const RowSet& s, std::vector<Tensor*> fields = {}) const;
  // Rows anc of a tensor of every walker, of which this rank holds its rows of all_rows (own: those rows only):
  // this rank's rows of the result (a collective on several ranks).
  Tensor follow_ancestors(const Tensor& own, const Tensor& anc) const;

  // U and grad_x U of every row of x, on every rank ([B] float64, gradient shaped like x).
  void energy_and_grad(const Tensor& x, Tensor& u, Tensor& g) const;
  Tensor energy_only(const Tensor& x) const;  // forward only, [B] float64 on every rank

  // The surrogate loss's backward in evaluation blocks (block > 0): data rows, then walker rows xs with weights w
  // (see Trainer's step, part 2). Sets every parameter's .grad() to the sum of the blocks' gradients in block
  // order, in float64, on every rank.
  struct Loss {
    double loss = 0.0, data_energy = 0.0;
  };
  Loss blocked_loss_backward(const Tensor& data, const Tensor& xs, const Tensor& w, double alpha) const;

 private:
  // This rank's rows of n as [lo, hi), and where every rank's rows begin (whole blocks; a rank may have none).
  std::vector<int64_t> row_starts(int64_t n) const;
  std::pair<int64_t, int64_t> own_range(int64_t n) const;
  int64_t piece(int64_t rows, Device device) const;  // rows per forward/backward
  // U and grad_x U of the rows of x, in pieces, into u and g (same rows).
  void evaluate_pieces(const Tensor& x, Tensor u, Tensor g) const;
  // Every rank's rows of t (as row_starts(t.size(0))) gathered into t on every rank.
  void gather_own_rows(Tensor& t) const;
  // Sums the blocks' records (`mine`: this rank's blocks of `blocks`, `rec` values each) in block order.
  std::vector<double> sum_blocks(const std::vector<double>& mine, int64_t blocks, int64_t rec) const;
  int rank() const { return comm_ ? comm_->rank() : 0; }
  int size() const { return comm_ ? comm_->size() : 1; }

  Module& energy_;
  int64_t chunk_, block_;
  Communicator* comm_ = nullptr;
  Communicator* device_comm_ = nullptr;
};

}  // namespace jebm
