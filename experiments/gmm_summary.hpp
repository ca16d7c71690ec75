// What a `jebm gmm` run prints on stdout when it ends, in at most 100 columns whatever the number of modes (more
// than two move the weights to a table of their own). Tested by tests/test_gmm_command.cpp.
#pragma once
#include <ostream>

#include "experiments/gmm_run.hpp"

namespace jebm {

// The setup, one table row per algorithm, the Jarzynski run's other estimates, the verdict line (each algorithm's
// weight of the teacher's smallest mode next to the teacher's, with the difference) and the final means.
void print_gmm_summary(std::ostream& os, const GmmRun& run, int ranks);
// The last line: every file of the run directory (options, metrics, checkpoints, plot).
void print_gmm_wrote(std::ostream& os, const GmmRun& run);

}  // namespace jebm
