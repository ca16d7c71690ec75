// WalkerTrack: one walker population's bookkeeping between a Trainer's steps. The training walkers have one, the
// held-out walkers another, in memory (Trainer) and in the checkpoint (save_track / load_track in
// samplers/population_io.hpp). Tested by tests/test_trainer_fixture.cpp and tests/test_trainer_logz.cpp.
#pragma once
#include <cstdint>
#include <vector>

#include "runtime/tensor.hpp"

namespace jebm {

struct WalkerTrack {
  bool initialised = false;         // part 1 has evaluated every walker once
  bool params_changed = false;      // theta changed since u_cache was computed for the walkers not pending
  bool all_moved = false;           // every walker's last move is pending
  Tensor u_cache;                   // [N] float64: U_theta(X_i) at the walker's position (undefined before step 1)
  std::vector<int64_t> last_moved;  // the walkers whose last move is pending (empty with all_moved: all)
  uint64_t subset_counter = 0;      // Philox offset of the walkers' next random subset
};

}  // namespace jebm
