// The tempered weight kernel (WeightKernel::Tempered, samplers/ula_jarzynski.hpp) and the identity that explains
// the paper's 2h kernel on cold chains (docs/method.md): every 2h log-weight increment is exactly T times the
// tempered one, T = sigma^2 / (2h), for single moves and over the moves and parameter change between two updates,
// on a quadratic energy and on the MNIST energy network (float64); the tempered kernel's fused pass against the literal
// formula; and the Trainer with it (resampling, rejuvenation moves, held-out walkers) on a Gaussian whose
// tempered density N(a, T I) is known.
#include <cmath>
#include <functional>
#include <memory>

#include "autograd/ops.hpp"
#include "models/gaussian_mixture.hpp"
#include "models/energy_nets.hpp"
#include "runtime/ops.hpp"
#include "samplers/trainer.hpp"
#include "samplers/ula_jarzynski.hpp"
#include "tests/helpers.hpp"

using namespace jebm;
using jebm::test::all_close;

namespace {

// A one-mode "mixture" is a Gaussian: U = |x - a|^2 / 2 + z, so exp(-U / T) is N(a, T I) with
// log Z_T = (D/2) log(2 pi T) - z / T.
GmmParams gaussian(int64_t d, double a0, double z) {
  GmmParams p = GmmParams::zeros(1, d);
  p.a[0] = a0;
  p.z[0] = z;
  return p;
}
double tempered_log_z(const GmmParams& p, int64_t d, double t) {
  return 0.5 * static_cast<double>(d) * std::log(2.0 * M_PI * t) - p.z[0] / t;
}

// An energy under test: U and grad_x U at rows x under the current parameters, and a parameter change.
struct EnergyUnderTest {
  std::function<void(const Tensor& x, Tensor& u, Tensor& g)> eval;
  std::function<void()> change;
};

// Two populations from the same start and noise seed, one weighted with the 2h kernel and one with the tempered
// kernel; the positions stay identical (the weights do not steer the moves), so at every checkpoint
// A_2h = T A_tempered must hold walker by walker, and the tempered increments must not be the 2h ones (T < 1).
void check_2h_is_t_times_tempered(const EnergyUnderTest& e, const Tensor& x0, double h, double sigma,
                                  const std::string& what) {
  UlaConfig c2h, ct;
  c2h.h = ct.h = h;
  c2h.sigma = ct.sigma = sigma;
  c2h.weight_kernel = WeightKernel::Paper2h;
  ct.weight_kernel = WeightKernel::Tempered;
  const double t = ct.temperature();
  BOOST_TEST(t < 1.0);
  WalkerPopulation p2 = WalkerPopulation::create(x0.clone(), 17), pt = WalkerPopulation::create(x0.clone(), 17);
  auto step = [&](MoveKind kind) {
    Tensor u, g;
    e.eval(p2.x, u, g);
    ula_jarzynski_step(p2, u, g, c2h, kind);
    e.eval(pt.x, u, g);
    ula_jarzynski_step(pt, u, g, ct, kind);
    BOOST_TEST(p2.x.to_vector() == pt.x.to_vector());  // bit for bit: same noise, same drift
  };
  // A_2h = T A_tempered walker by walker (absolute tolerance 1e-14), with log-weights at least 1000 times that
  // tolerance, so the comparison means something (at fixed theta a cold move changes them little).
  auto check = [&](const std::string& stage) {
    std::vector<double> a2 = p2.log_w.to_vector(), at = pt.log_w.to_vector(), t_at(at.size());
    double largest = 0.0;
    for (size_t i = 0; i < at.size(); ++i) {
      t_at[i] = t * at[i];
      largest = std::max(largest, std::fabs(a2[i]));
    }
    BOOST_TEST(all_close(a2, t_at, 1e-11, 1e-14, what + ", " + stage + ": A_2h = T A_tempered"));
    BOOST_TEST(largest > 1e-11, what << ", " << stage << ": largest |A_2h| " << largest);
  };
  // One move at fixed theta.
  step(MoveKind::MoveOnly);
  step(MoveKind::CompleteOnly);
  check("one move");
  // The parameter change at fixed positions, then four moves at the new theta: the moves between two updates.
  Tensor u_old = Tensor(), u_new, g;
  e.eval(p2.x, u_old, g);
  e.change();
  e.eval(p2.x, u_new, g);
  jarzynski_parameter_change(p2, u_old, u_new, {}, c2h.energy_coef());
  jarzynski_parameter_change(pt, u_old, u_new, {}, ct.energy_coef());
  check("parameter change");
  step(MoveKind::MoveOnly);
  for (int k = 0; k < 3; ++k) step(MoveKind::CompleteAndMove);
  step(MoveKind::CompleteOnly);
  check("parameter change and four moves");
  // A move made under one theta and completed under the next (the combined increment of a one-move update).
  step(MoveKind::MoveOnly);
  e.change();
  step(MoveKind::CompleteOnly);
  check("a move across a parameter change");
}

}  // namespace

BOOST_AUTO_TEST_CASE(paper_2h_increments_are_t_times_the_tempered_ones_on_a_quadratic_energy) {
  const int64_t n = 12, d = 6;
  GmmParams p = gaussian(d, 0.4, 0.2);
  Tensor x0 = Tensor::empty({n, d}, DType::Float64);
  gmm_sample(gaussian(d, -1.0, 0.0), n, 3, 0, x0.data<double>());  // away from the minimum: |G| is not small
  EnergyUnderTest e;
  e.eval = [&](const Tensor& x, Tensor& u, Tensor& g) {
    u = Tensor::empty({x.size(0)}, DType::Float64);
    g = Tensor::empty(x.shape(), DType::Float64);
    gmm_eval(p, x.data<double>(), x.size(0), u.data<double>(), g.data<double>(), nullptr);
  };
  e.change = [&] {
    p.a[0] += 0.15;
    p.z[0] -= 0.1;
  };
  for (double sigma : {0.005, 0.1}) check_2h_is_t_times_tempered(e, x0, 0.01, sigma, "quadratic, sigma " + std::to_string(sigma));
}

BOOST_AUTO_TEST_CASE(paper_2h_increments_are_t_times_the_tempered_ones_on_a_network) {
  const int64_t n = 9;
  Generator gen{5, 0};
  MnistEnergyCNN energy(gen, DType::Float64);  // the MNIST energy network, on 14x14 walkers as in the CPU preset
  Generator gx{21, 0};
  const Tensor x0 = rand_uniform({n, 1, 14, 14}, -1.0, 1.0, gx, DType::Float64);
  WalkerPopulation unused = WalkerPopulation::create(x0.clone(), 1);
  const Trainer evaluator(energy, unused, TrainerOptions{});
  EnergyUnderTest e;
  e.eval = [&](const Tensor& x, Tensor& u, Tensor& g) {  // U = 100 f(x): the untrained net's f is nearly flat
    evaluator.energy_and_grad(x, u, g);
    for (Tensor* t : {&u, &g})
      for (int64_t k = 0; k < t->numel(); ++k) t->data<double>()[k] *= 100.0;
  };
  e.change = [&] {  // an optimiser-like step on every parameter
    for (ag::Var& v : energy.parameters()) {
      double* w = v.value().data<double>();
      for (int64_t k = 0; k < v.value().numel(); ++k) w[k] += 0.02 * std::sin(static_cast<double>(k) + 1.0);
    }
  };
  for (double sigma : {0.005, 0.1}) check_2h_is_t_times_tempered(e, x0, 0.01, sigma, "network, sigma " + std::to_string(sigma));
}

// The tempered fused pass over three moves with parameter changes between them against the literal formula
// A += (U_k(X_k) - U_{k+1}(X_{k+1})) / T + (|X_{k+1} - X_k + h G_k|^2 - |X_k - X_{k+1} + h G_{k+1}|^2) / (2 sigma^2),
// written out here (not through jarzynski_increment_reference), with drift clipping on and off.
BOOST_AUTO_TEST_CASE(tempered_fused_pass_matches_its_formula) {
  const int64_t n = 10, d = 5;
  for (double clip : {0.0, 0.3}) {
    GmmParams p = gaussian(d, 0.5, 0.0);
    Tensor x0 = Tensor::empty({n, d}, DType::Float64);
    gmm_sample(gaussian(d, -0.5, 0.0), n, 6, 0, x0.data<double>());
    UlaConfig cfg;
    cfg.h = 0.02;
    cfg.sigma = 0.05;
    cfg.drift_clip = clip;
    cfg.weight_kernel = WeightKernel::Tempered;
    const double t = 0.05 * 0.05 / (2.0 * 0.02), s2 = 0.05 * 0.05;
    BOOST_TEST(cfg.temperature() == t, boost::test_tools::tolerance(1e-14));
    BOOST_TEST(cfg.energy_coef() == 1.0 / t, boost::test_tools::tolerance(1e-14));
    auto ev = [&](const Tensor& x, std::vector<double>& u, std::vector<double>& g) {
      u.assign(static_cast<size_t>(n), 0.0);
      g.assign(static_cast<size_t>(n * d), 0.0);
      gmm_eval(p, x.data<double>(), n, u.data(), g.data(), nullptr);
      for (double& v : g) v = clip > 0.0 ? std::fmax(-clip, std::fmin(clip, v)) : v;
    };
    WalkerPopulation pop = WalkerPopulation::create(x0.clone(), 2);
    std::vector<double> want(static_cast<size_t>(n), 0.0), u0, g0, u1, g1;
    for (int k = 0; k < 3; ++k) {
      const std::vector<double> xa = pop.x.to_vector();
      ev(pop.x, u0, g0);
      Tensor u = Tensor::from_vector(u0, {n}, DType::Float64), g = Tensor::empty({n, d}, DType::Float64);
      gmm_eval(p, pop.x.data<double>(), n, u.data<double>(), g.data<double>(), nullptr);  // unclipped: the kernel clips
      ula_jarzynski_step(pop, u, g, cfg, MoveKind::MoveOnly);
      p.a[0] += 0.07;  // the move is completed under the next theta
      p.z[0] += 0.02;
      ev(pop.x, u1, g1);
      const std::vector<double> xb = pop.x.to_vector();
      Tensor un = Tensor::from_vector(u1, {n}, DType::Float64), gn = Tensor::empty({n, d}, DType::Float64);
      gmm_eval(p, pop.x.data<double>(), n, un.data<double>(), gn.data<double>(), nullptr);
      ula_jarzynski_step(pop, un, gn, cfg, MoveKind::CompleteOnly);
      for (int64_t i = 0; i < n; ++i) {
        double fwd = 0.0, bwd = 0.0;
        for (int64_t c = 0; c < d; ++c) {
          const size_t j = static_cast<size_t>(i * d + c);
          const double f = xb[j] - xa[j] + cfg.h * g0[j], r = xa[j] - xb[j] + cfg.h * g1[j];
          fwd += f * f;
          bwd += r * r;
        }
        const size_t ii = static_cast<size_t>(i);
        want[ii] += (u0[ii] - u1[ii]) / t + (fwd - bwd) / (2.0 * s2);
      }
    }
    BOOST_TEST(all_close(pop.log_w.to_vector(), want, 1e-9, 1e-9, "tempered, clip " + std::to_string(clip)));
  }
  BOOST_TEST(weight_kernel_name(weight_kernel_from_name("tempered")) == std::string("tempered"));
  UlaConfig warm;
  warm.h = 0.3;
  warm.weight_kernel = WeightKernel::Tempered;  // sigma = sqrt(2h): T = 1, the consistent weights
  BOOST_TEST(warm.energy_coef() == 1.0, boost::test_tools::tolerance(1e-15));
  BOOST_TEST(warm.partial_coef() == 0.5);
}

// The Trainer with the tempered kernel on a cold chain (T = 0.5): a subset of walkers moves each update, the others
// take the parameter-change increment (U_k - U_{k+1}) / T, resampling fires below an ESS of 0.9 N and every
// resampling is followed by two rejuvenation moves at the run's own noise; the held-out walkers do the same.
// The weighted walkers must estimate the tempered density N(a, T I) and its log Z_T as the target moves.
BOOST_AUTO_TEST_CASE(trainer_with_tempered_weights_tracks_the_tempered_density) {
  const int64_t n = jebm::test::sanitized() ? 2000 : 6000, d = 2, updates = 12;
  TrainerOptions o;
  o.ula.h = 0.1;
  o.ula.sigma = std::sqrt(0.1);  // T = sigma^2 / (2h) = 0.5
  o.ula.weight_kernel = WeightKernel::Tempered;
  o.moves_per_update = 3;
  o.moving_batch = n / 4;
  o.gradient_batch = n / 2;
  o.resample = true;
  o.resample_rule.ess_fraction = 0.9;
  o.rejuvenation_moves = 2;
  const double t = o.ula.temperature();
  BOOST_TEST(t == 0.5, boost::test_tools::tolerance(1e-12));
  GmmParams p = gaussian(d, 0.0, 0.0);
  GaussianMixtureEnergy energy(p);
  auto start = [&](uint64_t seed) {  // exact draws of N(a, T I)
    Tensor x = Tensor::empty({n, d}, DType::Float64);
    gmm_sample(p, n, seed, 0, x.data<double>());
    for (int64_t k = 0; k < n * d; ++k) x.data<double>()[k] *= std::sqrt(t);
    return WalkerPopulation::create(x, seed + 10, tempered_log_z(p, d, t));
  };
  WalkerPopulation pop = start(4), hold = start(5);
  Trainer tr(energy, pop, o);
  tr.set_holdout(&hold);
  Tensor data = Tensor::empty({64, d}, DType::Float64);
  gmm_sample(p, 64, 9, 0, data.data<double>());
  tr.data_batch = [&](int64_t) { return data; };
  tr.optimizer_step = [&](int64_t) {  // the target moves on a schedule, faster than the walkers follow
    p.a[0] += 0.06;
    p.z[0] -= 0.03;
    energy.set_params(p);
  };
  for (int64_t k = 0; k < updates; ++k) tr.step();
  tr.bring_up_to_date();
  BOOST_TEST(pop.resamplings >= 1u);
  for (const WalkerPopulation* w : {&pop, &hold}) {
    const std::vector<double> wt = w->weights();
    double m = 0.0, m2 = 0.0, plain = 0.0;
    for (int64_t i = 0; i < w->size(); ++i) {
      const double v = w->x.data<double>()[i * d];
      m += wt[static_cast<size_t>(i)] * v;
      m2 += wt[static_cast<size_t>(i)] * v * v;
      plain += v / static_cast<double>(w->size());
    }
    const double var = m2 - m * m, ess = w->stats().ess, err = 5.0 / std::sqrt(ess);
    BOOST_TEST_MESSAGE("tempered: target mean " << p.a[0] << " var " << t << "; weighted " << m << " var " << var
                                                << ", unweighted mean " << plain << ", ESS " << ess << ", log Z "
                                                << w->log_z_estimate() << " vs " << tempered_log_z(p, d, t));
    BOOST_TEST(ess > 0.05 * static_cast<double>(w->size()));
    BOOST_TEST(std::fabs(m - p.a[0]) < err * std::sqrt(t));
    BOOST_TEST(std::fabs(var - t) < 2.0 * err * t);
    BOOST_TEST(std::fabs(w->log_z_estimate() - tempered_log_z(p, d, t)) < err);
    BOOST_TEST(std::fabs(plain - p.a[0]) > 10.0 * std::sqrt(t / static_cast<double>(w->size())));  // the lag is real
  }
}
