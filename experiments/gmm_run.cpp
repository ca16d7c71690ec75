// GmmRun (gmm_run.hpp): the run directory, and each algorithm's loop of GmmTrainer updates with its metrics CSV,
// checkpoints, --resume, Ctrl-C and NaN guard (GmmAlgorithmRun). Tested by tests/test_gmm.cpp, tests/test_gmm_ranks.cpp
// and the CTest runs jebm_gmm_np1/np3 (the same metrics on 1 and 3 ranks, a run stopped on 3 resumed on 1).
#include "experiments/gmm_run.hpp"

#include <omp.h>

#include <chrono>
#include <cmath>
#include <csignal>
#include <filesystem>
#include <iomanip>
#include <iostream>
#include <memory>
#include <sstream>

#include "experiments/output.hpp"
#include "experiments/progress.hpp"
#include "experiments/sigint.hpp"
#include "experiments/version.hpp"
#include "models/checkpoint.hpp"
#include "runtime/cuda_api.hpp"
#include "runtime/user_error.hpp"

namespace jebm {

namespace fs = std::filesystem;

namespace {

using Clock = std::chrono::steady_clock;

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

// The metrics CSV's columns. jarzynski_ce is the corrected estimate (docs/method.md); holdout_* are NaN
// without held-out walkers.
std::vector<std::string> csv_columns(int64_t modes) {
  std::vector<std::string> cols = {"iteration", "exact_ce", "jarzynski_ce", "jarzynski_ce_raw", "log_z_correction",
                                   "jarzynski_ce_var", "log_z_correction_var",
                                   "holdout_ce", "holdout_ce_se", "kl_exact", "log_z_exact", "log_z_estimate",
                                   "ess", "holdout_min_ess", "resampled", "resamplings", "holdout_resamplings"};
  for (int64_t j = 0; j < modes; ++j) cols.push_back("weight_" + std::to_string(j));
  for (int64_t j = 0; j < modes; ++j) cols.push_back("mean_error_" + std::to_string(j));
  cols.push_back("time_s");
  return cols;
}

// The CSV row of a record (csv_columns' order but time_s).
std::vector<double> csv_row(const GmmRecord& r, double ce_teacher) {
  std::vector<double> row = {static_cast<double>(r.iteration), r.exact_ce, r.jarzynski_ce, r.jarzynski_ce_raw,
                             r.log_z_correction, r.jarzynski_ce_var, r.log_z_correction_var, r.holdout_ce,
                             r.holdout_se, r.exact_ce - ce_teacher, r.log_z_exact, r.log_z_estimate, r.ess,
                             r.holdout_ess, r.resampled ? 1.0 : 0.0, static_cast<double>(r.resamplings),
                             static_cast<double>(r.holdout_resamplings)};
  row.insert(row.end(), r.weights.begin(), r.weights.end());
  row.insert(row.end(), r.mean_errors.begin(), r.mean_errors.end());
  return row;
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
    const auto first = row.begin() + static_cast<std::ptrdiff_t>(w0);
    r.weights.assign(first, first + modes);
    out.push_back(r);
  }
  return out;
}

}  // namespace

// One algorithm of the run: its trainer (resumed from its checkpoint when there is one), CSV and progress line.
class GmmAlgorithmRun {
 public:
  GmmAlgorithmRun(GmmRun& run, Algorithm algo);
  // The updates left, then the final record: 0, or the exit code of a diverged or interrupted run.
  int run();

 private:
  void resume();
  void open_csv();
  void save();
  void emit(const GmmRecord& r);
  bool diverged(const GmmRecord& r);
  bool interrupted(int64_t k);
  double elapsed() const { return std::chrono::duration<double>(Clock::now() - t0_).count(); }

  GmmRun& run_;
  const GmmConfig& c_;
  const std::string ckpt_;
  GmmOutcome o_;
  GmmTrainer trainer_;
  int64_t k0_ = 0, resampled_since_ = 0;  // resampled_since_: resamplings since the last logged row
  double seconds_before_ = 0.0;           // wall time of the runs it resumes
  CsvWriter csv_;
  Clock::time_point t0_;
  std::unique_ptr<Progress> progress_;
};

GmmAlgorithmRun::GmmAlgorithmRun(GmmRun& run, Algorithm algo)
    : run_(run), c_(run.cl_.config), ckpt_(run.checkpoint_path(algo)),
      trainer_(c_, algo, run.data_, run.teacher_, &run.comm_) {
  o_.algo = algo;
  if (!run_.cl_.resume.empty() && fs::exists(ckpt_)) resume();
  open_csv();
  t0_ = Clock::now() - std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(seconds_before_));
  progress_ = std::make_unique<Progress>(std::string("gmm ") + algorithm_name(algo), c_.iterations,
                                         !run_.cl_.no_progress && run_.root_);
}

// --resume: continue from this algorithm's checkpoint (every rank reads it and keeps its shard); an algorithm
// without one starts afresh.
void GmmAlgorithmRun::resume() {
  const SafeTensors st = reading_user_file([&] {
    SafeTensors loaded = load_safetensors(ckpt_);
    for (const char* p : {"gmm.theta.a", "gmm.theta.z"}) require_finite(ckpt_, p, get(loaded, p));
    return loaded;
  });
  const std::string& out = run_.cl_.out;
  JEBM_USER_CHECK(checkpoint_meta(st, "gmm.options_hash") == run_.options_hash_,
             ckpt_ << ": made by a run with other options than " << out << "/options.txt (a stale checkpoint?)");
  trainer_.load_state(st);
  k0_ = trainer_.iteration();
  JEBM_USER_CHECK(k0_ <= c_.iterations, "--resume " << out << ": " << algorithm_name(o_.algo)
                                               << "'s checkpoint is at iteration " << k0_ << ", beyond --iterations "
                                               << c_.iterations << "; give --iterations " << k0_ << " or more");
  seconds_before_ = checkpoint_meta_f64(st, "gmm.seconds");
  resampled_since_ = static_cast<int64_t>(checkpoint_meta_u64(st, "gmm.resampled_since"));
}

// Rank 0's CSV. On --resume, the rows the checkpoint does not cover are dropped (and made again); those kept are
// read back for the plot.
void GmmAlgorithmRun::open_csv() {
  if (run_.cl_.out.empty() || !run_.root_) return;
  const fs::path path = run_.csv_path(o_.algo);
  const bool resume = !run_.cl_.resume.empty();
  if (resume) {
    resume_csv(path, csv_columns(c_.student_modes), k0_, c_.log_every, ckpt_,
               "jebm gmm --out " + run_.cl_.out + " --force with its options");
    if (fs::exists(path)) o_.records = records_from_csv(read_csv(path), c_.student_modes);
  }
  csv_ = CsvWriter(path, csv_columns(c_.student_modes), resume);
}

// A checkpoint of the state after the updates so far: gathered on every rank, written by rank 0 (temporary +
// rename).
void GmmAlgorithmRun::save() {
  CheckpointTensors tensors;
  CheckpointMetadata meta;
  trainer_.save_state(tensors, meta);
  meta["gmm.options_hash"] = run_.options_hash_;
  meta["gmm.seconds"] = std::to_string(elapsed());
  meta["gmm.resampled_since"] = std::to_string(resampled_since_);
  for (const auto& [k, v] : run_provenance(run_.comm_.size())) meta[k] = v;  // what made it (jebm.version, ...)
  run_on_rank0(run_.comm_, [&] { save_safetensors(ckpt_, tensors, meta); });
}

void GmmAlgorithmRun::emit(const GmmRecord& r) {
  o_.records.push_back(r);
  if (!csv_.is_open()) return;
  std::vector<double> row = csv_row(r, run_.ce_teacher_);
  row.push_back(elapsed());
  csv_.row(row);
}

// The NaN guard: a diverged record is logged (the CSV keeps it and every row before it), then the run stops.
bool GmmAlgorithmRun::diverged(const GmmRecord& r) {
  const std::string bad = non_finite_field(r);
  if (bad.empty()) return false;
  emit(r);
  progress_->finish();
  if (run_.root_)
    std::cerr << "jebm gmm: " << algorithm_name(o_.algo) << " diverged at iteration " << r.iteration << ": " << bad
              << " (non-finite); try a smaller --lr-means, --lr-z or --h. Stopped; no plot or summary written\n";
  return true;
}

// Ctrl-C (or --interrupt-at): every rank stops after the same iteration; the checkpoint makes the run resumable
// from there.
bool GmmAlgorithmRun::interrupted(int64_t k) {
  if (run_.cl_.interrupt_at >= 0 && k == run_.cl_.interrupt_at) std::raise(SIGINT);
  if (!sigint_on_any_rank(run_.comm_)) return false;
  progress_->finish();
  if (run_.checkpoints_) save();
  if (run_.root_)
    std::cerr << "jebm gmm: " << algorithm_name(o_.algo) << " interrupted after iteration " << k + 1 << "; "
              << (run_.checkpoints_ ? "checkpoint saved to " + ckpt_ + "; continue with --resume " + run_.cl_.out
                                    : std::string("nothing saved (no --out, or --checkpoint-every 0)"))
              << "\n";
  return true;
}

int GmmAlgorithmRun::run() {
  for (int64_t k = k0_; k < c_.iterations; ++k) {
    GmmRecord r = trainer_.iterate();
    if (diverged(r)) return kGmmDivergedExit;
    resampled_since_ += r.resampled;
    if (k % c_.log_every == 0) {
      r.resampled = resampled_since_ > 0;  // a logged row says whether any resampling happened since the last
      resampled_since_ = 0;
      emit(r);
    }
    std::ostringstream extra;
    extra << "w0 " << std::setprecision(3) << r.weights[0];
    progress_->update(k + 1, extra.str());
    if (run_.checkpoints_ && (k + 1) % run_.cl_.checkpoint_every == 0 && k + 1 < c_.iterations) save();
    if (interrupted(k)) return kGmmInterruptedExit;
  }
  // After the last update, before the final record completes the pending move: a larger --iterations on
  // --resume continues from here.
  if (run_.checkpoints_) save();
  o_.final_rec = trainer_.final_record();
  if (diverged(o_.final_rec)) return kGmmDivergedExit;
  for (int64_t j = 0; j < trainer_.params().k; ++j) o_.final_first_coords.push_back(trainer_.params().mean(j)[0]);
  emit(o_.final_rec);
  progress_->finish();
  o_.seconds = elapsed();
  run_.outcomes_.push_back(std::move(o_));
  return 0;
}

GmmRun::GmmRun(const GmmCommandLine& cl, Communicator& comm)
    : cl_(cl), comm_(comm), root_(comm.rank() == 0),
      checkpoints_(!cl.out.empty() && cl.checkpoint_every > 0 && !cl.config.autograd),
      options_hash_(std::to_string(comm_hash(gmm_run_identity(cl)))) {
  check_ranks_and_device();
  teacher_ = gmm_teacher(cl.config);
  data_ = gmm_teacher_data(cl.config, teacher_);
  ce_teacher_ = gmm_cross_entropy(teacher_, data_.data<double>(), cl.config.data);
  if (!cl.out.empty()) prepare_run_dir();
}

void GmmRun::check_ranks_and_device() const {
  const GmmConfig& c = cl_.config;
  if (comm_.size() > 1) {
    try {
      JEBM_USER_CHECK(c.device.is_cpu() && !c.autograd, (c.autograd ? "--autograd" : "--device cuda")
                                                       << " runs on one rank only; under mpirun -np "
                                                       << comm_.size() << " use the closed-form CPU path");
      chunk_shard(c.walkers, kGmmWalkerChunk, comm_.rank(), comm_.size(), "--walkers");
      chunk_shard(c.data, kGmmRowChunk, comm_.rank(), comm_.size(), "--samples");
    } catch (const Error& e) {
      throw SharedError(e.what());
    }
  }
  if (!cl_.resume.empty() && c.autograd)
    throw SharedError("--resume " + cl_.resume + ": the --autograd path writes no checkpoints");
  if (c.device.is_cuda()) cuda_api::require("jebm gmm --device cuda");  // a clear error without a CUDA build or device
}

void GmmRun::prepare_run_dir() {
  run_on_rank0(comm_, [&] {
    run_lock_ = jebm::prepare_run_dir(cl_.out, cl_.force, !cl_.resume.empty());
    if (!cl_.resume.empty()) check_resume_files();
    std::vector<std::pair<std::string, std::string>> kv = cl_.saved;
    kv.emplace_back("resolved.threads", std::to_string(omp_get_max_threads()));
    kv.emplace_back("resolved.ranks", std::to_string(comm_.size()));
    write_options(cl_.out, kv);
  });
}

// --resume: every algorithm's checkpoint and metrics CSV are checked before options.txt is rewritten, so a refused
// resume leaves every file of the run as it was (GmmAlgorithmRun checks them again when it resumes).
void GmmRun::check_resume_files() const {
  for (Algorithm a : cl_.algos) {
    const std::string ckpt = checkpoint_path(a);
    if (!fs::exists(ckpt)) continue;  // this algorithm starts afresh
    const SafeTensors st = reading_user_file([&] { return load_safetensors(ckpt); });
    JEBM_USER_CHECK(checkpoint_meta(st, "gmm.options_hash") == options_hash_,
                    ckpt << ": made by a run with other options than " << cl_.out << "/options.txt (a stale checkpoint?)");
    check_resume_csv(csv_path(a), csv_columns(cl_.config.student_modes),
                     static_cast<int64_t>(checkpoint_meta_u64(st, "gmm.iteration")), cl_.config.log_every, ckpt,
                     "jebm gmm --out " + cl_.out + " --force with its options");
  }
}

std::string GmmRun::csv_path(Algorithm algo) const {
  return (fs::path(cl_.out) / ("metrics_" + std::string(algorithm_name(algo)) + ".csv")).string();
}

std::string GmmRun::checkpoint_path(Algorithm algo) const {
  return (fs::path(cl_.out) / ("checkpoint_" + std::string(algorithm_name(algo)) + ".safetensors")).string();
}

bool gmm_run_is_finished(const GmmCommandLine& cl) {
  if (cl.resume.empty() || !fs::exists(fs::path(cl.out) / "gmm.svg")) return false;
  const std::string hash = std::to_string(comm_hash(gmm_run_identity(cl)));
  const auto iterations = static_cast<double>(cl.config.iterations);
  for (Algorithm a : cl.algos) {
    const std::string name = algorithm_name(a);
    const fs::path ckpt = fs::path(cl.out) / ("checkpoint_" + name + ".safetensors");
    const fs::path csv = fs::path(cl.out) / ("metrics_" + name + ".csv");
    if (!fs::exists(ckpt) || !fs::exists(csv)) return false;
    const SafeTensors st = load_safetensors(ckpt.string());
    if (checkpoint_meta(st, "gmm.options_hash") != hash ||
        checkpoint_meta(st, "gmm.iteration") != std::to_string(cl.config.iterations))
      return false;
    const CsvTable t = read_csv(csv);
    if (t.rows.empty() || t.rows.back()[0] != iterations) return false;
  }
  return true;
}

int GmmRun::run() {
  SigintGuard sigint;
  for (Algorithm a : cl_.algos) {
    GmmAlgorithmRun algo(*this, a);
    if (const int rc = algo.run(); rc != 0) return rc;
  }
  return 0;
}

}  // namespace jebm
