// philox_permutation and philox_shuffled_prefix (see shuffle.hpp). Tested by tests/test_rng.cpp.
#include "runtime/shuffle.hpp"

#include <algorithm>
#include <numeric>

#include "runtime/check.hpp"
#include "runtime/philox.hpp"

namespace jebm {

std::vector<int64_t> philox_permutation(int64_t n, uint64_t key, uint64_t counter) {
  JEBM_CHECK(n >= 0, "philox_permutation: n = " << n);
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

std::vector<int64_t> philox_shuffled_prefix(int64_t n, int64_t b, uint64_t key, uint64_t counter) {
  JEBM_CHECK(b >= 0 && b <= n, "philox_shuffled_prefix: " << b << " of " << n << " items");
  std::vector<int64_t> perm(static_cast<size_t>(n));
  std::iota(perm.begin(), perm.end(), int64_t{0});
  for (int64_t i = 0; i < b; ++i) {
    double u0, u1;
    philox_uniform2(key, static_cast<uint64_t>(i), counter, &u0, &u1);
    const int64_t j = std::min(n - 1, i + static_cast<int64_t>(u0 * static_cast<double>(n - i)));
    std::swap(perm[static_cast<size_t>(i)], perm[static_cast<size_t>(j)]);
  }
  perm.resize(static_cast<size_t>(b));
  return perm;
}

}  // namespace jebm
