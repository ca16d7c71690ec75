// The classifier runs' resume state (DIR/checkpoint.safetensors, format "jebm-classifier-checkpoint-1"): the
// model, the Adam state and the epochs done, written after each epoch; the Philox draws are keyed by (seed,
// epoch), so the epoch is the whole random position. Tested by tests/test_classifier_resume.cpp (a resumed run is
// bit-identical to an uninterrupted one; bad and missing checkpoints).
#pragma once
#include <cstdint>
#include <string>

#include "experiments/classifier_training.hpp"
#include "models/optim.hpp"

namespace jebm {

inline constexpr const char* kClassifierCheckpointFormat = "jebm-classifier-checkpoint-1";

// DIR/checkpoint.safetensors.
std::string classifier_checkpoint_path(const std::string& dir);

// Writes the checkpoint atomically; `train_count` (the training images, rejects included) is recorded so that a
// resume on other data is refused.
void save_classifier_checkpoint(const std::string& path, const ClassifierOptions& o, Module& model,
                                const Optimizer& opt, const ClassifierProgress& p, int64_t train_count);
// The epochs done of a checkpoint, read and validated without touching a model (jebm::UserError naming the file).
int64_t classifier_checkpoint_epochs(const std::string& path, const ClassifierOptions& o);
// Restores the model and the optimiser; the checkpoint's --seed, --epochs, --batch-size, --lr and image count must
// be the run's (the message names the file, the option and both values).
ClassifierProgress load_classifier_checkpoint(const std::string& path, const ClassifierOptions& o, Module& model,
                                              Optimizer& opt, int64_t train_count);

}  // namespace jebm
