// The checkpoint format of the samplers' own state: a WalkerPopulation, a WalkerTrack and a Trainer::State as named
// tensors plus string metadata, the pieces a safetensors checkpoint holds (models/checkpoint.hpp writes and reads
// the file). Tested by tests/test_image_ebm.cpp (exact resume), tests/test_trainer_fixture.cpp (checkpoints of an
// earlier release) and tests/test_cifar10.cpp.
#pragma once
#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "models/checkpoint.hpp"
#include "samplers/trainer.hpp"
#include "samplers/walkers.hpp"

namespace jebm {

using CheckpointTensors = std::vector<std::pair<std::string, Tensor>>;
using CheckpointMetadata = std::map<std::string, std::string>;

// Appends the population: tensors <prefix>{x, log_w, x_prev, partial, pending, log_z_offset} (in that order) and
// metadata <prefix>{seed, moves, resamplings}. The training walkers use "walkers.", held-out ones "holdout.".
void save_population(const WalkerPopulation& pop, CheckpointTensors& tensors, CheckpointMetadata& metadata,
                     const std::string& prefix = "walkers.");
// Restores a population saved by save_population into `pop`, whose tensors already have the run's shapes, dtypes
// and device: a tensor of another shape or dtype is an error naming the file and the tensor.
void load_population(const SafeTensors& st, WalkerPopulation& pop, const std::string& prefix = "walkers.");

// One walker track under `key` ("trainer." or "trainer.holdout_"): tensors <key>u_cache and <key>last_moved when
// present, metadata <key>{initialised, params_changed, all_moved, subset_counter, last_moved_count}. load_track
// reads it for `walkers` walkers (u_cache on the host).
void save_track(const WalkerTrack& track, const std::string& key, CheckpointTensors& tensors,
                CheckpointMetadata& metadata);
WalkerTrack load_track(const SafeTensors& st, const std::string& key, int64_t walkers);

// Appends the Trainer's state: metadata "iteration", the training walkers' track under "trainer.", with held-out
// walkers (holdout_walkers > 0) theirs under "trainer.holdout_", and trainer.log_z_correction (a Float64 [1]
// tensor, exact) when it is not zero.
void save_trainer_state(const Trainer::State& s, CheckpointTensors& tensors, CheckpointMetadata& metadata,
                        int64_t holdout_walkers = 0);
// The state saved by save_trainer_state for `walkers` walkers and `holdout_walkers` held-out ones (Trainer::restore
// takes it). Checkpoints from before the held-out walkers and the correction existed load with those fields off.
Trainer::State load_trainer_state(const SafeTensors& st, int64_t walkers, int64_t holdout_walkers = 0);

// Metadata accessors: a missing or malformed entry is a UserError naming the file, the key and the value.
const std::string& checkpoint_meta(const SafeTensors& st, const std::string& key);
uint64_t checkpoint_meta_u64(const SafeTensors& st, const std::string& key);
double checkpoint_meta_f64(const SafeTensors& st, const std::string& key);

}  // namespace jebm
