// The data order of every training loop: a Fisher-Yates permutation drawn from Philox, so that the order of
// epoch e is a pure function of (key, e) and a resumed run sees the same batches. Tested by
// tests/test_image_ebm.cpp (resume bit-identical) and tests/test_classifier_cmd.cpp.
#pragma once
#include <cstdint>
#include <vector>

namespace jebm {

// A permutation of 0..n-1: swap i with j = floor(u * (i + 1)), u the first uniform of
// philox_uniform2(key, stream i, offset `counter`), for i = n-1 down to 1.
std::vector<int64_t> philox_permutation(int64_t n, uint64_t key, uint64_t counter);

}  // namespace jebm
