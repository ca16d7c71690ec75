// The official image code's [-1, 1] box: after a move, coordinates that left the box go back to where they were.
// It alters the moves after the fact, so the Jarzynski weights no longer follow their formula (offered with a
// warning, --box). CPU only. Tested by tests/test_image_ebm.cpp.
#pragma once
#include <cstdint>
#include <vector>

#include "samplers/walkers.hpp"

namespace jebm {

// Reverts, in the walkers idx (empty: all), every coordinate of x outside [-1, 1] to its x_prev value.
void box_revert(WalkerPopulation& pop, const std::vector<int64_t>& idx);

}  // namespace jebm
