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

#include "experiments/image_ebm.hpp"
#include "experiments/output.hpp"
#include "runtime/cuda_api.hpp"

namespace jebm {

namespace po = boost::program_options;
namespace fs = std::filesystem;

namespace {

// Shortest round-tripping text for --help ("5e-05", not "5.0000000000000002e-05").
std::string short_double(double v) {
  for (int prec = 6; prec <= 17; ++prec) {
    std::ostringstream os;
    os << std::setprecision(prec) << v;
    if (std::stod(os.str()) == v) return os.str();
  }
  return std::to_string(v);
}

}  // namespace

void register_image_ebm_options(po::options_description& d, ImageEbmConfig& c, ImageEbmOptionStrings& s,
                                const std::string& src) {
  s.algo = algorithm_name(c.algo);
  s.resample = c.resample ? resample_scheme_name(c.resample_scheme) : "none";
  s.gradient_walkers = c.gradient_walkers_moved ? "moved" : "random";
  s.weight_kernel = weight_kernel_name(c.weight_kernel);
  const std::string from = " (default: " + src + ")";
  // clang-format off
  d.add_options()
      ("algo", po::value(&s.algo)->default_value(s.algo),
       "jarzynski (weighted walkers, DESIGN 1.3) | pcd (the same loop with equal weights and no resampling)")
      ("walkers", po::value(&c.walkers)->default_value(c.walkers), ("Langevin walkers N" + from).c_str())
      ("burn-in", po::value(&c.burn_in)->default_value(c.burn_in),
       ("unweighted ULA steps of all walkers at theta_0, starting uniform on [-1,1]" + from).c_str())
      ("h", po::value(&c.h)->default_value(c.h, short_double(c.h)), ("ULA step size" + from).c_str())
      ("noise", po::value(&c.sigma)->default_value(c.sigma, short_double(c.sigma)),
       ("ULA noise std sigma; 0 = sqrt(2h). The official code moves with this sigma but weighs with the 1/(4h) "
        "factor of sigma = sqrt(2h) (it runs cold): see --weight-kernel (DESIGN 1.1)" + from).c_str())
      ("weight-kernel", po::value(&s.weight_kernel)->default_value(s.weight_kernel),
       ("transition-kernel terms of the Jarzynski weights (DESIGN 1.1). 2h: the official code's 1/(4h), i.e. the "
        "N(., 2h) kernel whatever --noise is: what produced the paper's results, but NOT the weight of the chain "
        "simulated unless --noise is sqrt(2h). sigma: 1/(2 sigma^2), consistent with the moves; with a cold "
        "--noise its ESS collapses fast" + from).c_str())
      ("drift-clip", po::value(&c.drift_clip)->default_value(c.drift_clip, short_double(c.drift_clip)),
       ("clip each coordinate of grad_x U to +-c, used consistently in the weights; 0 = off" + from).c_str())
      ("box", po::bool_switch(&c.box_revert),
       "revert coordinates that leave [-1,1] after each move, as the official code does. WARNING: this alters "
       "the moves after the fact, so the Jarzynski weights no longer follow DESIGN 1.1's formula (off by default)")
      ("moving-subsets", po::value(&c.moving_subsets)->default_value(c.moving_subsets),
       ("fresh random walker subsets moved per parameter update, one after the other" + from).c_str())
      ("moving-batch", po::value(&c.moving_batch)->default_value(c.moving_batch),
       ("walkers per moving subset; 0 = all walkers" + from).c_str())
      ("moves-per-update", po::value(&c.moves_per_update)->default_value(c.moves_per_update),
       ("ULA moves of each moving subset per parameter update" + from).c_str())
      ("gradient-batch", po::value(&c.gradient_batch)->default_value(c.gradient_batch),
       ("walkers in the loss, a fresh random subset, weights renormalised within it; 0 = all" + from).c_str())
      ("gradient-walkers", po::value(&s.gradient_walkers)->default_value(s.gradient_walkers),
       ("random: --gradient-batch fresh random walkers per update | moved: the walkers of the last update's moving "
        "subset(s), weights renormalised within them (--gradient-batch only on the first update)" + from).c_str())
      ("alpha", po::value(&c.alpha)->default_value(c.alpha, short_double(c.alpha)),
       ("weight of the squared-energy regulariser of the surrogate loss (DESIGN 1.2)" + from).c_str())
      ("lr", po::value(&c.lr)->default_value(c.lr, short_double(c.lr)), ("Adam learning rate" + from).c_str())
      ("beta1", po::value(&c.beta1)->default_value(c.beta1, short_double(c.beta1)), ("Adam beta1" + from).c_str())
      ("beta2", po::value(&c.beta2)->default_value(c.beta2, short_double(c.beta2)), ("Adam beta2" + from).c_str())
      ("grad-clip", po::value(&c.grad_clip)->default_value(c.grad_clip, short_double(c.grad_clip)),
       ("clip the global gradient norm to this; 0 = off" + from).c_str())
      ("lr-decay-epochs", po::value(&c.lr_decay_epochs)->default_value(c.lr_decay_epochs),
       ("lr factor max(1 - epoch / this, --lr-floor), set once per epoch" + from).c_str())
      ("lr-floor", po::value(&c.lr_floor)->default_value(c.lr_floor, short_double(c.lr_floor)), ("smallest lr factor" + from).c_str())
      ("epochs", po::value(&c.epochs)->default_value(c.epochs), ("passes over the training images" + from).c_str())
      ("resample", po::value(&s.resample)->default_value(s.resample),
       ("multinomial | systematic | none; Jarzynski only" + from).c_str())
      ("resample-cv", po::value(&c.resample_cv)->default_value(c.resample_cv, short_double(c.resample_cv)),
       ("resample when std(w / mean w) over all walkers exceeds this; 0 = use --resample-ess" + from).c_str())
      ("resample-ess", po::value(&c.resample_ess)->default_value(c.resample_ess, short_double(c.resample_ess)),
       ("with --resample-cv 0: resample when ESS < this fraction of N" + from).c_str())
      ("resample-after-epoch", po::value(&c.resample_after_epoch)->default_value(c.resample_after_epoch),
       ("resample only when the (0-based) epoch exceeds this" + from).c_str())
      ("resample-batch-ess", po::value(&c.resample_batch_ess)->default_value(c.resample_batch_ess, short_double(c.resample_batch_ess)),
       ("resample (all walkers) when the ESS of the gradient walkers' renormalised weights, a count, is below "
        "this; 0 = use --resample-cv / --resample-ess" + from).c_str())
      ("holdout-walkers", po::value(&c.holdout_walkers)->default_value(c.holdout_walkers),
       "held-out walkers M (jarzynski only; 0 = off): uniform on [-1,1] with their own init and noise, burned in "
       "and moved and weighted like the walkers under the same parameters, never in the loss; their log Z is an "
       "independent estimate (metrics.csv: holdout_log_z, holdout_ce_estimate, holdout_ess; DESIGN 1.5)")
      ("correction-groups", po::value(&c.correction_groups)->default_value(c.correction_groups),
       "K >= 2 (jarzynski only; 0 = off): the first-order correction of the walkers' log Z for the optimiser "
       "following their own gradient noise, from batch means over K groups of the gradient walkers (metrics.csv: "
       "log_z_corrected, ce_corrected; DESIGN 1.5). Sums the gradient in another order: the trajectory differs "
       "from an uncorrected run's in the last bits")
      ("data-batch", po::value(&c.data_batch)->default_value(c.data_batch),
       ("data images per update, shuffled each epoch; the last partial batch is dropped" + from).c_str())
      ("data-noise", po::value(&c.data_noise)->default_value(c.data_noise, short_double(c.data_noise)),
       ("std of Gaussian noise added to every data batch (the paper's augmentation)" + from).c_str())
      ("device", po::value(&s.device)->default_value(s.device),
       "cpu | cuda (or cuda:N): where the energy, the walkers and the data batches live; cuda needs a CUDA build "
       "and a GPU. A checkpoint resumes on either device")
      ("seed", po::value(&c.seed)->default_value(c.seed),
       "seed of every draw: initial parameters and walkers, ULA noise, subsets, data order, resampling")
      ("threads", po::value(&c.threads)->default_value(c.threads), "OpenMP threads; 0 = OpenMP's default")
      ("eval-chunk", po::value(&c.eval_chunk)->default_value(c.eval_chunk),
       "walkers per forward/backward chunk (memory only; results do not depend on it)")
      ("log-every", po::value(&c.log_every)->default_value(c.log_every),
       "metrics.csv row (with the per-class weights) every this many updates")
      ("grid-every", po::value(&c.grid_every)->default_value(c.grid_every),
       "PNG grid of walkers every this many epochs; 0 = only after burn-in and at the end")
      ("grid-count", po::value(&c.grid_count)->default_value(c.grid_count), "walkers shown in a grid")
      ("checkpoint-every", po::value(&c.checkpoint_every)->default_value(c.checkpoint_every),
       "checkpoint every this many epochs (also after burn-in, at the end and on Ctrl-C)")
      ("out", po::value(&c.out), "run directory: options.txt, metrics.csv, samples_*.png, checkpoint.safetensors")
      ("force", po::bool_switch(&c.force), "overwrite a previous run in --out")
      ("resume", po::value(&s.resume),
       "continue the run in this directory exactly where its checkpoint left it (its options.txt gives the "
       "defaults; the command line wins, e.g. a larger --epochs)")
      ("interrupt-at", po::value(&c.interrupt_at)->default_value(c.interrupt_at),
       "testing: behave as if Ctrl-C arrived after this update (-1 = never)")
      ("interrupt-at-burn-in", po::value(&c.interrupt_at_burn_in)->default_value(c.interrupt_at_burn_in),
       "testing: behave as if Ctrl-C arrived after this many burn-in steps (-1 = never)")
      ("no-progress", "no progress line on stderr")
      ("config", po::value<std::string>(), "INI file with any of these options (key = value); the command line wins");
  // clang-format on
}

bool parse_image_ebm_args(const std::vector<std::string>& args, po::options_description& desc, const std::string& usage,
                          ImageEbmConfig& c, ImageEbmOptionStrings& s,
                          std::vector<std::pair<std::string, std::string>>& saved) {
  po::variables_map vm;
  try {
    po::store(po::command_line_parser(args).options(desc).run(), vm);
    if (vm.count("help")) {
      std::cout << usage << "\n" << desc << "\n";
      return false;
    }
    // po::store keeps the first value it sees: command line, then the resumed run's options, then --config.
    if (vm.count("resume")) {
      const fs::path dir = vm["resume"].as<std::string>();
      const fs::path opts = dir / "options.txt";
      JEBM_CHECK(fs::is_regular_file(opts), "--resume " << dir.string() << ": no options.txt there (not a jebm "
                                                        << c.command << " run directory)");
      std::ifstream f(opts);
      JEBM_CHECK(f, "--resume: cannot read " << opts.string());
      po::store(po::parse_config_file(f, desc), vm);
    }
    if (vm.count("config")) {
      const std::string cf = vm["config"].as<std::string>();
      std::ifstream f(cf);
      JEBM_CHECK(f, "--config " << cf << ": cannot read the file");
      po::store(po::parse_config_file(f, desc), vm);
    }
    po::notify(vm);
  } catch (const po::error& e) {
    JEBM_FAIL(e.what() << " (see jebm " << c.command << " --help)");
  }
  c.progress = !vm.count("no-progress");
  c.resume = vm.count("resume") > 0;
  if (c.resume) {
    JEBM_CHECK(!vm.count("out") || fs::path(c.out) == fs::path(s.resume),
               "--out " << c.out << " and --resume " << s.resume << " name different directories");
    c.out = s.resume;
    JEBM_CHECK(!c.force, "--force and --resume " << s.resume << " contradict each other");
  }
  JEBM_CHECK(!c.out.empty(), "--out DIR is required (the run directory; see jebm " << c.command << " --help)");
  c.algo = algorithm_from_name(s.algo);
  JEBM_CHECK(c.algo != Algorithm::Cd, "--algo " << s.algo << ": the image experiments offer jarzynski and pcd");
  c.resample = s.resample != "none";
  if (c.resample) c.resample_scheme = resample_scheme_from_name(s.resample);
  JEBM_CHECK(s.gradient_walkers == "random" || s.gradient_walkers == "moved",
             "--gradient-walkers " << s.gradient_walkers << ": expected random or moved");
  c.gradient_walkers_moved = s.gradient_walkers == "moved";
  JEBM_CHECK(s.weight_kernel == "2h" || s.weight_kernel == "sigma",
             "--weight-kernel " << s.weight_kernel << ": expected 2h or sigma");
  c.weight_kernel = weight_kernel_from_name(s.weight_kernel);
  JEBM_CHECK(s.device == "cpu" || s.device.rfind("cuda", 0) == 0, "--device " << s.device << ": expected cpu or cuda");
  c.device = device_from_name(s.device);
  if (c.device.is_cuda()) {
    cuda_api::require(("jebm " + c.command + " --device " + s.device).c_str());  // no CUDA build or no GPU: clear error
    JEBM_CHECK(!c.box_revert, "--box runs on the CPU only; drop it or use --device cpu");
  }

  JEBM_CHECK(c.walkers >= 1, "--walkers " << c.walkers << " must be at least 1");
  JEBM_CHECK(c.burn_in >= 0, "--burn-in " << c.burn_in << " must be >= 0");
  JEBM_CHECK(c.h > 0 && std::isfinite(c.h), "--h " << c.h << " must be > 0");
  JEBM_CHECK(c.sigma >= 0 && std::isfinite(c.sigma), "--noise " << c.sigma << " must be >= 0 (0 = sqrt(2h))");
  JEBM_CHECK(c.drift_clip >= 0, "--drift-clip " << c.drift_clip << " must be >= 0");
  JEBM_CHECK(c.moving_subsets >= 1, "--moving-subsets " << c.moving_subsets << " must be at least 1");
  JEBM_CHECK(c.moving_batch >= 0 && c.moving_batch <= c.walkers,
             "--moving-batch " << c.moving_batch << " must be in [0, --walkers " << c.walkers << "]");
  JEBM_CHECK(c.moves_per_update >= 1, "--moves-per-update " << c.moves_per_update << " must be at least 1");
  JEBM_CHECK(c.gradient_batch >= 0 && c.gradient_batch <= c.walkers,
             "--gradient-batch " << c.gradient_batch << " must be in [0, --walkers " << c.walkers << "]");
  JEBM_CHECK(c.alpha >= 0, "--alpha " << c.alpha << " must be >= 0");
  JEBM_CHECK(c.lr >= 0 && std::isfinite(c.lr), "--lr " << c.lr << " must be >= 0");
  JEBM_CHECK(c.beta1 >= 0 && c.beta1 < 1, "--beta1 " << c.beta1 << " must be in [0, 1)");
  JEBM_CHECK(c.beta2 >= 0 && c.beta2 < 1, "--beta2 " << c.beta2 << " must be in [0, 1)");
  JEBM_CHECK(c.grad_clip >= 0, "--grad-clip " << c.grad_clip << " must be >= 0");
  JEBM_CHECK(c.lr_decay_epochs >= 1, "--lr-decay-epochs " << c.lr_decay_epochs << " must be at least 1");
  JEBM_CHECK(c.lr_floor >= 0 && c.lr_floor <= 1, "--lr-floor " << c.lr_floor << " must be in [0, 1]");
  JEBM_CHECK(c.epochs >= 0, "--epochs " << c.epochs << " must be >= 0");
  JEBM_CHECK(c.resample_cv >= 0, "--resample-cv " << c.resample_cv << " must be >= 0");
  JEBM_CHECK(c.resample_ess >= 0 && c.resample_ess <= 1, "--resample-ess " << c.resample_ess << " must be in [0, 1]");
  JEBM_CHECK(c.resample_batch_ess >= 0 && std::isfinite(c.resample_batch_ess),
             "--resample-batch-ess " << c.resample_batch_ess << " must be >= 0");
  JEBM_CHECK(c.holdout_walkers >= 0, "--holdout-walkers " << c.holdout_walkers << " must be >= 0 (0 = off)");
  JEBM_CHECK(c.holdout_walkers == 0 || c.algo == Algorithm::Jarzynski,
             "--holdout-walkers " << c.holdout_walkers << " needs --algo jarzynski (got " << s.algo << ")");
  JEBM_CHECK(c.correction_groups == 0 || c.correction_groups >= 2,
             "--correction-groups " << c.correction_groups << " must be 0 (off) or at least 2");
  JEBM_CHECK(c.correction_groups == 0 || c.algo == Algorithm::Jarzynski,
             "--correction-groups " << c.correction_groups << " needs --algo jarzynski (got " << s.algo << ")");
  JEBM_CHECK(c.data_batch >= 1, "--data-batch " << c.data_batch << " must be at least 1");
  JEBM_CHECK(c.data_noise >= 0, "--data-noise " << c.data_noise << " must be >= 0");
  JEBM_CHECK(c.threads >= 0, "--threads " << c.threads << " must be >= 0");
  JEBM_CHECK(c.eval_chunk >= 0, "--eval-chunk " << c.eval_chunk << " must be >= 0");
  JEBM_CHECK(c.log_every >= 1, "--log-every " << c.log_every << " must be at least 1");
  JEBM_CHECK(c.grid_every >= 0, "--grid-every " << c.grid_every << " must be >= 0");
  JEBM_CHECK(c.grid_count >= 1, "--grid-count " << c.grid_count << " must be at least 1");
  JEBM_CHECK(c.checkpoint_every >= 1, "--checkpoint-every " << c.checkpoint_every << " must be at least 1");
  if (c.threads > 0) omp_set_num_threads(c.threads);

  // Everything that defines the run goes to options.txt (it is the defaults of a --resume).
  saved.clear();
  static const char* const kNotSaved[] = {"help", "out", "force", "resume", "config", "interrupt-at",
                                          "interrupt-at-burn-in", "no-progress"};
  for (const auto& [name, val] : vm) {
    if (std::find(std::begin(kNotSaved), std::end(kNotSaved), name) != std::end(kNotSaved)) continue;
    if (const auto text = option_value_string(val)) saved.emplace_back(name, *text);
  }
  return true;
}

}  // namespace jebm
