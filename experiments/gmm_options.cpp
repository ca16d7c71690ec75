// `jebm gmm`'s options: their names, ranges and help (the table), their sources (the command line, a resumed
// run's options.txt, --config), the checks, and the resolved GmmCommandLine with what options.txt records.
// Tested by tests/test_gmm.cpp (ranges, --config, --resume refusals) and the fuzz target gmm_config (tests/fuzz).
#include <boost/program_options.hpp>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <iostream>

#include "experiments/cli.hpp"
#include "experiments/cli_options.hpp"
#include "experiments/gmm.hpp"
#include "experiments/output.hpp"
#include "experiments/size_checks.hpp"
#include "runtime/user_error.hpp"

namespace jebm {

namespace {

namespace po = boost::program_options;

// --resume: the options that may differ from the run's options.txt (they extend the run or change how it is
// computed or reported, not what), and those options.txt does not keep (they name the run or are one-off).
const std::vector<std::string> kMayChange = {"iterations", "threads", "checkpoint-every", "no-progress"};
const char* const kMayChangeText = "--iterations, --threads, --checkpoint-every, --no-progress";
const std::vector<std::string> kNotSaved = {"help", "out", "force", "resume", "config", "no-progress", "interrupt-at"};

bool listed(const std::vector<std::string>& names, const std::string& name) {
  return std::find(names.begin(), names.end(), name) != names.end();
}

// Old names that still work, for the options.txt of runs made with them: the first two are the new options'
// (read as them), --resample-cv2 C (N/ESS - 1 > C) keeps its meaning, the same trigger as --resample-cv sqrt(C).
struct OldName {
  const char* old_name;
  const char* new_name;  // nullptr: the old option is still read as itself
  const char* note;
};
const OldName kOldNames[] = {
    {"data", "samples", "--data is now --samples"},
    {"sigma", "noise", "--sigma is now --noise"},
    {"resample-cv2", nullptr, "--resample-cv2 C is now --resample-cv sqrt(C)"},
};

// The valid range of every numeric option (--help shows it; parse_gmm_args checks it).
const OptionRanges& gmm_ranges() {
  static const OptionRanges r = {
      {"iterations", at_least(0)},        {"dim", within(1, 1e6)},
      {"student-modes", within(1, 1e4)},  {"init-spread", any_value()},
      {"init-noise", at_least(0)},        {"samples", at_least(1)},
      {"walkers", at_least(1)},           {"h", above(0)},
      {"noise", at_least(0)},             {"drift-clip", at_least(0)},
      {"lr-means", within(0, 1e3)},       {"lr-z", within(0, 1e3)},
      {"cd-lr-factor", within(0, 1e3)},   {"cd-k", at_least(1)},
      {"resample-cv", at_least(0)},       {"resample-cv2", at_least(0)},
      {"resample-ess", within(0, 1)},
      {"holdout-walkers", at_least(0)},   {"holdout-blocks", at_least(1)},
      {"seed", any_value()},              {"threads", within(0, 4096)},
      {"log-every", at_least(1)},         {"checkpoint-every", at_least(0)},
      {"interrupt-at", at_least(-1)},
  };
  return r;
}

// The options given as text or flags, before parse_gmm_args turns them into the config.
struct GmmOptionText {
  std::string config_file, resample = "systematic", device = "cpu";
  std::vector<std::string> teacher_means = {"-10", "6"};
  std::string teacher_weights = "0.25,0.75";
  bool quick = false;
  bool no_correction = false;
  double resample_cv = 1.0, resample_ess = 0.0;
  double resample_cv2 = 0.0;  // the old trigger, when a source gives it
};

// What the experiment is: the teacher, the student, the walkers and the updates.
void add_model_options(po::options_description& desc, GmmConfig& c, GmmOptionText& t, std::string& algo) {
  const OptionRanges& R = gmm_ranges();
  // clang-format off
  desc.add_options()
      ("algo", po::value(&algo)->default_value(algo), "jarzynski | pcd | cd | all (the paper compares all three)")
      ("iterations", po::value(&c.iterations)->default_value(c.iterations), R.help("iterations", "parameter updates (paper: 8000)").c_str())
      ("dim", po::value(&c.dim)->default_value(c.dim), R.help("dim", "dimension d (paper: 50)").c_str())
      ("teacher-mean", po::value(&t.teacher_means)->multitoken()->composing()->default_value(t.teacher_means, "-10 6"),
       "a teacher mode's mean, comma-separated, padded with zeros to --dim; give it once per mode "
       "(paper: -10 and 6, i.e. -10 e1 and +6 e1)")
      ("teacher-weights", po::value(&t.teacher_weights)->default_value(t.teacher_weights),
       "teacher mode masses, comma-separated, normalised (paper: 1/4, 3/4)")
      ("student-modes", po::value(&c.student_modes)->default_value(c.student_modes), R.help("student-modes", "student's number of modes (paper: 2)").c_str())
      ("init-spread", po::value(&c.init_spread)->default_value(c.init_spread, "0.1"),
       R.help("init-spread", "student means start at -s e1 ... +s e1 (paper: -0.1 e1, +0.1 e1)").c_str())
      ("init-noise", po::value(&c.init_noise)->default_value(c.init_noise), R.help("init-noise", "plus this std of Gaussian noise per coordinate (paper: 0.01)").c_str())
      ("samples", po::value(&c.data)->default_value(c.data), R.help("samples", "teacher samples (the data), stratified over the modes (paper: 10^4)").c_str())
      ("walkers", po::value(&c.walkers)->default_value(c.walkers), R.help("walkers", "Langevin walkers N (paper: 10^4)").c_str())
      ("h", po::value(&c.h)->default_value(c.h, "0.1"), R.help("h", "ULA step size (paper: 0.1)").c_str())
      ("noise", po::value(&c.sigma)->default_value(c.sigma), R.help("noise", "ULA noise std sigma; 0 = sqrt(2h), the paper's").c_str())
      ("drift-clip", po::value(&c.drift_clip)->default_value(c.drift_clip),
       R.help("drift-clip", "clip each coordinate of grad U to +-c, used consistently in the weights; 0 = off (paper: off)").c_str())
      ("lr-means", po::value(&c.lr_means)->default_value(c.lr_means, "0.025"), R.help("lr-means", "learning rate of the means, times h (GMM.py: 0.2/8)").c_str())
      ("lr-z", po::value(&c.lr_z)->default_value(c.lr_z), R.help("lr-z", "learning rate of z_2..z_K, times h; z_1 is frozen (GMM.py: 1/8)").c_str())
      ("cd-lr-factor", po::value(&c.cd_lr_factor)->default_value(c.cd_lr_factor), R.help("cd-lr-factor", "CD's learning-rate multiplier (GMM.py: 10)").c_str())
      ("cd-k", po::value(&c.cd_k)->default_value(c.cd_k), R.help("cd-k", "CD restarts walkers from data every k updates (GMM.py: 4)").c_str())
      ("resample", po::value(&t.resample)->default_value(t.resample),
       "systematic | multinomial | none (systematic by default; the official GMM.py: multinomial)")
      ("resample-cv", po::value(&t.resample_cv)->default_value(t.resample_cv),
       R.help("resample-cv", "resample when std(w / mean w) over the walkers exceeds this, i.e. N/ESS - 1 > this^2 "
       "(GMM.py: cv^2 > 1, so 1: ESS < N/2); 0 = use --resample-ess").c_str())
      ("resample-ess", po::value(&t.resample_ess)->default_value(t.resample_ess),
       R.help("resample-ess", "with --resample-cv 0: resample when ESS < this fraction of N (jebm's alternative)").c_str())
      ("holdout-walkers", po::value(&c.holdout_walkers)->default_value(c.holdout_walkers),
       R.help("holdout-walkers", "Jarzynski only: this many held-out walkers that move and are weighted like the training walkers under the "
       "same parameters but never enter the gradient; their log Z estimate is logged beside the training walkers' "
       "(docs/method.md). 0 = off").c_str())
      ("holdout-blocks", po::value(&c.holdout_blocks)->default_value(c.holdout_blocks),
       R.help("holdout-blocks", "the held-out walkers form this many independent populations (each resampled on its own); the spread of "
       "their estimates gives the held-out error bar. Must divide --holdout-walkers").c_str())
      ;
  // clang-format on
  shared_option::seed(desc, c.seed);
}

// Out of --help: the old names (kOldNames), and --interrupt-at, for tests (acts as if Ctrl-C came after this
// iteration; -1: never).
void add_hidden_options(po::options_description& hidden, GmmCommandLine& cl, GmmOptionText& t) {
  hidden.add_options()("data", po::value<int64_t>())("sigma", po::value<double>())(
      "resample-cv2", po::value(&t.resample_cv2))(
      "interrupt-at", po::value(&cl.interrupt_at)->default_value(cl.interrupt_at));
}

// How the run is carried out and where it goes.
void add_run_options(po::options_description& desc, GmmCommandLine& cl, GmmOptionText& t) {
  const OptionRanges& R = gmm_ranges();
  GmmConfig& c = cl.config;
  // clang-format off
  desc.add_options()
      ("log-every", po::value(&c.log_every)->default_value(c.log_every), R.help("log-every", "CSV row every this many iterations").c_str())
      ("checkpoint-every", po::value(&cl.checkpoint_every)->default_value(cl.checkpoint_every),
       R.help("checkpoint-every", "with --out: write checkpoint_<algo>.safetensors every this many iterations and after "
       "the last one (the whole population, whatever the number of MPI ranks); 0 = none. Ctrl-C saves one too and "
       "stops with exit code 130").c_str())
      ("quick", po::bool_switch(&t.quick),
       "smoke preset (~10 s on 2 idle cores, about a minute on a busy machine): 4000 iterations, 2000 walkers, 2000 samples, log every 20; explicit options win")
      ("autograd", po::bool_switch(&c.autograd),
       "run the same iteration through the generic Trainer + autograd instead of the closed forms (slower; "
       "reports only the uncorrected Jarzynski estimate, the correction needs per-walker gradients)")
      ("no-correction", po::bool_switch(&t.no_correction),
       "Jarzynski: skip the lag-covariance sums of the corrected CE estimate (about 15 % of the iteration's CPU "
       "time): the summary's Jarzynski CE is then -, the CSV keeps the raw and variance-corrected estimates; training "
       "is bit for bit the same")
      ;
  // clang-format on
  shared_option::device(desc, t.device, "where the closed-form path runs (cuda: walkers, data and kernels stay on "
                        "the GPU)");
  shared_option::threads(desc, cl.threads);
  shared_option::out(desc, cl.out, "options.txt, metrics_<algo>.csv, gmm.svg, checkpoint_<algo>.safetensors "
                     "(nothing written without it)");
  shared_option::force(desc, cl.force);
  shared_option::resume(desc, cl.resume, std::string(kMayChangeText) + " (a larger --iterations extends a finished "
                        "run; on any number of MPI ranks, bit for bit as if it had not stopped)");
  shared_option::no_progress(desc, cl.no_progress);
  shared_option::config(desc, t.config_file);
}

// The sources of the options. vm: every source; given: the command line and --config; run: a resumed run's
// options.txt. po::store keeps the first value it sees: command line, then the resumed run's options, then --config.
struct GmmOptionMaps {
  po::variables_map vm, given, run;
};

// One source's old names (kOldNames) read as the new ones; a note for the user names them and the source
// (`where`: empty for the command line). An old name and its new one in the same source are refused.
void read_old_names(po::parsed_options& parsed, const std::string& where, std::vector<std::string>& notes) {
  auto given = [&](const char* name) {
    return std::any_of(parsed.options.begin(), parsed.options.end(),
                       [&](const po::option& o) { return !o.unregistered && o.string_key == name; });
  };
  std::string seen;
  for (const OldName& n : kOldNames) {
    if (!given(n.old_name)) continue;
    const char* now = n.new_name ? n.new_name : "resample-cv";
    JEBM_USER_CHECK(!given(now), where << (where.empty() ? "" : ": ") << "--" << n.old_name << " and --" << now
                                  << " set the same thing: give --" << now << " only");
    for (po::option& o : parsed.options)
      if (n.new_name && o.string_key == n.old_name) o.string_key = n.new_name;
    seen += (seen.empty() ? "" : "; ") + std::string(n.note);
  }
  if (!seen.empty())
    notes.push_back("jebm gmm: " + (where.empty() ? std::string() : where + " has old option names: ") + seen +
                    " (the old names still work)");
}

// An INI file into `maps`; its errors (syntax, unknown option, a value of the wrong type) name the file.
void store_file(const po::options_description& desc, const std::string& path, const char* what,
                bool allow_unregistered, std::initializer_list<po::variables_map*> maps,
                std::vector<std::string>& notes) {
  std::ifstream f(path);
  JEBM_USER_CHECK(f, what << " " << path << ": cannot read the file");
  try {
    auto parsed = po::parse_config_file(f, desc, allow_unregistered);
    read_old_names(parsed, path, notes);
    for (po::variables_map* m : maps) po::store(parsed, *m);
  } catch (const po::error& e) {
    JEBM_USER_FAIL(what << " " << path << ": " << option_error_text(e, desc) << " (see jebm gmm --help)");
  }
}

// Stores every source in m and notifies; false when --help was asked for (`visible` printed here).
bool store_sources(const std::vector<std::string>& args, const po::options_description& visible,
                   const po::options_description& desc, GmmOptionMaps& m, std::vector<std::string>& notes) {
  try {
    auto cmd = po::command_line_parser(args).options(desc).run();
    read_old_names(cmd, "", notes);
    po::store(cmd, m.vm);
    po::store(cmd, m.given);
    if (m.vm.count("help")) {
      std::cout << help_text(visible) << "\n";
      return false;
    }
    if (m.vm.count("resume")) {
      const std::string dir = m.vm["resume"].as<std::string>();
      const std::string opts = (std::filesystem::path(dir) / "options.txt").string();
      JEBM_USER_CHECK(std::filesystem::is_regular_file(opts),
                 "--resume " << dir << ": no options.txt there (not a jebm gmm run directory)");
      // resolved.* lines are reports: skipped
      store_file(desc, opts, "--resume: options", true, {&m.vm, &m.run}, notes);
    }
    if (m.vm.count("config"))
      store_file(desc, m.vm["config"].as<std::string>(), "--config", false, {&m.vm, &m.given}, notes);
    po::notify(m.vm);
  } catch (const po::error& e) {
    fail_option_error(e, desc, "gmm");
  }
  return true;
}

// --resume DIR: the command line and --config may change only kMayChange; --out, if given, is DIR.
void check_resume(const po::options_description& desc, const GmmOptionMaps& m, GmmCommandLine& cl) {
  check_resume_options(desc, m.given, m.run, cl.resume, kMayChange, kNotSaved);
  JEBM_USER_CHECK(cl.out.empty() || std::filesystem::path(cl.out) == std::filesystem::path(cl.resume),
             "--out " << cl.out << " and --resume " << cl.resume << " name different directories");
  JEBM_USER_CHECK(!cl.force, "--force and --resume " << cl.resume << " contradict each other");
  cl.out = cl.resume;
}

// The config's fields given as text (the teacher, resampling, device, algorithms) and --quick's sizes.
void resolve(const std::vector<std::string>& args, const GmmOptionMaps& m, GmmOptionText& t, GmmCommandLine& cl) {
  GmmConfig& c = cl.config;
  if (t.quick) {
    if (m.vm["iterations"].defaulted()) c.iterations = 4000;
    if (m.vm["walkers"].defaulted()) c.walkers = 2000;
    if (m.vm["samples"].defaulted()) c.data = 2000;
    if (m.vm["log-every"].defaulted()) c.log_every = 20;
  }
  // --teacher-mean composes over its occurrences, and so over the sources: take the command line's (with
  // --config) or else the resumed run's, never both.
  for (const po::variables_map* vm : {&m.given, &m.run})
    if (vm->count("teacher-mean") && !(*vm)["teacher-mean"].defaulted()) {
      t.teacher_means = (*vm)["teacher-mean"].as<std::vector<std::string>>();
      break;
    }
  c.teacher_means.clear();
  for (const auto& s : t.teacher_means) {
    c.teacher_means.push_back(parse_double_list(s, "--teacher-mean"));
    for (double v : c.teacher_means.back()) check_range("--teacher-mean '" + s + "': coordinate", v, any_value());
  }
  c.teacher_weights = parse_double_list(t.teacher_weights, "--teacher-weights");
  for (double v : c.teacher_weights) check_range("--teacher-weights '" + t.teacher_weights + "': mass", v, above(0));
  c.resample = t.resample != "none";
  if (c.resample)
    c.resample_rule.scheme = parse_named_option("resample", t.resample, option_source("resample", args, m.vm, m.run),
                                                resample_scheme_from_name);
  if (m.vm.count("resample-cv2")) {  // the old trigger, kept exactly
    JEBM_USER_CHECK(m.vm["resample-cv"].defaulted(), "--resample-cv2 and --resample-cv set the same trigger: give "
                                                "--resample-cv only");
    c.resample_rule.cv2_max = t.resample_cv2;
  } else {
    c.resample_rule.cv2_max = t.resample_cv * t.resample_cv;  // std(w / mean w)^2 = N/ESS - 1
  }
  c.resample_rule.ess_fraction = t.resample_ess;
  c.device = device_from_name(t.device);
  c.ce_correction = !t.no_correction;
  JEBM_USER_CHECK(!(c.device.is_cuda() && c.autograd), "--autograd runs on the CPU only; drop it or use --device cpu");
  check_gmm_sizes(c);
  if (cl.algo_s == "all")
    cl.algos = {Algorithm::Jarzynski, Algorithm::Pcd, Algorithm::Cd};
  else
    cl.algos = {parse_named_option("algo", cl.algo_s, option_source("algo", args, m.vm, m.run), algorithm_from_name)};
}

// options.txt: an INI file of every option that defines the run (what --resume reads back), then the resolved
// values as resolved.* lines (reports; --resume skips them).
void record(const po::variables_map& vm, const GmmOptionText& t, GmmCommandLine& cl) {
  const GmmConfig& c = cl.config;
  cl.saved.clear();
  for (const auto& [name, val] : vm) {
    if (listed(kNotSaved, name) || (name == "resample-cv" && vm.count("resample-cv2"))) continue;
    if (name == "teacher-mean") {  // one line per mode
      for (const auto& s : t.teacher_means) cl.saved.emplace_back(name, s);
    } else if (name == "iterations" || name == "walkers" || name == "samples" || name == "log-every") {
      // The values --quick resolved (so that a resumed --quick run reads them back, not the defaults).
      const int64_t v = name == "iterations" ? c.iterations
                        : name == "walkers"  ? c.walkers
                        : name == "samples"  ? c.data
                                             : c.log_every;
      cl.saved.emplace_back(name, std::to_string(v));
    } else if (const auto text = option_value_string(val)) {
      cl.saved.emplace_back(name, *text);
    }
  }
  // The resolved values the run actually uses (after --quick).
  cl.saved.emplace_back("resolved.iterations", std::to_string(c.iterations));
  cl.saved.emplace_back("resolved.walkers", std::to_string(c.walkers));
  cl.saved.emplace_back("resolved.samples", std::to_string(c.data));
  cl.saved.emplace_back("resolved.noise", std::to_string(c.sigma > 0 ? c.sigma : std::sqrt(2 * c.h)));
  cl.saved.emplace_back("resolved.path", c.autograd ? "autograd" : "closed-form");
}

}  // namespace

bool parse_gmm_args(const std::vector<std::string>& args, GmmCommandLine& cl) {
  GmmOptionText t;
  po::options_description desc(
      "jebm gmm: the Gaussian-mixture experiment of Carbone et al. (NeurIPS 2023).\n"
      "Trains a student mixture on samples of a teacher with Jarzynski-weighted walkers, PCD and CD, and\n"
      "reports the mode weights, the mean errors and the exact cross-entropy (Z is analytic here) next to\n"
      "the Jarzynski estimate. The defaults are the paper's run.\n\nOptions");
  shared_option::help(desc);
  shared_option::version(desc);
  add_model_options(desc, cl.config, t, cl.algo_s);
  add_run_options(desc, cl, t);
  po::options_description hidden, all;
  add_hidden_options(hidden, cl, t);
  all.add(desc).add(hidden);
  GmmOptionMaps m;
  cl.notes.clear();
  if (!store_sources(args, desc, all, m, cl.notes)) return false;
  gmm_ranges().check(m.vm);
  if (m.vm.count("resume")) check_resume(all, m, cl);
  resolve(args, m, t, cl);
  record(m.vm, t, cl);
  return true;
}

std::string gmm_run_identity(const GmmCommandLine& cl) {
  // In the old names, in their order (a checkpoint made with them records this text's hash). Switches added since
  // count only when set, so that a run made before them, which had them off, still resumes.
  static const std::vector<std::string> kAddedSwitches = {"no-correction"};
  std::vector<std::pair<std::string, std::string>> lines;
  for (auto [k, v] : cl.saved) {
    if (k.rfind("resolved.", 0) == 0 || listed(kMayChange, k)) continue;
    if (listed(kAddedSwitches, k) && v == "false") continue;
    for (const OldName& n : kOldNames)
      if (n.new_name && k == n.new_name) k = n.old_name;
    lines.emplace_back(k, v);
  }
  std::stable_sort(lines.begin(), lines.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
  std::string text;
  for (const auto& [k, v] : lines) text += k + "=" + v + "\n";
  return text;
}

}  // namespace jebm
