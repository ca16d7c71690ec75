// The image runs' checkpoint (DIR/checkpoint.safetensors, format "jebm-image-ebm-checkpoint-1"): the energy's
// parameters, the optimiser state, the walkers and the Trainer state (their format is samplers/population_io's),
// the held-out walkers (--holdout-walkers) and the loop's own position (burn-in or update); plus the metrics.csv truncation a resume needs. Tested by
// tests/test_image_ebm.cpp (resume bit-identical, from burn-in too) and tests/test_cifar10.cpp.
#pragma once
#include <cstdint>
#include <filesystem>
#include <string>

#include "experiments/image_ebm.hpp"
#include "models/optim.hpp"
#include "samplers/trainer.hpp"

namespace jebm {

// The "format" metadata of every image-run checkpoint (`jebm sample` recognises a run checkpoint by it).
inline constexpr const char* kImageEbmCheckpointFormat = "jebm-image-ebm-checkpoint-1";

// Where the loop is, besides the Trainer: what a checkpoint adds to the samplers' state.
struct ImageEbmLoopState {
  bool burned_in = false;
  int64_t burnin_done = 0;
  double elapsed_s = 0.0;  // wall time of earlier runs (for time_s only; not part of the exact state)
};

// Writes the checkpoint atomically (models/checkpoint.hpp). Refuses (jebm::Error) to write non-finite parameters,
// so a diverged state can never replace a good checkpoint.
// holdout: the held-out walkers (null without --holdout-walkers), saved under "holdout.".
void save_image_ebm_checkpoint(const std::string& path, const ImageEbmConfig& c, Module& energy,
                               const Optimizer& opt, const WalkerPopulation& pop, const WalkerPopulation* holdout,
                               const Trainer& tr,
                               const ImageEbmLoopState& ls, int64_t updates_per_epoch);
// Restores everything save_image_ebm_checkpoint wrote into a freshly built run of the same options; --algo,
// --seed, --walkers, --holdout-walkers and --correction-groups must match the checkpoint's (the message names the
// option and both values). holdout: as for save (the Trainer must have it attached already).
void load_image_ebm_checkpoint(const std::string& path, const ImageEbmConfig& c, Module& energy, Optimizer& opt,
                               WalkerPopulation& pop, WalkerPopulation* holdout, Trainer& tr, ImageEbmLoopState& ls);

}  // namespace jebm
