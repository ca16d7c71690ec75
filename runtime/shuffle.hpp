// Random orders drawn from Philox (runtime/philox.hpp), so that an order is a pure function of (key, counter): a
// resumed run sees the same data batches and walker subsets. Two Fisher-Yates draws with different uses of the
// streams, each kept because runs and checkpoints depend on its exact output. Tested by tests/test_rng.cpp.
#pragma once
#include <cstdint>
#include <vector>

namespace jebm {

// A permutation of 0..n-1 (the data order of every training loop): for i = n-1 down to 1, swap i with
// j = floor(u * (i + 1)), u the first uniform of philox_uniform2(key, stream i, offset `counter`).
std::vector<int64_t> philox_permutation(int64_t n, uint64_t key, uint64_t counter);

// The first b entries, in draw order, of a partial Fisher-Yates shuffle of 0..n-1 (random subsets of walkers):
// for i = 0 to b-1, swap i with j = i + floor(u * (n - i)), u the first uniform of philox_uniform2(key, stream i,
// offset `counter`). The first b entries of the shuffle do not depend on b.
std::vector<int64_t> philox_shuffled_prefix(int64_t n, int64_t b, uint64_t key, uint64_t counter);

}  // namespace jebm
