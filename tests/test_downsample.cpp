// Tests for experiments/downsample.{hpp,cpp}: block means of a tiny hand-made image (two channels, two images)
// against values computed by hand, factor 1 equal to images_to_tensor bit for bit, and bad sizes and factors named
// in the errors.
#include <cstdint>
#include <cstring>
#include <random>
#include <vector>

#include "experiments/datasets.hpp"
#include "experiments/downsample.hpp"
#include "tests/helpers.hpp"

using jebm::test::expect_error;

BOOST_AUTO_TEST_CASE(block_means_match_hand_computed_values) {
  // One image [2, 4, 4]; the second channel is 255 minus the first. A second image: all 255.
  const std::vector<uint8_t> plane = {0, 255, 10, 20,    //
                                      255, 0, 30, 40,    //
                                      1, 2, 100, 101,    //
                                      3, 5, 102, 103};
  std::vector<uint8_t> px = plane;
  for (uint8_t v : plane) px.push_back(static_cast<uint8_t>(255 - v));
  px.insert(px.end(), 32, 255);
  // The 2x2 block means, by hand: (0+255+255+0)/4, (10+20+30+40)/4, (1+2+3+5)/4, (100+101+102+103)/4, then the
  // complements for the second channel, then 255 everywhere.
  const std::vector<double> means = {127.5, 25.0, 2.75, 101.5, 127.5, 230.0, 252.25, 153.5,
                                     255, 255, 255, 255, 255, 255, 255, 255};
  std::vector<double> want;
  for (double m : means) want.push_back(m / 127.5 - 1.0);
  BOOST_TEST(want.back() == 1.0);
  const jebm::Tensor t64 = jebm::downsampled_images_to_tensor(px, 2, 2, 4, 4, 2, jebm::DType::Float64);
  BOOST_TEST((t64.shape() == jebm::Shape{2, 2, 2, 2}));
  BOOST_TEST(t64.to_vector() == want, boost::test_tools::per_element());  // exact: same arithmetic in double
  const jebm::Tensor t32 = jebm::downsampled_images_to_tensor(px, 2, 2, 4, 4, 2);
  BOOST_TEST((t32.dtype() == jebm::DType::Float32));
  BOOST_TEST(jebm::test::all_close(t32.to_vector(), want, 1e-7, 0.0, "float32 block means"));
}

BOOST_AUTO_TEST_CASE(factor_one_is_images_to_tensor) {
  std::mt19937_64 rng(5);
  std::vector<uint8_t> px(3 * 28 * 28);
  for (uint8_t& p : px) p = static_cast<uint8_t>(rng() & 255u);
  for (jebm::DType dt : {jebm::DType::Float32, jebm::DType::Float64}) {
    const jebm::Tensor a = jebm::downsampled_images_to_tensor(px, 3, 1, 28, 28, 1, dt);
    const jebm::Tensor b = jebm::images_to_tensor(px, 3, 1, 28, 28, dt);
    BOOST_REQUIRE(a.shape() == b.shape());
    BOOST_TEST(std::memcmp(a.raw_data(), b.raw_data(), a.nbytes()) == 0, jebm::dtype_name(dt));
  }
  // 28x28 -> 14x14, the --downsample 2 of jebm mnist.
  BOOST_TEST((jebm::downsampled_images_to_tensor(px, 3, 1, 28, 28, 2).shape() == jebm::Shape{3, 1, 14, 14}));
}

BOOST_AUTO_TEST_CASE(bad_sizes_and_factors_are_named) {
  const std::vector<uint8_t> px(2 * 5 * 4);
  expect_error([&] { jebm::downsampled_images_to_tensor(px, 2, 1, 5, 4, 2); }, {"[2, 1, 5, 4]", "2x2 blocks"});
  expect_error([&] { jebm::downsampled_images_to_tensor(px, 3, 1, 5, 4, 1); }, {"40 pixels", "(60)"});
  jebm::check_downsample_factor(1, "--downsample");
  jebm::check_downsample_factor(2, "--downsample");
  expect_error([] { jebm::check_downsample_factor(3, "--downsample"); }, {"--downsample 3", "expected 1", "or 2"});
  expect_error([] { jebm::check_downsample_factor(0, "--downsample"); }, {"--downsample 0"});
}
