// `jebm gmm`: the paper's Gaussian-mixture experiment (DESIGN 3.1) for Jarzynski, PCD and CD on the closed-form
// fast path (or the generic Trainer with --autograd), with metrics CSVs, an SVG plot and a summary table.
// Tested by tests/test_gmm.cpp (short runs: files written, overwrite refusal, fast path == autograd path).
#include "experiments/gmm.hpp"

#include <boost/program_options.hpp>
#include <omp.h>

#include <algorithm>
#include <chrono>
#include <functional>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <iomanip>
#include <iostream>
#include <limits>
#include <sstream>

#include "experiments/output.hpp"
#include "runtime/cuda_api.hpp"
#include "samplers/sampler_cuda.hpp"
#include "samplers/gmm_step.hpp"
#include "samplers/trainer.hpp"

namespace jebm {

namespace {
constexpr uint64_t kDataKey = 0x64617461ULL, kInitKey = 0x696e6974ULL, kRestartKey = 0x72657374ULL;
constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
}  // namespace

GmmParams gmm_teacher(const GmmConfig& c) {
  const int64_t k = static_cast<int64_t>(c.teacher_means.size());
  JEBM_CHECK(k >= 1 && static_cast<int64_t>(c.teacher_weights.size()) == k,
             "--teacher-mean given " << k << " times but --teacher-weights has " << c.teacher_weights.size()
                                     << " entries");
  GmmParams t = GmmParams::zeros(k, c.dim);
  double ws = 0.0;
  for (double w : c.teacher_weights) {
    JEBM_CHECK(w > 0.0, "--teacher-weights: weight " << w << " must be positive");
    ws += w;
  }
  for (int64_t j = 0; j < k; ++j) {
    const auto& m = c.teacher_means[static_cast<size_t>(j)];
    JEBM_CHECK(static_cast<int64_t>(m.size()) <= c.dim, "--teacher-mean " << j << " has " << m.size()
                                                                          << " coordinates for --dim " << c.dim);
    for (size_t q = 0; q < m.size(); ++q) t.a[static_cast<size_t>(j * c.dim) + q] = m[q];
    // mass_j = exp(-z_j) / sum exp(-z): z_j = -log(w_j / w_0) fixes z_0 = 0 (the paper's (0, -log 3)).
    t.z[static_cast<size_t>(j)] = -std::log(c.teacher_weights[static_cast<size_t>(j)] / c.teacher_weights[0]);
  }
  (void)ws;
  return t;
}

GmmParams gmm_student_init(const GmmConfig& c) {
  JEBM_CHECK(c.student_modes >= 1, "--student-modes " << c.student_modes << " must be at least 1");
  GmmParams s = GmmParams::zeros(c.student_modes, c.dim);
  const double nz = c.init_noise;
  for (int64_t j = 0; j < s.k; ++j) {
    for (int64_t q = 0; q < c.dim; ++q) {
      double z0, z1;
      philox_normal2(c.seed ^ kInitKey, static_cast<uint64_t>(j * c.dim + q), 0, &z0, &z1);
      s.a[static_cast<size_t>(j * c.dim + q)] = nz * z0;
    }
    // -spread e1 ... +spread e1 (paper: -0.1 e1 and +0.1 e1 for two modes)
    s.a[static_cast<size_t>(j * c.dim)] =
        s.k == 1 ? 0.0 : -c.init_spread + 2.0 * c.init_spread * static_cast<double>(j) / static_cast<double>(s.k - 1);
  }
  return s;
}

Tensor gmm_teacher_data(const GmmConfig& c, const GmmParams& teacher) {
  Tensor x = Tensor::empty({c.data, c.dim}, DType::Float64);
  const std::vector<double> w = gmm_mode_weights(teacher);
  int64_t row = 0;
  for (int64_t j = 0; j < teacher.k; ++j) {
    const int64_t cnt = j + 1 == teacher.k ? c.data - row
                                           : std::llround(static_cast<double>(c.data) * w[static_cast<size_t>(j)]);
    GmmParams one = GmmParams::zeros(1, c.dim);
    std::copy(teacher.mean(j), teacher.mean(j) + c.dim, one.a.begin());
    gmm_sample(one, cnt, c.seed ^ kDataKey, static_cast<uint64_t>(j), x.data<double>() + row * c.dim);
    row += cnt;
  }
  return x;
}

// --- the autograd path: the same iteration through the generic Trainer ----------------------------------
struct GmmExperiment::AutogradState {
  GaussianMixtureEnergy energy;
  Trainer trainer;
  AutogradState(const GmmParams& p, WalkerPopulation& pop, const TrainerOptions& o)
      : energy(p), trainer(energy, pop, o) {}
};

GmmExperiment::GmmExperiment(const GmmConfig& c, Algorithm algo, const Tensor& data, const GmmParams& teacher)
    : c_(c), algo_(algo), data_(data), teacher_(teacher), theta_(gmm_student_init(c)) {
  JEBM_CHECK(c.walkers > 0 && c.data > 0 && c.iterations >= 0, "gmm: --walkers " << c.walkers << ", --data "
                                                                                  << c.data << ", --iterations "
                                                                                  << c.iterations);
  ula_.h = c.h;
  ula_.sigma = c.sigma;
  ula_.drift_clip = c.drift_clip;
  ula_.weighted = algo == Algorithm::Jarzynski;
  Tensor x0 = Tensor::empty({c.walkers, c.dim}, DType::Float64);
  const uint64_t seed = c.seed * 3 + static_cast<uint64_t>(algo);
  if (algo == Algorithm::Jarzynski) {
    // Exact samples of the initial student, so log Z_theta_0 is known and the estimate is absolute.
    gmm_sample(theta_, c.walkers, seed ^ kInitKey, 1, x0.data<double>());
    pop_ = WalkerPopulation::create(x0, seed, gmm_log_z(theta_));
  } else {
    // PCD and CD start at data points (the official code).
    pop_ = WalkerPopulation::create(x0, seed);
    restart_from_data(pop_, data_, seed ^ kRestartKey, ~uint64_t{0});
  }
  u_ = Tensor::empty({c.walkers}, DType::Float64, c.device);
  g_ = Tensor::empty({c.walkers, c.dim}, DType::Float64, c.device);
  if (c.device.is_cuda()) {  // set up on the host, then everything the iterations touch moves to the device
    JEBM_CHECK(!c.autograd, "gmm: --autograd runs on the CPU only (use --device cpu)");
    cuda_api::require("jebm gmm --device cuda");
    pop_ = walkers_to(pop_, c.device);
    data_ = data_.to(c.device);
  }
  if (c.autograd) {
    TrainerOptions o;
    o.algorithm = algo;
    o.ula = ula_;
    o.resample = c.resample;
    o.resample_rule = c.resample_rule;
    o.cd_k = c.cd_k;
    ag_ = std::make_unique<AutogradState>(theta_, pop_, o);
    Trainer& t = ag_->trainer;
    t.data_batch = [this](int64_t) { return data_; };
    t.restart_walkers = [this](WalkerPopulation& p, int64_t it) {
      restart_from_data(p, data_, p.seed ^ kRestartKey, static_cast<uint64_t>(it));
    };
    t.optimizer_step = [this](int64_t) {
      const std::vector<double> ga = ag_->energy.means().grad().to_vector();
      const std::vector<double> gz = ag_->energy.z().grad().to_vector();
      update_params(ga, gz);
      ag_->energy.set_params(theta_);
    };
  }
}

GmmExperiment::~GmmExperiment() = default;

void GmmExperiment::update_params(const std::vector<double>& ga, const std::vector<double>& gz) {
  // Plain gradient descent on the cross-entropy (GMM.py: theta += lr * F with F = -grad CE); z_0 stays frozen.
  const double f = algo_ == Algorithm::Cd ? c_.cd_lr_factor : 1.0;
  const double la = f * c_.lr_means * c_.h, lz = f * c_.lr_z * c_.h;
  for (size_t q = 0; q < theta_.a.size(); ++q) theta_.a[q] -= la * ga[q];
  for (size_t j = 1; j < theta_.z.size(); ++j) theta_.z[j] -= lz * gz[j];
}

GmmRecord GmmExperiment::record(double data_u, const WeightStats* st) const {
  GmmRecord r;
  r.iteration = k_;
  r.log_z_exact = gmm_log_z(theta_);
  r.exact_ce = data_u + r.log_z_exact;
  r.log_z_estimate = st ? pop_.log_z_offset + st->log_mean : kNaN;
  r.jarzynski_ce = st ? data_u + r.log_z_estimate : kNaN;
  r.ess = st ? st->ess : static_cast<double>(pop_.size());
  r.weights = gmm_mode_weights(theta_);
  for (int64_t j = 0; j < theta_.k; ++j) {
    double best = std::numeric_limits<double>::infinity();
    for (int64_t t = 0; t < teacher_.k; ++t) {
      if (theta_.k == teacher_.k && t != j) continue;  // same number of modes: mode j is teacher mode j
      double s = 0.0;
      for (int64_t q = 0; q < c_.dim; ++q) {
        const double e = theta_.mean(j)[q] - teacher_.mean(t)[q];
        s += e * e;
      }
      best = std::min(best, std::sqrt(s));
    }
    r.mean_errors.push_back(best);
  }
  r.resamplings = pop_.resamplings;
  return r;
}

GmmRecord GmmExperiment::iterate() {
  if (c_.device.is_cuda()) return iterate_fast_cuda();
  return ag_ ? iterate_autograd() : iterate_fast();
}

GmmRecord GmmExperiment::iterate_fast() {
  const int64_t n = pop_.size();
  if (algo_ == Algorithm::Cd && cd_should_restart(k_, c_.cd_k))
    restart_from_data(pop_, data_, pop_.seed ^ kRestartKey, static_cast<uint64_t>(k_));
  // The iteration's one pass over the walkers: U, G, r at (theta_k, X_k) -> complete move k-1 (made under
  // theta_{k-1}) -> move k with G_k -> sum_i w_i grad_theta U(X_k^i). X_k is in x_prev afterwards.
  const GmmWalkerPass wp = gmm_walker_pass(theta_, pop_, ula_);
  // ... and the one pass over the data: grad CE(theta_k) = mean_data dU/dtheta - sum_i w_i dU/dtheta(X_k^i).
  std::vector<double> ga(theta_.a.size()), gz(theta_.z.size());
  const double data_u = gmm_data_term(theta_, data_.data<double>(), data_.size(0), ga.data(), gz.data());
  GmmRecord rec = record(data_u, algo_ == Algorithm::Jarzynski ? &wp.stats : nullptr);
  if (algo_ == Algorithm::Jarzynski && c_.resample && should_resample(wp.stats, n, c_.resample_rule)) {
    // Resample the pre-move state and redo the move (samplers/ula_jarzynski.hpp says why); the pass kept no
    // G, so it is recomputed at X_k, on resampling iterations only.
    gmm_eval(theta_, pop_.x_prev.data<double>(), n, u_.data<double>(), g_.data<double>(), nullptr);
    resample_and_redo_move(pop_, draw_population_ancestors(pop_, c_.resample_rule.scheme), u_, g_, ula_);
    rec.resampled = true;
    rec.resamplings = pop_.resamplings;
  }
  for (size_t q = 0; q < ga.size(); ++q) ga[q] -= wp.grad_a[q];
  for (size_t j = 0; j < gz.size(); ++j) gz[j] -= wp.grad_z[j];
  update_params(ga, gz);
  ++k_;
  return rec;
}

GmmRecord GmmExperiment::iterate_autograd() {
  const GmmParams before = theta_;
  const TrainerStepInfo info = ag_->trainer.step();  // calls update_params through optimizer_step
  // The record describes theta_k, the parameters this step's estimates refer to.
  const GmmParams after = theta_;
  theta_ = before;
  WeightStats st{};
  st.ess = info.ess;
  st.log_mean = info.log_z - pop_.log_z_offset;
  GmmRecord rec = record(info.data_energy, algo_ == Algorithm::Jarzynski ? &st : nullptr);
  rec.log_z_estimate = algo_ == Algorithm::Jarzynski ? info.log_z : kNaN;
  rec.jarzynski_ce = algo_ == Algorithm::Jarzynski ? info.data_energy + info.log_z : kNaN;
  rec.resampled = info.resampled;
  theta_ = after;
  ++k_;
  return rec;
}

GmmRecord GmmExperiment::final_record() {
  if (c_.device.is_cuda()) return final_record_cuda();
  const int64_t n = pop_.size();
  if (ag_) {
    ag_->trainer.bring_up_to_date();
  } else if (pop_.any_pending()) {
    gmm_eval(theta_, pop_.x.data<double>(), n, u_.data<double>(), g_.data<double>(), nullptr);
    ula_jarzynski_step(pop_, u_, g_, ula_, MoveKind::CompleteOnly);
  }
  const double data_u = gmm_data_term(theta_, data_.data<double>(), data_.size(0), nullptr, nullptr);
  const WeightStats st = pop_.stats();
  return record(data_u, algo_ == Algorithm::Jarzynski ? &st : nullptr);
}

// --- `jebm bench --only gmm` -----------------------------------------------------------------------------

std::vector<GmmBenchTiming> bench_gmm_timings(int repeat) {
  auto median = [repeat](const std::function<void()>& f) {
    f();  // warm-up: first touch of the buffers
    std::vector<double> t;
    for (int r = 0; r < std::max(repeat, 1); ++r) {
      const auto a = std::chrono::steady_clock::now();
      f();
      t.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - a).count());
    }
    std::sort(t.begin(), t.end());
    return t[t.size() / 2];
  };
  GmmConfig c;  // the paper's sizes: d = 50, N = 10^4 walkers, 10^4 data points
  const GmmParams teacher = gmm_teacher(c);
  const Tensor data = gmm_teacher_data(c, teacher);
  std::vector<GmmBenchTiming> out;
  {
    // The generic kernel on its own, U and grad_x U given (as a network's backward would provide them).
    GmmParams p = gmm_student_init(c);
    Tensor x0 = Tensor::empty({c.walkers, c.dim}, DType::Float64);
    gmm_sample(p, c.walkers, 1, 0, x0.data<double>());
    WalkerPopulation pop = WalkerPopulation::create(x0, 2);
    Tensor u = Tensor::empty({c.walkers}, DType::Float64), g = Tensor::empty({c.walkers, c.dim}, DType::Float64);
    gmm_eval(p, pop.x.data<double>(), c.walkers, u.data<double>(), g.data<double>(), nullptr);
    UlaConfig cfg;
    const double ms = median([&] { ula_jarzynski_step(pop, u, g, cfg); });
    std::ostringstream name;
    name << "fused step 1e4x50 (" << std::setprecision(3) << c.walkers / ms / 1e3 << " Mmoves/s)";
    out.push_back({name.str(), ms, 0.0});
  }
  {
    GmmExperiment run(c, Algorithm::Jarzynski, data, teacher);
    const double ms = median([&] { run.iterate(); });
    out.push_back({"full iteration 1e4x50 (README fused)", ms, 0.0});
  }
  return out;
}

// --- the command ---------------------------------------------------------------------------------------

namespace {

namespace po = boost::program_options;

std::vector<double> parse_list(const std::string& s, const std::string& opt) {
  std::vector<double> v;
  std::stringstream ss(s);
  std::string item;
  while (std::getline(ss, item, ',')) {
    if (item.find_first_not_of(" \t") == std::string::npos) continue;
    try {
      size_t used = 0;
      v.push_back(std::stod(item, &used));
      JEBM_CHECK(item.find_first_not_of(" \t", used) == std::string::npos, "");
    } catch (...) {
      JEBM_FAIL("--" << opt << ": '" << item << "' in '" << s << "' is not a number");
    }
  }
  JEBM_CHECK(!v.empty(), "--" << opt << ": empty list '" << s << "'");
  return v;
}

std::string join(const std::vector<double>& v, int prec = 4) {
  std::ostringstream os;
  os << std::setprecision(prec);
  for (size_t i = 0; i < v.size(); ++i) os << (i ? "," : "") << v[i];
  return os.str();
}

struct AlgoOutcome {
  Algorithm algo;
  std::vector<GmmRecord> records;
  GmmRecord final_rec;
  double seconds = 0.0;
  std::string first_coords;
};

}  // namespace

int run_gmm(const std::vector<std::string>& args) {
  GmmConfig c;
  std::string algo_s = "all", out, config_file, resample_s = "systematic", device_s = "cpu";
  std::vector<std::string> teacher_means_s = {"-10", "6"};
  std::string teacher_weights_s = "0.25,0.75";
  int threads = 0;
  bool force = false, quick = false, no_progress = false;
  double resample_cv2 = 1.0, resample_ess = 0.0;

  po::options_description desc(
      "jebm gmm: the Gaussian-mixture experiment of Carbone et al. (NeurIPS 2023), DESIGN 3.1.\n"
      "Trains a student mixture on samples of a teacher with Jarzynski-weighted walkers, PCD and CD, and\n"
      "reports the mode weights, the mean errors and the exact cross-entropy (Z is analytic here) next to\n"
      "the Jarzynski estimate. The defaults are the paper's run.\n\nOptions");
  // clang-format off
  desc.add_options()
      ("help,h", "this text")
      ("algo", po::value(&algo_s)->default_value(algo_s), "jarzynski | pcd | cd | all (the paper compares all three)")
      ("iterations", po::value(&c.iterations)->default_value(c.iterations), "parameter updates (paper: 8000)")
      ("dim", po::value(&c.dim)->default_value(c.dim), "dimension d (paper: 50)")
      ("teacher-mean", po::value(&teacher_means_s)->multitoken()->composing()->default_value(teacher_means_s, "-10 6"),
       "a teacher mode's mean, comma-separated, padded with zeros to --dim; give it once per mode "
       "(paper: -10 and 6, i.e. -10 e1 and +6 e1)")
      ("teacher-weights", po::value(&teacher_weights_s)->default_value(teacher_weights_s),
       "teacher mode masses, comma-separated, normalised (paper: 1/4, 3/4)")
      ("student-modes", po::value(&c.student_modes)->default_value(c.student_modes), "student's number of modes (paper: 2)")
      ("init-spread", po::value(&c.init_spread)->default_value(c.init_spread, "0.1"),
       "student means start at -s e1 ... +s e1 (paper: -0.1 e1, +0.1 e1)")
      ("init-noise", po::value(&c.init_noise)->default_value(c.init_noise), "plus this std of Gaussian noise per coordinate (paper: 0.01)")
      ("data", po::value(&c.data)->default_value(c.data), "teacher samples, stratified over the modes (paper: 10^4)")
      ("walkers", po::value(&c.walkers)->default_value(c.walkers), "Langevin walkers N (paper: 10^4)")
      ("h", po::value(&c.h)->default_value(c.h, "0.1"), "ULA step size (paper: 0.1)")
      ("sigma", po::value(&c.sigma)->default_value(c.sigma), "ULA noise scale; 0 means sqrt(2h), the paper's (DESIGN 1.1)")
      ("drift-clip", po::value(&c.drift_clip)->default_value(c.drift_clip),
       "clip each coordinate of grad U to +-c, used consistently in the weights; 0 = off (paper: off)")
      ("lr-means", po::value(&c.lr_means)->default_value(c.lr_means, "0.025"), "learning rate of the means, times h (GMM.py: 0.2/8)")
      ("lr-z", po::value(&c.lr_z)->default_value(c.lr_z), "learning rate of z_2..z_K, times h; z_1 is frozen (GMM.py: 1/8)")
      ("cd-lr-factor", po::value(&c.cd_lr_factor)->default_value(c.cd_lr_factor), "CD's learning-rate multiplier (GMM.py: 10)")
      ("cd-k", po::value(&c.cd_k)->default_value(c.cd_k), "CD restarts walkers from data every k updates (GMM.py: 4)")
      ("resample", po::value(&resample_s)->default_value(resample_s),
       "systematic | multinomial | none (DESIGN 1.3: systematic by default; GMM.py: multinomial)")
      ("resample-cv2", po::value(&resample_cv2)->default_value(resample_cv2),
       "resample when CV^2 = N/ESS - 1 exceeds this, i.e. ESS < N/2 (GMM.py: 1.0); 0 = use --resample-ess")
      ("resample-ess", po::value(&resample_ess)->default_value(resample_ess),
       "with --resample-cv2 0: resample when ESS < this fraction of N (jebm's alternative)")
      ("seed", po::value(&c.seed)->default_value(c.seed), "seed of every random draw (data, init, noise, resampling)")
      ("device", po::value(&device_s)->default_value(device_s),
       "cpu | cuda: where the closed-form path runs (cuda: walkers, data and kernels stay on the GPU)")
      ("threads", po::value(&threads)->default_value(threads), "OpenMP threads; 0 = all cores")
      ("log-every", po::value(&c.log_every)->default_value(c.log_every), "CSV row every this many iterations")
      ("out", po::value(&out), "run directory: metrics_<algo>.csv, gmm.svg, options.txt (nothing written without it)")
      ("force", po::bool_switch(&force), "overwrite a previous run in --out")
      ("quick", po::bool_switch(&quick),
       "smoke preset (~10 s on 2 idle cores, about a minute on a busy machine): 4000 iterations, 2000 walkers, 2000 data points, log every 20; explicit options win")
      ("autograd", po::bool_switch(&c.autograd),
       "run the same iteration through the generic Trainer + autograd instead of the closed forms (slower)")
      ("no-progress", po::bool_switch(&no_progress), "no progress line on stderr")
      ("config", po::value(&config_file), "INI file with any of these options (key = value); the command line wins");
  // clang-format on
  po::variables_map vm;
  try {
    po::store(po::command_line_parser(args).options(desc).run(), vm);
    if (vm.count("config")) {
      std::ifstream cf(vm["config"].as<std::string>());
      JEBM_CHECK(cf, "--config " << vm["config"].as<std::string>() << ": cannot read the file");
      po::store(po::parse_config_file(cf, desc), vm);
    }
    if (vm.count("help")) {
      std::cout << desc << "\n";
      return 0;
    }
    po::notify(vm);
  } catch (const po::error& e) {
    JEBM_FAIL(e.what() << " (see jebm gmm --help)");
  }
  if (quick) {
    if (vm["iterations"].defaulted()) c.iterations = 4000;
    if (vm["walkers"].defaulted()) c.walkers = 2000;
    if (vm["data"].defaulted()) c.data = 2000;
    if (vm["log-every"].defaulted()) c.log_every = 20;
  }
  c.teacher_means.clear();
  for (const auto& s : teacher_means_s) c.teacher_means.push_back(parse_list(s, "teacher-mean"));
  c.teacher_weights = parse_list(teacher_weights_s, "teacher-weights");
  c.resample = resample_s != "none";
  if (c.resample) c.resample_rule.scheme = resample_scheme_from_name(resample_s);
  c.resample_rule.cv2_max = resample_cv2;
  c.resample_rule.ess_fraction = resample_ess;
  JEBM_CHECK(c.log_every >= 1, "--log-every " << c.log_every << " must be at least 1");
  JEBM_CHECK(c.dim >= 1, "--dim " << c.dim << " must be at least 1");
  if (threads > 0) omp_set_num_threads(threads);
  c.device = device_from_name(device_s);
  if (c.device.is_cuda()) {
    JEBM_CHECK(!c.autograd, "--autograd runs on the CPU only; drop it or use --device cpu");
    cuda_api::require("jebm gmm --device cuda");  // a clear error when there is no CUDA build or device
  }

  std::vector<Algorithm> algos;
  if (algo_s == "all")
    algos = {Algorithm::Jarzynski, Algorithm::Pcd, Algorithm::Cd};
  else
    algos = {algorithm_from_name(algo_s)};

  const GmmParams teacher = gmm_teacher(c);
  const Tensor data = gmm_teacher_data(c, teacher);
  const double ce_teacher = gmm_cross_entropy(teacher, data.data<double>(), c.data);

  if (!out.empty()) {
    prepare_run_dir(out, force, false);
    std::vector<std::pair<std::string, std::string>> kv;
    for (const auto& [name, val] : vm) {
      if (const auto text = option_value_string(val)) {
        kv.emplace_back(name, *text);
      } else if (val.value().type() == typeid(std::vector<std::string>)) {  // --teacher-mean, given once per mode
        std::string joined;
        for (const auto& s : val.as<std::vector<std::string>>()) joined += s + ";";
        kv.emplace_back(name, joined);
      } else {
        kv.emplace_back(name, "");
      }
    }
    // The resolved values the run actually used (after --quick).
    kv.emplace_back("resolved.iterations", std::to_string(c.iterations));
    kv.emplace_back("resolved.walkers", std::to_string(c.walkers));
    kv.emplace_back("resolved.data", std::to_string(c.data));
    kv.emplace_back("resolved.threads", std::to_string(omp_get_max_threads()));
    kv.emplace_back("resolved.sigma", std::to_string(c.sigma > 0 ? c.sigma : std::sqrt(2 * c.h)));
    kv.emplace_back("resolved.path", c.autograd ? "autograd" : "closed-form");
    write_options(out, kv);
  }

  std::vector<AlgoOutcome> outcomes;
  for (Algorithm a : algos) {
    AlgoOutcome o;
    o.algo = a;
    std::vector<std::string> cols = {"iteration", "exact_ce", "jarzynski_ce", "kl_exact", "log_z_exact",
                                     "log_z_estimate", "ess", "resampled", "resamplings"};
    for (int64_t j = 0; j < c.student_modes; ++j) cols.push_back("weight_" + std::to_string(j));
    for (int64_t j = 0; j < c.student_modes; ++j) cols.push_back("mean_error_" + std::to_string(j));
    cols.push_back("time_s");
    CsvWriter csv;
    if (!out.empty()) csv = CsvWriter(std::filesystem::path(out) / ("metrics_" + std::string(algorithm_name(a)) + ".csv"), cols);
    const auto t0 = std::chrono::steady_clock::now();
    GmmExperiment run(c, a, data, teacher);
    Progress progress(std::string("gmm ") + algorithm_name(a), c.iterations, !no_progress);
    auto emit = [&](const GmmRecord& r) {
      o.records.push_back(r);
      if (!csv.is_open()) return;
      std::vector<double> row = {static_cast<double>(r.iteration), r.exact_ce, r.jarzynski_ce,
                                 r.exact_ce - ce_teacher, r.log_z_exact, r.log_z_estimate, r.ess,
                                 r.resampled ? 1.0 : 0.0, static_cast<double>(r.resamplings)};
      row.insert(row.end(), r.weights.begin(), r.weights.end());
      row.insert(row.end(), r.mean_errors.begin(), r.mean_errors.end());
      row.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
      csv.row(row);
    };
    int64_t resampled_since = 0;
    for (int64_t k = 0; k < c.iterations; ++k) {
      GmmRecord r = run.iterate();
      resampled_since += r.resampled;
      if (k % c.log_every == 0) {
        r.resampled = resampled_since > 0;  // a logged row says whether any resampling happened since the last
        resampled_since = 0;
        emit(r);
      }
      std::ostringstream extra;
      extra << "w0 " << std::setprecision(3) << r.weights[0];
      progress.update(k + 1, extra.str());
    }
    o.final_rec = run.final_record();
    std::vector<double> fc;
    for (int64_t j = 0; j < run.params().k; ++j) fc.push_back(run.params().mean(j)[0]);
    o.first_coords = join(fc, 5);
    emit(o.final_rec);
    progress.finish();
    o.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    outcomes.push_back(std::move(o));
  }

  // Summary table.
  std::cout << "\njebm gmm: d = " << c.dim << ", " << teacher.k << " teacher modes (weights "
            << join(gmm_mode_weights(teacher)) << "), " << c.data << " data, " << c.walkers << " walkers, h = " << c.h
            << ", " << c.iterations << " iterations, " << (c.autograd ? "autograd" : "closed-form") << " path, "
            << omp_get_max_threads() << " threads\n";
  std::cout << "teacher cross-entropy on the data: " << std::setprecision(6) << ce_teacher << "\n\n";
  std::printf("%-10s %-22s %-12s %-12s %-11s %-12s %-9s %-8s %-8s\n", "algorithm", "final weights", "max|a-a*|",
              "exact CE", "KL (exact)", "Jarzynski CE", "resampl.", "time s", "ms/it");
  for (const auto& o : outcomes) {
    const GmmRecord& f = o.final_rec;
    double me = 0.0;
    for (double e : f.mean_errors) me = std::max(me, e);
    std::printf("%-10s %-22s %-12.4f %-12.5f %-11.5f %-12.5f %-9lld %-8.1f %-8.3f\n", algorithm_name(o.algo),
                join(f.weights, 4).c_str(), me, f.exact_ce, f.exact_ce - ce_teacher, f.jarzynski_ce,
                static_cast<long long>(f.resamplings), o.seconds,
                c.iterations ? 1e3 * o.seconds / static_cast<double>(c.iterations) : 0.0);
  }
  std::cout << "teacher means (first coordinate): ";
  for (int64_t j = 0; j < teacher.k; ++j) std::cout << (j ? ", " : "") << teacher.mean(j)[0];
  std::cout << "\n";
  for (const auto& o : outcomes) std::cout << algorithm_name(o.algo) << " final means (first coordinate): " << o.first_coords << "\n";
  if (!out.empty()) {
    SvgPanel pw{"weight of mode 1 (teacher: " + join({gmm_mode_weights(teacher)[0]}) + ")", "iteration", "weight", {}};
    SvgPanel pc{"cross-entropy: exact (solid), Jarzynski estimate (dashed)", "iteration", "CE (nats)", {}};
    static const char* kColors[] = {"#1f77b4", "#d62728", "#2ca02c"};
    for (const auto& o : outcomes) {
      SvgSeries w{algorithm_name(o.algo), {}, {}, kColors[static_cast<int>(o.algo)], false};
      SvgSeries ce{std::string(algorithm_name(o.algo)) + " exact", {}, {}, kColors[static_cast<int>(o.algo)], false};
      SvgSeries est{"jarzynski estimate", {}, {}, kColors[static_cast<int>(o.algo)], true};
      for (const auto& r : o.records) {
        w.x.push_back(static_cast<double>(r.iteration));
        w.y.push_back(r.weights[0]);
        ce.x.push_back(static_cast<double>(r.iteration));
        ce.y.push_back(r.exact_ce);
        est.x.push_back(static_cast<double>(r.iteration));
        est.y.push_back(r.jarzynski_ce);
      }
      pw.series.push_back(w);
      pc.series.push_back(ce);
      if (o.algo == Algorithm::Jarzynski) pc.series.push_back(est);
    }
    const double last = static_cast<double>(c.iterations);
    pw.series.push_back({"teacher", {0.0, last}, {gmm_mode_weights(teacher)[0], gmm_mode_weights(teacher)[0]}, "#555555", true});
    pc.series.push_back({"teacher CE", {0.0, last}, {ce_teacher, ce_teacher}, "#555555", true});
    write_svg_plot(std::filesystem::path(out) / "gmm.svg", {pw, pc});
    std::cout << "wrote " << out << "/{options.txt, metrics_<algo>.csv, gmm.svg}\n";
  }
  return 0;
}

}  // namespace jebm
