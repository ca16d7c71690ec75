// samplers/row_evaluator.hpp on its own: with evaluation blocks shared out over the ranks of world() (CTest runs
// this at np 1, and under mpirun at np 2 and 3, where a rank may hold no rows), every result is bit for bit the
// one-process evaluator's: energies and gradients, a subset's moves and completions with their gathers, the rows
// that follow resampling's ancestors, and the blocked loss gradient. Float32 rows: a row's bits depend on its
// block, so a wrong block split shows.
#include <memory>

#include "autograd/ops.hpp"
#include "models/layers.hpp"
#include "runtime/comm/communicator.hpp"
#include "runtime/ops.hpp"
#include "samplers/row_evaluator.hpp"
#include "tests/helpers.hpp"

using namespace jebm;
using jebm::test::same_bits;  // a rank that holds no rows has empty tensors: compared by shape

namespace {

// U(x) = a small SiLU network on [N, 6] float32 rows.
class SiluEnergy : public Module {
 public:
  SiluEnergy() {
    Generator gen{5, 0};
    net_ = register_module("net", std::make_shared<Sequential>());
    net_->emplace<Linear>(6, 12, gen);
    net_->emplace<SiLU>();
    net_->emplace<Linear>(12, 1, gen);
  }
  ag::Var forward(const ag::Var& x) override { return ag::reshape((*net_)(x), {x.size(0)}); }

 private:
  std::shared_ptr<Sequential> net_;
};

WalkerPopulation walkers(int64_t n) {
  Generator g{17, 0};
  return WalkerPopulation::create(rand_normal({n, 6}, 0.0, 1.0, g), 23);
}

void check_same_population(const WalkerPopulation& a, const WalkerPopulation& b) {
  BOOST_TEST(same_bits(a.x, b.x));
  BOOST_TEST(same_bits(a.x_prev, b.x_prev));
  BOOST_TEST(same_bits(a.log_w, b.log_w));
  BOOST_TEST(same_bits(a.partial, b.partial));
  BOOST_TEST(same_bits(a.pending, b.pending));
  BOOST_TEST(a.moves == b.moves);
}

constexpr int64_t kBlock = 3;

}  // namespace

// 4 walkers in blocks of 3: at 3 ranks the last rank holds none; 11 walkers: uneven blocks.
BOOST_AUTO_TEST_CASE(energies_and_gradients_equal_the_one_process_ones) {
  SiluEnergy energy;
  RowEvaluator one(energy, 0, kBlock), shared(energy, 0, kBlock);
  shared.set_communicator(&world());
  for (const int64_t n : {4, 11}) {
    BOOST_TEST_CONTEXT(n << " walkers") {
      const WalkerPopulation pop = walkers(n);
      Tensor u1, g1, u2, g2;
      one.energy_and_grad(pop.x, u1, g1);
      shared.energy_and_grad(pop.x, u2, g2);
      BOOST_TEST(same_bits(u1, u2));
      BOOST_TEST(same_bits(g1, g2));
      BOOST_TEST(same_bits(one.energy_only(pop.x), shared.energy_only(pop.x)));
      // evaluate(): every energy once gathered, and this rank's rows' gradients.
      const RowSet s = shared.all_rows(pop);
      const RowValues v = shared.evaluate(pop, s, true);
      BOOST_TEST(same_bits(v.u, u1));
      BOOST_TEST(same_bits(v.g, g1.rows(s.lo, s.hi).clone()));
      // The rows that follow resampling's ancestors.
      const Tensor anc = Tensor::from_vector(std::vector<int64_t>(static_cast<size_t>(n), n - 1), {n});
      BOOST_TEST(same_bits(shared.follow_ancestors(v.g, anc), gather_rows(g1, anc).rows(s.lo, s.hi).clone()));
    }
  }
}

BOOST_AUTO_TEST_CASE(moves_of_a_subset_equal_the_one_process_moves) {
  SiluEnergy energy;
  RowEvaluator one(energy, 0, kBlock), shared(energy, 0, kBlock);
  shared.set_communicator(&world());
  UlaConfig cfg;
  cfg.h = 0.05;
  cfg.weighted = true;
  for (const std::vector<int64_t>& subset : {std::vector<int64_t>{1, 4, 5, 8}, std::vector<int64_t>{2}}) {
    BOOST_TEST_CONTEXT(subset.size() << " walkers move") {
      WalkerPopulation a = walkers(10), b = walkers(10);
      std::vector<std::vector<int64_t>> moved_a, moved_b;
      const AfterMove note_a = [&](WalkerPopulation&, const std::vector<int64_t>& i) { moved_a.push_back(i); };
      const AfterMove note_b = [&](WalkerPopulation&, const std::vector<int64_t>& i) { moved_b.push_back(i); };
      for (const MoveKind kind : {MoveKind::MoveOnly, MoveKind::CompleteAndMove, MoveKind::CompleteOnly}) {
        const RowSet sa = one.rows(a, subset), sb = shared.rows(b, subset);
        one.move(a, sa, one.evaluate(a, sa, false), cfg, kind, note_a);
        shared.move(b, sb, shared.evaluate(b, sb, false), cfg, kind, note_b);
        shared.gather(b, sb);
      }
      check_same_population(a, b);
      BOOST_TEST(b.any_pending() == false);
      // Each rank reports the moves of its own walkers only: two moves, those of its rows.
      const RowSet sb = shared.rows(b, subset);
      BOOST_TEST(moved_b.size() == (sb.own.empty() && world().size() > 1 ? 0u : 2u));
      if (!moved_b.empty()) BOOST_TEST(moved_b[0] == (world().size() > 1 ? sb.own : subset));
    }
  }
}

BOOST_AUTO_TEST_CASE(blocked_loss_gradient_equals_the_one_process_one) {
  SiluEnergy energy;
  RowEvaluator one(energy, 0, kBlock), shared(energy, 0, kBlock);
  shared.set_communicator(&world());
  Generator g{3, 0};
  const Tensor data = rand_normal({7, 6}, 0.0, 1.0, g), xs = rand_normal({5, 6}, 0.0, 1.0, g);
  const Tensor w = normalized_weights(rand_normal({5}, 0.0, 1.0, g, DType::Float64));
  std::vector<Tensor> grads[2];
  RowEvaluator::Loss loss[2];
  for (int k = 0; k < 2; ++k) {
    loss[k] = (k == 0 ? one : shared).blocked_loss_backward(data, xs, w, 0.1);
    for (const ag::Var& p : energy.parameters()) grads[k].push_back(p.grad().clone());
  }
  BOOST_TEST(loss[0].loss == loss[1].loss);
  BOOST_TEST(loss[0].data_energy == loss[1].data_energy);
  for (size_t j = 0; j < grads[0].size(); ++j) BOOST_TEST(same_bits(grads[0][j], grads[1][j]), "parameter " << j);
}

BOOST_AUTO_TEST_CASE(several_ranks_need_blocks) {
  SiluEnergy energy;
  RowEvaluator unblocked(energy, 4, 0);
  if (world().size() == 1) {
    unblocked.set_communicator(&world());  // one rank: nothing to share
    BOOST_TEST(!unblocked.splits_rows());
    return;
  }
  jebm::test::expect_error([&] { unblocked.set_communicator(&world()); }, {"shard_block"});
}
