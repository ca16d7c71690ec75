// Checked int64 arithmetic for the sizes, loop counts and schedules built from option values: a product or sum
// that leaves int64 is a jebm::Error naming the options it came from, never a wrapped count. Tested by
// tests/test_option_bounds.cpp (every integer option at 2^62 and 2^63-1) and tests/test_tensor_sizes.cpp.
#pragma once
#include <cstdint>
#include <string>

#include "runtime/user_error.hpp"

namespace jebm {

// a * b; `what` names the factors for the user ("--walkers 4611686018427387904 x --dim 4").
inline int64_t checked_mul(int64_t a, int64_t b, const std::string& what) {
  int64_t r = 0;
  JEBM_USER_CHECK(!__builtin_mul_overflow(a, b, &r), what << ": the product is beyond a 64-bit count; give smaller values");
  return r;
}

// a + b; `what` names the terms.
inline int64_t checked_add(int64_t a, int64_t b, const std::string& what) {
  int64_t r = 0;
  JEBM_USER_CHECK(!__builtin_add_overflow(a, b, &r), what << ": the sum is beyond a 64-bit count; give smaller values");
  return r;
}

// ceil(n / d) for n >= 0, d >= 1, without the n + d - 1 that overflows near INT64_MAX.
inline int64_t ceil_div(int64_t n, int64_t d) { return n / d + (n % d != 0); }

// rows x cols x bytes_per_value fits int64 (a tensor of that shape can be counted); `what` names the options.
inline void check_tensor_bytes(int64_t rows, int64_t cols, int64_t bytes_per_value, const std::string& what) {
  checked_mul(checked_mul(rows, cols, what), bytes_per_value, what + " (bytes)");
}

}  // namespace jebm
