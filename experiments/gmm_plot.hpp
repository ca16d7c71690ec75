// The plot of a `jebm gmm` run (gmm.svg): the small mode's weight, the exact and estimated cross-entropies, and
// the Jarzynski estimates' gaps to the exact one. Tested by tests/test_gmm.cpp (the series a run's plot names).
#pragma once
#include <string>

#include "experiments/gmm_run.hpp"

namespace jebm {

// Writes DIR/gmm.svg from the run's outcomes (every logged record of each algorithm).
void write_gmm_plot(const std::string& dir, const GmmRun& run);

}  // namespace jebm
