// `jebm gmm`: the Gaussian-mixture experiment of Carbone et al. (NeurIPS 2023). Its rooms: the options
// (gmm_options.cpp), the run with its run directory, checkpoints and Ctrl-C (gmm_run.*), the summary table
// (gmm_summary.*), the SVG plot (gmm_plot.*) and the command that joins them (gmm.cpp). The training loop is
// GmmTrainer (samplers/gmm_training.hpp), set up by samplers/gmm_setup.hpp; its CPU benchmark is
// experiments/bench/gmm.hpp.
// Tested by tests/test_gmm.cpp; parse_gmm_args is also the fuzz target gmm_config (tests/fuzz).
#pragma once
#include <string>
#include <utility>
#include <vector>

#include "experiments/bench/gmm.hpp"
#include "samplers/gmm_training.hpp"

namespace jebm {

// The command line of `jebm gmm`, parsed and validated.
struct GmmCommandLine {
  GmmConfig config;
  std::string algo_s = "all";
  std::vector<Algorithm> algos;
  std::string out;
  bool force = false, no_progress = false;
  int threads = 0;  // 0 = OpenMP's default
  int64_t checkpoint_every = 1000;  // iterations between checkpoints (and one after the last); 0 = none
  std::string resume;               // --resume DIR (then out == resume)
  int64_t interrupt_at = -1;        // testing: raise SIGINT after this iteration (-1: never)
  std::vector<std::pair<std::string, std::string>> saved;  // options.txt, but for resolved.threads/ranks
  std::vector<std::string> notes;  // for the user's stderr: the old option names a source used
};

// Parses args (the command line, then --config, whose INI errors name the file) and checks every option: each
// numeric option against its documented range, the teacher's lists (finite means, masses > 0). Writes nothing and
// sets no global state (--threads is applied by run_gmm). Returns false when --help was printed.
bool parse_gmm_args(const std::vector<std::string>& args, GmmCommandLine& cl);

// The options that define the run (what a checkpoint must have been made with), as text: a checkpoint records its
// hash, and --resume refuses a checkpoint whose hash differs (a stale one). Written with the names the options had
// before --samples and --noise (data, sigma), so that the checkpoints of runs made then still resume.
std::string gmm_run_identity(const GmmCommandLine& cl);

int run_gmm(const std::vector<std::string>& args);

}  // namespace jebm
