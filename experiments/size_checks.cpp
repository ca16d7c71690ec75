// Size checks of the commands' option values (experiments/size_checks.hpp). Tested by tests/test_option_bounds.cpp.
#include "experiments/size_checks.hpp"

#include <string>

#include "runtime/checked_size.hpp"

namespace jebm {

namespace {
std::string opt(const char* name, int64_t v) { return std::string("--") + name + " " + std::to_string(v); }
}  // namespace

void check_gmm_sizes(const GmmConfig& c) {
  // Every walker, held-out ones included, and every data point is a float64 row of --dim values.
  const std::string walkers = opt("walkers", c.walkers) + " + " + opt("holdout-walkers", c.holdout_walkers);
  const int64_t rows = checked_add(c.walkers, c.holdout_walkers, walkers);
  check_tensor_bytes(rows, c.dim, 8, walkers + " walkers of " + opt("dim", c.dim));
  check_tensor_bytes(c.data, c.dim, 8, opt("samples", c.data) + " points of " + opt("dim", c.dim));
}

void check_image_ebm_sizes(const ImageEbmConfig& c, const Shape& image) {
  // Every walker, held-out ones included, is a float32 image.
  const std::string walkers = opt("walkers", c.walkers) + " + " + opt("holdout-walkers", c.holdout_walkers);
  const int64_t rows = checked_add(c.walkers, c.holdout_walkers, walkers);
  check_tensor_bytes(rows, shape_numel(image), 4, walkers + " walkers of " + shape_str(image) + " pixels");
}

void check_image_ebm_schedule(const ImageEbmConfig& c, int64_t updates) {
  // The ULA moves of the whole run count the noise stream's steps: they must fit the counter.
  const std::string moves = opt("moving-subsets", c.moving_subsets) + " x " +
                            opt("moves-per-update", c.moves_per_update) + " ULA moves per update";
  const int64_t per_update = checked_mul(c.moving_subsets, c.moves_per_update, moves);
  checked_mul(per_update, updates, moves + " x " + std::to_string(updates) + " updates (--epochs " +
                                       std::to_string(c.epochs) + ")");
}

}  // namespace jebm
