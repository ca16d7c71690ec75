// Tests of the Gaussian-mixture energy (closed forms against autograd and finite differences, analytic log Z,
// exact sampling, the data term's clone against baseline code) and of `jebm gmm` (fast path == Trainer/autograd
// path; a short run's files; no overwrite; option ranges, the old option names, the parse-only entry
// parse_gmm_args, the NaN guard). Through the binary: tests/test_gmm_command.cpp.

#include <cctype>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>

#include "autograd/engine.hpp"
#include "experiments/gmm.hpp"
#include "models/checkpoint.hpp"
#include "models/gaussian_mixture.hpp"
#include "samplers/gmm_step.hpp"
#include "tests/helpers.hpp"

namespace jebm {
int run_gmm(const std::vector<std::string>& args);
}

using namespace jebm;
using jebm::test::slurp;
using jebm::test::all_close;

namespace {

GmmParams three_modes(int64_t d) {
  GmmParams p = GmmParams::zeros(3, d);
  for (int64_t j = 0; j < 3; ++j)
    for (int64_t q = 0; q < d; ++q) p.a[static_cast<size_t>(j * d + q)] = std::sin(1.7 * static_cast<double>(j * d + q) + 0.3) * 2.0;
  p.z = {0.0, -0.4, 0.9};
  return p;
}

Tensor sample(const GmmParams& p, int64_t n, uint64_t seed) {
  Tensor x = Tensor::empty({n, p.d}, DType::Float64);
  gmm_sample(p, n, seed, 0, x.data<double>());
  return x;
}

}  // namespace

BOOST_AUTO_TEST_CASE(closed_forms_match_autograd) {
  const int64_t d = 5, n = 40;
  const GmmParams p = three_modes(d);
  const Tensor x = sample(p, n, 1);
  std::vector<double> u(n), g(n * d), r(n * 3), c(n);
  gmm_eval(p, x.data<double>(), n, u.data(), g.data(), r.data());
  for (int64_t i = 0; i < n; ++i) c[static_cast<size_t>(i)] = 0.5 + std::cos(static_cast<double>(i));  // any weights
  std::vector<double> ga(3 * d), gz(3);
  gmm_param_grad(p, x.data<double>(), r.data(), c.data(), n, ga.data(), gz.data());

  GaussianMixtureEnergy energy(p);
  ag::Var xv(x.clone(), true);
  ag::Var uv = energy(xv);
  BOOST_TEST(all_close(uv.value().to_vector(), u, 1e-12, 1e-12, "U"));
  // sum_i c_i U(x_i): its gradient gives sum_i c_i grad_theta U and c_i grad_x U in one backward.
  ag::backward(ag::sum_all(ag::mul(ag::Var(Tensor::from_vector(c, {n}, DType::Float64)), uv)));
  std::vector<double> gx = xv.grad().to_vector();
  for (int64_t i = 0; i < n; ++i)
    for (int64_t q = 0; q < d; ++q) gx[static_cast<size_t>(i * d + q)] /= c[static_cast<size_t>(i)];
  BOOST_TEST(all_close(gx, g, 1e-11, 1e-10, "grad_x U"));
  BOOST_TEST(all_close(energy.means().grad().to_vector(), ga, 1e-11, 1e-10, "dU/da"));
  BOOST_TEST(all_close(energy.z().grad().to_vector(), gz, 1e-11, 1e-10, "dU/dz"));
  // Responsibilities sum to one; the data term's mean gradient equals the unweighted param gradient.
  for (int64_t i = 0; i < n; ++i) BOOST_TEST(r[i * 3] + r[i * 3 + 1] + r[i * 3 + 2] == 1.0, boost::test_tools::tolerance(1e-14));
  std::vector<double> da(3 * d), dz(3), ua(3 * d), uz(3);
  const double mu = gmm_data_term(p, x.data<double>(), n, da.data(), dz.data());
  gmm_param_grad(p, x.data<double>(), r.data(), nullptr, n, ua.data(), uz.data());
  BOOST_TEST(all_close(da, ua, 1e-13, 1e-12, "data term grad_a"));
  BOOST_TEST(all_close(dz, uz, 1e-13, 1e-12, "data term grad_z"));
  double su = 0.0;
  for (double v : u) su += v;
  BOOST_TEST(mu == su / n, boost::test_tools::tolerance(1e-13));
}

BOOST_AUTO_TEST_CASE(closed_form_gradients_match_finite_differences) {
  const int64_t d = 3;
  GmmParams p = three_modes(d);
  const std::vector<double> x = {0.3, -1.1, 0.7};
  double u, g[3], r[3];
  gmm_eval(p, x.data(), 1, &u, g, r);
  const double eps = 1e-6;
  for (int q = 0; q < 3; ++q) {
    std::vector<double> xp = x, xm = x;
    xp[q] += eps;
    xm[q] -= eps;
    double up, um;
    gmm_eval(p, xp.data(), 1, &up, nullptr, nullptr);
    gmm_eval(p, xm.data(), 1, &um, nullptr, nullptr);
    BOOST_TEST(g[q] == (up - um) / (2 * eps), boost::test_tools::tolerance(1e-6));
  }
  std::vector<double> ga(9), gz(3);
  gmm_param_grad(p, x.data(), r, nullptr, 1, ga.data(), gz.data());
  for (int j = 0; j < 3; ++j) {
    GmmParams pp = p, pm = p;
    pp.z[j] += eps;
    pm.z[j] -= eps;
    double up, um;
    gmm_eval(pp, x.data(), 1, &up, nullptr, nullptr);
    gmm_eval(pm, x.data(), 1, &um, nullptr, nullptr);
    BOOST_TEST(gz[j] == (up - um) / (2 * eps), boost::test_tools::tolerance(1e-6));
  }
}

BOOST_AUTO_TEST_CASE(analytic_log_z_and_cross_entropy) {
  // 1-D: integrate exp(-U) on a fine grid (trapezoid) and compare with (D/2) log 2 pi + log sum exp(-z).
  GmmParams p = GmmParams::zeros(2, 1);
  p.a = {-3.0, 2.0};
  p.z = {0.0, -std::log(3.0)};
  double s = 0.0;
  const double lo = -15, hi = 15, dx = 1e-3;
  for (double x = lo; x <= hi; x += dx) {
    double u;
    gmm_eval(p, &x, 1, &u, nullptr, nullptr);
    s += std::exp(-u) * dx;
  }
  BOOST_TEST(gmm_log_z(p) == std::log(s), boost::test_tools::tolerance(1e-6));
  const std::vector<double> w = gmm_mode_weights(p);
  BOOST_TEST(w[0] == 0.25, boost::test_tools::tolerance(1e-14));
  BOOST_TEST(w[1] == 0.75, boost::test_tools::tolerance(1e-14));
  // CE = mean U + log Z; for data from the model itself it is the entropy, 0.5 log(2 pi e) + mixing entropy
  // when the modes are far apart.
  GmmParams far = p;
  far.a = {-40.0, 40.0};
  const int64_t n = jebm::test::sanitized() ? 20000 : 200000;
  const Tensor x = sample(far, n, 3);
  const double ce = gmm_cross_entropy(far, x.data<double>(), n);
  const double h = 0.5 * std::log(2 * M_PI * M_E) - (0.25 * std::log(0.25) + 0.75 * std::log(0.75));
  BOOST_TEST(std::fabs(ce - h) < 5 * std::sqrt(1.0 / n));
}

BOOST_AUTO_TEST_CASE(exact_sampling_moments) {
  const int64_t d = 4, n = jebm::test::sanitized() ? 20000 : 100000;
  const GmmParams p = three_modes(d);
  const Tensor x = sample(p, n, 11);
  const std::vector<double> w = gmm_mode_weights(p);
  for (int64_t q = 0; q < d; ++q) {
    double m = 0.0, want = 0.0, var = 0.0;
    for (int64_t j = 0; j < 3; ++j) want += w[static_cast<size_t>(j)] * p.mean(j)[q];
    for (int64_t j = 0; j < 3; ++j) var += w[static_cast<size_t>(j)] * std::pow(p.mean(j)[q] - want, 2);
    for (int64_t i = 0; i < n; ++i) m += x.data<double>()[i * d + q] / n;
    BOOST_TEST(std::fabs(m - want) < 5 * std::sqrt((1.0 + var) / n));
  }
}

// The closed-form fast path and the generic Trainer + autograd path run the same iterations: same noise, same
// resampling draws, same parameters (up to rounding).
BOOST_AUTO_TEST_CASE(fast_path_equals_autograd_trainer_path) {
  GmmConfig c;
  c.dim = 4;
  c.data = 300;
  c.walkers = 200;
  c.iterations = 25;
  c.resample_rule.cv2_max = 0.02;  // resample often, to cover resample-and-redo vs resample-then-move
  c.lr_means = 2.0;
  c.lr_z = 5.0;
  const GmmParams teacher = gmm_teacher(c);
  const Tensor data = gmm_teacher_data(c, teacher);
  for (Algorithm a : {Algorithm::Jarzynski, Algorithm::Pcd, Algorithm::Cd}) {
    GmmConfig ca = c;
    ca.autograd = true;
    GmmTrainer fast(c, a, data, teacher), slow(ca, a, data, teacher);
    int resampled = 0;
    for (int64_t k = 0; k < c.iterations; ++k) {
      const GmmRecord rf = fast.iterate(), rs = slow.iterate();
      resampled += rf.resampled;
      BOOST_TEST(rf.resampled == rs.resampled);
      BOOST_TEST(rf.exact_ce == rs.exact_ce, boost::test_tools::tolerance(1e-9));
      if (a == Algorithm::Jarzynski) BOOST_TEST(rf.jarzynski_ce_raw == rs.jarzynski_ce_raw, boost::test_tools::tolerance(1e-9));
    }
    if (a == Algorithm::Jarzynski) BOOST_TEST(resampled > 2);
    BOOST_TEST(all_close(fast.params().a, slow.params().a, 1e-9, 1e-9, std::string("means ") + algorithm_name(a)));
    BOOST_TEST(all_close(fast.params().z, slow.params().z, 1e-9, 1e-9, std::string("z ") + algorithm_name(a)));
    BOOST_TEST(all_close(fast.walkers().x, slow.walkers().x, 1e-9, 1e-9, "walkers"));
    const GmmRecord ff = fast.final_record(), fs = slow.final_record();
    BOOST_TEST(all_close(fast.walkers().log_w, slow.walkers().log_w, 1e-9, 1e-9, "log-weights"));
    BOOST_TEST(ff.exact_ce == fs.exact_ce, boost::test_tools::tolerance(1e-9));
  }
}

// The one-pass walker kernel reduces in fixed chunks: 1 and 2 threads give the same bits, and a seed fixes the run.
// gmm_data_partials runs an AVX2 clone where the CPU has AVX2: it must give the bits of the same per-row loop
// compiled here for the baseline ISA (no FMA; the sums in row order). 3 modes, d = 37 (partial vectors), and a
// last chunk of 700 - 512 rows.
BOOST_AUTO_TEST_CASE(data_partials_have_the_bits_of_baseline_code) {
  const GmmParams p = three_modes(37);
  const int64_t n = 700, d = p.d, k = p.k, w = 1 + k * d + k;
  const Tensor x = sample(p, n, 17);
  const double* xp = x.data<double>();
  for (const bool with_grad : {true, false}) {
    const int64_t width = with_grad ? w : 1;
    std::vector<double> want(static_cast<size_t>((n + kGmmRowChunk - 1) / kGmmRowChunk * width), 0.0);
    for (int64_t i = 0; i < n; ++i) {
      double* out = want.data() + i / kGmmRowChunk * width;
      double r[3];
      out[0] += gmm_eval_row(p, xp + i * d, r, nullptr);
      if (!with_grad) continue;
      for (int64_t j = 0; j < k; ++j) {
        out[1 + k * d + j] += r[j];
        for (int64_t q = 0; q < d; ++q) out[1 + j * d + q] += r[j] * xp[i * d + q];
      }
    }
    const std::vector<double> got = gmm_data_partials(p, xp, n, with_grad);
    BOOST_TEST_CONTEXT("with_grad " << with_grad) {
      BOOST_TEST(got.size() == want.size());
      BOOST_TEST(std::memcmp(got.data(), want.data(), want.size() * sizeof(double)) == 0);
    }
  }
}

BOOST_AUTO_TEST_CASE(fast_path_is_deterministic_across_thread_counts) {
  GmmConfig c;
  c.dim = 6;
  c.data = 500;
  c.walkers = 700;  // not a multiple of the chunk size
  c.resample_rule.cv2_max = 0.02;
  c.lr_means = 2.0;  // fast parameter changes, so that the weights spread and resampling happens
  c.lr_z = 5.0;
  const GmmParams teacher = gmm_teacher(c);
  const Tensor data = gmm_teacher_data(c, teacher);
  auto run = [&](int threads) {
    const jebm::test::ThreadCount count(threads);
    GmmTrainer e(c, Algorithm::Jarzynski, data, teacher);
    for (int k = 0; k < 40; ++k) e.iterate();
    std::vector<double> v = e.params().a;
    v.insert(v.end(), e.params().z.begin(), e.params().z.end());
    const std::vector<double> x = e.walkers().x.to_vector(), a = e.walkers().log_w.to_vector();
    v.insert(v.end(), x.begin(), x.end());
    v.insert(v.end(), a.begin(), a.end());
    v.push_back(static_cast<double>(e.walkers().resamplings));
    return v;
  };
  const std::vector<double> a = run(1), b = run(2), again = run(1);
  BOOST_TEST(a.back() > 0.0);  // resampling happened
  BOOST_TEST(a == b, boost::test_tools::per_element());
  BOOST_TEST(a == again, boost::test_tools::per_element());
}

// The fused pass computes the consistent kernel only: a library caller asking it for another is refused, not
// silently given the consistent weights.
BOOST_AUTO_TEST_CASE(fast_path_refuses_other_weight_kernels) {
  GmmConfig c;
  c.dim = 3;
  const GmmParams teacher = gmm_teacher(c);
  Generator gen{5, 0};
  WalkerPopulation pop = WalkerPopulation::create(rand_normal({8, 3}, 0.0, 1.0, gen, DType::Float64), 5);
  for (WeightKernel k : {WeightKernel::Paper2h, WeightKernel::Tempered}) {
    UlaConfig cfg;
    cfg.h = 0.01;
    cfg.weight_kernel = k;
    jebm::test::expect_error([&] { gmm_walker_pass(teacher, pop, cfg); },
                             {"gmm_walker_pass", weight_kernel_name(k), "consistent"});
  }
  UlaConfig consistent;
  consistent.h = 0.01;
  BOOST_TEST(gmm_walker_pass(teacher, pop, consistent, false).stats.ess > 0.0);
}

// A few hundred iterations of the paper's setup in a smaller dimension: the means move towards the teacher and
// the Jarzynski estimate of CE tracks the exact one.
BOOST_AUTO_TEST_CASE(short_training_run_tracks_the_exact_cross_entropy) {
  GmmConfig c;
  c.dim = 5;
  c.data = 2000;
  c.walkers = jebm::test::sanitized() ? 500 : 2000;
  c.iterations = 400;
  const GmmParams teacher = gmm_teacher(c);
  const Tensor data = gmm_teacher_data(c, teacher);
  GmmTrainer run(c, Algorithm::Jarzynski, data, teacher);
  GmmRecord first = run.iterate(), last;
  for (int64_t k = 1; k < c.iterations; ++k) last = run.iterate();
  const GmmRecord f = run.final_record();
  BOOST_TEST(f.exact_ce < first.exact_ce - 1.0);
  BOOST_TEST(f.mean_errors[0] < first.mean_errors[0] - 1.0);
  BOOST_TEST(std::fabs(f.jarzynski_ce - f.exact_ce) < 0.1);
  BOOST_TEST(std::fabs(first.jarzynski_ce - first.exact_ce) < 1e-12);  // A = 0 at theta_0: exact by construction
}

BOOST_AUTO_TEST_CASE(gmm_command_writes_its_run_directory_and_refuses_to_overwrite) {
  jebm::test::TempDir tmp;
  const std::string out = (tmp.path / "run").string();
  const std::vector<std::string> args = {"--dim", "3", "--samples", "200", "--walkers", "100", "--iterations", "30",
                                         "--log-every", "10", "--no-progress", "--out", out};
  BOOST_TEST(run_gmm(args) == 0);
  for (const char* f : {"options.txt", "metrics_jarzynski.csv", "metrics_pcd.csv", "metrics_cd.csv", "gmm.svg"})
    BOOST_TEST(std::filesystem::exists(tmp.path / "run" / f), f);
  const std::string csv = slurp(tmp.path / "run" / "metrics_jarzynski.csv");
  BOOST_TEST(csv.rfind("iteration,exact_ce,jarzynski_ce", 0) == 0);
  BOOST_TEST(std::count(csv.begin(), csv.end(), '\n') == 1 + 3 + 1);  // header, iterations 0/10/20, final
  BOOST_TEST(slurp(tmp.path / "run" / "options.txt").find("iterations = 30") != std::string::npos);
  const std::string svg = slurp(tmp.path / "run" / "gmm.svg");
  for (const char* s : {"data-name=\"jarzynski\"", "data-name=\"pcd\"", "data-name=\"cd\"", "data-name=\"jarzynski estimate\""})
    BOOST_TEST(svg.find(s) != std::string::npos, s);
  BOOST_CHECK_THROW(run_gmm(args), jebm::Error);  // a previous run is there
  std::vector<std::string> forced = args;
  forced.push_back("--force");
  forced.push_back("--algo");
  forced.push_back("pcd");
  BOOST_TEST(run_gmm(forced) == 0);
  BOOST_CHECK_THROW(run_gmm({"--algo", "nope"}), jebm::Error);
  BOOST_CHECK_THROW(run_gmm({"--teacher-weights", "0.5,x"}), jebm::Error);
}

// Every metrics column but the last (time_s), row by row.
std::string without_time(const std::string& csv) {
  std::istringstream is(csv);
  std::string out;
  for (std::string line; std::getline(is, line);) out += line.substr(0, line.rfind(',')) + "\n";
  return out;
}

// --resume: a run stopped after 35 iterations (its last checkpoint) and resumed to 60 writes the rows of the
// uninterrupted 60-iteration run; its options.txt gives the options back; a changed option or --force is refused.
BOOST_AUTO_TEST_CASE(gmm_resume_continues_bit_for_bit_and_refuses_other_options) {
  jebm::test::TempDir tmp;
  const std::string straight = (tmp.path / "straight").string(), part = (tmp.path / "part").string();
  auto args = [](const std::string& out, const char* iterations) {
    return std::vector<std::string>{"--dim", "3", "--samples", "300", "--walkers", "200", "--iterations", iterations,
                                    "--log-every", "5", "--resample-cv", "0.2", "--holdout-walkers", "20",
                                    "--holdout-blocks", "2", "--checkpoint-every", "10", "--no-progress", "--out", out};
  };
  BOOST_TEST(run_gmm(args(straight, "60")) == 0);
  BOOST_TEST(run_gmm(args(part, "35")) == 0);
  for (const char* algo : {"jarzynski", "pcd", "cd"})
    BOOST_TEST(std::filesystem::exists(tmp.path / "part" / ("checkpoint_" + std::string(algo) + ".safetensors")), algo);
  BOOST_CHECK_EXCEPTION(run_gmm({"--resume", part, "--iterations", "60", "--walkers", "300"}), Error, [](const Error& e) {
    return std::string(e.what()).find("the run was made with --walkers 200 (its options.txt), the options say "
                                      "--walkers 300") != std::string::npos;
  });
  BOOST_CHECK_EXCEPTION(run_gmm({"--resume", part, "--iterations", "20"}), Error, [](const Error& e) {
    return std::string(e.what()).find("checkpoint is at iteration 35, beyond --iterations 20") != std::string::npos;
  });
  BOOST_CHECK_THROW(run_gmm({"--resume", part, "--force"}), Error);
  BOOST_TEST(run_gmm({"--resume", part, "--iterations", "60", "--no-progress"}) == 0);
  for (const char* algo : {"jarzynski", "pcd", "cd"}) {
    const std::string f = "metrics_" + std::string(algo) + ".csv";
    BOOST_TEST(without_time(slurp(tmp.path / "part" / f)) == without_time(slurp(tmp.path / "straight" / f)), f);
  }
  BOOST_TEST(slurp(tmp.path / "part" / "options.txt").find("iterations = 60") != std::string::npos);

  // Ctrl-C (a real SIGINT through the handler) after iteration 22: a checkpoint of 23 iterations, exit code 130;
  // the resumed run ends as the uninterrupted one.
  const std::string cut = (tmp.path / "cut").string();
  std::vector<std::string> cut_args = args(cut, "60");
  cut_args.insert(cut_args.end(), {"--interrupt-at", "22"});
  BOOST_TEST(run_gmm(cut_args) == 130);
  BOOST_TEST(load_safetensors((tmp.path / "cut" / "checkpoint_jarzynski.safetensors").string()).metadata.at(
                 "gmm.iteration") == "23");
  BOOST_TEST(!std::filesystem::exists(tmp.path / "cut" / "metrics_pcd.csv"));  // stopped in the first algorithm
  BOOST_TEST(run_gmm({"--resume", cut, "--no-progress"}) == 0);
  for (const char* algo : {"jarzynski", "pcd", "cd"}) {
    const std::string f = "metrics_" + std::string(algo) + ".csv";
    BOOST_TEST(without_time(slurp(tmp.path / "cut" / f)) == without_time(slurp(tmp.path / "straight" / f)), f);
  }
}

BOOST_AUTO_TEST_CASE(gmm_config_file_sets_the_teacher) {
  jebm::test::TempDir tmp;
  {
    std::ofstream cf(tmp.path / "t.ini");
    cf << "dim = 2\nteacher-mean = -4,1\nteacher-mean = 3\nteacher-mean = 0,5\nteacher-weights = 0.2,0.3,0.5\n"
          "student-modes = 3\niterations = 5\nsamples = 100\nwalkers = 50\n";
  }
  BOOST_TEST(run_gmm({"--config", (tmp.path / "t.ini").string(), "--algo", "jarzynski", "--no-progress", "--out",
                      (tmp.path / "r").string()}) == 0);
  const std::string csv = slurp(tmp.path / "r" / "metrics_jarzynski.csv");
  BOOST_TEST(csv.find("weight_2") != std::string::npos);
  GmmConfig c;
  c.dim = 2;
  c.teacher_means = {{-4, 1}, {3}, {0, 5}};
  c.teacher_weights = {0.2, 0.3, 0.5};
  const GmmParams t = gmm_teacher(c);
  BOOST_TEST(all_close(gmm_mode_weights(t), {0.2, 0.3, 0.5}, 1e-14, 1e-12, "teacher weights"));
  BOOST_TEST(t.mean(1)[1] == 0.0);
  BOOST_TEST(t.mean(2)[1] == 5.0);
}

namespace {

// run_gmm(args) throws a jebm::Error whose message holds every one of `parts`.
void check_refused(const std::vector<std::string>& args, const std::vector<std::string>& parts) {
  try {
    run_gmm(args);
    BOOST_ERROR("accepted: " << args.front() << " " << args.back());
  } catch (const jebm::Error& e) {
    for (const auto& p : parts) BOOST_TEST(std::string(e.what()).find(p) != std::string::npos, e.what() << " lacks " << p);
  }
}

}  // namespace

// Every numeric option has a documented range, refused at parse time naming option and value; the
// teacher's lists must be finite (masses > 0). These used to run and print NaN results with exit 0, or hang.
BOOST_AUTO_TEST_CASE(gmm_option_ranges_are_checked_at_parse_time) {
  check_refused({"--teacher-weights", "1,inf"}, {"--teacher-weights '1,inf'", "inf", "(> 0)"});
  check_refused({"--teacher-weights", "1,0"}, {"--teacher-weights", "(> 0)"});
  check_refused({"--teacher-mean", "1,nan"}, {"--teacher-mean '1,nan'", "nan"});
  check_refused({"--lr-z", "1e300"}, {"--lr-z 1e+300", "[0, 1000]"});
  check_refused({"--noise", "-1"}, {"--noise -1", "(>= 0)"});
  check_refused({"--h", "nan"}, {"--h nan"});
  check_refused({"--h", "0"}, {"--h 0", "(> 0)"});
  check_refused({"--student-modes", "100000000000"}, {"--student-modes 100000000000", "[1, 10000]"});
  check_refused({"--resample-ess", "1.5"}, {"--resample-ess 1.5", "[0, 1]"});
  check_refused({"--walkers", "0"}, {"--walkers 0", "(>= 1)"});
  // A value holding one of Boost's message tokens used to hang the command (found by the gmm_config fuzz target).
  check_refused({"--dim", "%value%"}, {"'--dim'", "% value% "});
  // A bad INI line names the file.
  jebm::test::TempDir tmp;
  std::ofstream(tmp.path / "bad.ini") << "dim = 2\nno-such-option = 3\n";
  check_refused({"--config", (tmp.path / "bad.ini").string()}, {"bad.ini", "no-such-option"});
  std::ofstream(tmp.path / "tokens.ini") << "dim = %canonical_option%\n";
  check_refused({"--config", (tmp.path / "tokens.ini").string()}, {"tokens.ini", "% canonical_option% "});
  std::ofstream(tmp.path / "range.ini") << "noise = -2\n";
  check_refused({"--config", (tmp.path / "range.ini").string()}, {"--noise -2"});
  // --help shows the ranges.
  std::ostringstream help;
  auto* old = std::cout.rdbuf(help.rdbuf());
  const int rc = run_gmm({"--help"});
  std::cout.rdbuf(old);
  BOOST_TEST(rc == 0);
  std::string text;  // Boost wraps long descriptions: compare with the blanks collapsed
  for (char ch : help.str())
    if (!std::isspace(static_cast<unsigned char>(ch)) || (!text.empty() && text.back() != ' ')) text += std::isspace(static_cast<unsigned char>(ch)) ? ' ' : ch;
  for (const char* r : {"(>= 0)", "(> 0)", "(in [0, 1000])", "(in [1, 10000])"})
    BOOST_TEST(text.find(r) != std::string::npos, r);
}

// parse_gmm_args: the parse-only entry (the gmm_config fuzz target) fills the config and writes nothing.
BOOST_AUTO_TEST_CASE(parse_gmm_args_fills_the_config) {
  GmmCommandLine cl;
  BOOST_REQUIRE(parse_gmm_args({"--quick", "--algo", "pcd", "--noise", "0.5", "--teacher-weights", "1,3"}, cl));
  BOOST_TEST(cl.config.iterations == 4000);
  BOOST_TEST(cl.config.sigma == 0.5);
  BOOST_TEST(cl.algos.size() == 1u);
  BOOST_TEST(cl.config.teacher_weights == (std::vector<double>{1, 3}), boost::test_tools::per_element());
  BOOST_TEST(cl.out.empty());
  BOOST_TEST(cl.config.resample_rule.cv2_max == 1.0);  // --resample-cv 1: GMM.py's cv^2 > 1
  BOOST_TEST(cl.notes.empty());
  BOOST_TEST(cl.config.ce_correction);
  GmmCommandLine off;
  BOOST_REQUIRE(parse_gmm_args({"--no-correction"}, off));
  BOOST_TEST(!off.config.ce_correction);
}

// The sample count is --samples, the ULA noise --noise and the trigger --resample-cv (std(w / mean w), as in the
// image runs); the old names --data, --sigma and --resample-cv2 (N/ESS - 1, kept exactly) still work, with a note.
BOOST_AUTO_TEST_CASE(gmm_old_option_names_still_work_with_a_note) {
  GmmCommandLine now, old;
  BOOST_REQUIRE(parse_gmm_args({"--samples", "300", "--noise", "0.5", "--resample-cv", "0.25"}, now));
  BOOST_REQUIRE(parse_gmm_args({"--data", "300", "--sigma", "0.5", "--resample-cv2", "0.0625"}, old));
  for (const GmmCommandLine* cl : {&now, &old}) {
    BOOST_TEST(cl->config.data == 300);
    BOOST_TEST(cl->config.sigma == 0.5);
    BOOST_TEST(cl->config.resample_rule.cv2_max == 0.0625);
  }
  BOOST_TEST(now.notes.empty());
  BOOST_REQUIRE(old.notes.size() == 1u);
  for (const char* part : {"--data is now --samples", "--sigma is now --noise", "--resample-cv2 C is now --resample-cv sqrt(C)"})
    BOOST_TEST(old.notes[0].find(part) != std::string::npos, old.notes[0] << " lacks " << part);
  BOOST_TEST(old.notes[0].find('\n') == std::string::npos);  // one line
  // The checkpoints' run identity is written in the old names, so that runs made with them still resume.
  BOOST_TEST(gmm_run_identity(now).find("data=300\n") != std::string::npos);
  check_refused({"--data", "3", "--samples", "3"}, {"--data and --samples", "give --samples only"});
  check_refused({"--resample-cv2", "1", "--resample-cv", "1"}, {"give --resample-cv only"});
  // --help shows only the new names.
  std::ostringstream help;
  auto* old_buf = std::cout.rdbuf(help.rdbuf());
  run_gmm({"--help"});
  std::cout.rdbuf(old_buf);
  for (const char* name : {"--samples", "--noise", "--resample-cv "}) BOOST_TEST(help.str().find(name) != std::string::npos, name);
  // Nor the option that exists for tests.
  for (const char* name : {"--data", "--sigma", "--resample-cv2", "--interrupt-at"})
    BOOST_TEST(help.str().find(name) == std::string::npos, name);
}

// The NaN guard: updates that overflow the parameters stop the run with the guard's message and exit code 3,
// keep the CSV rows so far and write no plot (it used to print inf/NaN results and exit 0).
BOOST_AUTO_TEST_CASE(gmm_nan_guard_stops_a_diverged_run) {
  jebm::test::TempDir tmp;
  const std::string out = (tmp.path / "run").string();
  BOOST_TEST(run_gmm({"--dim", "3", "--samples", "100", "--walkers", "50", "--iterations", "20", "--algo", "pcd",
                      "--h", "1e300", "--no-progress", "--out", out}) == 3);
  BOOST_TEST(std::filesystem::exists(tmp.path / "run" / "metrics_pcd.csv"));
  BOOST_TEST(!std::filesystem::exists(tmp.path / "run" / "gmm.svg"));
  // Jarzynski pushed until every log-weight is -inf: the guard's exit, not an internal error (it used to end
  // with exit 2 and "gmm_walker_pass: the largest log-weight is -inf").
  for (const char* lr : {"--lr-z", "--lr-means"}) {
    const std::string out2 = (tmp.path / (std::string("jz") + lr)).string();
    BOOST_TEST(run_gmm({"--dim", "3", "--samples", "100", "--walkers", "50", "--iterations", "300", "--algo", "jarzynski",
                        lr, "1000", "--h", "10", "--no-progress", "--out", out2}) == 3, lr);
  }
}
