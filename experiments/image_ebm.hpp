// What the image experiments (`jebm mnist`, `jebm cifar10`) share: the official code's hyper-parameters as one
// config (each experiment's defaults from mnist_defaults() / cifar10_defaults()) with its Boost.Program_options
// registration (image_ebm_options.cpp), and the training loop around samplers' Trainer (image_ebm_run.cpp:
// burn-in, epochs, Adam + clipping + per-epoch linear lr decay, metrics CSV, PNG grids, exact checkpoint/resume
// (image_ebm_checkpoint.cpp), Ctrl-C, the DivergenceGuard, and the log Z diagnostics of docs/method.md: held-out
// walkers and the corrected estimate). Tested by tests/test_image_ebm.cpp.
#pragma once
#include <boost/program_options.hpp>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "experiments/cli.hpp"
#include "models/module.hpp"
#include "samplers/contrastive.hpp"
#include "samplers/resampling.hpp"
#include "samplers/trainer.hpp"

namespace jebm {

// Walkers per forward/backward piece on a GPU when --eval-chunk is 0 (on the CPU 0 means the Trainer's own pieces,
// RowEvaluator::kCpuPiece rows, in parallel over the threads).
constexpr int64_t kDeviceEvalChunk = 256;

// Every hyper-parameter of an image run. The experiment's values have no default here: they come from
// mnist_defaults() or cifar10_defaults(), the one source of each, before
// register_image_ebm_options() shows them in --help. The run's mechanics (seed, logging, checkpoints) are the
// same for both experiments and default here.
struct ImageEbmConfig {
  std::string command = "image-ebm";  // "mnist", "cifar10": used in messages and the progress line
  Algorithm algo = Algorithm::Jarzynski;
  // walkers and ULA (docs/method.md). The weights' transition-kernel terms use 1/(2 sigma^2) (consistent with the
  // moves) or the official code's 1/(4h) (the N(., 2h) kernel, whatever sigma is): weight_kernel.
  WeightKernel weight_kernel = WeightKernel::Paper2h;
  int64_t walkers = 0;
  int64_t burn_in = 0;           // unweighted ULA steps at theta_0 from uniform [-1,1]
  double h = 0.0;
  double sigma = 0.0;            // <= 0: sqrt(2h)
  double drift_clip = 0.0;       // per-coordinate clip of grad_x U (0: off), used consistently in the weights
  bool box_revert = false;       // the official code's [-1,1] revert: breaks the weight formula
  int64_t moving_subsets = 0;    // random walker subsets moved per parameter update
  int64_t moving_batch = 0;      // walkers per subset (0: all walkers)
  int64_t moves_per_update = 0;  // ULA moves of each subset
  int64_t gradient_batch = 0;    // walkers in the loss (0: all), weights renormalised within them
  bool gradient_walkers_moved = false;  // the loss uses the walkers just moved instead (the official CIFAR-10 code)
  double alpha = 0.0;            // squared-energy regulariser of the surrogate loss
  // optimizer
  double lr = 0.0, beta1 = 0.0, beta2 = 0.0;
  double grad_clip = 0.0;        // global grad-norm clip (<= 0: off)
  int64_t lr_decay_epochs = 0;   // lr factor max(1 - epoch / lr_decay_epochs, lr_floor)
  double lr_floor = 0.0;
  int64_t epochs = 0;
  // resampling (Jarzynski only)
  ResampleScheme resample_scheme = ResampleScheme::Multinomial;
  bool resample = false;
  double resample_cv = 0.0;          // resample when std(w / mean w) over all walkers exceeds this (0: off)
  double resample_ess = 0.0;         // with resample_cv = 0: resample when ESS < this fraction of N
  int64_t resample_after_epoch = 0;  // only when epoch > this (0-based epochs)
  double resample_batch_ess = 0.0;   // > 0: resample when the gradient walkers' ESS (a count) is below this
  int64_t rejuvenation_moves = 0;    // warm moves of every walker after each resampling (TrainerOptions; PCD: none)
  // log Z diagnostics (docs/method.md, Jarzynski only; both off by default, so default runs are unchanged)
  int64_t holdout_walkers = 0;    // held-out walkers M: moved and weighted like the walkers, never in the loss
  int64_t correction_groups = 0;  // >= 2: the first-order corrected log Z from this many groups (0: off)
  // data
  int64_t data_batch = 0;        // images per update; an epoch is floor(M / data_batch) updates (drop_last)
  double data_noise = 0.0;       // std of Gaussian noise added to every data batch
  // run (the same for every image experiment)
  uint64_t seed = 1;
  int threads = 0;               // OpenMP threads (0: OpenMP's default)
  int64_t eval_chunk = 0;        // walkers per forward/backward piece (0: 64 on the CPU, kDeviceEvalChunk on a GPU)
  // > 0: evaluation blocks of this many rows, shared out over the MPI ranks (TrainerOptions::shard_block; needed
  // under mpirun -np K > 1; the results depend on it, not on K). 0: one process, today's single passes.
  int64_t shard_block = 0;
  int64_t log_every = 1;         // CSV row (with the class weights) every this many updates
  int64_t grid_every = 10;       // PNG grid of walkers every this many epochs (0: only at the end)
  int64_t grid_count = 64;       // walkers in a grid
  int64_t checkpoint_every = 1;  // checkpoint every this many epochs (also at the end, after burn-in, on Ctrl-C)
  int64_t interrupt_at = -1;     // testing: raise SIGINT after this update (-1: never)
  int64_t interrupt_at_burn_in = -1;  // testing: raise SIGINT after this many burn-in steps (-1: never)
  bool progress = true;
  std::string out;               // run directory
  bool force = false;
  bool resume = false;           // continue the run in `out` from its checkpoint
  Device device = Device::cpu(); // --device: the energy, the walkers and the data batches (checkpoints: either)
};

// The paper's values of every hyper-parameter above (defined in experiments/mnist.cpp and cifar10.cpp).
ImageEbmConfig mnist_defaults();
ImageEbmConfig cifar10_defaults();

// The options given as text (--algo, --resample, ...): parse_image_ebm_args() turns them into the config's fields.
struct ImageEbmOptionStrings {
  std::string algo = "jarzynski";
  std::string resample = "multinomial";
  std::string gradient_walkers = "random";  // random | moved (ImageEbmConfig::gradient_walkers_moved)
  std::string device = "cpu";               // cpu | cuda | cuda:N (ImageEbmConfig::device)
  std::string weight_kernel = "2h";         // 2h | sigma | tempered (ImageEbmConfig::weight_kernel)
  std::string resume;
  std::string config;        // --config FILE
  bool no_progress = false;  // --no-progress (ImageEbmConfig::progress)
};
// Registers the shared options on `desc` with c's current values as defaults; they write into c and s.
void register_image_ebm_options(boost::program_options::options_description& desc, ImageEbmConfig& c,
                                ImageEbmOptionStrings& s, const std::string& defaults_source);

// Parses args against desc: --help prints `usage` + desc and returns false. With --resume DIR the options saved
// in DIR/options.txt are the defaults (the command line still wins, e.g. a larger --epochs), and --out is DIR.
// Validates every shared option (the message names the option and its value); every numeric option of desc is
// checked against its range (the shared ones' or `extra_ranges`, the command's own). On --resume, every option
// given that differs from the run's options.txt is refused, but for a short list that may change (--help of
// --resume). `saved_options` gets the (name, value) pairs to write to options.txt.
bool parse_image_ebm_args(const std::vector<std::string>& args, boost::program_options::options_description& desc,
                          const std::string& usage, ImageEbmConfig& c, ImageEbmOptionStrings& s,
                          std::vector<std::pair<std::string, std::string>>& saved_options,
                          const OptionRanges& extra_ranges = OptionRanges{});

// What an experiment hands the loop.
struct ImageEbmProblem {
  Tensor data;  // [M, C, H, W] float32 in [-1, 1]
  // Builds the energy with its initial parameters (the loop passes Generator{seed, 0}).
  std::function<std::shared_ptr<Module>(Generator& gen)> make_energy;
  // Optional metric: the weighted fraction of walkers per class. x: the walkers [N, C, H, W]; w: normalised
  // weights (uniform for PCD). Column names: "weight_" + class_names[c].
  std::vector<std::string> class_names;
  std::function<std::vector<double>(const Tensor& x, const std::vector<double>& w)> class_weights;
  std::vector<double> class_targets;  // optional: the truth, printed next to the final weights
  // Optional further metrics of the walkers (CIFAR-10: the Frechet distance of classifier features and the
  // predicted-class histogram), same arguments as class_weights, evaluated at the weights of theta_k every
  // `metrics_every` updates (0: never before the last) and at the last update; one CSV column per name, NaN in
  // the rows where they were not evaluated (a row is always written when they were).
  std::vector<std::string> metric_names;
  std::function<std::vector<double>(const Tensor& x, const std::vector<double>& w)> metrics;
  int64_t metrics_every = 0;
};

struct ImageEbmResult {
  int64_t iterations = 0;         // updates done in total (this run and the ones it resumed)
  int64_t epochs_done = 0;
  bool interrupted = false;       // Ctrl-C: checkpoint saved, exit code 130
  bool diverged = false;          // DivergenceGuard: exit code 3, last good checkpoint kept
  bool nothing_to_do = false;     // --resume of a finished run: no step run, no file but options.txt written
  std::string message;            // why it stopped, when it did not finish
  double log_z = 0.0, ess = 0.0, data_energy = 0.0;  // of the last update
  std::vector<double> class_weights;  // of the last logged update (empty without the metric)
  std::vector<double> metrics;        // ImageEbmProblem::metrics at their last evaluation (empty: none)
  // Wall times of this run (not of the runs it resumed): burn-in steps, and updates (the step and its guard,
  // without CSV/grid/checkpoint writes); last_epoch_s: the last epoch run whole here, everything included.
  int64_t burn_in_steps_run = 0, updates_run = 0, updates_per_epoch = 0;
  double burn_in_s = 0.0, train_s = 0.0, first_update_s = 0.0, last_epoch_s = 0.0;
  std::string collectives;  // on several ranks: how many, and what carries the walker rows (for the timing line)
  int exit_code() const { return diverged ? 3 : (interrupted ? 130 : 0); }
};

// The image variant of Algorithm 1 in c.out: burn-in, epochs of Trainer steps, metrics.csv, PNG grids,
// checkpoint.safetensors (atomic), exact resume when c.resume, Ctrl-C and the divergence guard. The run
// directory must have been prepared (prepare_run_dir + options.txt) by the caller.
ImageEbmResult run_image_ebm(const ImageEbmConfig& c, const ImageEbmProblem& p);

// The Trainer's options of an image run (resampling off: the loop switches it on after --resample-after-epoch).
// `jebm bench` uses them too, so that it times the product's configuration.
TrainerOptions image_ebm_trainer_options(const ImageEbmConfig& c);
// --rejuvenation-moves as the run uses it: PCD ignores it (no resampling), so its checkpoint does not record it.
inline int64_t effective_rejuvenation_moves(const ImageEbmConfig& c) {
  return c.algo == Algorithm::Jarzynski ? c.rejuvenation_moves : 0;
}

// Runs prepare_run_dir, writes options.txt, then run_image_ebm; prints the summary. The experiments' common tail.
int run_image_ebm_command(const ImageEbmConfig& c, const ImageEbmProblem& p,
                          const std::vector<std::pair<std::string, std::string>>& saved_options);

// The summary's timing line: ms per burn-in step and per update (steady state, the first update apart), s per
// epoch, and the hours --epochs would take at that rate (for extrapolating a full run from a short one).
std::string image_ebm_timing(const ImageEbmConfig& c, const ImageEbmResult& r);

// The checkpoint file of a run directory (DIR/checkpoint.safetensors; load_safetensors reads it).
std::string image_ebm_checkpoint_path(const std::string& out);

}  // namespace jebm
