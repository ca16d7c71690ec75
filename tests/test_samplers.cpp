// Tests of samplers/ (CPU): weight statistics, resampling, the fused ULA+Jarzynski kernel against its unfused
// reference and both weight kernels against their formulas, determinism (seed, thread count), resampling before
// a move, and the weighted walkers' estimates on a moving Gaussian target (fast kernel and the generic Trainer)
// against the exact moments, where PCD is wrong.

#include <algorithm>
#include <cmath>
#include <numeric>

#include "autograd/engine.hpp"
#include "models/gaussian_mixture.hpp"
#include "samplers/contrastive.hpp"
#include "samplers/resampling.hpp"
#include "samplers/trainer.hpp"
#include "samplers/ula_jarzynski.hpp"
#include "samplers/walkers.hpp"
#include "tests/helpers.hpp"

using namespace jebm;
using jebm::test::all_close;

namespace {

Tensor f64(const std::vector<double>& v, const Shape& s) { return Tensor::from_vector(v, s, DType::Float64); }

std::vector<double> to_vec(const Tensor& t) { return t.to_vector(); }

// A one-mode "mixture" is a unit Gaussian: U = |x - a|^2 / 2 + z, log Z = (D/2) log 2 pi - z.
GmmParams gaussian(int64_t d, double a0, double z) {
  GmmParams p = GmmParams::zeros(1, d);
  p.a[0] = a0;
  p.z[0] = z;
  return p;
}

struct Eval {
  Tensor u, g;
};
Eval eval(const GmmParams& p, const Tensor& x) {
  const int64_t n = x.size(0);
  Eval e{Tensor::empty({n}, DType::Float64), Tensor::empty(x.shape(), DType::Float64)};
  gmm_eval(p, x.data<double>(), n, e.u.data<double>(), e.g.data<double>(), nullptr);
  return e;
}

// Weighted mean and variance of coordinate 0.
std::pair<double, double> weighted_moments(const WalkerPopulation& pop, const Tensor& x, bool weighted) {
  const int64_t n = pop.size(), d = pop.walker_numel();
  std::vector<double> w = weighted ? pop.weights() : std::vector<double>(static_cast<size_t>(n), 1.0 / n);
  double m = 0.0, m2 = 0.0;
  for (int64_t i = 0; i < n; ++i) {
    const double v = x.data<double>()[i * d];
    m += w[static_cast<size_t>(i)] * v;
    m2 += w[static_cast<size_t>(i)] * v * v;
  }
  return {m, m2 - m * m};
}

}  // namespace

BOOST_AUTO_TEST_CASE(weight_stats_match_direct_formulas) {
  std::vector<double> a = {0.3, -1.2, 2.5, 0.0, -0.7, 1.1, 4.0};
  const int64_t n = static_cast<int64_t>(a.size());
  double s = 0.0;
  for (double v : a) s += std::exp(v);
  double sw2 = 0.0;
  for (double v : a) sw2 += std::pow(std::exp(v) / s, 2);
  const WeightStats st = weight_stats(a.data(), n);
  BOOST_TEST(st.log_sum == std::log(s), boost::test_tools::tolerance(1e-13));
  BOOST_TEST(st.log_mean == std::log(s / n), boost::test_tools::tolerance(1e-13));
  BOOST_TEST(st.ess == 1.0 / sw2, boost::test_tools::tolerance(1e-12));
  BOOST_TEST(st.cv2 == n / (1.0 / sw2) - 1.0, boost::test_tools::tolerance(1e-11));
  // Shifting every log-weight by a huge constant changes log Z by it and nothing else: no overflow.
  std::vector<double> b = a;
  for (double& v : b) v += 1e4;
  const WeightStats sb = weight_stats(b.data(), n);
  BOOST_TEST(sb.log_sum - 1e4 == st.log_sum, boost::test_tools::tolerance(1e-9));
  BOOST_TEST(sb.ess == st.ess, boost::test_tools::tolerance(1e-12));
  BOOST_TEST(all_close(normalized_weights(b), normalized_weights(a), 1e-15, 1e-12, "weights"));
  const std::vector<double> eq(5, -3000.0);
  BOOST_TEST(weight_stats(eq.data(), 5).ess == 5.0, boost::test_tools::tolerance(1e-12));
  BOOST_TEST(std::fabs(weight_stats(eq.data(), 5).cv2) < 1e-12);
}

BOOST_AUTO_TEST_CASE(normalized_weights_sum_to_one_at_huge_log_weights) {
  // |A| ~ 1e17: the ulp of A (16) exceeds log s1 (here log 37 = 3.6), so exp(A - log_sum) summed to s1 = 37 and
  // resampling stopped with an internal error (a GMM run pushed to huge weights). exp(A - m) / s1 sums to 1.
  std::vector<double> lw(40, 1e17);
  for (size_t i = 37; i < lw.size(); ++i) lw[i] = 1e17 - 64.0;  // three walkers e^-64 below the rest
  const std::vector<double> w = normalized_weights(lw);
  double s = 0.0;
  for (double v : w) s += v;
  BOOST_TEST(s == 1.0, boost::test_tools::tolerance(1e-12));
  BOOST_TEST(w[0] == 1.0 / 37.0, boost::test_tools::tolerance(1e-12));
  const Tensor wt = normalized_weights(Tensor::from_vector(lw, {40}, DType::Float64));
  BOOST_TEST(all_close(wt.host_vector<double>(), w, 0.0, 1e-15, "tensor path"));
  WalkerPopulation pop = WalkerPopulation::create(Tensor::zeros({40, 2}, DType::Float64), 7);
  pop.log_w = Tensor::from_vector(lw, {40}, DType::Float64);
  const std::vector<int64_t> anc = draw_population_ancestors(pop, ResampleScheme::Multinomial);  // used to throw
  for (int64_t a : anc) BOOST_TEST(a < 37);
}

BOOST_AUTO_TEST_CASE(systematic_counts_within_one_of_n_w) {
  const int64_t n = 1000;
  std::vector<double> lw(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) lw[static_cast<size_t>(i)] = 3.0 * std::sin(0.37 * static_cast<double>(i * i));
  const std::vector<double> w = normalized_weights(lw);
  for (double u : {0.0, 0.123, 0.5, 0.999}) {
    const std::vector<int64_t> anc = systematic_ancestors(w, u);
    std::vector<int64_t> cnt(static_cast<size_t>(n), 0);
    for (int64_t a : anc) ++cnt[static_cast<size_t>(a)];
    int bad = 0;
    for (int64_t i = 0; i < n; ++i)
      if (std::fabs(static_cast<double>(cnt[static_cast<size_t>(i)]) - n * w[static_cast<size_t>(i)]) >= 1.0) ++bad;
    BOOST_TEST(bad == 0);
    BOOST_TEST(static_cast<int64_t>(anc.size()) == n);
  }
}

BOOST_AUTO_TEST_CASE(multinomial_is_unbiased_over_repeats) {
  const int64_t n = 40, reps = jebm::test::sanitized() ? 300 : 3000;
  std::vector<double> lw(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) lw[static_cast<size_t>(i)] = 2.0 * std::cos(1.3 * static_cast<double>(i));
  const std::vector<double> w = normalized_weights(lw);
  std::vector<double> mean(w.size(), 0.0);
  for (int64_t r = 0; r < reps; ++r)
    for (int64_t a : multinomial_ancestors(w, 11, static_cast<uint64_t>(r))) mean[static_cast<size_t>(a)] += 1.0 / reps;
  for (size_t i = 0; i < w.size(); ++i) {
    // The mean count over reps is N w_i with std sqrt(N w (1 - w) / reps): a 5-sigma bound.
    const double sd = std::sqrt(n * w[i] * (1 - w[i]) / reps);
    BOOST_TEST(std::fabs(mean[i] - n * w[i]) < 5 * sd, "count of " << i << ": " << mean[i] << " vs " << n * w[i]);
  }
}

// The device-transparent Tensor API (samplers/kernels.inc through its dispatch points) gives on the CPU exactly
// what the host-array API gives, and its validation names the operation and what is wrong.
BOOST_AUTO_TEST_CASE(tensor_api_equals_host_array_api_on_the_cpu) {
  const int64_t n = 257;
  std::vector<double> lw(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) lw[static_cast<size_t>(i)] = 3.0 * std::sin(0.7 * static_cast<double>(i)) - 2.0;
  const Tensor lw_t = f64(lw, {n});
  const WeightStats a = weight_stats(lw.data(), n), b = weight_stats(lw_t);
  BOOST_TEST((a.log_sum == b.log_sum && a.log_mean == b.log_mean && a.ess == b.ess && a.cv2 == b.cv2));
  double ess = 0.0;
  const std::vector<double> w = normalized_weights(lw);
  BOOST_TEST(to_vec(normalized_weights(lw_t, &ess)) == w, boost::test_tools::per_element());
  double s2 = 0.0;
  for (double v : w) s2 += v * v;
  BOOST_TEST(ess == 1.0 / s2);
  const Tensor w_t = f64(w, {n});
  const std::vector<int64_t> sys = systematic_ancestors(w, 0.3), mul = multinomial_ancestors(w, 4, 2);
  BOOST_TEST(systematic_ancestors(w_t, 0.3).host_vector<int64_t>() == sys, boost::test_tools::per_element());
  BOOST_TEST(multinomial_ancestors(w_t, 4, 2).host_vector<int64_t>() == mul, boost::test_tools::per_element());
  const std::vector<double> c = to_vec(cumulative_weights(w_t));
  BOOST_TEST(c.back() == 1.0);
  BOOST_TEST(std::fabs(c[10] - std::accumulate(w.begin(), w.begin() + 11, 0.0)) < 1e-15);

  WalkerPopulation p1 = WalkerPopulation::create(f64(std::vector<double>(static_cast<size_t>(2 * n), 0.5), {n, 2}), 7);
  p1.log_w.copy_(lw_t);
  WalkerPopulation p2 = walkers_to(p1, Device::cpu());
  BOOST_TEST(!p2.x.same_storage(p1.x));
  resample_population(p1, draw_population_ancestors(p1, ResampleScheme::Multinomial));
  resample_population(p2, population_ancestors(p2, ResampleScheme::Multinomial));
  BOOST_TEST(p1.log_z_offset == p2.log_z_offset);
  BOOST_TEST(to_vec(p1.x) == to_vec(p2.x), boost::test_tools::per_element());

  const Tensor u = f64(std::vector<double>(3, 0.0), {3});
  jebm::test::expect_error([&] { ula_jarzynski_step(p1, u, p1.x, UlaConfig{}); }, {"ula_jarzynski_step", "u must"});
  jebm::test::expect_error([&] { ula_jarzynski_step(p1, f64(std::vector<double>(2, 0.0), {2}), f64({0, 0, 0, 0}, {2, 2}),
                                                    UlaConfig{}, MoveKind::CompleteAndMove, {0, n}); },
                           {"ula_jarzynski_step", "walker index " + std::to_string(n)});
  jebm::test::expect_error([&] { resample_population(p1, Tensor::zeros({3}, DType::Int64)); },
                           {"resample_population", "ancestors"});
  jebm::test::expect_error([&] { weight_stats(Tensor::zeros({3}, DType::Float32)); }, {"weight_stats", "float64"});
}

BOOST_AUTO_TEST_CASE(resampling_carries_log_mean_exp_into_the_offset) {
  Tensor x = f64({0, 1, 2, 3}, {4, 1});
  WalkerPopulation pop = WalkerPopulation::create(x, 3, 0.5);
  const std::vector<double> a = {0.0, 2.0, -1.0, 0.5};
  std::copy(a.begin(), a.end(), pop.log_w.data<double>());
  const double before = pop.log_z_estimate();
  const std::vector<int64_t> anc = {1, 1, 3, 0};
  resample_population(pop, anc);
  BOOST_TEST(pop.log_z_estimate() == before, boost::test_tools::tolerance(1e-14));
  BOOST_TEST(to_vec(pop.x) == (std::vector<double>{1, 1, 3, 0}), boost::test_tools::per_element());
  BOOST_TEST(to_vec(pop.log_w) == (std::vector<double>{0, 0, 0, 0}), boost::test_tools::per_element());
  BOOST_TEST(pop.resamplings == 1);
  ResampleRule rule;
  rule.ess_fraction = 0.5;
  rule.cv2_max = 0.0;
  BOOST_TEST(should_resample(WeightStats{0, 0, 1.9, 0}, 4, rule));
  BOOST_TEST(!should_resample(WeightStats{0, 0, 2.1, 0}, 4, rule));
  rule.cv2_max = 1.0;
  BOOST_TEST(should_resample(WeightStats{0, 0, 3.9, 1.01}, 4, rule));
}

// Three Algorithm-1 iterations with parameter changes between them, fused vs the literal weight formula.
void check_fused_equals_reference(double sigma, double clip, int64_t d,
                                  WeightKernel wk = WeightKernel::Consistent) {
  const int64_t n = 64;
  GmmParams p = GmmParams::zeros(2, d);
  p.a[0] = -2.0;
  p.a[static_cast<size_t>(d)] = 1.5;
  p.z = {0.0, 0.3};
  Tensor x0 = Tensor::empty({n, d}, DType::Float64);
  gmm_sample(p, n, 5, 0, x0.data<double>());
  UlaConfig cfg;
  cfg.h = 0.05;
  cfg.sigma = sigma;
  cfg.drift_clip = clip;
  cfg.weight_kernel = wk;
  WalkerPopulation pop = WalkerPopulation::create(x0, 42);
  Tensor x_ref = x0.clone();
  Tensor a_ref = Tensor::empty({n}, DType::Float64);
  std::fill_n(a_ref.data<double>(), n, 0.0);
  Eval e = eval(p, pop.x);
  for (int k = 0; k < 3; ++k) {
    // fused: complete the previous move under the current theta and move with its gradient
    ula_jarzynski_step(pop, e.u, e.g, cfg);
    // reference: move with the same noise, change theta, evaluate, apply the literal increment
    const Eval er = eval(p, x_ref);
    const Tensor xi = ula_noise_reference(n, d, 42, static_cast<uint64_t>(k));
    Tensor x_next = ula_move_reference(x_ref, er.g, xi, cfg);
    BOOST_TEST(all_close(pop.x, x_next, 1e-13, 1e-13, "positions"));
    p.a[0] += 0.1;  // a parameter change between the move and its completion
    p.z[1] -= 0.05;
    const Eval en = eval(p, x_next);
    jarzynski_increment_reference(a_ref, x_ref, er.u, er.g, x_next, en.u, en.g, cfg);
    x_ref = x_next;
    e = eval(p, pop.x);
  }
  ula_jarzynski_step(pop, e.u, e.g, cfg, MoveKind::CompleteOnly);
  BOOST_TEST(all_close(pop.log_w, a_ref, 1e-10, 1e-10, "log-weights"));
  BOOST_TEST(!pop.any_pending());
  BOOST_TEST(pop.moves == 3u);
}

BOOST_AUTO_TEST_CASE(fused_kernel_equals_unfused_reference) {
  check_fused_equals_reference(0.0, 0.0, 7);   // sigma = sqrt(2h), odd D (last pair half used)
  check_fused_equals_reference(0.05, 0.0, 8);  // a cold noise scale, as in the image experiments
  check_fused_equals_reference(0.0, 0.5, 6);   // drift clipping, used on both sides of the formula
  check_fused_equals_reference(0.05, 0.0, 8, WeightKernel::Paper2h);  // the official image code's weights
  check_fused_equals_reference(0.3, 0.5, 5, WeightKernel::Paper2h);
  check_fused_equals_reference(0.05, 0.0, 8, WeightKernel::Tempered);  // exact weights for exp(-U / T), T = 0.025
  check_fused_equals_reference(0.3, 0.5, 5, WeightKernel::Tempered);
}

// Both weight kernels against their formulas written out here: one move from X0 under U_0, completed at X1 under
// U_1 (another theta), on a small float64 population:
//   A = U_0(X0) - U_1(X1) + (|X1 - X0 + h G_0(X0)|^2 - |X0 - X1 + h G_1(X1)|^2) / (2 v),
// v = sigma^2 ("sigma") or v = 2h ("2h").
BOOST_AUTO_TEST_CASE(weight_kernels_match_their_formulas) {
  const int64_t n = 6, d = 3;
  const double h = 0.04;
  GmmParams p0 = gaussian(d, 0.3, 0.0), p1 = gaussian(d, -0.2, 0.1);
  Tensor x0 = Tensor::empty({n, d}, DType::Float64);
  gmm_sample(p0, n, 8, 0, x0.data<double>());
  for (WeightKernel wk : {WeightKernel::Consistent, WeightKernel::Paper2h}) {
    for (double sigma : {0.01, 0.2}) {
      UlaConfig cfg;
      cfg.h = h;
      cfg.sigma = sigma;
      cfg.weight_kernel = wk;
      WalkerPopulation pop = WalkerPopulation::create(x0, 3);
      const Eval e0 = eval(p0, pop.x);
      ula_jarzynski_step(pop, e0.u, e0.g, cfg, MoveKind::MoveOnly);
      const Tensor x1 = pop.x.clone();
      const Eval e1 = eval(p1, x1);
      ula_jarzynski_step(pop, e1.u, e1.g, cfg, MoveKind::CompleteOnly);
      const double v = wk == WeightKernel::Consistent ? sigma * sigma : 2.0 * h;
      std::vector<double> want(static_cast<size_t>(n));
      for (int64_t i = 0; i < n; ++i) {
        double fwd = 0.0, bwd = 0.0;
        for (int64_t k = 0; k < d; ++k) {
          const int64_t j = i * d + k;
          const double a = x0.data<double>()[j], b = x1.data<double>()[j];
          const double f = b - a + h * e0.g.data<double>()[j], r = a - b + h * e1.g.data<double>()[j];
          fwd += f * f;
          bwd += r * r;
        }
        want[static_cast<size_t>(i)] = e0.u.data<double>()[i] - e1.u.data<double>()[i] + (fwd - bwd) / (2.0 * v);
      }
      // The fused kernel uses sigma^2 |xi|^2 for |X1 - X0 + h G_0|^2: equal up to rounding of O(|x|) terms.
      BOOST_TEST(all_close(to_vec(pop.log_w), want, 1e-9, 1e-9,
                           std::string("kernel ") + weight_kernel_name(wk) + " sigma " + std::to_string(sigma)));
    }
  }
  BOOST_TEST(weight_kernel_name(weight_kernel_from_name("sigma")) == std::string("sigma"));
  BOOST_TEST(weight_kernel_name(weight_kernel_from_name("2h")) == std::string("2h"));
  jebm::test::expect_error([] { weight_kernel_from_name("4h"); }, {"weight kernel '4h'"});
}

// With sigma = sqrt(2h), the paper's choice, v = sigma^2 = 2h: both kernels give the same weights.
BOOST_AUTO_TEST_CASE(weight_kernels_coincide_at_sigma_sqrt_2h) {
  const int64_t n = 40, d = 5;
  GmmParams p = gaussian(d, 0.5, 0.0);
  Tensor x0 = Tensor::empty({n, d}, DType::Float64);
  gmm_sample(p, n, 2, 0, x0.data<double>());
  std::vector<std::vector<double>> log_w;
  for (WeightKernel wk : {WeightKernel::Consistent, WeightKernel::Paper2h}) {
    UlaConfig cfg;
    cfg.h = 0.07;  // sigma <= 0: sqrt(2h)
    cfg.weight_kernel = wk;
    WalkerPopulation pop = WalkerPopulation::create(x0, 9);
    for (int k = 0; k < 4; ++k) {
      const Eval e = eval(p, pop.x);
      ula_jarzynski_step(pop, e.u, e.g, cfg, k == 0 ? MoveKind::MoveOnly : MoveKind::CompleteAndMove);
      p.a[0] += 0.05;
    }
    const Eval e = eval(p, pop.x);
    ula_jarzynski_step(pop, e.u, e.g, cfg, MoveKind::CompleteOnly);
    log_w.push_back(to_vec(pop.log_w));
    p.a[0] -= 0.2;
  }
  BOOST_TEST(all_close(log_w[1], log_w[0], 1e-12, 1e-12, "2h vs sigma at sigma = sqrt(2h)"));
}

// What each kernel's weight becomes at FIXED theta on a quadratic energy (U = |x - a|^2 / 2, G = x - a), where
// U(x) - U(y) = (x - y).(G_x + G_y) / 2 holds exactly. For one move x -> y, d = y - x (whatever the noise was):
//   "2h":    A += h/4 (|G_x|^2 - |G_y|^2)                                   so K moves telescope to
//            A_K = h/4 (|G_0|^2 - |G_K|^2), whatever sigma is: the paper's weights do not see the chain's
//            temperature (docs/method.md, "Cold chains: what the paper's weights are");
//   "sigma": A += (h / sigma^2 - 1/2) d.(G_x + G_y) + h^2 / (2 sigma^2) (|G_x|^2 - |G_y|^2)
//            whose first term, zero only at sigma^2 = 2h, is what collapses the ESS of a cold chain.
BOOST_AUTO_TEST_CASE(weights_at_fixed_theta_on_a_quadratic_energy_have_closed_forms) {
  const int64_t n = 8, d = 4, moves = 6;
  const double h = 0.04;
  const GmmParams p = gaussian(d, 0.7, 0.3);
  Tensor x0 = Tensor::empty({n, d}, DType::Float64);
  gmm_sample(gaussian(d, -1.0, 0.0), n, 5, 0, x0.data<double>());  // away from the minimum: |G| is not small
  auto sq = [&](const Tensor& g, int64_t i) {
    double s = 0.0;
    for (int64_t k = 0; k < d; ++k) s += g.data<double>()[i * d + k] * g.data<double>()[i * d + k];
    return s;
  };
  for (WeightKernel wk : {WeightKernel::Paper2h, WeightKernel::Consistent}) {
    for (double sigma : {0.005, 0.1, 0.6}) {
      UlaConfig cfg;
      cfg.h = h;
      cfg.sigma = sigma;
      cfg.weight_kernel = wk;
      WalkerPopulation pop = WalkerPopulation::create(x0, 4);
      std::vector<double> cross(static_cast<size_t>(n), 0.0);  // sum over moves of d.(G_x + G_y)
      Eval e = eval(p, pop.x);
      const Tensor g0 = e.g.clone();
      for (int64_t k = 0; k < moves; ++k) {
        const Tensor xa = pop.x.clone(), ga = e.g.clone();
        ula_jarzynski_step(pop, e.u, e.g, cfg, k == 0 ? MoveKind::MoveOnly : MoveKind::CompleteAndMove);
        const Eval next = eval(p, pop.x);
        for (int64_t i = 0; i < n; ++i)
          for (int64_t c = 0; c < d; ++c) {
            const int64_t j = i * d + c;
            cross[static_cast<size_t>(i)] += (pop.x.data<double>()[j] - xa.data<double>()[j]) *
                                             (ga.data<double>()[j] + next.g.data<double>()[j]);
          }
        e = next;
      }
      ula_jarzynski_step(pop, e.u, e.g, cfg, MoveKind::CompleteOnly);
      std::vector<double> want(static_cast<size_t>(n));
      for (int64_t i = 0; i < n; ++i) {
        const double dg = sq(g0, i) - sq(e.g, i);
        want[static_cast<size_t>(i)] =
            wk == WeightKernel::Paper2h
                ? h / 4.0 * dg
                : (h / (sigma * sigma) - 0.5) * cross[static_cast<size_t>(i)] + h * h / (2.0 * sigma * sigma) * dg;
      }
      BOOST_TEST(all_close(to_vec(pop.log_w), want, 1e-8, 1e-8,
                           std::string("kernel ") + weight_kernel_name(wk) + " sigma " + std::to_string(sigma)));
    }
  }
}

BOOST_AUTO_TEST_CASE(noise_is_standard_normal_and_matches_libm_box_muller) {
  const int64_t n = jebm::test::sanitized() ? 2000 : 20000;
  const Tensor xi = ula_noise_reference(n, 2, 9, 0);
  double m = 0, m2 = 0, m4 = 0;
  for (double v : xi.to_vector()) {
    m += v;
    m2 += v * v;
    m4 += v * v * v * v;
  }
  const double c = static_cast<double>(2 * n);
  BOOST_TEST(std::fabs(m / c) < 5 / std::sqrt(c));
  BOOST_TEST(std::fabs(m2 / c - 1.0) < 5 * std::sqrt(2.0 / c));
  BOOST_TEST(std::fabs(m4 / c - 3.0) < 5 * std::sqrt(96.0 / c));
  // The polynomial log/sincos agree with libm to ~1e-15.
  for (double u : {1e-300, 1e-17, 0.001, 0.3, 0.5, 0.70710678, 0.9999999}) {
    BOOST_TEST(std::fabs(poly_log(u) - std::log(u)) <= 4e-16 * std::fabs(std::log(u)) + 1e-300);
    double s, co;
    poly_sincos2pi(u, &s, &co);
    BOOST_TEST(std::fabs(s - std::sin(2 * M_PI * u)) < 2e-15);
    BOOST_TEST(std::fabs(co - std::cos(2 * M_PI * u)) < 2e-15);
  }
}

namespace {
// A short run of fused moves with parameter changes and resampling, returning positions and log-weights.
std::vector<double> short_run(uint64_t seed, int threads) {
  const jebm::test::ThreadCount count(threads);
  const int64_t n = 3000, d = 11;
  GmmParams p = gaussian(d, 0.0, 0.0);
  Tensor x0 = Tensor::empty({n, d}, DType::Float64);
  gmm_sample(p, n, seed, 0, x0.data<double>());
  WalkerPopulation pop = WalkerPopulation::create(x0, seed);
  UlaConfig cfg;
  for (int k = 0; k < 6; ++k) {
    const Eval e = eval(p, pop.x);
    ula_jarzynski_step(pop, e.u, e.g, cfg);
    if (k == 3) resample_and_redo_move(pop, draw_population_ancestors(pop, ResampleScheme::Multinomial), e.u, e.g, cfg);
    p.a[0] += 0.3;
  }
  std::vector<double> out = pop.x.to_vector();
  const std::vector<double> a = pop.log_w.to_vector();
  out.insert(out.end(), a.begin(), a.end());
  out.push_back(pop.log_z_offset);
  return out;
}
}  // namespace

BOOST_AUTO_TEST_CASE(same_seed_same_run_and_thread_count_invariance) {
  const std::vector<double> a = short_run(7, 1), b = short_run(7, 1), c = short_run(7, 2), d = short_run(8, 2);
  BOOST_TEST(a == b, boost::test_tools::per_element());
  BOOST_TEST(a == c, boost::test_tools::per_element());  // bitwise, not just close
  BOOST_TEST(a != d);
}

BOOST_AUTO_TEST_CASE(resampled_copies_do_not_move_identically) {
  const int64_t n = 50, d = 4;
  GmmParams p = gaussian(d, 0.0, 0.0);
  Tensor x0 = Tensor::empty({n, d}, DType::Float64);
  gmm_sample(p, n, 1, 0, x0.data<double>());
  WalkerPopulation pop = WalkerPopulation::create(x0, 99);
  UlaConfig cfg;
  Eval e = eval(p, pop.x);
  ula_jarzynski_step(pop, e.u, e.g, cfg);
  // Make walker 0 dominate, so resampling copies it many times.
  e = eval(p, pop.x);
  ula_jarzynski_step(pop, e.u, e.g, cfg);
  pop.log_w.data<double>()[0] += 50.0;
  const Tensor x_pre = pop.x_prev.clone();
  const std::vector<int64_t> anc = draw_population_ancestors(pop, ResampleScheme::Systematic);
  BOOST_TEST(std::count(anc.begin(), anc.end(), 0) == n);
  resample_and_redo_move(pop, anc, e.u, e.g, cfg);
  // Every copy starts at walker 0's pre-move position and gets its own noise (stream = its own index).
  const Tensor xi = ula_noise_reference(n, d, 99, pop.moves - 1);
  const Tensor start = gather_rows(x_pre, anc), g0 = gather_rows(e.g, anc);
  BOOST_TEST(all_close(pop.x, ula_move_reference(start, g0, xi, cfg), 1e-14, 1e-14, "redone move"));
  const std::vector<double> x = pop.x.to_vector();
  for (int64_t i = 1; i < n; ++i) BOOST_TEST(x[static_cast<size_t>(i * d)] != x[0]);
  BOOST_TEST(pop.resamplings == 1);
  BOOST_TEST(to_vec(pop.log_w) == std::vector<double>(static_cast<size_t>(n), 0.0), boost::test_tools::per_element());
}

// A Gaussian target whose mean and offset move every step: the weighted walkers follow the exact moments and
// log Z, while PCD's unweighted walkers lag behind (and carry ULA's O(h) variance bias).
BOOST_AUTO_TEST_CASE(weighted_walkers_track_a_moving_gaussian_where_pcd_lags) {
  const int64_t n = jebm::test::sanitized() ? 4000 : 20000, d = 3, steps = 30;
  const double speed = 0.05, dz = 0.02;
  GmmParams p = gaussian(d, 0.0, 0.0);
  Tensor x0 = Tensor::empty({n, d}, DType::Float64);
  gmm_sample(p, n, 3, 0, x0.data<double>());
  WalkerPopulation jz = WalkerPopulation::create(x0, 5, gmm_log_z(p));
  WalkerPopulation pcd = WalkerPopulation::create(x0, 6);
  UlaConfig cj, cp;
  cp.weighted = false;
  for (int64_t k = 0; k < steps; ++k) {
    const Eval ej = eval(p, jz.x), ep = eval(p, pcd.x);
    ula_jarzynski_step(jz, ej.u, ej.g, cj);
    ula_jarzynski_step(pcd, ep.u, ep.g, cp);
    p.a[0] += speed;
    p.z[0] += dz;
  }
  const Eval ej = eval(p, jz.x);
  ula_jarzynski_step(jz, ej.u, ej.g, cj, MoveKind::CompleteOnly);
  const auto [mj, vj] = weighted_moments(jz, jz.x, true);
  const auto [mp, vp] = weighted_moments(pcd, pcd.x, false);
  const double ess = jz.stats().ess;
  BOOST_TEST_MESSAGE("target mean " << p.a[0] << ": weighted " << mj << " (ESS " << ess << "), PCD " << mp
                                    << "; variance weighted " << vj << ", PCD " << vp);
  BOOST_TEST(ess > 0.05 * n);
  const double err = 5.0 / std::sqrt(ess);
  BOOST_TEST(std::fabs(mj - p.a[0]) < err);
  BOOST_TEST(std::fabs(vj - 1.0) < 2 * err);
  BOOST_TEST(std::fabs(mp - p.a[0]) > 10.0 / std::sqrt(static_cast<double>(n)));  // PCD lags: 10 standard errors
  // log Z_theta = (D/2) log 2 pi - z: the Jarzynski estimate within its Monte-Carlo error.
  BOOST_TEST(std::fabs(jz.log_z_estimate() - gmm_log_z(p)) < err);
}

// The same kind of check through the generic Trainer: a subset of walkers moves (several moves per update), the
// others get the parameter-change increment; the "optimizer" moves the target on a schedule.
namespace {

// The Trainer on a unit Gaussian target whose mean and offset move after every update (the energy's parameters
// are set by the optimizer callback, not learned): o's moves, subsets and resampling, 12 updates, then part 1.
struct MovingGaussianRun {
  GmmParams p;
  WalkerPopulation pop;
};
MovingGaussianRun run_moving_gaussian(TrainerOptions o, int64_t n) {
  const int64_t d = 2, updates = 12;
  GmmParams p = gaussian(d, 0.0, 0.0);
  GaussianMixtureEnergy energy(p);
  Tensor x0 = Tensor::empty({n, d}, DType::Float64);
  gmm_sample(p, n, 4, 0, x0.data<double>());
  WalkerPopulation pop = WalkerPopulation::create(x0, 8, gmm_log_z(p));
  Trainer t(energy, pop, o);
  Tensor data = Tensor::empty({64, d}, DType::Float64);
  gmm_sample(p, 64, 9, 0, data.data<double>());
  t.data_batch = [&](int64_t) { return data; };
  int64_t steps_seen = 0;
  t.optimizer_step = [&](int64_t) {
    // The surrogate's gradient reached the parameters; then the target moves on the schedule.
    BOOST_TEST(energy.means().grad().defined());
    p.a[0] += 0.04;
    p.z[0] -= 0.03;
    energy.set_params(p);
    ++steps_seen;
  };
  for (int64_t k = 0; k < updates; ++k) t.step();
  BOOST_TEST(steps_seen == updates);
  // Complete the last moves and give the others the last parameter change, as the next step's part 1 would.
  t.bring_up_to_date();
  BOOST_TEST(!pop.any_pending());
  return {p, std::move(pop)};
}

// The weighted walkers' mean, variance and log Z against the target's.
void check_tracks_the_target(const MovingGaussianRun& r, int64_t n) {
  const auto [mj, vj] = weighted_moments(r.pop, r.pop.x, true);
  const double ess = r.pop.stats().ess;
  const double err = 5.0 / std::sqrt(ess);
  BOOST_TEST_MESSAGE("trainer: target " << r.p.a[0] << " weighted mean " << mj << " var " << vj << " ESS " << ess);
  BOOST_TEST(ess > 0.05 * n);
  BOOST_TEST(std::fabs(mj - r.p.a[0]) < err);
  BOOST_TEST(std::fabs(vj - 1.0) < 2 * err);
  BOOST_TEST(std::fabs(r.pop.log_z_estimate() - gmm_log_z(r.p)) < err);
}

TrainerOptions subset_options(int64_t n) {
  TrainerOptions o;
  o.ula.h = 0.1;
  o.moves_per_update = 3;
  o.moving_batch = n / 4;
  o.gradient_batch = n / 2;
  o.resample = false;
  return o;
}

}  // namespace

BOOST_AUTO_TEST_CASE(trainer_subset_moves_track_a_moving_gaussian) {
  const int64_t n = jebm::test::sanitized() ? 2000 : 8000;
  check_tracks_the_target(run_moving_gaussian(subset_options(n), n), n);
}

// Resampling at every update, then warm moves of every walker (TrainerOptions::rejuvenation_moves): the weighted
// walkers still track the target (the moves are weighted exactly), every copy has moved apart from its siblings
// (without them the walkers outside the moving subset stay copies), and the moves used the shared noise counter.
BOOST_AUTO_TEST_CASE(rejuvenation_after_resampling_keeps_the_estimates_and_spreads_the_copies) {
  const int64_t n = jebm::test::sanitized() ? 2000 : 8000, moves = 2;
  TrainerOptions o = subset_options(n);
  o.resample = true;
  o.resample_rule.scheme = ResampleScheme::Multinomial;
  o.resample_rule.ess_fraction = 1.0;  // fires whenever the weights are not all equal
  for (int64_t rejuvenation : {int64_t{0}, moves}) {
    o.rejuvenation_moves = rejuvenation;
    const MovingGaussianRun r = run_moving_gaussian(o, n);
    BOOST_TEST(r.pop.resamplings >= 10);
    BOOST_TEST(r.pop.moves == static_cast<uint64_t>(12 * 3 + r.pop.resamplings * rejuvenation));
    std::vector<std::vector<double>> rows;
    const double* x = r.pop.x.data<double>();
    for (int64_t i = 0; i < n; ++i) rows.push_back({x[2 * i], x[2 * i + 1]});
    std::sort(rows.begin(), rows.end());
    const int64_t distinct = std::unique(rows.begin(), rows.end()) - rows.begin();
    BOOST_TEST_MESSAGE("rejuvenation " << rejuvenation << ": " << distinct << " distinct walkers of " << n);
    if (rejuvenation == 0) {
      BOOST_TEST(distinct < n);  // the check below is not vacuous: resampling alone leaves copies
    } else {
      BOOST_TEST(distinct == n);
      check_tracks_the_target(r, n);
    }
  }
}

BOOST_AUTO_TEST_CASE(cd_restarts_walkers_on_data_rows) {
  BOOST_TEST(cd_should_restart(0, 4));
  BOOST_TEST(!cd_should_restart(3, 4));
  BOOST_TEST(cd_should_restart(8, 4));
  Tensor data = f64({10, 11, 20, 21, 30, 31}, {3, 2});
  WalkerPopulation pop = WalkerPopulation::create(f64(std::vector<double>(20, 0.0), {10, 2}), 1);
  pop.log_w.data<double>()[2] = 4.0;
  restart_from_data(pop, data, 3, 0);
  const std::vector<double> x = pop.x.to_vector();
  for (int64_t i = 0; i < 10; ++i) {
    const double a = x[static_cast<size_t>(2 * i)], b = x[static_cast<size_t>(2 * i + 1)];
    BOOST_TEST((b == a + 1 && (a == 10 || a == 20 || a == 30)));
  }
  BOOST_TEST(pop.stats().ess == 10.0, boost::test_tools::tolerance(1e-12));
  BOOST_TEST((algorithm_from_name("pcd") == Algorithm::Pcd));
  BOOST_CHECK_THROW(algorithm_from_name("foo"), jebm::Error);
}
