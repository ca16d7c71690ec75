// philox_permutation (see shuffle.hpp). Tested by tests/test_image_ebm.cpp and tests/test_classifier_cmd.cpp.
#include "experiments/shuffle.hpp"

#include <algorithm>
#include <numeric>

#include "runtime/philox.hpp"

namespace jebm {

std::vector<int64_t> philox_permutation(int64_t n, uint64_t key, uint64_t counter) {
  std::vector<int64_t> p(static_cast<size_t>(n));
  std::iota(p.begin(), p.end(), int64_t{0});
  for (int64_t i = n - 1; i > 0; --i) {
    double u0, u1;
    philox_uniform2(key, static_cast<uint64_t>(i), counter, &u0, &u1);
    const int64_t j = std::min(i, static_cast<int64_t>(u0 * static_cast<double>(i + 1)));  // u0 < 1, but be safe
    std::swap(p[static_cast<size_t>(i)], p[static_cast<size_t>(j)]);
  }
  return p;
}

}  // namespace jebm
