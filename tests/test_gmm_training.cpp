// Tests of GmmTrainer's log Z estimates (samplers/gmm_training.hpp, samplers/gmm_step.hpp, docs/method.md):
// the pass's gradient variance and lag covariance against direct sums (and the tensor-op form of the latter that
// walkers on a CUDA device use), held-out walkers that leave the training
// trajectory bit-identical, and a small mixture where the corrected and held-out estimates track the exact log Z
// while the uncorrected one is measurably biased.
#include <cmath>

#include "samplers/gmm_lag.hpp"
#include "samplers/gmm_step.hpp"
#include "samplers/gmm_training.hpp"
#include "tests/helpers.hpp"

using namespace jebm;
using jebm::test::all_close;

namespace {

// dU/dtheta of every row as [n, K*D + K] (dU/da_j = r_j (a_j - x), dU/dz_j = r_j), written the obvious way.
std::vector<double> per_walker_gradients(const GmmParams& p, const Tensor& x) {
  const int64_t n = x.size(0), k = p.k, d = p.d, w = k * d + k;
  Tensor u = Tensor::empty({n}, DType::Float64), r = Tensor::empty({n, k}, DType::Float64);
  gmm_eval(p, x, u, nullptr, &r);
  std::vector<double> f(static_cast<size_t>(n * w));
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = 0; j < k; ++j) {
      const double rj = r.data<double>()[i * k + j];
      for (int64_t q = 0; q < d; ++q)
        f[static_cast<size_t>(i * w + j * d + q)] = rj * (p.mean(j)[q] - x.data<double>()[i * d + q]);
      f[static_cast<size_t>(i * w + k * d + j)] = rj;
    }
  return f;
}

std::vector<double> weighted_mean(const std::vector<double>& f, const std::vector<double>& w, int64_t width) {
  std::vector<double> m(static_cast<size_t>(width), 0.0);
  for (size_t i = 0; i < w.size(); ++i)
    for (int64_t q = 0; q < width; ++q) m[static_cast<size_t>(q)] += w[i] * f[i * static_cast<size_t>(width) + static_cast<size_t>(q)];
  return m;
}

GmmConfig small_config() {
  GmmConfig c;
  c.dim = 6;
  c.data = 400;
  c.walkers = 300;
  c.lr_means = 2.0;  // fast parameter changes: the weights spread and resampling happens
  c.lr_z = 5.0;
  c.resample_rule.cv2_max = 0.05;
  return c;
}

}  // namespace

// The fused pass's variance and lag covariance equal the direct sums over the same walkers and weights.
BOOST_AUTO_TEST_CASE(pass_variance_and_lag_covariance_match_direct_sums) {
  const GmmConfig c = small_config();
  GmmParams theta = gmm_student_init(c);
  const int64_t n = 257, k = theta.k, d = theta.d, w = k * d + k;  // 257: not a multiple of the chunk size
  Tensor x0 = Tensor::empty({n, d}, DType::Float64);
  gmm_sample(theta, n, 7, 0, x0.data<double>());
  WalkerPopulation pop = WalkerPopulation::create(x0, 11);
  for (int64_t i = 0; i < n; ++i) pop.log_w.data<double>()[i] = 0.8 * std::sin(1.3 * static_cast<double>(i));
  UlaConfig ula;
  GmmGradientLag lag;
  const GmmWalkerPass p1 = gmm_walker_pass(theta, pop, ula, true, &lag);  // nothing pending: A stays as set
  BOOST_TEST(p1.lag_cov.empty());
  const std::vector<double> w1 = normalized_weights(pop.log_w.to_vector());
  const Tensor x1 = pop.x_prev.clone();  // X_k
  const std::vector<double> f1 = per_walker_gradients(theta, x1), g1 = weighted_mean(f1, w1, w);
  std::vector<double> var(static_cast<size_t>(w), 0.0);
  for (int64_t i = 0; i < n; ++i)
    for (int64_t q = 0; q < w; ++q) {
      const double e = w1[static_cast<size_t>(i)] * (f1[static_cast<size_t>(i * w + q)] - g1[static_cast<size_t>(q)]);
      var[static_cast<size_t>(q)] += e * e;
    }
  std::vector<double> pv = p1.var_a;
  pv.insert(pv.end(), p1.var_z.begin(), p1.var_z.end());
  BOOST_TEST(all_close(pv, var, 1e-15, 1e-9, "variance of g_hat"));
  std::vector<double> va(static_cast<size_t>(k * d)), vz(static_cast<size_t>(k));
  Tensor u = Tensor::empty({n}, DType::Float64), r = Tensor::empty({n, k}, DType::Float64);
  gmm_eval(theta, x1, u, nullptr, &r);
  gmm_param_grad_variance(theta, x1, r, Tensor::from_vector(w1, {n}, DType::Float64), va.data(), vz.data());
  va.insert(va.end(), vz.begin(), vz.end());
  BOOST_TEST(all_close(va, var, 1e-15, 1e-9, "gmm_param_grad_variance"));

  // A parameter change, then the next pass: its lag covariance pairs each walker's two gradients.
  const GmmParams theta1 = theta;
  for (double& a : theta.a) a += 0.05;
  theta.z[1] -= 0.1;
  const GmmWalkerPass p2 = gmm_walker_pass(theta, pop, ula, true, &lag);
  const std::vector<double> w2 = normalized_weights(pop.log_w.to_vector());
  const std::vector<double> f2 = per_walker_gradients(theta, pop.x_prev), g2 = weighted_mean(f2, w2, w);
  std::vector<double> cov(static_cast<size_t>(w), 0.0);
  for (int64_t i = 0; i < n; ++i)
    for (int64_t q = 0; q < w; ++q)
      cov[static_cast<size_t>(q)] += w1[static_cast<size_t>(i)] * w2[static_cast<size_t>(i)] *
                                     (f1[static_cast<size_t>(i * w + q)] - g1[static_cast<size_t>(q)]) *
                                     (f2[static_cast<size_t>(i * w + q)] - g2[static_cast<size_t>(q)]);
  BOOST_TEST(all_close(p2.lag_cov, cov, 1e-15, 1e-8, "lag covariance"));

  // The tensor-op form that walkers on a CUDA device use (samplers/gmm_lag.hpp), here on CPU tensors: the centred
  // rows w_i (f_i - g) and the covariance from them.
  const Tensor rows1 = gmm_centred_grad_rows(theta1, g1, x1, r, Tensor::from_vector(w1, {n}, DType::Float64));
  std::vector<double> centred(static_cast<size_t>(n * w));
  for (int64_t i = 0; i < n; ++i)
    for (int64_t q = 0; q < w; ++q)
      centred[static_cast<size_t>(i * w + q)] =
          w1[static_cast<size_t>(i)] * (f1[static_cast<size_t>(i * w + q)] - g1[static_cast<size_t>(q)]);
  BOOST_TEST(rows1.shape() == (Shape{n, w}));
  BOOST_TEST(all_close(rows1.to_vector(), centred, 1e-15, 1e-12, "centred gradient rows"));
  Tensor r2 = Tensor::empty({n, k}, DType::Float64);
  gmm_eval(theta, pop.x_prev, u, nullptr, &r2);
  const Tensor rows2 = gmm_centred_grad_rows(theta, g2, pop.x_prev, r2, Tensor::from_vector(w2, {n}, DType::Float64));
  BOOST_TEST(all_close(gmm_lag_covariance(rows1, rows2), cov, 1e-15, 1e-8, "lag covariance from the rows"));
}

// Held-out walkers never enter the gradient: with and without them the training run is the same, bit for bit.
BOOST_AUTO_TEST_CASE(holdout_walkers_leave_the_training_trajectory_bit_identical) {
  GmmConfig c = small_config();
  const GmmParams teacher = gmm_teacher(c);
  const Tensor data = gmm_teacher_data(c, teacher);
  GmmConfig ch = c;
  ch.holdout_walkers = 120;
  ch.holdout_blocks = 4;
  GmmTrainer plain(c, Algorithm::Jarzynski, data, teacher), held(ch, Algorithm::Jarzynski, data, teacher);
  int64_t resampled = 0;
  for (int k = 0; k < 60; ++k) {
    const GmmRecord a = plain.iterate(), b = held.iterate();
    resampled += a.resampled;
    BOOST_TEST(a.log_z_estimate == b.log_z_estimate);
    BOOST_TEST(a.log_z_estimate_raw == b.log_z_estimate_raw);
    BOOST_TEST(std::isnan(a.holdout_log_z));
    BOOST_TEST(std::isfinite(b.holdout_log_z));
  }
  BOOST_TEST(resampled > 0);  // the resampling path is covered
  BOOST_TEST(held.holdout_walkers().size() == 4u);
  BOOST_TEST(plain.params().a == held.params().a, boost::test_tools::per_element());
  BOOST_TEST(plain.params().z == held.params().z, boost::test_tools::per_element());
  BOOST_TEST(plain.walkers().x.to_vector() == held.walkers().x.to_vector(), boost::test_tools::per_element());
  BOOST_TEST(plain.walkers().log_w.to_vector() == held.walkers().log_w.to_vector(), boost::test_tools::per_element());
}

// --no-correction drops the lag-covariance sums only: the training (parameters, walkers, weights, resamplings) and
// the raw and variance-corrected estimates are bit for bit those of a run with them; the corrected one is NaN.
BOOST_AUTO_TEST_CASE(no_correction_changes_only_the_corrected_estimate) {
  const GmmConfig c = small_config();
  const GmmParams teacher = gmm_teacher(c);
  const Tensor data = gmm_teacher_data(c, teacher);
  GmmConfig off_c = c;
  off_c.ce_correction = false;
  GmmTrainer on(c, Algorithm::Jarzynski, data, teacher), off(off_c, Algorithm::Jarzynski, data, teacher);
  int64_t resampled = 0;
  for (int k = 0; k < 30; ++k) {
    const GmmRecord a = on.iterate(), b = off.iterate();
    resampled += a.resampled;
    BOOST_TEST(a.jarzynski_ce_raw == b.jarzynski_ce_raw);
    BOOST_TEST(a.jarzynski_ce_var == b.jarzynski_ce_var);
    BOOST_TEST(std::isnan(b.jarzynski_ce));
    BOOST_TEST(std::isnan(b.log_z_correction));
    if (k > 0) BOOST_TEST(std::isfinite(a.jarzynski_ce));
  }
  BOOST_TEST(resampled > 0);
  BOOST_TEST(on.params().a == off.params().a, boost::test_tools::per_element());
  BOOST_TEST(on.params().z == off.params().z, boost::test_tools::per_element());
  BOOST_TEST(on.walkers().x.to_vector() == off.walkers().x.to_vector(), boost::test_tools::per_element());
  BOOST_TEST(on.walkers().log_w.to_vector() == off.walkers().log_w.to_vector(), boost::test_tools::per_element());
}

// A held-out block's estimate on the iteration it resamples is the estimate before the resampling, offset + log
// mean exp(A). Resampling folds that log mean into the block's offset, so the estimate must equal the new offset;
// reading the offset after the fold and adding the log mean again would count it twice.
BOOST_AUTO_TEST_CASE(holdout_estimate_on_a_resampling_iteration_counts_its_log_mean_once) {
  GmmConfig c = small_config();
  c.holdout_walkers = 40;
  c.holdout_blocks = 1;  // one block: the held-out estimate is that block's, exactly
  const GmmParams teacher = gmm_teacher(c);
  const Tensor data = gmm_teacher_data(c, teacher);
  GmmTrainer run(c, Algorithm::Jarzynski, data, teacher);
  int64_t seen = 0;
  for (int k = 0; k < 100; ++k) {
    const double offset_before = run.holdout_walkers()[0].log_z_offset;
    const int64_t resamplings_before = run.holdout_walkers()[0].resamplings;
    const GmmRecord r = run.iterate();
    const WalkerPopulation& h = run.holdout_walkers()[0];
    if (h.resamplings == resamplings_before) continue;
    ++seen;
    BOOST_TEST(h.log_z_offset != offset_before);  // a log mean was folded in: the check below has teeth
    BOOST_TEST(r.holdout_log_z == h.log_z_offset);
    BOOST_TEST(r.holdout_resamplings == h.resamplings);
  }
  BOOST_TEST(seen > 0);  // the block resampled within the run
}

// Two modes whose masses are fixed (lr_z = 0), so the exact log Z stays constant, and a student that starts on
// the teacher: every parameter change is the walkers' own gradient noise, and the uncorrected estimate drifts
// down by about T x lr x sum_p Cov (docs/method.md), here ~1 nat. The held-out walkers form 10 blocks of N
// walkers, so the spread of the blocks is the spread of an N-walker estimate: the tolerances come from it.
BOOST_AUTO_TEST_CASE(corrected_and_heldout_estimates_track_the_exact_log_z) {
  GmmConfig c;
  c.dim = 10;
  c.teacher_means = {{-4.0}, {4.0}};
  c.teacher_weights = {0.5, 0.5};
  c.init_spread = 4.0;
  c.lr_z = 0.0;
  c.lr_means = 0.25;
  c.walkers = 200;
  c.data = 2000;
  c.holdout_walkers = 10 * c.walkers;
  c.holdout_blocks = 10;
  c.iterations = jebm::test::sanitized() ? 300 : 1000;
  const GmmParams teacher = gmm_teacher(c);
  const Tensor data = gmm_teacher_data(c, teacher);
  GmmTrainer run(c, Algorithm::Jarzynski, data, teacher);
  for (int64_t k = 0; k < c.iterations; ++k) run.iterate();
  const GmmRecord f = run.final_record();
  const double sd_n = f.holdout_se * std::sqrt(static_cast<double>(c.holdout_blocks));  // of one N-walker estimate
  const double gap = f.log_z_estimate - f.log_z_exact, raw = f.log_z_estimate_raw - f.log_z_exact;
  const double held = f.holdout_log_z - f.log_z_exact;
  BOOST_TEST_MESSAGE("gaps: corrected " << gap << ", raw " << raw << ", held-out " << held << " +- " << f.holdout_se
                                        << "; correction " << f.log_z_correction << ", N-walker sd " << sd_n);
  BOOST_TEST(f.log_z_correction > 10 * sd_n);                 // the drift is large against the noise here
  BOOST_TEST(raw < -0.5 * f.log_z_correction);                 // ... and the uncorrected estimate shows it
  // Corrected: the N-walker noise (4 sd) plus the first-order remainder (10 % of the correction).
  BOOST_TEST(std::fabs(gap) < 4 * sd_n + 0.1 * f.log_z_correction);
  BOOST_TEST(std::fabs(held) < 4 * f.holdout_se);              // held-out: within its own error bar
}
