// Tests of the Trainer's held-out walkers and first-order log Z correction (samplers/trainer.hpp, docs/method.md) and
// of Adam::step_scale_dot (models/optim.hpp), with a learnable unit Gaussian, whose log Z is analytic; on the CPU,
// and on CUDA against the CPU where a device is present (skipped otherwise). Also the held-out blocks' estimate
// (samplers/holdout.hpp) against its closed form.
#include <cmath>
#include <limits>
#include <memory>
#include <vector>

#include "models/gaussian_mixture.hpp"
#include "models/optim.hpp"
#include "samplers/holdout.hpp"
#include "samplers/trainer.hpp"
#include "samplers/walkers.hpp"
#include "tests/helpers.hpp"

using namespace jebm;

namespace {

// A one-mode "mixture" U = |x - a|^2 / 2 + z: log Z = (D/2) log 2 pi - z whatever a.
GmmParams gaussian(int64_t d) { return GmmParams::zeros(1, d); }

Tensor exact_samples(const GmmParams& p, int64_t n, uint64_t seed) {
  Tensor x = Tensor::empty({n, p.d}, DType::Float64);
  gmm_sample(p, n, seed, 0, x.data<double>());
  return x;
}

// Plain gradient descent on every parameter with a gradient.
void gd_step(Module& m, double lr) {
  for (ag::Var& p : m.parameters())
    if (p.grad().defined()) add_(p.value(), p.grad(), -lr);
}

double plain_dot(const std::vector<Tensor>& c, double lr) {
  double s = 0.0;
  for (const Tensor& t : c)
    if (t.defined()) s += sum_all(t).item();
  return lr * s;
}

struct Run {
  std::vector<double> means;  // the parameters at the end
  std::vector<TrainerStepInfo> log;
  double exact_log_z = 0.0;
};

struct Setup {
  int64_t d = 4, n = 512, holdout = 0, data = 128, steps = 8;
  double lr = 0.1;
  TrainerOptions opt;
  uint64_t seed = 1;
  Device device = Device::cpu();
};

Run run(const Setup& s) {
  GmmParams p = gaussian(s.d);
  const Tensor data = exact_samples(p, s.data, s.seed + 100);
  // Start at the data's mean: the parameters then only follow the walkers' noise (the curse in isolation).
  const std::vector<double> xd = data.to_vector();
  for (int64_t c = 0; c < s.d; ++c) {
    double m = 0.0;
    for (int64_t i = 0; i < s.data; ++i) m += xd[static_cast<size_t>(i * s.d + c)];
    p.a[static_cast<size_t>(c)] = m / static_cast<double>(s.data);
  }
  GaussianMixtureEnergy energy(p);
  energy.to(s.device);
  WalkerPopulation pop = walkers_to(
      WalkerPopulation::create(exact_samples(p, s.n, s.seed), s.seed + 1, gmm_log_z(p)), s.device);
  WalkerPopulation hold;
  if (s.holdout > 0)
    hold = walkers_to(WalkerPopulation::create(exact_samples(p, s.holdout, s.seed + 2), s.seed + 3, gmm_log_z(p)),
                      s.device);
  Trainer t(energy, pop, s.opt);
  if (s.holdout > 0) t.set_holdout(&hold);
  const Tensor data_dev = data.to(s.device);
  t.data_batch = [&](int64_t) { return data_dev; };
  t.optimizer_step = [&](int64_t) { gd_step(energy, s.lr); };
  t.step_scale_dot = [&](const std::vector<Tensor>& c) { return plain_dot(c, s.lr); };
  Run r;
  for (int64_t k = 0; k < s.steps; ++k) r.log.push_back(t.step());
  r.means = energy.means().value().to(Device::cpu()).to_vector();
  r.exact_log_z = gmm_log_z(energy.params());
  return r;
}

}  // namespace

BOOST_AUTO_TEST_CASE(holdout_walkers_leave_the_parameters_bit_identical) {
  Setup s;
  s.opt.ula.h = 0.1;
  s.opt.moves_per_update = 2;
  s.opt.moving_batch = 128;
  s.opt.moving_subsets = 2;
  s.opt.gradient_batch = 256;
  s.opt.resample_rule.ess_fraction = 0.999;  // fires often: both populations resample
  const Run a = run(s);
  s.holdout = 300;
  const Run b = run(s);
  BOOST_TEST(a.means == b.means);  // bit for bit
  bool held_resampled = false, resampled = false;
  for (size_t k = 0; k < b.log.size(); ++k) {
    BOOST_TEST(a.log[k].log_z == b.log[k].log_z);
    BOOST_TEST(std::isnan(a.log[k].holdout_log_z));
    BOOST_TEST(std::isfinite(b.log[k].holdout_log_z));
    BOOST_TEST(b.log[k].holdout_ess > 0.0);
    held_resampled = held_resampled || b.log[k].holdout_resampled;
    resampled = resampled || b.log[k].resampled;
  }
  BOOST_TEST(resampled);
  BOOST_TEST(held_resampled);
}

// The device path (samplers/trainer.cpp keeps per-walker work on the walkers' device): the held-out walkers and
// the grouped correction on CUDA agree with the CPU reference (float64; rounding only).
BOOST_AUTO_TEST_CASE(holdout_and_correction_on_cuda_match_cpu, *boost::unit_test::precondition(jebm::test::CudaDevicePresent())) {
  Setup s;
  s.opt.moving_batch = 128;
  s.opt.moves_per_update = 2;
  s.opt.gradient_batch = 256;
  s.opt.correction_groups = 4;
  s.opt.resample_rule.ess_fraction = 0.999;
  s.holdout = 300;
  const Run cpu = run(s);
  s.device = Device::cuda(0);
  const Run gpu = run(s);
  BOOST_TEST(jebm::test::all_close(gpu.means, cpu.means, 1e-9, 1e-9));
  for (size_t k = 0; k < cpu.log.size(); ++k) {
    BOOST_TEST(gpu.log[k].log_z == cpu.log[k].log_z, boost::test_tools::tolerance(1e-9));
    BOOST_TEST(gpu.log[k].log_z_corrected == cpu.log[k].log_z_corrected, boost::test_tools::tolerance(1e-9));
    BOOST_TEST(gpu.log[k].holdout_log_z == cpu.log[k].holdout_log_z, boost::test_tools::tolerance(1e-9));
  }
}

// Trainer::State carries the held-out walkers' bookkeeping and the correction: a run split by state()/restore()
// into a fresh Trainer (copies of both populations) continues exactly as the unbroken run.
BOOST_AUTO_TEST_CASE(state_restore_continues_holdout_and_correction_exactly) {
  const int64_t d = 3, n = 200, m = 120;
  GmmParams p = gaussian(d);
  const Tensor data = exact_samples(p, 64, 7);
  TrainerOptions o;
  o.moving_batch = 50;
  o.moves_per_update = 2;
  o.gradient_batch = 100;
  o.correction_groups = 4;
  o.resample_rule.ess_fraction = 0.999;
  const double lr = 0.2;
  auto make = [&](GaussianMixtureEnergy& e, WalkerPopulation& w, WalkerPopulation& h) {
    auto t = std::make_unique<Trainer>(e, w, o);
    t->set_holdout(&h);
    t->data_batch = [&data](int64_t) { return data; };
    t->optimizer_step = [&e, lr](int64_t) { gd_step(e, lr); };
    t->step_scale_dot = [lr](const std::vector<Tensor>& c) { return plain_dot(c, lr); };
    return t;
  };
  GaussianMixtureEnergy e1(p), e2(p);
  WalkerPopulation w1 = WalkerPopulation::create(exact_samples(p, n, 1), 2), h1 =
                                                     WalkerPopulation::create(exact_samples(p, m, 3), 4);
  auto t1 = make(e1, w1, h1);
  for (int k = 0; k < 3; ++k) t1->step();
  // The checkpoint: parameters, both populations and the Trainer's state.
  e2.set_params(e1.params());
  WalkerPopulation w2 = walkers_to(w1, Device::cpu()), h2 = walkers_to(h1, Device::cpu());
  auto t2 = make(e2, w2, h2);
  t2->restore(t1->state());
  for (int k = 0; k < 3; ++k) {
    const TrainerStepInfo a = t1->step(), b = t2->step();
    BOOST_TEST(a.log_z == b.log_z);
    BOOST_TEST(a.log_z_corrected == b.log_z_corrected);
    BOOST_TEST(a.holdout_log_z == b.holdout_log_z);
    BOOST_TEST(a.log_z_corrected != a.log_z);
  }
  BOOST_TEST(e1.means().value().to_vector() == e2.means().value().to_vector());
  // Without the held-out walkers attached, a state that has them is refused.
  GaussianMixtureEnergy e3(p);
  WalkerPopulation w3 = walkers_to(w1, Device::cpu());
  Trainer t3(e3, w3, o);
  jebm::test::expect_error([&] { t3.restore(t1->state()); }, {"set_holdout"});
}

// For beta1 = 0, Adam's step of every coordinate is D_p g_p: step_scale_dot with c = e_p gives D_p, checked
// against the step actually taken; a clip factor scales it.
BOOST_AUTO_TEST_CASE(adam_step_scale_is_the_applied_step_per_unit_gradient) {
  ag::Var w(Tensor::from_vector(std::vector<double>{0.5, -1.0, 2.0}, {3}, DType::Float64), true);
  Adam opt({w}, 0.01, {0.0, 0.999}, 1e-8);
  const std::vector<double> g = {0.3, -2.0, 1e-3};
  for (int step = 0; step < 3; ++step) {
    const std::vector<double> before = w.value().to_vector();
    w.grad() = Tensor::from_vector(g, {3}, DType::Float64);
    opt.step();
    const std::vector<double> after = w.value().to_vector();
    for (size_t i = 0; i < 3; ++i) {
      std::vector<double> e(3, 0.0);
      e[i] = 1.0;
      const std::vector<Tensor> c = {Tensor::from_vector(e, {3}, DType::Float64)};
      const double d = opt.step_scale_dot(c);
      BOOST_TEST(d * g[i] == before[i] - after[i], boost::test_tools::tolerance(1e-9));
      BOOST_TEST(opt.step_scale_dot(c, 0.5) == 0.5 * d, boost::test_tools::tolerance(1e-12));
    }
  }
}

// The optimiser's curse in isolation: a unit Gaussian whose learnable mean starts at the data's mean, so the
// parameters move only with the walkers' noise and log Z = (D/2) log 2 pi stays fixed. The first-order bias of
// the raw estimate is B = sum_k lr D / ESS_k (the Gaussian's Var grad_a U = 1 per coordinate), ~1/N: here ~0.25
// nats over 600 updates. The tolerances are fractions of B. Measured over 8 seeds (d 10, N 250, M 1000): raw
// -0.217 +- 0.019, corrected +0.019 +- 0.020, held-out -0.005 +- 0.009; the corrected estimate overshoots
// slightly because the walkers' noise also reaches the parameters through earlier updates (relative size ~
// lr * the walkers' correlation time ~ 0.05), which a same-update covariance does not see. The gradient walkers
// are a random half of the walkers, which exercises the weight mass W_S of the correction.
BOOST_AUTO_TEST_CASE(holdout_and_corrected_log_z_track_the_exact_value_where_the_raw_one_drifts) {
  Setup s;
  s.d = 10;
  s.n = 250;
  s.holdout = 1000;
  s.data = 256;
  s.steps = jebm::test::sanitized() ? 300 : 600;
  s.lr = 0.01;
  s.opt.ula.h = 0.15;
  s.opt.correction_groups = 8;
  s.opt.gradient_batch = s.n / 2;
  const Run r = run(s);
  double b = 0.0;  // the first-order bias; the last step's log_z includes all updates but the last
  for (size_t k = 0; k + 1 < r.log.size(); ++k) b += s.lr * static_cast<double>(s.d) / r.log[k].ess;
  const TrainerStepInfo& e = r.log.back();
  const double raw = e.log_z - r.exact_log_z, corrected = e.log_z_corrected - r.exact_log_z,
               held = e.holdout_log_z - r.exact_log_z;
  BOOST_TEST_MESSAGE("log Z gaps: raw " << raw << ", corrected " << corrected << ", held-out " << held
                                        << "; first-order bias " << b);
  BOOST_TEST(raw < -0.5 * b);
  BOOST_TEST(std::fabs(corrected) < 0.25 * b);
  BOOST_TEST(std::fabs(held) < 0.25 * b);
  // The batch-means correction agrees with the closed form for this Gaussian.
  BOOST_TEST(std::fabs(corrected - raw - b) < 0.3 * b);
  // A run without the correction reports none.
  Setup off = s;
  off.steps = 2;
  off.opt.correction_groups = 0;
  BOOST_TEST(std::isnan(run(off).log.back().log_z_corrected));
}

// The held-out estimate of several blocks is log mean_b Z_b with the standard error of that mean (delta method);
// one block gives its own estimate exactly, as the Trainer's one population of held-out walkers reports it.
BOOST_AUTO_TEST_CASE(holdout_blocks_combine_to_the_log_of_the_mean_z) {
  const std::vector<HoldoutBlock> blocks = {{std::log(1.0), 50.0, 1}, {std::log(2.0), 30.0, 0}, {std::log(6.0), 40.0, 2}};
  const HoldoutEstimate e = combine_holdout_blocks(blocks);
  BOOST_TEST(e.log_z == std::log(3.0), boost::test_tools::tolerance(1e-14));
  // Z = 1, 2, 6: mean 3, sample variance ((-2)^2 + 1 + 3^2) / 2 = 7, SE(mean) = sqrt(7 / 3), SE(log) = that / 3.
  BOOST_TEST(e.se == std::sqrt(7.0 / 3.0) / 3.0, boost::test_tools::tolerance(1e-14));
  BOOST_TEST(e.min_ess == 30.0);
  BOOST_TEST(e.resamplings == 3);
  const HoldoutEstimate one = combine_holdout_blocks({{-12.345678901234567, 7.5, 4}});
  BOOST_TEST(one.log_z == -12.345678901234567);  // exactly
  BOOST_TEST(std::isnan(one.se));
  BOOST_TEST(one.min_ess == 7.5);
}

// Held-out walkers resample by the rule, or by the training walkers' batch-ESS threshold as a fraction of their own
// number; never on non-finite weights.
BOOST_AUTO_TEST_CASE(holdout_resampling_rule) {
  ResampleRule rule;
  rule.ess_fraction = 0.5;
  WeightStats st;
  st.ess = 4.0;
  BOOST_TEST(holdout_should_resample(st, 10, rule));        // ESS 4 of 10 < half
  BOOST_TEST(!holdout_should_resample(st, 6, rule));        // 4 of 6
  BOOST_TEST(holdout_should_resample(st, 10, rule, 64.0, 128));   // 4 / 10 < 64 / 128
  BOOST_TEST(!holdout_should_resample(st, 10, rule, 16.0, 128));  // 4 / 10 >= 16 / 128
  st.log_sum = std::numeric_limits<double>::infinity();
  BOOST_TEST(!holdout_should_resample(st, 10, rule));
}
