// The summary `jebm mnist` and `jebm cifar10` print at the end of a run: what was run, the final estimates ('-'
// where they do not apply), the walkers' class weights next to the truth with one verdict line, the metrics, the
// timing and the files written, in lines of at most 100 columns. Tested by tests/test_summary.cpp.
#pragma once
#include <string>
#include <vector>

#include "experiments/image_ebm.hpp"

namespace jebm {

// files: what the run wrote into c.out (summary_text.hpp's files_written_since).
std::string image_ebm_summary(const ImageEbmConfig& c, const ImageEbmProblem& p, const ImageEbmResult& r,
                              const std::vector<std::string>& files);

}  // namespace jebm
