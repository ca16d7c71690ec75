// Sizes in the runtime (runtime/tensor.cpp, runtime/allocator.cpp): shape products and byte counts that
// overflow int64, negative dimensions, and allocations larger than the machine are errors naming the shape,
// never a wrapped size, a segfault or a bare std::bad_alloc.
#include "tests/helpers.hpp"

#include <cstdint>
#include <limits>
#include <string>

#include "runtime/tensor.hpp"

using namespace jebm;
using jebm::test::expect_error;

namespace {
constexpr int64_t k2p62 = int64_t{1} << 62;
constexpr int64_t kMax = std::numeric_limits<int64_t>::max();
}  // namespace

BOOST_AUTO_TEST_CASE(shape_numel_refuses_overflow_and_negative_dimensions) {
  // 2^62 walkers x 4 coordinates: today's `gmm --walkers 2^62 --dim 4`, whose product wrapped to 0.
  expect_error([] { shape_numel({k2p62, 4}); }, {"[4611686018427387904, 4]", "64-bit"});
  expect_error([] { shape_numel({kMax, kMax}); }, {"64-bit"});
  expect_error([] { shape_numel({3, -1}); }, {"[3, -1]", "negative"});
  // A zero anywhere makes an empty tensor, whatever the other dimensions, and a zero never hides a negative one.
  BOOST_TEST(shape_numel({kMax, 2, 0}) == 0);
  expect_error([] { shape_numel({0, -5}); }, {"negative"});
  BOOST_TEST(shape_numel({k2p62, 1}) == k2p62);
  BOOST_TEST(shape_numel({}) == 1);
}

BOOST_AUTO_TEST_CASE(byte_counts_are_checked_per_dtype) {
  // 2^62 elements fit int64, their 8-byte size does not.
  BOOST_TEST(shape_nbytes({k2p62 / 8, 2}, DType::Float32) == k2p62);
  expect_error([] { shape_nbytes({k2p62 / 2, 2}, DType::Float64); }, {"float64", "[2305843009213693952, 2]", "bytes"});
}

BOOST_AUTO_TEST_CASE(empty_names_the_shape_when_the_size_overflows) {
  expect_error([] { Tensor::empty({k2p62, 4}); }, {"[4611686018427387904, 4]"});
  expect_error([] { Tensor::empty({k2p62 / 2, 2}, DType::Float64); }, {"float64", "bytes"});
  expect_error([] { Tensor::zeros({-3, 2}); }, {"[-3, 2]", "negative"});
  expect_error([] { Tensor::arange(-1); }, {"arange", "-1"});
}

BOOST_AUTO_TEST_CASE(an_allocation_larger_than_memory_is_a_clear_error) {
  // 2^60 float32s = 4 EiB: representable, but no machine has it. The error says how many bytes for which tensor
  // (not a bare std::bad_alloc in release or an abort under AddressSanitizer).
  const Shape huge = {int64_t{1} << 40, int64_t{1} << 20};
  try {
    Tensor::empty(huge, DType::Float32);
    BOOST_ERROR("a 4 EiB tensor was allocated");
  } catch (const Error& e) {
    const std::string msg = e.what();
    BOOST_TEST_MESSAGE(msg);
    BOOST_TEST(msg.find("[1099511627776, 1048576]") != std::string::npos);
    BOOST_TEST(msg.find("float32") != std::string::npos);
    BOOST_TEST(msg.find("4611686018427387904 bytes") != std::string::npos);
  } catch (const std::bad_alloc&) {
    BOOST_ERROR("bare std::bad_alloc, without the shape");
  }
  // The failed allocation leaves the runtime usable.
  BOOST_TEST(Tensor::ones({3}).to_vector() == std::vector<double>(3, 1.0));
}

BOOST_AUTO_TEST_CASE(reshape_refuses_overflowing_and_negative_targets) {
  const Tensor t = Tensor::zeros({4, 6});
  expect_error([&] { t.reshape({kMax, kMax, -1}); }, {"reshape"});
  expect_error([&] { t.reshape({k2p62, 4}); }, {"reshape"});
  expect_error([&] { t.reshape({-2, -12}); }, {"negative"});
  BOOST_TEST(t.reshape({3, -1}).shape() == Shape({3, 8}));
}
