// The products and sums of option values that size memory, loops and schedules, checked where each command
// validates its options: a value past them is an error naming the options, never a wrapped count.
// Tested by tests/test_option_bounds.cpp.
#pragma once
#include "experiments/image_ebm.hpp"
#include "samplers/gmm_setup.hpp"

namespace jebm {

void check_gmm_sizes(const GmmConfig& c);
// `image`: one data image's shape [C, H, W].
void check_image_ebm_sizes(const ImageEbmConfig& c, const Shape& image);
// The run's `updates` (epochs x updates per epoch) times the ULA moves of each.
void check_image_ebm_schedule(const ImageEbmConfig& c, int64_t updates);

}  // namespace jebm
