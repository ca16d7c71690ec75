// `jebm gmm`: the command line, run directory, metrics CSVs, SVG plot and summary table of the paper's
// Gaussian-mixture experiment (docs/experiments.md) for Jarzynski, PCD and CD; the loop itself is GmmTrainer
// (samplers/gmm_training.hpp). Tested by tests/test_gmm.cpp (short runs: files written, overwrite refusal).
#include "experiments/gmm.hpp"

#include <boost/program_options.hpp>
#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <csignal>
#include <cstdio>
#include <fstream>
#include <iomanip>
#include <iostream>
#include <sstream>

#include "experiments/cli.hpp"
#include "experiments/output.hpp"
#include "experiments/sigint.hpp"
#include "models/checkpoint.hpp"
#include "runtime/comm/communicator.hpp"
#include "runtime/cuda_api.hpp"
#include "samplers/distributed.hpp"
#include "samplers/population_io.hpp"

namespace jebm {

// --- the command ---------------------------------------------------------------------------------------

namespace {

namespace po = boost::program_options;

std::string join(const std::vector<double>& v, int prec = 4) {
  std::ostringstream os;
  os << std::setprecision(prec);
  for (size_t i = 0; i < v.size(); ++i) os << (i ? "," : "") << v[i];
  return os.str();
}

// The gmm NaN guard: which quantity of theta_k's record is non-finite ("" when all are finite). The weights, the
// mean errors, the exact CE and log Z are finite for any finite parameters, the ESS for any finite log-weights, so
// a non-finite one means the run diverged; the Jarzynski estimates are NaN by design for PCD/CD and are not tested.
std::string non_finite_field(const GmmRecord& r) {
  std::ostringstream os;
  for (size_t j = 0; j < r.weights.size(); ++j)
    if (!std::isfinite(r.weights[j])) os << "weight_" << j << " = " << r.weights[j];
  for (size_t j = 0; j < r.mean_errors.size() && os.tellp() == 0; ++j)
    if (!std::isfinite(r.mean_errors[j])) os << "mean_error_" << j << " = " << r.mean_errors[j];
  if (os.tellp() == 0 && !std::isfinite(r.exact_ce)) os << "exact_ce = " << r.exact_ce;
  if (os.tellp() == 0 && !std::isfinite(r.log_z_exact)) os << "log_z_exact = " << r.log_z_exact;
  if (os.tellp() == 0 && !std::isfinite(r.ess)) os << "ess = " << r.ess;  // the Jarzynski weights (PCD/CD: N)
  return os.str();
}

// The rows a resumed run kept, as records for its plot (the fields the plot draws).
std::vector<GmmRecord> records_from_csv(const CsvTable& t, int64_t modes) {
  const size_t it = t.column("iteration"), ce = t.column("exact_ce"), jce = t.column("jarzynski_ce"),
               raw = t.column("jarzynski_ce_raw"), held = t.column("holdout_ce"), w0 = t.column("weight_0");
  std::vector<GmmRecord> out;
  for (const auto& row : t.rows) {
    GmmRecord r;
    r.iteration = static_cast<int64_t>(row[it]);
    r.exact_ce = row[ce];
    r.jarzynski_ce = row[jce];
    r.jarzynski_ce_raw = row[raw];
    r.holdout_ce = row[held];
    r.weights.assign(row.begin() + static_cast<std::ptrdiff_t>(w0), row.begin() + static_cast<std::ptrdiff_t>(w0) + modes);
    out.push_back(r);
  }
  return out;
}

// Exit codes of a diverged and of an interrupted run, as the image runs'.
constexpr int kGmmDivergedExit = 3, kGmmInterruptedExit = 130;

struct AlgoOutcome {
  Algorithm algo;
  std::vector<GmmRecord> records;
  GmmRecord final_rec;
  double seconds = 0.0;
  std::string first_coords;
};

}  // namespace

namespace {

// --resume: the options that may differ from the run's options.txt (they extend the run or change how it is
// computed or reported, not what), and those options.txt does not keep (they name the run or are one-off).
const std::vector<std::string> kGmmResumeMayChange = {"iterations", "threads", "checkpoint-every", "no-progress"};
const char* const kGmmResumeMayChangeText = "--iterations, --threads, --checkpoint-every, --no-progress";
const std::vector<std::string> kGmmNotSaved = {"help", "out", "force", "resume", "config", "no-progress", "interrupt-at"};

// The valid range of every numeric option (--help shows it; parse_gmm_args checks it).
const OptionRanges& gmm_ranges() {
  static const OptionRanges r = {
      {"iterations", at_least(0)},        {"dim", within(1, 1e6)},
      {"student-modes", within(1, 1e4)},  {"init-spread", any_value()},
      {"init-noise", at_least(0)},        {"data", at_least(1)},
      {"walkers", at_least(1)},           {"h", above(0)},
      {"sigma", at_least(0)},             {"drift-clip", at_least(0)},
      {"lr-means", within(0, 1e3)},       {"lr-z", within(0, 1e3)},
      {"cd-lr-factor", within(0, 1e3)},   {"cd-k", at_least(1)},
      {"resample-cv2", at_least(0)},      {"resample-ess", within(0, 1)},
      {"holdout-walkers", at_least(0)},   {"holdout-blocks", at_least(1)},
      {"seed", any_value()},              {"threads", within(0, 4096)},
      {"log-every", at_least(1)},         {"checkpoint-every", at_least(0)},
      {"interrupt-at", at_least(-1)},
  };
  return r;
}

}  // namespace

bool parse_gmm_args(const std::vector<std::string>& args, GmmCommandLine& cl) {
  GmmConfig& c = cl.config;
  std::string config_file, resample_s = "systematic", device_s = "cpu";
  std::vector<std::string> teacher_means_s = {"-10", "6"};
  std::string teacher_weights_s = "0.25,0.75";
  int& threads = cl.threads;
  bool quick = false;
  double resample_cv2 = 1.0, resample_ess = 0.0;
  const OptionRanges& R = gmm_ranges();

  po::options_description desc(
      "jebm gmm: the Gaussian-mixture experiment of Carbone et al. (NeurIPS 2023).\n"
      "Trains a student mixture on samples of a teacher with Jarzynski-weighted walkers, PCD and CD, and\n"
      "reports the mode weights, the mean errors and the exact cross-entropy (Z is analytic here) next to\n"
      "the Jarzynski estimate. The defaults are the paper's run.\n\nOptions");
  // clang-format off
  desc.add_options()
      ("help,h", "this text")
      ("algo", po::value(&cl.algo_s)->default_value(cl.algo_s), "jarzynski | pcd | cd | all (the paper compares all three)")
      ("iterations", po::value(&c.iterations)->default_value(c.iterations), R.help("iterations", "parameter updates (paper: 8000)").c_str())
      ("dim", po::value(&c.dim)->default_value(c.dim), R.help("dim", "dimension d (paper: 50)").c_str())
      ("teacher-mean", po::value(&teacher_means_s)->multitoken()->composing()->default_value(teacher_means_s, "-10 6"),
       "a teacher mode's mean, comma-separated, padded with zeros to --dim; give it once per mode "
       "(paper: -10 and 6, i.e. -10 e1 and +6 e1)")
      ("teacher-weights", po::value(&teacher_weights_s)->default_value(teacher_weights_s),
       "teacher mode masses, comma-separated, normalised (paper: 1/4, 3/4)")
      ("student-modes", po::value(&c.student_modes)->default_value(c.student_modes), R.help("student-modes", "student's number of modes (paper: 2)").c_str())
      ("init-spread", po::value(&c.init_spread)->default_value(c.init_spread, "0.1"),
       R.help("init-spread", "student means start at -s e1 ... +s e1 (paper: -0.1 e1, +0.1 e1)").c_str())
      ("init-noise", po::value(&c.init_noise)->default_value(c.init_noise), R.help("init-noise", "plus this std of Gaussian noise per coordinate (paper: 0.01)").c_str())
      ("data", po::value(&c.data)->default_value(c.data), R.help("data", "teacher samples, stratified over the modes (paper: 10^4)").c_str())
      ("walkers", po::value(&c.walkers)->default_value(c.walkers), R.help("walkers", "Langevin walkers N (paper: 10^4)").c_str())
      ("h", po::value(&c.h)->default_value(c.h, "0.1"), R.help("h", "ULA step size (paper: 0.1)").c_str())
      ("sigma", po::value(&c.sigma)->default_value(c.sigma), R.help("sigma", "ULA noise scale; 0 means sqrt(2h), the paper's").c_str())
      ("drift-clip", po::value(&c.drift_clip)->default_value(c.drift_clip),
       R.help("drift-clip", "clip each coordinate of grad U to +-c, used consistently in the weights; 0 = off (paper: off)").c_str())
      ("lr-means", po::value(&c.lr_means)->default_value(c.lr_means, "0.025"), R.help("lr-means", "learning rate of the means, times h (GMM.py: 0.2/8)").c_str())
      ("lr-z", po::value(&c.lr_z)->default_value(c.lr_z), R.help("lr-z", "learning rate of z_2..z_K, times h; z_1 is frozen (GMM.py: 1/8)").c_str())
      ("cd-lr-factor", po::value(&c.cd_lr_factor)->default_value(c.cd_lr_factor), R.help("cd-lr-factor", "CD's learning-rate multiplier (GMM.py: 10)").c_str())
      ("cd-k", po::value(&c.cd_k)->default_value(c.cd_k), R.help("cd-k", "CD restarts walkers from data every k updates (GMM.py: 4)").c_str())
      ("resample", po::value(&resample_s)->default_value(resample_s),
       "systematic | multinomial | none (systematic by default; the official GMM.py: multinomial)")
      ("resample-cv2", po::value(&resample_cv2)->default_value(resample_cv2),
       R.help("resample-cv2", "resample when CV^2 = N/ESS - 1 exceeds this, i.e. ESS < N/2 (GMM.py: 1.0); 0 = use --resample-ess").c_str())
      ("resample-ess", po::value(&resample_ess)->default_value(resample_ess),
       R.help("resample-ess", "with --resample-cv2 0: resample when ESS < this fraction of N (jebm's alternative)").c_str())
      ("holdout-walkers", po::value(&c.holdout_walkers)->default_value(c.holdout_walkers),
       R.help("holdout-walkers", "Jarzynski only: this many held-out walkers that move and are weighted like the training walkers under the "
       "same parameters but never enter the gradient; their log Z estimate is logged beside the training walkers' "
       "(docs/method.md). 0 = off").c_str())
      ("holdout-blocks", po::value(&c.holdout_blocks)->default_value(c.holdout_blocks),
       R.help("holdout-blocks", "the held-out walkers form this many independent populations (each resampled on its own); the spread of "
       "their estimates gives the held-out error bar. Must divide --holdout-walkers").c_str())
      ("seed", po::value(&c.seed)->default_value(c.seed), R.help("seed", "seed of every random draw (data, init, noise, resampling)").c_str())
      ("device", po::value(&device_s)->default_value(device_s),
       "cpu | cuda: where the closed-form path runs (cuda: walkers, data and kernels stay on the GPU)")
      ("threads", po::value(&threads)->default_value(threads), R.help("threads", "OpenMP threads; 0 = all cores").c_str())
      ("log-every", po::value(&c.log_every)->default_value(c.log_every), R.help("log-every", "CSV row every this many iterations").c_str())
      ("out", po::value(&cl.out), "run directory: metrics_<algo>.csv, gmm.svg, options.txt (nothing written without it)")
      ("force", po::bool_switch(&cl.force), "overwrite a previous run in --out")
      ("checkpoint-every", po::value(&cl.checkpoint_every)->default_value(cl.checkpoint_every),
       R.help("checkpoint-every", "with --out: write checkpoint_<algo>.safetensors every this many iterations and after "
       "the last one (the whole population, whatever the number of MPI ranks); 0 = none").c_str())
      ("interrupt-at", po::value(&cl.interrupt_at)->default_value(cl.interrupt_at),
       R.help("interrupt-at", "testing: act as if Ctrl-C came after this iteration (-1: never). Ctrl-C saves a checkpoint "
       "(with --out) and stops with exit code 130").c_str())
      ("resume", po::value(&cl.resume),
       ("continue the run in this directory from its checkpoints (on any number of MPI ranks), bit for bit as if it "
        "had not stopped; its options.txt gives every option. Only " + std::string(kGmmResumeMayChangeText) +
        " may be given with other values (a larger --iterations extends a finished run)").c_str())
      ("quick", po::bool_switch(&quick),
       "smoke preset (~10 s on 2 idle cores, about a minute on a busy machine): 4000 iterations, 2000 walkers, 2000 data points, log every 20; explicit options win")
      ("autograd", po::bool_switch(&c.autograd),
       "run the same iteration through the generic Trainer + autograd instead of the closed forms (slower; "
       "reports only the uncorrected Jarzynski estimate, the correction needs per-walker gradients)")
      ("no-progress", po::bool_switch(&cl.no_progress), "no progress line on stderr")
      ("config", po::value(&config_file), "INI file with any of these options (key = value); the command line wins");
  // clang-format on
  // vm: every source; given: the command line and --config; run: a resumed run's options.txt. po::store keeps the
  // first value it sees: command line, then the resumed run's options, then --config.
  po::variables_map vm, given, run;
  // An INI file's errors (syntax, unknown option, a value of the wrong type) name the file.
  auto store_file = [&](const std::string& path, const char* what, bool allow_unregistered,
                        std::initializer_list<po::variables_map*> maps) {
    std::ifstream f(path);
    JEBM_CHECK(f, what << " " << path << ": cannot read the file");
    try {
      const auto parsed = po::parse_config_file(f, desc, allow_unregistered);
      for (po::variables_map* m : maps) po::store(parsed, *m);
    } catch (const po::error& e) {
      JEBM_FAIL(what << " " << path << ": " << option_error_text(e) << " (see jebm gmm --help)");
    }
  };
  try {
    const auto cmd = po::command_line_parser(args).options(desc).run();
    po::store(cmd, vm);
    po::store(cmd, given);
    if (vm.count("help")) {
      std::cout << desc << "\n";
      return false;
    }
    if (vm.count("resume")) {
      const std::string opts = (std::filesystem::path(vm["resume"].as<std::string>()) / "options.txt").string();
      JEBM_CHECK(std::filesystem::is_regular_file(opts),
                 "--resume " << vm["resume"].as<std::string>() << ": no options.txt there (not a jebm gmm run directory)");
      store_file(opts, "--resume: options", true, {&vm, &run});  // resolved.* lines are reports: skipped
    }
    if (vm.count("config")) store_file(vm["config"].as<std::string>(), "--config", false, {&vm, &given});
    po::notify(vm);
  } catch (const po::error& e) {
    JEBM_FAIL(option_error_text(e) << " (see jebm gmm --help)");
  }
  R.check(vm);
  if (vm.count("resume")) {
    check_resume_options(desc, given, run, cl.resume, kGmmResumeMayChange, kGmmNotSaved);
    JEBM_CHECK(cl.out.empty() || std::filesystem::path(cl.out) == std::filesystem::path(cl.resume),
               "--out " << cl.out << " and --resume " << cl.resume << " name different directories");
    JEBM_CHECK(!cl.force, "--force and --resume " << cl.resume << " contradict each other");
    cl.out = cl.resume;
  }
  if (quick) {
    if (vm["iterations"].defaulted()) c.iterations = 4000;
    if (vm["walkers"].defaulted()) c.walkers = 2000;
    if (vm["data"].defaulted()) c.data = 2000;
    if (vm["log-every"].defaulted()) c.log_every = 20;
  }
  // --teacher-mean composes over its occurrences, and so over the sources: take the command line's (with --config)
  // or else the resumed run's, never both.
  for (const po::variables_map* m : {&given, &run})
    if (m->count("teacher-mean") && !(*m)["teacher-mean"].defaulted()) {
      teacher_means_s = (*m)["teacher-mean"].as<std::vector<std::string>>();
      break;
    }
  c.teacher_means.clear();
  for (const auto& s : teacher_means_s) {
    c.teacher_means.push_back(parse_double_list(s, "--teacher-mean"));
    for (double v : c.teacher_means.back()) check_range("--teacher-mean '" + s + "': coordinate", v, any_value());
  }
  c.teacher_weights = parse_double_list(teacher_weights_s, "--teacher-weights");
  for (double v : c.teacher_weights) check_range("--teacher-weights '" + teacher_weights_s + "': mass", v, above(0));
  c.resample = resample_s != "none";
  if (c.resample) c.resample_rule.scheme = resample_scheme_from_name(resample_s);
  c.resample_rule.cv2_max = resample_cv2;
  c.resample_rule.ess_fraction = resample_ess;
  c.device = device_from_name(device_s);
  JEBM_CHECK(!(c.device.is_cuda() && c.autograd), "--autograd runs on the CPU only; drop it or use --device cpu");
  if (cl.algo_s == "all")
    cl.algos = {Algorithm::Jarzynski, Algorithm::Pcd, Algorithm::Cd};
  else
    cl.algos = {algorithm_from_name(cl.algo_s)};

  // options.txt: an INI file of every option that defines the run (what --resume reads back), then the resolved
  // values as resolved.* lines (reports; --resume skips them).
  cl.saved.clear();
  for (const auto& [name, val] : vm) {
    if (std::find(kGmmNotSaved.begin(), kGmmNotSaved.end(), name) != kGmmNotSaved.end()) continue;
    if (name == "teacher-mean") {  // one line per mode
      for (const auto& s : teacher_means_s) cl.saved.emplace_back(name, s);
    } else if (name == "iterations" || name == "walkers" || name == "data" || name == "log-every") {
      // The values --quick resolved (so that a resumed --quick run reads them back, not the defaults).
      const int64_t v = name == "iterations" ? c.iterations
                        : name == "walkers"  ? c.walkers
                        : name == "data"     ? c.data
                                             : c.log_every;
      cl.saved.emplace_back(name, std::to_string(v));
    } else if (const auto text = option_value_string(val)) {
      cl.saved.emplace_back(name, *text);
    }
  }
  // The resolved values the run actually uses (after --quick).
  cl.saved.emplace_back("resolved.iterations", std::to_string(c.iterations));
  cl.saved.emplace_back("resolved.walkers", std::to_string(c.walkers));
  cl.saved.emplace_back("resolved.data", std::to_string(c.data));
  cl.saved.emplace_back("resolved.sigma", std::to_string(c.sigma > 0 ? c.sigma : std::sqrt(2 * c.h)));
  cl.saved.emplace_back("resolved.path", c.autograd ? "autograd" : "closed-form");
  return true;
}

int run_gmm(const std::vector<std::string>& args) {
  // Under `mpirun -np K` every rank runs this with its shard of the walkers and data (GmmTrainer); rank 0 alone
  // writes the run directory, the CSVs, the plot, the progress line and the table. Errors that every rank meets
  // together are SharedErrors (printed once).
  Communicator& comm = world();
  const bool root = comm.rank() == 0;
  std::string argv_text = JEBM_VERSION;
  for (const auto& a : args) argv_text += "\n" + a;
  check_same_on_all_ranks(comm, "the command lines (or jebm versions)", argv_text);
  GmmCommandLine cl;
  bool go = true;
  agree_on_errors(comm, [&] { go = parse_gmm_args(args, cl); });  // the same command line: the same error
  if (!go) return 0;
  const GmmConfig& c = cl.config;
  const std::string& out = cl.out;
  const bool no_progress = cl.no_progress || !root;
  if (cl.threads > 0) omp_set_num_threads(cl.threads);
  if (comm.size() > 1) {
    try {
      JEBM_CHECK(c.device.is_cpu() && !c.autograd, (c.autograd ? "--autograd" : "--device cuda")
                                                       << " runs on one rank only; under mpirun -np "
                                                       << comm.size() << " use the closed-form CPU path");
      chunk_shard(c.walkers, kGmmWalkerChunk, comm.rank(), comm.size(), "--walkers");
      chunk_shard(c.data, kGmmRowChunk, comm.rank(), comm.size(), "--data points");
    } catch (const Error& e) {
      throw SharedError(e.what());
    }
  }
  if (!cl.resume.empty() && c.autograd)
    throw SharedError("--resume " + cl.resume + ": the --autograd path writes no checkpoints");
  if (c.device.is_cuda()) cuda_api::require("jebm gmm --device cuda");  // a clear error when there is no CUDA build or device
  const std::vector<Algorithm>& algos = cl.algos;

  const GmmParams teacher = gmm_teacher(c);
  const Tensor data = gmm_teacher_data(c, teacher);
  const double ce_teacher = gmm_cross_entropy(teacher, data.data<double>(), c.data);

  const bool resume = !cl.resume.empty();
  const bool checkpoints = !out.empty() && cl.checkpoint_every > 0 && !c.autograd;
  // What a checkpoint must have been made with: every option that defines the run (not those --resume may change).
  std::string run_text;
  for (const auto& [k, v] : cl.saved)
    if (k.rfind("resolved.", 0) != 0 &&
        std::find(kGmmResumeMayChange.begin(), kGmmResumeMayChange.end(), k) == kGmmResumeMayChange.end())
      run_text += k + "=" + v + "\n";
  const std::string options_hash = std::to_string(comm_hash(run_text));
  RunDirLock run_lock;  // rank 0 holds the directory until the run ends
  if (!out.empty()) {
    run_on_rank0(comm, [&] {
      run_lock = prepare_run_dir(out, cl.force, resume);
      std::vector<std::pair<std::string, std::string>> kv = cl.saved;
      kv.emplace_back("resolved.threads", std::to_string(omp_get_max_threads()));
      kv.emplace_back("resolved.ranks", std::to_string(comm.size()));
      write_options(out, kv);
    });
  }

  SigintGuard sigint;
  std::vector<AlgoOutcome> outcomes;
  for (Algorithm a : algos) {
    AlgoOutcome o;
    o.algo = a;
    // jarzynski_ce is the corrected estimate (docs/method.md); holdout_* are NaN without held-out walkers.
    std::vector<std::string> cols = {"iteration", "exact_ce", "jarzynski_ce", "jarzynski_ce_raw", "log_z_correction",
                                     "jarzynski_ce_var", "log_z_correction_var",
                                     "holdout_ce", "holdout_ce_se", "kl_exact", "log_z_exact", "log_z_estimate",
                                     "ess", "holdout_min_ess", "resampled", "resamplings", "holdout_resamplings"};
    for (int64_t j = 0; j < c.student_modes; ++j) cols.push_back("weight_" + std::to_string(j));
    for (int64_t j = 0; j < c.student_modes; ++j) cols.push_back("mean_error_" + std::to_string(j));
    cols.push_back("time_s");
    const std::filesystem::path csv_path = std::filesystem::path(out) / ("metrics_" + std::string(algorithm_name(a)) + ".csv");
    const std::string ckpt = (std::filesystem::path(out) / ("checkpoint_" + std::string(algorithm_name(a)) + ".safetensors")).string();
    GmmTrainer run(c, a, data, teacher, &comm);
    // --resume: continue from this algorithm's checkpoint (every rank reads it and keeps its shard); an algorithm
    // without one starts afresh. Rows the checkpoint does not cover are dropped and made again.
    int64_t k0 = 0, resampled_since = 0;
    double seconds_before = 0.0;
    if (resume && std::filesystem::exists(ckpt)) {
      const SafeTensors st = load_safetensors(ckpt);
      JEBM_CHECK(checkpoint_meta(st, "gmm.options_hash") == options_hash,
                 ckpt << ": made by a run with other options than " << out << "/options.txt (a stale checkpoint?)");
      run.load_state(st);
      k0 = run.iteration();
      JEBM_CHECK(k0 <= c.iterations, "--resume " << out << ": " << algorithm_name(a) << "'s checkpoint is at iteration "
                                                 << k0 << ", beyond --iterations " << c.iterations
                                                 << "; give --iterations " << k0 << " or more");
      seconds_before = std::stod(checkpoint_meta(st, "gmm.seconds"));
      resampled_since = static_cast<int64_t>(checkpoint_meta_u64(st, "gmm.resampled_since"));
    }
    CsvWriter csv;
    if (!out.empty() && root) {
      if (resume) {
        truncate_csv_rows(csv_path, static_cast<double>(k0));
        if (std::filesystem::exists(csv_path)) o.records = records_from_csv(read_csv(csv_path), c.student_modes);
      }
      csv = CsvWriter(csv_path, cols, resume);
    }
    const auto t0 = std::chrono::steady_clock::now() -
                    std::chrono::duration_cast<std::chrono::steady_clock::duration>(std::chrono::duration<double>(seconds_before));
    Progress progress(std::string("gmm ") + algorithm_name(a), c.iterations, !no_progress);
    // A checkpoint of the state after `k` updates: gathered on every rank, written by rank 0 (temporary + rename).
    auto save = [&] {
      CheckpointTensors tensors;
      CheckpointMetadata meta;
      run.save_state(tensors, meta);
      meta["gmm.options_hash"] = options_hash;
      meta["gmm.seconds"] = std::to_string(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
      meta["gmm.resampled_since"] = std::to_string(resampled_since);
      run_on_rank0(comm, [&] { save_safetensors(ckpt, tensors, meta); });
    };
    auto emit = [&](const GmmRecord& r) {
      o.records.push_back(r);
      if (!csv.is_open()) return;
      std::vector<double> row = {static_cast<double>(r.iteration), r.exact_ce, r.jarzynski_ce, r.jarzynski_ce_raw,
                                 r.log_z_correction, r.jarzynski_ce_var, r.log_z_correction_var, r.holdout_ce, r.holdout_se, r.exact_ce - ce_teacher,
                                 r.log_z_exact, r.log_z_estimate, r.ess, r.holdout_ess,
                                 r.resampled ? 1.0 : 0.0, static_cast<double>(r.resamplings),
                                 static_cast<double>(r.holdout_resamplings)};
      row.insert(row.end(), r.weights.begin(), r.weights.end());
      row.insert(row.end(), r.mean_errors.begin(), r.mean_errors.end());
      row.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
      csv.row(row);
    };
    // The NaN guard: a diverged record is logged (the CSV keeps it and every row before it), then the run stops.
    auto diverged = [&](const GmmRecord& r) {
      const std::string bad = non_finite_field(r);
      if (bad.empty()) return false;
      emit(r);
      progress.finish();
      if (root)
        std::cerr << "jebm gmm: " << algorithm_name(a) << " diverged at iteration " << r.iteration << ": " << bad
                << " (non-finite); try a smaller --lr-means, --lr-z or --h. Stopped; no plot or summary written\n";
      return true;
    };
    for (int64_t k = k0; k < c.iterations; ++k) {
      GmmRecord r = run.iterate();
      if (diverged(r)) return kGmmDivergedExit;
      resampled_since += r.resampled;
      if (k % c.log_every == 0) {
        r.resampled = resampled_since > 0;  // a logged row says whether any resampling happened since the last
        resampled_since = 0;
        emit(r);
      }
      std::ostringstream extra;
      extra << "w0 " << std::setprecision(3) << r.weights[0];
      progress.update(k + 1, extra.str());
      if (checkpoints && (k + 1) % cl.checkpoint_every == 0 && k + 1 < c.iterations) save();
      if (cl.interrupt_at >= 0 && k == cl.interrupt_at) std::raise(SIGINT);
      // Ctrl-C: every rank stops after the same iteration; the checkpoint makes the run resumable from there.
      if (sigint_on_any_rank(comm)) {
        progress.finish();
        if (checkpoints) save();
        if (root)
          std::cerr << "jebm gmm: " << algorithm_name(a) << " interrupted after iteration " << k + 1 << "; "
                    << (checkpoints ? "checkpoint saved to " + ckpt + "; continue with --resume " + out
                                    : std::string("nothing saved (no --out, or --checkpoint-every 0)"))
                    << "\n";
        return kGmmInterruptedExit;
      }
    }
    // After the last update, before the final record completes the pending move: a larger --iterations on
    // --resume continues from here.
    if (checkpoints) save();
    o.final_rec = run.final_record();
    if (diverged(o.final_rec)) return kGmmDivergedExit;
    std::vector<double> fc;
    for (int64_t j = 0; j < run.params().k; ++j) fc.push_back(run.params().mean(j)[0]);
    o.first_coords = join(fc, 5);
    emit(o.final_rec);
    progress.finish();
    o.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    outcomes.push_back(std::move(o));
  }
  if (!root) return 0;  // every rank has the same records; rank 0 reports them

  // Summary table.
  std::cout << "\njebm gmm: d = " << c.dim << ", " << teacher.k << " teacher modes (weights "
            << join(gmm_mode_weights(teacher)) << "), " << c.data << " data, " << c.walkers << " walkers, h = " << c.h
            << ", " << c.iterations << " iterations, " << (c.autograd ? "autograd" : "closed-form") << " path, "
            << (comm.size() > 1 ? std::to_string(comm.size()) + " ranks x " : "") << omp_get_max_threads()
            << " threads\n";
  std::cout << "teacher cross-entropy on the data: " << std::setprecision(6) << ce_teacher << "\n\n";
  // Jarzynski CE: the training walkers' estimate with the drift correction from the lag covariance; var: with
  // the variance correction instead; raw: without either (docs/method.md).
  std::printf("%-10s %-22s %-12s %-12s %-11s %-12s %-12s %-12s %-22s %-9s %-8s %-8s\n", "algorithm",
              "final weights", "max|a-a*|", "exact CE", "KL (exact)", "Jarzynski CE", "var-corr.", "raw",
              "held-out CE +- se", "resampl.", "time s", "ms/it");
  for (const auto& o : outcomes) {
    const GmmRecord& f = o.final_rec;
    double me = 0.0;
    for (double e : f.mean_errors) me = std::max(me, e);
    char held[64] = "-";
    if (!std::isnan(f.holdout_ce)) std::snprintf(held, sizeof held, "%.5f +- %.5f", f.holdout_ce, f.holdout_se);
    std::printf("%-10s %-22s %-12.4f %-12.5f %-11.5f %-12.5f %-12.5f %-12.5f %-22s %-9lld %-8.1f %-8.3f\n",
                algorithm_name(o.algo), join(f.weights, 4).c_str(), me, f.exact_ce, f.exact_ce - ce_teacher,
                f.jarzynski_ce, f.jarzynski_ce_var, f.jarzynski_ce_raw, held, static_cast<long long>(f.resamplings), o.seconds,
                c.iterations ? 1e3 * o.seconds / static_cast<double>(c.iterations) : 0.0);
  }
  std::cout << "teacher means (first coordinate): ";
  for (int64_t j = 0; j < teacher.k; ++j) std::cout << (j ? ", " : "") << teacher.mean(j)[0];
  std::cout << "\n";
  for (const auto& o : outcomes) std::cout << algorithm_name(o.algo) << " final means (first coordinate): " << o.first_coords << "\n";
  if (!out.empty()) {
    SvgPanel pw{"weight of mode 1 (teacher: " + join({gmm_mode_weights(teacher)[0]}) + ")", "iteration", "weight", {}};
    SvgPanel pc{"cross-entropy: exact (solid), Jarzynski estimate (dashed)", "iteration", "CE (nats)", {}};
    SvgPanel pg{"Jarzynski CE estimates minus the exact CE", "iteration", "nats", {}};
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
      if (o.algo != Algorithm::Jarzynski) continue;
      pc.series.push_back(est);
      SvgSeries gap{"corrected", {}, {}, "#1f77b4", false}, raw{"raw (uncorrected)", {}, {}, "#9467bd", true};
      SvgSeries held{"held-out", {}, {}, "#ff7f0e", false};
      for (const auto& r : o.records) {
        const double it = static_cast<double>(r.iteration);
        gap.x.push_back(it);
        gap.y.push_back(r.jarzynski_ce - r.exact_ce);
        raw.x.push_back(it);
        raw.y.push_back(r.jarzynski_ce_raw - r.exact_ce);
        if (std::isnan(r.holdout_ce)) continue;
        held.x.push_back(it);
        held.y.push_back(r.holdout_ce - r.exact_ce);
      }
      for (SvgSeries* sr : {&gap, &raw, &held})
        if (!sr->x.empty() && !std::isnan(sr->y.back())) pg.series.push_back(*sr);
    }
    const double last = static_cast<double>(c.iterations);
    pw.series.push_back({"teacher", {0.0, last}, {gmm_mode_weights(teacher)[0], gmm_mode_weights(teacher)[0]}, "#555555", true});
    pc.series.push_back({"teacher CE", {0.0, last}, {ce_teacher, ce_teacher}, "#555555", true});
    std::vector<SvgPanel> panels = {pw, pc};
    if (!pg.series.empty()) {
      pg.series.push_back({"zero", {0.0, last}, {0.0, 0.0}, "#555555", true});
      panels.push_back(pg);
    }
    write_svg_plot(std::filesystem::path(out) / "gmm.svg", panels);
    std::cout << "wrote " << out << "/{options.txt, metrics_<algo>.csv, gmm.svg}\n";
  }
  return 0;
}

}  // namespace jebm
