// The image experiments' shared options: registration with each experiment's defaults shown in --help, parsing
// (command line, then a resumed run's options.txt, then --config) and validation, and the list of options that
// options.txt keeps (see image_ebm.hpp). Tested by tests/test_image_ebm.cpp and tests/test_cifar10.cpp.
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <iomanip>
#include <iostream>
#include <sstream>

#include "experiments/cli.hpp"
#include "experiments/cli_options.hpp"
#include "experiments/image_ebm.hpp"
#include "experiments/output.hpp"
#include "runtime/comm/communicator.hpp"
#include "runtime/cuda_api.hpp"
#include "runtime/user_error.hpp"

namespace jebm {

namespace po = boost::program_options;
namespace fs = std::filesystem;

namespace {

// Options that may differ from the run's options.txt on --resume: they extend the run (--epochs) or change how
// it is computed or reported but not what (threads, chunking, logging, grids, checkpoints, device, a moved copy
// of the same --data). Every other option, including any a command adds, must match.
const char* const kResumeMayChange[] = {"epochs",      "threads",          "eval-chunk", "log-every", "grid-every",
                                        "grid-count",  "checkpoint-every", "no-progress", "device",   "data"};
// Not saved in options.txt: they name the run, not its settings.
const char* const kNotSaved[] = {"help", "out", "force", "resume", "config", "interrupt-at", "interrupt-at-burn-in",
                                 "no-progress"};

template <size_t N>
bool listed(const char* const (&list)[N], const std::string& name) {
  return std::find_if(std::begin(list), std::end(list), [&](const char* n) { return name == n; }) != std::end(list);
}

std::string resume_may_change_list() {
  std::string t;
  for (const char* n : kResumeMayChange) t += std::string(t.empty() ? "--" : ", --") + n;
  return t;
}

// The valid range of every shared numeric option (--help shows it; parse_image_ebm_args checks it).
const OptionRanges& image_ebm_ranges() {
  static const OptionRanges r = {
      {"walkers", at_least(1)},           {"burn-in", at_least(0)},
      {"h", above(0)},                    {"noise", at_least(0)},
      {"drift-clip", at_least(0)},        {"moving-subsets", at_least(1)},
      {"moving-batch", at_least(0)},      {"moves-per-update", at_least(1)},
      {"gradient-batch", at_least(0)},    {"alpha", at_least(0)},
      {"lr", at_least(0)},                {"beta1", within_upper_open(0, 1)},
      {"beta2", within_upper_open(0, 1)}, {"grad-clip", at_least(0)},
      {"lr-decay-epochs", at_least(1)},   {"lr-floor", within(0, 1)},
      {"epochs", at_least(0)},            {"resample-cv", at_least(0)},
      {"resample-ess", within(0, 1)},     {"resample-after-epoch", at_least(-1)},
      {"resample-batch-ess", at_least(0)}, {"holdout-walkers", at_least(0)},
      {"rejuvenation-moves", at_least(0)},
      {"correction-groups", at_least(0)}, {"data-batch", at_least(1)},
      {"data-noise", at_least(0)},        {"eval-chunk", at_least(0)},
      {"log-every", at_least(1)},         {"grid-every", at_least(0)},
      {"shard-block", at_least(0)},
      {"grid-count", at_least(1)},        {"checkpoint-every", at_least(1)},
      {"interrupt-at", at_least(-1)},     {"interrupt-at-burn-in", at_least(-1)},
      // mnist only (experiments/mnist.cpp): 1 = 28x28 digits, 2 = 2x2 block means, 14x14.
      {"downsample", within(1, 2)},
  };
  return r;
}

}  // namespace

void register_image_ebm_options(po::options_description& d, ImageEbmConfig& c, ImageEbmOptionStrings& s,
                                const std::string& src) {
  const OptionRanges& R = image_ebm_ranges();
  s.algo = algorithm_name(c.algo);
  s.resample = c.resample ? resample_scheme_name(c.resample_scheme) : "none";
  s.gradient_walkers = c.gradient_walkers_moved ? "moved" : "random";
  s.weight_kernel = weight_kernel_name(c.weight_kernel);
  const std::string from = " (default: " + src + ")";
  // clang-format off
  shared_option::version(d);  // --help: the command's own, with its usage line
  d.add_options()
      ("algo", po::value(&s.algo)->default_value(s.algo),
       "jarzynski (weighted walkers, the paper's Algorithm 1) | pcd (the same loop with equal weights and no resampling)")
      ("walkers", po::value(&c.walkers)->default_value(c.walkers), (R.help("walkers", "Langevin walkers N") + from).c_str())
      ("burn-in", po::value(&c.burn_in)->default_value(c.burn_in),
       (R.help("burn-in", "unweighted ULA steps of all walkers at theta_0, starting uniform on [-1,1]") + from).c_str())
      ("h", po::value(&c.h)->default_value(c.h, short_double(c.h)), (R.help("h", "ULA step size") + from).c_str())
      ;
  shared_option::noise(d, c.sigma, R.at("noise"), "The official code moves with this sigma but weighs with the "
                       "1/(4h) factor of sigma = sqrt(2h) (it runs cold): see --weight-kernel" + from);
  d.add_options()
      ("weight-kernel", po::value(&s.weight_kernel)->default_value(s.weight_kernel),
       ("transition-kernel terms of the Jarzynski weights (docs/method.md). 2h: the official code's 1/(4h), i.e. the "
        "N(., 2h) kernel whatever --noise is: what produced the paper's results, but NOT the weight of the chain "
        "simulated unless --noise is sqrt(2h). sigma: 1/(2 sigma^2), consistent with the moves; with a cold "
        "--noise its ESS collapses fast. tempered: the exact weights for exp(-U/T), T = noise^2/(2h), the density "
        "the cold moves sample (the 2h weights are these to the power T); the weighted walkers (the loss's walker "
        "term, the digit fractions), log_z and ce_estimate (= data energy / T + log Z_T) then refer to exp(-U/T), "
        "and --rejuvenation-moves moves with --noise, the target's own temperature (docs/method.md)" + from).c_str())
      ("drift-clip", po::value(&c.drift_clip)->default_value(c.drift_clip, short_double(c.drift_clip)),
       (R.help("drift-clip", "clip each coordinate of grad_x U to +-c, used consistently in the weights; 0 = off") + from).c_str())
      ("box", po::bool_switch(&c.box_revert),
       "revert coordinates that leave [-1,1] after each move, as the official code does. WARNING: this alters "
       "the moves after the fact, so the Jarzynski weights no longer follow the weight formula (off by default)")
      ("moving-subsets", po::value(&c.moving_subsets)->default_value(c.moving_subsets),
       (R.help("moving-subsets", "fresh random walker subsets moved per parameter update, one after the other") + from).c_str())
      ("moving-batch", po::value(&c.moving_batch)->default_value(c.moving_batch),
       (R.help("moving-batch", "walkers per moving subset; 0 = all walkers") + from).c_str())
      ("moves-per-update", po::value(&c.moves_per_update)->default_value(c.moves_per_update),
       (R.help("moves-per-update", "ULA moves of each moving subset per parameter update") + from).c_str())
      ("gradient-batch", po::value(&c.gradient_batch)->default_value(c.gradient_batch),
       (R.help("gradient-batch", "walkers in the loss, a fresh random subset, weights renormalised within it; 0 = all") + from).c_str())
      ("gradient-walkers", po::value(&s.gradient_walkers)->default_value(s.gradient_walkers),
       ("random: --gradient-batch fresh random walkers per update | moved: the walkers of the last update's moving "
        "subset(s), weights renormalised within them (--gradient-batch only on the first update)" + from).c_str())
      ("alpha", po::value(&c.alpha)->default_value(c.alpha, short_double(c.alpha)),
       (R.help("alpha", "weight of the squared-energy regulariser of the surrogate loss (the paper's alpha)") + from).c_str())
      ("lr", po::value(&c.lr)->default_value(c.lr, short_double(c.lr)), (R.help("lr", "Adam learning rate") + from).c_str())
      ("beta1", po::value(&c.beta1)->default_value(c.beta1, short_double(c.beta1)), (R.help("beta1", "Adam beta1") + from).c_str())
      ("beta2", po::value(&c.beta2)->default_value(c.beta2, short_double(c.beta2)), (R.help("beta2", "Adam beta2") + from).c_str())
      ("grad-clip", po::value(&c.grad_clip)->default_value(c.grad_clip, short_double(c.grad_clip)),
       (R.help("grad-clip", "clip the global gradient norm to this; 0 = off") + from).c_str())
      ("lr-decay-epochs", po::value(&c.lr_decay_epochs)->default_value(c.lr_decay_epochs),
       (R.help("lr-decay-epochs", "lr factor max(1 - epoch / this, --lr-floor), set once per epoch") + from).c_str())
      ("lr-floor", po::value(&c.lr_floor)->default_value(c.lr_floor, short_double(c.lr_floor)), (R.help("lr-floor", "smallest lr factor") + from).c_str())
      ("epochs", po::value(&c.epochs)->default_value(c.epochs), (R.help("epochs", "passes over the training images") + from).c_str())
      ("resample", po::value(&s.resample)->default_value(s.resample),
       ("multinomial | systematic | none; Jarzynski only" + from).c_str())
      ("resample-cv", po::value(&c.resample_cv)->default_value(c.resample_cv, short_double(c.resample_cv)),
       (R.help("resample-cv", "resample when std(w / mean w) over all walkers exceeds this; 0 = use --resample-ess") + from).c_str())
      ("resample-ess", po::value(&c.resample_ess)->default_value(c.resample_ess, short_double(c.resample_ess)),
       (R.help("resample-ess", "with --resample-cv 0: resample when ESS < this fraction of N") + from).c_str())
      ("resample-after-epoch", po::value(&c.resample_after_epoch)->default_value(c.resample_after_epoch),
       (R.help("resample-after-epoch", "resample only when the (0-based) epoch exceeds this") + from).c_str())
      ("resample-batch-ess", po::value(&c.resample_batch_ess)->default_value(c.resample_batch_ess, short_double(c.resample_batch_ess)),
       (R.help("resample-batch-ess", "resample (all walkers) when the ESS of the gradient walkers' renormalised weights, a count, is below "
        "this; 0 = use --resample-cv / --resample-ess") + from).c_str())
      ("rejuvenation-moves", po::value(&c.rejuvenation_moves)->default_value(c.rejuvenation_moves),
       R.help("rejuvenation-moves", "after each resampling every walker makes this many warm ULA moves (noise sqrt(2h), "
       "for which both --weight-kernel formulas are the same exact weight) to spread the copies; 0 = off "
       "(Jarzynski only; needs resampling; not in the official code)").c_str())
      ("holdout-walkers", po::value(&c.holdout_walkers)->default_value(c.holdout_walkers),
       R.help("holdout-walkers", "held-out walkers M (jarzynski only; 0 = off): uniform on [-1,1] with their own init and noise, burned in "
       "and moved and weighted like the walkers under the same parameters, never in the loss; their log Z is an "
       "independent estimate (metrics.csv: holdout_log_z, holdout_ce_estimate, holdout_ess; docs/method.md)").c_str())
      ("correction-groups", po::value(&c.correction_groups)->default_value(c.correction_groups),
       R.help("correction-groups", "K >= 2 (jarzynski only; 0 = off): the first-order correction of the walkers' log Z for the optimiser "
       "following their own gradient noise, from batch means over K groups of the gradient walkers (metrics.csv: "
       "log_z_corrected, ce_corrected; docs/method.md). Sums the gradient in another order: the trajectory differs "
       "from an uncorrected run's in the last bits").c_str())
      ("data-batch", po::value(&c.data_batch)->default_value(c.data_batch),
       (R.help("data-batch", "data images per update, shuffled each epoch; the last partial batch is dropped") + from).c_str())
      ("data-noise", po::value(&c.data_noise)->default_value(c.data_noise, short_double(c.data_noise)),
       (R.help("data-noise", "std of Gaussian noise added to every data batch (the paper's augmentation)") + from).c_str())
      ("eval-chunk", po::value(&c.eval_chunk)->default_value(c.eval_chunk),
       R.help("eval-chunk", "walkers per forward/backward piece; 0 = 64 on the CPU (pieces in parallel over the "
                            "threads), 256 on a GPU. The float32 results can differ in the last bits with the "
                            "piece size (not with the thread count)").c_str())
      ("shard-block", po::value(&c.shard_block)->default_value(c.shard_block),
       R.help("shard-block", "> 0: every forward/backward runs in blocks of this many rows and the loss gradient is "
       "summed block by block; under mpirun -np K the blocks are shared out over the K ranks (walkers and data "
       "replicated), with the same results for any K. Needed with K > 1 (e.g. 64); 0 = one process").c_str())
      ("log-every", po::value(&c.log_every)->default_value(c.log_every),
       R.help("log-every", "metrics.csv row (with the per-class weights) every this many updates").c_str())
      ("grid-every", po::value(&c.grid_every)->default_value(c.grid_every),
       R.help("grid-every", "PNG grid of walkers every this many epochs; 0 = only after burn-in and at the end").c_str())
      ("grid-count", po::value(&c.grid_count)->default_value(c.grid_count), R.help("grid-count", "walkers shown in a grid").c_str())
      ("checkpoint-every", po::value(&c.checkpoint_every)->default_value(c.checkpoint_every),
       R.help("checkpoint-every", "checkpoint every this many epochs (also after burn-in, at the end and on Ctrl-C)").c_str())
      ("interrupt-at", po::value(&c.interrupt_at)->default_value(c.interrupt_at),
       R.help("interrupt-at", "testing: behave as if Ctrl-C arrived after this update (-1 = never)").c_str())
      ("interrupt-at-burn-in", po::value(&c.interrupt_at_burn_in)->default_value(c.interrupt_at_burn_in),
       R.help("interrupt-at-burn-in", "testing: behave as if Ctrl-C arrived after this many burn-in steps (-1 = never)").c_str())
      ;
  // clang-format on
  shared_option::device(d, s.device, "where the energy, the walkers and the data batches live; cuda needs a CUDA "
                        "build and a GPU (under mpirun, cuda means one GPU per rank: the rank's local index modulo "
                        "the GPUs). A checkpoint resumes on either device");
  shared_option::seed(d, c.seed);
  shared_option::threads(d, c.threads);
  shared_option::out(d, c.out, "options.txt, metrics.csv, metrics.svg, data.png, samples_*.png, "
                     "checkpoint.safetensors");
  shared_option::force(d, c.force);
  shared_option::resume(d, s.resume, resume_may_change_list() + " (e.g. a larger --epochs)");
  shared_option::no_progress(d, s.no_progress);
  shared_option::config(d, s.config);
}

bool parse_image_ebm_args(const std::vector<std::string>& args, po::options_description& desc, const std::string& usage,
                          ImageEbmConfig& c, ImageEbmOptionStrings& s,
                          std::vector<std::pair<std::string, std::string>>& saved, const OptionRanges& extra_ranges) {
  // vm: every source; given: the command line and --config only; run: a resumed run's options.txt.
  po::variables_map vm, given, run;
  // An INI file's errors name the file.
  auto parse_file = [&](const fs::path& path, const char* what) {
    std::ifstream f(path);
    JEBM_USER_CHECK(f, what << " " << path.string() << ": cannot read the file");
    try {
      return po::parse_config_file(f, desc);
    } catch (const po::error& e) {
      JEBM_USER_FAIL(what << " " << path.string() << ": " << option_error_text(e, desc) << " (see jebm " << c.command
                          << " --help)");
    }
  };
  try {
    const auto cmd = po::command_line_parser(args).options(desc).run();
    po::store(cmd, vm);
    po::store(cmd, given);
    if (vm.count("help")) {
      std::cout << usage << "\n" << help_text(desc) << "\n";
      return false;
    }
    // po::store keeps the first value it sees: command line, then the resumed run's options, then --config.
    if (vm.count("resume")) {
      const fs::path dir = vm["resume"].as<std::string>();
      const fs::path opts = dir / "options.txt";
      JEBM_USER_CHECK(fs::is_regular_file(opts), "--resume " << dir.string() << ": no options.txt there (not a jebm "
                                                        << c.command << " run directory)");
      const auto parsed = parse_file(opts, "--resume: options");
      po::store(parsed, vm);
      po::store(parsed, run);
    }
    if (vm.count("config")) {
      const auto parsed = parse_file(vm["config"].as<std::string>(), "--config");
      po::store(parsed, vm);
      po::store(parsed, given);
    }
    po::notify(vm);
  } catch (const po::error& e) {
    fail_option_error(e, desc, c.command);
  }
  OptionRanges ranges = image_ebm_ranges();
  ranges.add(shared_option_ranges());
  ranges.add(extra_ranges);
  ranges.check(vm);
  if (vm.count("resume"))
    check_resume_options(desc, given, run, vm["resume"].as<std::string>(),
                         std::vector<std::string>(std::begin(kResumeMayChange), std::end(kResumeMayChange)),
                         std::vector<std::string>(std::begin(kNotSaved), std::end(kNotSaved)));
  c.progress = !s.no_progress;
  c.resume = vm.count("resume") > 0;
  if (c.resume) {
    JEBM_USER_CHECK(!vm.count("out") || fs::path(c.out) == fs::path(s.resume),
               "--out " << c.out << " and --resume " << s.resume << " name different directories");
    c.out = s.resume;
    JEBM_USER_CHECK(!c.force, "--force and --resume " << s.resume << " contradict each other");
  }
  JEBM_USER_CHECK(!c.out.empty(), "--out DIR is required (the run directory; see jebm " << c.command << " --help)");
  c.algo = parse_named_option("algo", s.algo, option_source("algo", args, vm, run), algorithm_from_name);
  JEBM_USER_CHECK(c.algo != Algorithm::Cd, "--algo " << s.algo << ": the image experiments offer jarzynski and pcd");
  c.resample = s.resample != "none";
  if (c.resample)
    c.resample_scheme = parse_named_option("resample", s.resample, option_source("resample", args, vm, run),
                                           resample_scheme_from_name);
  JEBM_USER_CHECK(s.gradient_walkers == "random" || s.gradient_walkers == "moved",
             "--gradient-walkers " << s.gradient_walkers << ": expected random or moved");
  c.gradient_walkers_moved = s.gradient_walkers == "moved";
  JEBM_USER_CHECK(s.weight_kernel == "2h" || s.weight_kernel == "sigma" || s.weight_kernel == "tempered",
             "--weight-kernel " << s.weight_kernel << ": expected 2h, sigma or tempered");
  c.weight_kernel = weight_kernel_from_name(s.weight_kernel);
  JEBM_USER_CHECK(s.device == "cpu" || s.device.rfind("cuda", 0) == 0, "--device " << s.device << ": expected cpu or cuda");
  c.device = device_from_name(s.device);
  // Under mpirun, plain "cuda" means one GPU per rank: the rank's local index modulo the GPUs of its machine.
  if (s.device == "cuda" && world().size() > 1 && cuda_api::device_count() > 1)
    c.device = Device::cuda(comm_local_rank() % cuda_api::device_count());
  if (c.device.is_cuda()) {
    cuda_api::require(("jebm " + c.command + " --device " + s.device).c_str());  // no CUDA build or no GPU: clear error
    JEBM_USER_CHECK(!c.box_revert, "--box runs on the CPU only; drop it or use --device cpu");
  }

  JEBM_USER_CHECK(c.moving_batch >= 0 && c.moving_batch <= c.walkers,
             "--moving-batch " << c.moving_batch << " must be in [0, --walkers " << c.walkers << "]");
  JEBM_USER_CHECK(c.gradient_batch >= 0 && c.gradient_batch <= c.walkers,
             "--gradient-batch " << c.gradient_batch << " must be in [0, --walkers " << c.walkers << "]");
  JEBM_USER_CHECK(c.holdout_walkers == 0 || c.algo == Algorithm::Jarzynski,
             "--holdout-walkers " << c.holdout_walkers << " needs --algo jarzynski (got " << s.algo << ")");
  JEBM_USER_CHECK(c.correction_groups == 0 || c.correction_groups >= 2,
             "--correction-groups " << c.correction_groups << " must be 0 (off) or at least 2");
  JEBM_USER_CHECK(c.correction_groups == 0 || c.shard_block == 0,
             "--correction-groups " << c.correction_groups << " and --shard-block " << c.shard_block
                                    << " cannot be combined (the correction's grouped backward is one process's)");
  // PCD ignores it, as it ignores the other resampling options: one preset serves both algorithms.
  JEBM_USER_CHECK(c.rejuvenation_moves == 0 || c.algo != Algorithm::Jarzynski || c.resample,
             "--rejuvenation-moves " << c.rejuvenation_moves << " needs resampling (got --resample " << s.resample
                                     << ")");
  // The first-order correction is derived for increments U_k - U_{k+1}, not (U_k - U_{k+1}) / T.
  JEBM_USER_CHECK(c.correction_groups == 0 || c.weight_kernel != WeightKernel::Tempered,
             "--correction-groups " << c.correction_groups << " is not available with --weight-kernel tempered");
  JEBM_USER_CHECK(c.correction_groups == 0 || c.algo == Algorithm::Jarzynski,
             "--correction-groups " << c.correction_groups << " needs --algo jarzynski (got " << s.algo << ")");
  apply_threads(c.threads);

  // Everything that defines the run goes to options.txt (it is the defaults of a --resume).
  saved.clear();
  for (const auto& [name, val] : vm) {
    if (listed(kNotSaved, name)) continue;
    if (const auto text = option_value_string(val)) saved.emplace_back(name, *text);
  }
  return true;
}

}  // namespace jebm
