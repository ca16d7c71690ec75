// `jebm gmm` (docs/experiments.md): the command line, run directory, CSV/SVG output and summary of the paper's
// Gaussian-mixture experiment (experiments/gmm.cpp). The training loop it drives is GmmTrainer
// (samplers/gmm_training.hpp), set up by samplers/gmm_setup.hpp; its CPU benchmark is experiments/bench/gmm.hpp.
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
};

// Parses args (the command line, then --config, whose INI errors name the file) and checks every option: each
// numeric option against its documented range, the teacher's lists (finite means, masses > 0). Writes nothing and
// sets no global state (--threads is applied by run_gmm). Returns false when --help was printed.
bool parse_gmm_args(const std::vector<std::string>& args, GmmCommandLine& cl);

int run_gmm(const std::vector<std::string>& args);

}  // namespace jebm
