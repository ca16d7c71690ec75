// The summary a `jebm gmm` run prints on stdout when it ends: the setup, one table row per algorithm, the
// Jarzynski estimates, the final means. Tested by tests/test_gmm.cpp.
#pragma once
#include <ostream>

#include "experiments/gmm_run.hpp"

namespace jebm {

void print_gmm_summary(std::ostream& os, const GmmRun& run, int ranks);

}  // namespace jebm
