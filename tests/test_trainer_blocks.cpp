// TrainerOptions::shard_block (samplers/trainer.hpp): evaluating walkers and the surrogate loss in
// blocks of rows is the same computation as the one-pass path, up to the order of floating sums. A float64 MLP
// energy and a float64 population: the energies and input gradients of energy_and_grad / energy_only, and a whole
// Trainer step's loss, data energy and parameter gradients (read in optimizer_step), with and without the squared-
// energy regulariser, against shard_block = 0 at 1e-12. Rank independence is tests/test_row_evaluator.cpp's and
// tests/test_image_ranks.cpp's.
#include <cmath>
#include <memory>

#include "autograd/ops.hpp"
#include "models/layers.hpp"
#include "runtime/ops.hpp"
#include "samplers/trainer.hpp"
#include "tests/helpers.hpp"

using namespace jebm;

namespace {

// U(x) = MLP(x) on [N, 5] float64 walkers.
class MlpEnergy : public Module {
 public:
  explicit MlpEnergy(uint64_t seed) {
    Generator gen{seed, 0};
    net_ = register_module("net", std::make_shared<Sequential>());
    net_->emplace<Linear>(5, 16, gen, true, DType::Float64);
    net_->emplace<SiLU>();
    net_->emplace<Linear>(16, 1, gen, true, DType::Float64);
  }
  ag::Var forward(const ag::Var& x) override { return ag::reshape((*net_)(x), {x.size(0)}); }

 private:
  std::shared_ptr<Sequential> net_;
};

Tensor normal_rows(int64_t n, uint64_t seed) {
  Generator g{seed, 0};
  return rand_normal({n, 5}, 0.0, 1.0, g, DType::Float64);
}

// One Trainer step with these options; returns the loss, the data energy and every parameter gradient.
std::vector<double> one_step(TrainerOptions o) {
  MlpEnergy energy(3);
  WalkerPopulation pop = WalkerPopulation::create(normal_rows(23, 7), 11);
  Generator gw{8, 0};
  pop.log_w.copy_(rand_normal({23}, 0.0, 0.5, gw, DType::Float64));  // unequal weights
  const Tensor data = normal_rows(13, 9);
  Trainer t(energy, pop, o);
  t.data_batch = [&](int64_t) { return data; };
  std::vector<double> grads;
  t.optimizer_step = [&](int64_t) {
    for (const ag::Var& p : energy.parameters()) {
      const std::vector<double> g = p.grad().to_vector();
      grads.insert(grads.end(), g.begin(), g.end());
    }
  };
  const TrainerStepInfo info = t.step();
  std::vector<double> out = {info.loss, info.data_energy};
  out.insert(out.end(), grads.begin(), grads.end());
  return out;
}

}  // namespace

BOOST_AUTO_TEST_CASE(blocked_energies_equal_the_one_pass_ones) {
  MlpEnergy energy(3);
  WalkerPopulation pop = WalkerPopulation::create(normal_rows(23, 7), 11);
  TrainerOptions one, blocked;
  blocked.shard_block = 4;  // 23 rows: 5 blocks of 4 and one of 3
  Trainer a(energy, pop, one), b(energy, pop, blocked);
  Tensor ua, ga, ub, gb;
  a.energy_and_grad(pop.x, ua, ga);
  b.energy_and_grad(pop.x, ub, gb);
  BOOST_TEST(test::all_close(ua.to_vector(), ub.to_vector(), 1e-12, 1e-12, "U"));
  BOOST_TEST(test::all_close(ga.to_vector(), gb.to_vector(), 1e-12, 1e-12, "grad_x U"));
  BOOST_TEST(test::all_close(a.energy_only(pop.x).to_vector(), b.energy_only(pop.x).to_vector(), 1e-12, 1e-12, "U only"));
}

BOOST_AUTO_TEST_CASE(a_blocked_step_equals_the_one_pass_step) {
  for (double alpha : {0.0, 0.3}) {
    for (int64_t gradient_batch : {int64_t{0}, int64_t{10}}) {
      BOOST_TEST_CONTEXT("alpha " << alpha << ", gradient batch " << gradient_batch) {
        TrainerOptions o;
        o.alpha = alpha;
        o.gradient_batch = gradient_batch;
        o.moving_batch = 6;
        o.moves_per_update = 2;
        TrainerOptions ob = o;
        ob.shard_block = 4;  // data: 4 blocks (13 rows); gradient walkers: 6 or 3 blocks
        const std::vector<double> ref = one_step(o), got = one_step(ob);
        BOOST_REQUIRE_EQUAL(ref.size(), got.size());
        BOOST_TEST(std::abs(got[0] - ref[0]) <= 1e-12 * (1.0 + std::abs(ref[0])), "loss " << got[0] << " vs " << ref[0]);
        BOOST_TEST(std::abs(got[1] - ref[1]) <= 1e-12 * (1.0 + std::abs(ref[1])), "data energy");
        BOOST_TEST(test::all_close(std::vector<double>(got.begin() + 2, got.end()),
                                   std::vector<double>(ref.begin() + 2, ref.end()), 1e-12, 1e-11, "parameter gradients"));
        BOOST_TEST(ref.size() > 2u + 16u);  // the gradients were read
      }
    }
  }
}

BOOST_AUTO_TEST_CASE(blocks_and_the_correction_groups_exclude_each_other) {
  MlpEnergy energy(3);
  WalkerPopulation pop = WalkerPopulation::create(normal_rows(8, 7), 11);
  TrainerOptions o;
  o.shard_block = 4;
  o.correction_groups = 3;
  BOOST_CHECK_EXCEPTION(Trainer(energy, pop, o), Error, [](const Error& e) {
    return std::string(e.what()).find("not with correction_groups") != std::string::npos;
  });
}
