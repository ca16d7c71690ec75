// run_image_ebm: the image variant of Algorithm 1 (docs/method.md) shared by `jebm mnist` and `jebm cifar10` (see
// image_ebm.hpp): burn-in, epochs of Trainer steps, metrics rows, grids, checkpoints, Ctrl-C and the
// DivergenceGuard. The run's state lives in one ImageEbmRun object, built in the order that fixes its draws.
// Tested by tests/test_image_ebm.cpp and tests/test_cifar10.cpp.
#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <csignal>
#include <filesystem>
#include <iomanip>
#include <iostream>
#include <limits>
#include <memory>
#include <sstream>

#include "experiments/box_revert.hpp"
#include "experiments/divergence_guard.hpp"
#include "experiments/image_ebm.hpp"
#include "experiments/image_ebm_checkpoint.hpp"
#include "experiments/image_ebm_plot.hpp"
#include "experiments/output.hpp"
#include "experiments/size_checks.hpp"
#include "experiments/progress.hpp"
#include "models/optim.hpp"
#include "runtime/checked_size.hpp"
#include "runtime/cuda_api.hpp"
#include "runtime/file_io.hpp"
#include "runtime/ops.hpp"
#include "runtime/shuffle.hpp"
#include "experiments/sigint.hpp"
#include "runtime/comm/communicator.hpp"
#include "runtime/user_error.hpp"
#include "samplers/trainer.hpp"

namespace jebm {

namespace fs = std::filesystem;

namespace {

// Philox keys of the loop's own draws (the walkers' noise and subsets are keyed inside samplers/).
constexpr uint64_t kWalkerInitKey = 0x77616c6b696e6974ULL, kNoiseSeedKey = 0x6e6f697365736564ULL,
                   kShuffleKey = 0x73687566666c6521ULL, kDataNoiseKey = 0x646e6f6973652121ULL,
                   kHoldoutInitKey = 0x686f6c64696e6974ULL, kHoldoutNoiseKey = 0x686f6c646e6f6973ULL;
constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

using Clock = std::chrono::steady_clock;
double seconds_since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

int64_t checked_image_count(const ImageEbmConfig& c, const ImageEbmProblem& p) {
  JEBM_CHECK(p.data.defined() && p.data.dim() == 4 && p.data.dtype() == DType::Float32,
             c.command << ": data must be float32 [M, C, H, W], got "
                       << (p.data.defined() ? shape_str(p.data.shape()) : std::string("nothing")));
  JEBM_CHECK(p.make_energy, c.command << ": no energy");
  check_image_ebm_sizes(c, Shape(p.data.shape().begin() + 1, p.data.shape().end()));
  const int64_t m = p.data.size(0);
  JEBM_USER_CHECK(m >= c.data_batch, c.command << ": " << m << " training images, fewer than --data-batch " << c.data_batch);
  return m;
}

// A resumed run keeps its metrics.csv header: metric columns added to jebm after the run started (e.g. mnist's
// tv_to_target, confident_frac) are not measured in it rather than changing the columns under its rows.
bool metric_columns_fit(const ImageEbmConfig& c, const ImageEbmProblem& p) {
  const fs::path csv = fs::path(c.out) / "metrics.csv";
  std::error_code ec;
  if (!c.resume || !fs::is_regular_file(csv, ec) || fs::file_size(csv, ec) == 0) return true;
  const std::string text = read_file(csv.string());
  const std::string header = text.substr(0, text.find('\n'));
  if (("," + header + ",").find("," + p.metric_names.front() + ",") != std::string::npos) return true;
  if (world().rank() == 0) {
    std::cerr << c.command << ": " << csv.string() << " was started without the columns";
    for (const auto& n : p.metric_names) std::cerr << " " << n;
    std::cerr << "; the resumed run keeps its columns and does not measure them\n";
  }
  return false;
}

// theta_0 depends on the seed only, so Jarzynski and PCD runs start identically. --device cuda: built on the host
// (the same theta_0 as a CPU run), then moved.
std::shared_ptr<Module> initial_energy(const ImageEbmConfig& c, const ImageEbmProblem& p) {
  Generator gen{c.seed, 0};
  std::shared_ptr<Module> energy = p.make_energy(gen);
  if (c.device.is_cuda()) {
    cuda_api::require(("jebm " + c.command + " --device cuda").c_str());
    JEBM_USER_CHECK(!c.box_revert, c.command << ": --box runs on the CPU only");
    energy->to(c.device);
  }
  return energy;
}

// n walkers uniform on [-1, 1]^D (drawn with init_key), with noise seed noise_key, on the run's device.
WalkerPopulation uniform_walkers(const ImageEbmConfig& c, const ImageEbmProblem& p, int64_t n, uint64_t init_key,
                                 uint64_t noise_key) {
  Shape wshape = p.data.shape();
  wshape[0] = n;
  Generator wgen{c.seed ^ init_key, 0};
  WalkerPopulation pop = WalkerPopulation::create(rand_uniform(wshape, -1.0, 1.0, wgen), c.seed ^ noise_key);
  return c.device.is_cuda() ? walkers_to(pop, c.device) : pop;
}

WalkerPopulation initial_walkers(const ImageEbmConfig& c, const ImageEbmProblem& p) {
  return uniform_walkers(c, p, c.walkers, kWalkerInitKey, kNoiseSeedKey);
}

// --holdout-walkers: their own init and noise keys, so the training walkers' draws are those of a run without them.
std::unique_ptr<WalkerPopulation> initial_holdout(const ImageEbmConfig& c, const ImageEbmProblem& p) {
  if (c.holdout_walkers == 0) return nullptr;
  return std::make_unique<WalkerPopulation>(
      uniform_walkers(c, p, c.holdout_walkers, kHoldoutInitKey, kHoldoutNoiseKey));
}

// One run: the energy, optimiser, walkers, Trainer and guard, and the loop's bookkeeping between updates.
class ImageEbmRun {
 public:
  ImageEbmRun(const ImageEbmConfig& c, const ImageEbmProblem& p);
  ImageEbmRun(const ImageEbmRun&) = delete;
  ImageEbmRun& operator=(const ImageEbmRun&) = delete;
  ImageEbmResult run();

 private:
  bool burn_in();        // false: stopped, res_ says why
  bool train();
  bool update(Progress& prog, int64_t first);
  void write_row(int64_t it, int64_t epoch, const TrainerStepInfo& info);
  std::string progress_text(int64_t epoch, const TrainerStepInfo& info) const;
  void end_of_epoch_outputs();
  void checkpoint(const std::string& what);
  void stop_interrupted(const std::string& where);
  void stop_diverged(const std::string& what);
  // The Trainer's callbacks.
  Tensor data_batch(int64_t it);
  void optimizer_step();
  void weights_ready(const WalkerPopulation& w, const TrainerStepInfo& info);
  double elapsed() const { return ls_.elapsed_s + seconds_since(t_start_); }

  // Under mpirun every rank holds the same walkers, parameters and data and runs the same loop; the Trainer
  // shares out the evaluation blocks. Rank 0 alone writes files and prints.
  bool interrupted();  // Ctrl-C on any rank (all ranks agree, so that none waits for one that stopped)
  const ImageEbmConfig& c_;
  const ImageEbmProblem& p_;
  Communicator& comm_;
  // Several ranks on GPUs: NCCL for the walker rows' gathers when usable (make_nccl_communicator_if_usable).
  std::unique_ptr<Communicator> device_comm_;
  const bool root_;
  const int64_t m_, per_epoch_, total_;
  const fs::path out_;
  const std::string ckpt_, label_;
  const bool jarzynski_, has_metrics_;
  const Clock::time_point t_start_;
  std::shared_ptr<Module> energy_;
  const std::vector<ag::Var> params_;
  Adam adam_;
  const LinearDecayLR schedule_;
  WalkerPopulation pop_;
  std::unique_ptr<WalkerPopulation> hold_;  // --holdout-walkers (null: off)
  const Tensor data_;  // batches are gathered where they are used
  Trainer tr_;
  DivergenceGuard guard_;
  ImageEbmLoopState ls_;
  ImageEbmResult res_;
  std::string last_ckpt_what_ = "none";
  std::unique_ptr<CsvWriter> csv_;
  bool log_batch_ess_ = false;
  // Data order: the permutation of the epoch being drawn from.
  int64_t perm_epoch_ = -1;
  std::vector<int64_t> perm_;
  // Set by the callbacks during a step, read by the row that follows it.
  double grad_norm_ = kNaN;
  // The factor clip_grad_norm applied this update, 0 when no optimiser step was applied (step_scale_dot).
  double step_clip_ = 0.0;
  std::vector<double> class_w_, metric_v_;
  bool logged_weights_ = false, logged_metrics_ = false;
  // Timing of whole epochs.
  Clock::time_point t_epoch_;
  bool whole_epoch_ = false;  // the epoch being timed started in this run
};

ImageEbmRun::ImageEbmRun(const ImageEbmConfig& c, const ImageEbmProblem& p)
    : c_(c),
      p_(p),
      comm_(world()),
      root_(comm_.rank() == 0),
      m_(checked_image_count(c, p)),
      per_epoch_(m_ / c.data_batch),
      total_(checked_mul(c.epochs, per_epoch_, "--epochs " + std::to_string(c.epochs) + " x " +
                         std::to_string(per_epoch_) + " updates per epoch (images / --data-batch)")),
      out_(c.out),
      ckpt_(image_ebm_checkpoint_path(c.out)),
      label_(c.command + " " + algorithm_name(c.algo)),
      jarzynski_(c.algo == Algorithm::Jarzynski),
      has_metrics_(p.metrics && !p.metric_names.empty() && metric_columns_fit(c, p)),
      t_start_(Clock::now()),
      energy_(initial_energy(c, p)),
      params_(energy_->parameters()),
      adam_(params_, c.lr, {c.beta1, c.beta2}),
      schedule_(c.lr, c.lr_decay_epochs, c.lr_floor),
      pop_(initial_walkers(c, p)),
      hold_(initial_holdout(c, p)),
      data_(c.device.is_cuda() ? p.data.to(c.device) : p.data),
      tr_(*energy_, pop_, image_ebm_trainer_options(c)),
      guard_(params_, adam_, pop_, c.algo == Algorithm::Jarzynski) {
  check_image_ebm_schedule(c, total_);
  std::string no_nccl;  // why not, for the timing line
  if (c.device.is_cuda()) device_comm_ = make_nccl_communicator_if_usable(comm_, c.device.index, &no_nccl);
  tr_.set_communicator(&comm_, device_comm_.get());
  if (comm_.size() > 1) {
    std::string how = device_comm_ ? "NCCL" : "MPI";
    if (c.device.is_cuda() && !device_comm_) how += " through host memory (" + no_nccl + ")";
    res_.collectives = std::to_string(comm_.size()) + " ranks, walker rows over " + how;
  }
  tr_.data_batch = [this](int64_t it) { return data_batch(it); };
  tr_.optimizer_step = [this](int64_t) { optimizer_step(); };
  tr_.weights_ready = [this](const WalkerPopulation& w, const TrainerStepInfo& info) { weights_ready(w, info); };
  if (hold_) tr_.set_holdout(hold_.get());
  // Adam's parameters are params_, energy_->parameters() in order: the order of the Trainer's C tensors.
  if (c.correction_groups > 0)
    tr_.step_scale_dot = [this](const std::vector<Tensor>& cs) {
      return step_clip_ > 0 ? adam_.step_scale_dot(cs, step_clip_) : 0.0;
    };
  if (c.box_revert) tr_.after_move = [](WalkerPopulation& w, const std::vector<int64_t>& idx) { box_revert(w, idx); };
}

Tensor ImageEbmRun::data_batch(int64_t it) {
  const int64_t e = it / per_epoch_, b = it % per_epoch_;
  if (e != perm_epoch_) {
    perm_ = philox_permutation(m_, c_.seed ^ kShuffleKey, static_cast<uint64_t>(e));
    perm_epoch_ = e;
  }
  const std::vector<int64_t> idx(perm_.begin() + b * c_.data_batch, perm_.begin() + (b + 1) * c_.data_batch);
  Tensor batch = gather_rows(data_, idx);
  if (c_.data_noise > 0) {
    Generator ng{c_.seed ^ kDataNoiseKey, static_cast<uint64_t>(it)};
    add_(batch, rand_normal(batch.shape(), 0.0, c_.data_noise, ng, batch.dtype(), batch.device()));
  }
  return batch;
}

void ImageEbmRun::optimizer_step() {
  const double max_norm = c_.grad_clip > 0 ? c_.grad_clip : std::numeric_limits<double>::infinity();
  grad_norm_ = clip_grad_norm(params_, max_norm);
  step_clip_ = 0.0;
  // A non-finite gradient is not applied: the parameters keep their last finite values.
  if (!guard_.check_grad_norm(grad_norm_)) return;
  // clip_grad_norm's rule: scaled by max_norm / (norm + 1e-6) when that is below 1.
  step_clip_ = std::min(1.0, max_norm / (grad_norm_ + 1e-6));
  adam_.step();
  guard_.check_parameters_and_optimizer();
}

bool ImageEbmRun::interrupted() { return sigint_on_any_rank(comm_); }

void ImageEbmRun::weights_ready(const WalkerPopulation& w, const TrainerStepInfo& info) {
  logged_weights_ = false;
  logged_metrics_ = false;
  if (!guard_.check_log_weights() || !root_) return;  // the metrics feed only rank 0's rows
  const bool last = info.iteration == total_ - 1;
  const bool want_w = p_.class_weights && (info.iteration % c_.log_every == 0 || last);
  const bool want_m = has_metrics_ && (last || (p_.metrics_every > 0 && info.iteration % p_.metrics_every == 0));
  if (!want_w && !want_m) return;
  // Host weights for the metric callbacks (N doubles, only on the updates that evaluate a metric).
  const std::vector<double> wn = jarzynski_ ? normalized_weights(w.log_w.host_vector<double>())
                                            : std::vector<double>(static_cast<size_t>(w.size()),
                                                                  1.0 / static_cast<double>(w.size()));
  if (want_w) {
    class_w_ = p_.class_weights(w.x, wn);
    logged_weights_ = true;
  }
  if (want_m) {
    metric_v_ = p_.metrics(w.x, wn);
    JEBM_CHECK(metric_v_.size() == p_.metric_names.size(), c_.command << ": the metrics gave " << metric_v_.size()
                                                                       << " values for " << p_.metric_names.size()
                                                                       << " names");
    logged_metrics_ = true;
  }
}

void ImageEbmRun::checkpoint(const std::string& what) {
  ImageEbmLoopState s = ls_;
  s.elapsed_s = elapsed();
  // The state is the same on every rank: rank 0 writes it; a failure there stops every rank.
  run_on_rank0(comm_, [&] { save_image_ebm_checkpoint(ckpt_, c_, *energy_, adam_, pop_, hold_.get(), tr_, s, per_epoch_); });
  last_ckpt_what_ = what;
}

void ImageEbmRun::stop_interrupted(const std::string& where) {
  checkpoint(where);
  res_.interrupted = true;
  res_.iterations = tr_.iteration();
  res_.epochs_done = tr_.iteration() / per_epoch_;
  res_.message = "interrupted at " + where + "; checkpoint saved to " + ckpt_ + "; continue with --resume " + c_.out;
}

// Nothing is saved from here on: the checkpoint on disk is the last one written before the divergence.
void ImageEbmRun::stop_diverged(const std::string& what) {
  res_.diverged = true;
  res_.iterations = tr_.iteration();
  res_.message = what + "; stopped without saving; the last good checkpoint is " +
                 (last_ckpt_what_ == "none" && !fs::exists(ckpt_) ? std::string("(none yet)")
                                                                   : ckpt_ + " (" + last_ckpt_what_ + ")");
}

// Unweighted ULA of all walkers at theta_0 (the official code's 20000 steps).
bool ImageEbmRun::burn_in() {
  UlaConfig plain = image_ebm_trainer_options(c_).ula;
  plain.weighted = false;
  Progress prog(label_ + " burn-in", c_.burn_in - ls_.burnin_done, c_.progress && root_);
  const int64_t start = ls_.burnin_done;
  const auto t_burn = Clock::now();
  // On several ranks each one moves its own rows (Trainer::plain_move); every walker's position is gathered once,
  // when the burn-in ends or stops.
  auto gather = [this] {
    tr_.gather_walkers(pop_);
    if (hold_) tr_.gather_walkers(*hold_);
  };
  while (ls_.burnin_done < c_.burn_in) {
    if (interrupted()) {
      gather();
      stop_interrupted("burn-in step " + std::to_string(ls_.burnin_done));
      return false;
    }
    const std::string where = "diverged at burn-in step " + std::to_string(ls_.burnin_done);
    if (!tr_.plain_move(pop_, plain, [&](const Tensor& u) { return guard_.check_energies(u, where); }) ||
        (hold_ && !tr_.plain_move(*hold_, plain, [&](const Tensor& u) {  // with the held-out walkers' own noise
          return guard_.check_energies(u, where + " (held-out walkers)");
        }))) {
      gather();
      stop_diverged(guard_.reason());
      return false;
    }
    ++ls_.burnin_done;
    prog.update(ls_.burnin_done - start);
    if (ls_.burnin_done == c_.interrupt_at_burn_in) std::raise(SIGINT);
  }
  gather();
  prog.finish();
  res_.burn_in_steps_run = ls_.burnin_done - start;
  res_.burn_in_s = seconds_since(t_burn);
  ls_.burned_in = true;
  checkpoint("end of burn-in");
  if (root_) write_grid(out_ / "samples_burnin.png", pop_.x, c_.grid_count);
  return true;
}

void ImageEbmRun::write_row(int64_t it, int64_t epoch, const TrainerStepInfo& info) {
  // The CE of the model the weights refer to: exp(-U / T) for the tempered kernel (data energy / T), else exp(-U).
  const double data_term = info.data_energy * image_ebm_trainer_options(c_).ula.energy_coef();
  std::vector<double> row = {static_cast<double>(it),
                             static_cast<double>(epoch),
                             adam_.lr(),
                             info.loss,
                             info.data_energy,
                             info.ess,
                             info.cv2,
                             res_.log_z,
                             jarzynski_ ? data_term + info.log_z : kNaN,
                             info.resampled ? 1.0 : 0.0,
                             static_cast<double>(pop_.resamplings),
                             grad_norm_,
                             elapsed()};
  if (log_batch_ess_) row.push_back(info.batch_ess);
  if (hold_) row.insert(row.end(), {info.holdout_log_z, data_term + info.holdout_log_z, info.holdout_ess});
  if (c_.correction_groups > 0) row.insert(row.end(), {info.log_z_corrected, info.data_energy + info.log_z_corrected});
  if (has_metrics_) {
    if (logged_metrics_) row.insert(row.end(), metric_v_.begin(), metric_v_.end());
    else row.insert(row.end(), p_.metric_names.size(), kNaN);
  }
  if (!p_.class_names.empty()) {
    if (logged_weights_ && class_w_.size() == p_.class_names.size()) {
      row.insert(row.end(), class_w_.begin(), class_w_.end());
      res_.class_weights = class_w_;
    } else {
      row.insert(row.end(), p_.class_names.size(), kNaN);
    }
  }
  if (csv_) csv_->row(row);  // rank 0's
}

std::string ImageEbmRun::progress_text(int64_t epoch, const TrainerStepInfo& info) const {
  std::ostringstream extra;
  extra << "ep " << epoch << " ESS " << std::fixed << std::setprecision(0) << info.ess;
  if (log_batch_ess_) extra << " bESS " << std::setprecision(0) << info.batch_ess;
  if (jarzynski_) extra << " logZ " << std::setprecision(3) << info.log_z;
  if (hold_) extra << " held-out " << std::setprecision(3) << info.holdout_log_z;
  if (c_.correction_groups > 0) extra << " corrected " << std::setprecision(3) << info.log_z_corrected;
  if (!res_.metrics.empty()) extra << " " << p_.metric_names[0] << " " << std::setprecision(2) << res_.metrics[0];
  if (!res_.class_weights.empty()) {
    extra << " w";
    for (double v : res_.class_weights) extra << " " << std::setprecision(3) << v;
  }
  return extra.str();
}

// After the last update of an epoch: its grid and checkpoint, and its wall time.
void ImageEbmRun::end_of_epoch_outputs() {
  const int64_t done = tr_.iteration(), ep = done / per_epoch_;
  if (root_ && c_.grid_every > 0 && ep % c_.grid_every == 0)
    write_grid(out_ / ("samples_epoch" + std::to_string(ep) + ".png"), pop_.x, c_.grid_count);
  if (ep % c_.checkpoint_every == 0 && done < total_) checkpoint("end of epoch " + std::to_string(ep));
  const auto now = Clock::now();
  if (whole_epoch_) res_.last_epoch_s = std::chrono::duration<double>(now - t_epoch_).count();
  t_epoch_ = now;
  whole_epoch_ = true;
}

// One parameter update with its guard, metrics row and epoch-end outputs; false: the run stopped.
bool ImageEbmRun::update(Progress& prog, int64_t first) {
  if (interrupted()) {
    stop_interrupted("update " + std::to_string(tr_.iteration()));
    return false;
  }
  const int64_t it = tr_.iteration(), epoch = it / per_epoch_;
  tr_.set_resample(jarzynski_ && c_.resample && epoch > c_.resample_after_epoch);
  adam_.set_lr(schedule_.lr_at(epoch));
  guard_.clear();
  grad_norm_ = kNaN;
  const auto t_update = Clock::now();
  TrainerStepInfo info;
  try {
    info = tr_.step();
  } catch (const Error&) {
    // E.g. weight statistics of log-weights that are all -inf: a divergence, reported as one; any other
    // failure (the state is finite) is a real error.
    if (!guard_.explains_failure()) throw;
  }
  if (!guard_.diverged()) guard_.check_update(info);
  if (guard_.diverged()) {
    prog.finish();
    stop_diverged("diverged at update " + std::to_string(it) + " (epoch " + std::to_string(epoch) +
                  "): " + guard_.reason());
    return false;
  }
  // Update time: the step and its guard (each ends with scalars on the host, so device work is included).
  const double dt = seconds_since(t_update);
  if (res_.updates_run == 0) res_.first_update_s = dt;
  ++res_.updates_run;
  res_.train_s += dt;
  res_.log_z = jarzynski_ ? info.log_z : kNaN;
  res_.ess = info.ess;
  res_.data_energy = info.data_energy;
  if (logged_metrics_) res_.metrics = metric_v_;
  if (it % c_.log_every == 0 || it == total_ - 1 || logged_metrics_) write_row(it, epoch, info);
  prog.update(tr_.iteration() - first, progress_text(epoch, info));
  if (tr_.iteration() % per_epoch_ == 0) end_of_epoch_outputs();
  if (c_.interrupt_at >= 0 && it == c_.interrupt_at) std::raise(SIGINT);
  return true;
}

bool ImageEbmRun::train() {
  std::vector<std::string> cols = {"iteration", "epoch", "lr",  "loss",       "data_energy", "ess",     "cv2",
                                   "log_z",     "ce_estimate", "resampled", "resamplings", "grad_norm", "time_s"};
  // batch_ess: only in runs that resample on it (older runs' CSV headers stay valid for --resume).
  log_batch_ess_ = c_.resample_batch_ess > 0;
  if (log_batch_ess_) cols.push_back("batch_ess");
  // The log Z diagnostics: only in runs that have them, so default runs keep their columns.
  if (hold_) cols.insert(cols.end(), {"holdout_log_z", "holdout_ce_estimate", "holdout_ess"});
  if (c_.correction_groups > 0) cols.insert(cols.end(), {"log_z_corrected", "ce_corrected"});
  if (has_metrics_) cols.insert(cols.end(), p_.metric_names.begin(), p_.metric_names.end());
  for (const auto& n : p_.class_names) cols.push_back("weight_" + n);
  // Rows at or after the checkpoint were written by the run that stopped: drop them (atomically, so a full
  // disk or a kill leaves the old file whole), so the resumed rows follow on without duplicates.
  if (root_) {
    if (c_.resume)
      resume_csv(out_ / "metrics.csv", cols, tr_.iteration(), c_.log_every, ckpt_,
                 "jebm " + c_.command + " --out " + out_.string() + " --force with its options");
    csv_ = std::make_unique<CsvWriter>(out_ / "metrics.csv", cols, c_.resume);
  }

  {
    const WeightStats ws = pop_.stats();  // reported if no update runs below
    res_.ess = ws.ess;
    res_.log_z = jarzynski_ ? pop_.log_z_offset + ws.log_mean : kNaN;
  }
  Progress prog(label_, total_ - tr_.iteration(), c_.progress && root_);
  const int64_t first = tr_.iteration();
  res_.updates_per_epoch = per_epoch_;
  t_epoch_ = Clock::now();
  whole_epoch_ = first % per_epoch_ == 0;
  while (tr_.iteration() < total_)
    if (!update(prog, first)) return false;
  prog.finish();
  return true;
}

ImageEbmResult ImageEbmRun::run() {
  if (c_.resume) {
    JEBM_USER_CHECK(fs::is_regular_file(ckpt_), "--resume " << c_.out << ": no checkpoint.safetensors there");
    load_image_ebm_checkpoint(ckpt_, c_, *energy_, adam_, pop_, hold_.get(), tr_, ls_);
    last_ckpt_what_ = ls_.burned_in ? "update " + std::to_string(tr_.iteration())
                                    : "burn-in step " + std::to_string(ls_.burnin_done);
    if (ls_.burned_in && tr_.iteration() >= total_) {
      res_.nothing_to_do = true;
      res_.iterations = tr_.iteration();
      res_.epochs_done = tr_.iteration() / per_epoch_;
      res_.message = "the run in " + c_.out + " is finished (" + std::to_string(res_.iterations) + " updates, " +
                     std::to_string(res_.epochs_done) + " epochs): nothing to do; give a larger --epochs to extend it";
      return res_;
    }
    if (root_) std::cerr << label_ << ": resumed from " << ckpt_ << " at " << last_ckpt_what_ << "\n";
  } else if (root_) {
    std::error_code ec;
    fs::remove(ckpt_, ec);  // a --force run must never fall back on an older run's checkpoint
    write_grid(out_ / "data.png", p_.data, c_.grid_count);
  }
  SigintGuard sigint;
  if (!ls_.burned_in && !burn_in()) return res_;
  if (!train()) return res_;
  checkpoint("end of training");
  if (root_) write_grid(out_ / "samples_final.png", pop_.x, c_.grid_count);
  res_.iterations = tr_.iteration();
  res_.epochs_done = c_.epochs;
  return res_;
}

}  // namespace

TrainerOptions image_ebm_trainer_options(const ImageEbmConfig& c) {
  TrainerOptions to;
  to.algorithm = c.algo;
  to.ula.h = c.h;
  to.ula.sigma = c.sigma;
  to.ula.drift_clip = c.drift_clip;
  to.ula.weight_kernel = c.weight_kernel;
  to.moves_per_update = c.moves_per_update;
  to.moving_batch = c.moving_batch;
  to.moving_subsets = c.moving_subsets;
  to.gradient_batch = c.gradient_batch;
  to.gradient_walkers_moved = c.gradient_walkers_moved;
  to.resample_batch_ess = c.resample_batch_ess;
  to.rejuvenation_moves = effective_rejuvenation_moves(c);
  to.alpha = c.alpha;
  to.resample = false;  // switched on after --resample-after-epoch
  to.resample_rule.scheme = c.resample_scheme;
  to.resample_rule.cv2_max = c.resample_cv * c.resample_cv;  // std(w / mean w)^2 = CV^2 = N / ESS - 1
  to.resample_rule.ess_fraction = c.resample_cv > 0 ? 0.0 : c.resample_ess;
  to.eval_chunk = c.eval_chunk > 0 || c.device.is_cpu() ? c.eval_chunk : kDeviceEvalChunk;
  to.shard_block = c.shard_block;
  to.correction_groups = c.correction_groups;
  return to;
}

ImageEbmResult run_image_ebm(const ImageEbmConfig& c, const ImageEbmProblem& p) {
  ImageEbmRun run(c, p);
  return run.run();
}

}  // namespace jebm
