// GmmRun: one `jebm gmm` run in its run directory: the teacher's samples, each algorithm's GmmTrainer in turn,
// the metrics CSVs, the checkpoints, --resume and Ctrl-C; the summary (gmm_summary.hpp) and the plot
// (gmm_plot.hpp) read its outcomes. Tested by tests/test_gmm.cpp (files, resume bit for bit, Ctrl-C, NaN guard).
#pragma once
#include <string>
#include <vector>

#include "experiments/gmm.hpp"
#include "experiments/run_dir_lock.hpp"
#include "runtime/comm/communicator.hpp"

namespace jebm {

// Exit codes of a diverged and of an interrupted run, as the image runs'.
constexpr int kGmmDivergedExit = 3, kGmmInterruptedExit = 130;

// One algorithm's run as the summary and the plot see it.
struct GmmOutcome {
  Algorithm algo = Algorithm::Jarzynski;
  std::vector<GmmRecord> records;  // every logged record, with the rows a resumed run kept from its CSV
  GmmRecord final_rec;             // at the final parameters
  double seconds = 0.0;            // wall time, the runs it resumed included
  std::vector<double> final_first_coords;  // each student mean's first coordinate at the end
};

// --resume of a run that has nothing left to do: every algorithm's checkpoint (made with these options) is at
// --iterations, its CSV ends with the final row and the plot is there.
bool gmm_run_is_finished(const GmmCommandLine& cl);

// Under `mpirun -np K` every rank builds one with its shard of the walkers and data (GmmTrainer); rank 0 alone
// writes the run directory, the CSVs and the progress line. Errors that every rank meets together are
// SharedErrors (printed once).
class GmmRun {
 public:
  // Checks what the ranks and the device allow, draws the teacher's samples, prepares the run directory and
  // writes options.txt.
  GmmRun(const GmmCommandLine& cl, Communicator& comm);
  GmmRun(const GmmRun&) = delete;
  GmmRun& operator=(const GmmRun&) = delete;
  // Trains every algorithm in turn: 0, or kGmmDivergedExit / kGmmInterruptedExit after the message on stderr.
  int run();

  const GmmCommandLine& command_line() const { return cl_; }
  const GmmParams& teacher() const { return teacher_; }
  double teacher_ce() const { return ce_teacher_; }  // the teacher's cross-entropy on its samples
  const std::vector<GmmOutcome>& outcomes() const { return outcomes_; }
  // The run directory's files of `algo`: metrics_<algo>.csv, checkpoint_<algo>.safetensors.
  std::string csv_path(Algorithm algo) const;
  std::string checkpoint_path(Algorithm algo) const;
  bool writes_checkpoints() const { return checkpoints_; }

 private:
  friend class GmmAlgorithmRun;  // one algorithm's loop (gmm_run.cpp)
  void check_ranks_and_device() const;
  void prepare_run_dir();
  void check_resume_files() const;

  const GmmCommandLine& cl_;
  Communicator& comm_;
  const bool root_;
  const bool checkpoints_;          // --out with --checkpoint-every > 0, closed-form path
  const std::string options_hash_;  // of gmm_run_identity: every checkpoint records it
  // Made after the checks of the ranks and the device.
  GmmParams teacher_;
  Tensor data_;
  double ce_teacher_ = 0.0;
  std::vector<GmmOutcome> outcomes_;
  RunDirLock run_lock_;  // rank 0 holds the run directory while the run lives
};

}  // namespace jebm
