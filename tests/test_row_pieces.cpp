// samplers/row_evaluator.hpp's pieces on the CPU: with several OpenMP threads, pieces of walkers run in parallel,
// one per thread, when the energy allows it (Module::concurrent_forward). Every row's energy and input gradient
// must be bit for bit the one-thread value (pieces in order, one thread), and the one a serial evaluator gives
// with the same pieces; an error raised inside a parallel piece must reach the caller with its message.
#include <memory>
#include <utility>

#include "autograd/ops.hpp"
#include "models/energy_nets.hpp"
#include "models/layers.hpp"
#include "samplers/row_evaluator.hpp"
#include "tests/helpers.hpp"

using namespace jebm;
using jebm::test::same_bits;
using jebm::test::ThreadCount;

namespace {

// Another module's forward, run as a module that does not allow concurrent calls: the evaluator then runs its
// pieces one after another (with the ops threaded inside), the reference for the parallel pieces.
class Serial : public Module {
 public:
  explicit Serial(Module& inner) : inner_(inner) {}
  ag::Var forward(const ag::Var& x) override { return inner_(x); }

 private:
  Module& inner_;
};

// An energy that allows concurrent calls but returns [N, 1] instead of [N].
class WrongShape : public Module {
 public:
  ag::Var forward(const ag::Var& x) override { return ag::reshape(ag::sum_all(x), {1, 1}); }
  bool concurrent_forward() const override { return true; }
};

}  // namespace

BOOST_AUTO_TEST_CASE(modules_say_whether_they_allow_concurrent_forwards) {
  Generator gen{3, 0};
  MnistEnergyCNN net(gen);
  BOOST_TEST(net.concurrent_forward());           // a Sequential of jebm's layers
  BOOST_TEST(!Serial(net).concurrent_forward());  // a module that does not say so
  Sequential mixed;
  mixed.emplace<Linear>(4, 4, gen);
  mixed.add(std::make_shared<Serial>(net));
  BOOST_TEST(!mixed.concurrent_forward());  // one layer that does not allow it is enough
}

// 200 digits (14x14, the downsampled MNIST net): automatic pieces of 64, 64, 64 and 8 rows, so that 2 and 3 threads
// run them in parallel and the last piece is a short one.
BOOST_AUTO_TEST_CASE(parallel_pieces_give_the_bits_of_one_thread) {
  Generator gen{3, 0};
  MnistEnergyCNN net(gen);
  const int64_t n = 200;
  BOOST_REQUIRE_GT(n, 3 * RowEvaluator::kCpuPiece);
  const Tensor x = rand_uniform({n, 1, 14, 14}, -1.0, 1.0, gen, DType::Float32);
  const RowEvaluator parallel(net, 0, 0);
  Tensor u1, g1, u0;
  {
    ThreadCount one(1);
    parallel.energy_and_grad(x, u1, g1);
    u0 = parallel.energy_only(x);
  }
  BOOST_TEST(same_bits(u0, u1), "a forward alone gives the energies of a forward with its backward");
  for (int threads : {2, 3}) {
    ThreadCount t(threads);
    Tensor u, g;
    parallel.energy_and_grad(x, u, g);
    BOOST_TEST(same_bits(u, u1), "energies at " << threads << " threads");
    BOOST_TEST(same_bits(g, g1), "input gradients at " << threads << " threads");
    BOOST_TEST(same_bits(parallel.energy_only(x), u1), "forward-only energies at " << threads << " threads");
    // The same pieces one after another, with the ops threaded inside.
    Serial one_by_one(net);
    const RowEvaluator serial(one_by_one, 0, 0);
    Tensor us, gs;
    serial.energy_and_grad(x, us, gs);
    BOOST_TEST(same_bits(us, u1), "serial pieces' energies at " << threads << " threads");
    BOOST_TEST(same_bits(gs, g1), "serial pieces' input gradients at " << threads << " threads");
  }
}

// Evaluation blocks (shard_block > 0: the pieces are the blocks) and an explicit eval_chunk run in parallel the same
// way: 48-row pieces, 5 of them with a short last one, give the bits of one thread.
BOOST_AUTO_TEST_CASE(blocks_and_explicit_chunks_give_the_bits_of_one_thread) {
  Generator gen{5, 0};
  MnistEnergyCNN net(gen);
  const Tensor x = rand_uniform({200, 1, 14, 14}, -1.0, 1.0, gen, DType::Float32);
  for (const auto& [chunk, block] : {std::pair<int64_t, int64_t>{48, 0}, {0, 48}}) {
    const RowEvaluator rows(net, chunk, block);
    Tensor u1, g1;
    {
      ThreadCount one(1);
      rows.energy_and_grad(x, u1, g1);
    }
    ThreadCount two(2);
    Tensor u, g;
    rows.energy_and_grad(x, u, g);
    BOOST_TEST(same_bits(u, u1), "energies, chunk " << chunk << ", block " << block);
    BOOST_TEST(same_bits(g, g1), "input gradients, chunk " << chunk << ", block " << block);
    BOOST_TEST(same_bits(rows.energy_only(x), u1), "forward-only energies, chunk " << chunk << ", block " << block);
  }
}

BOOST_AUTO_TEST_CASE(an_error_in_a_parallel_piece_reaches_the_caller) {
  ThreadCount t(2);
  WrongShape energy;
  const RowEvaluator rows(energy, 0, 0);
  Generator gen{4, 0};
  const Tensor x = rand_normal({4 * RowEvaluator::kCpuPiece, 3}, 0.0, 1.0, gen, DType::Float32);
  Tensor u, g;
  BOOST_CHECK_EXCEPTION(rows.energy_and_grad(x, u, g), Error, [](const Error& e) {
    return std::string(e.what()).find("the energy must map [N, ...] to [N], got [1, 1]") != std::string::npos;
  });
}
