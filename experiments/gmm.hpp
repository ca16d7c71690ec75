// `jebm gmm` (DESIGN 3.1): the command line, run directory, CSV/SVG output and summary of the paper's
// Gaussian-mixture experiment (experiments/gmm.cpp). The training loop it drives is GmmTrainer
// (samplers/gmm_training.hpp), set up by samplers/gmm_setup.hpp; its CPU benchmark is experiments/bench/gmm.hpp.
// Tested by tests/test_gmm.cpp.
#pragma once
#include <string>
#include <vector>

#include "experiments/bench/gmm.hpp"
#include "samplers/gmm_training.hpp"

namespace jebm {

int run_gmm(const std::vector<std::string>& args);

}  // namespace jebm
