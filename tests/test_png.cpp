// Tests for experiments/png: grids are read back with libpng (via read_png) and checked for size, tile
// placement, padding and the [-1, 1] -> 0..255 mapping; bad shapes and sizes are errors naming them.
#include <cmath>
#include <limits>

#include "experiments/png.hpp"
#include "tests/helpers.hpp"

using namespace jebm;
using jebm::test::TempDir;
namespace fs = std::filesystem;

using jebm::test::expect_error;

namespace {

int px(const PngImage& im, int64_t x, int64_t y, int64_t c = 0) {
  return im.pixels[static_cast<size_t>((y * im.width + x) * im.channels + c)];
}

}  // namespace

BOOST_AUTO_TEST_CASE(write_png_round_trip_gray_and_rgb) {
  TempDir dir;
  const std::string gp = (dir.path / "g.png").string();
  std::vector<uint8_t> gray(5 * 3);
  for (size_t i = 0; i < gray.size(); ++i) gray[i] = static_cast<uint8_t>(i * 17);
  write_png(gp, gray, 5, 3, 1);
  BOOST_TEST(!fs::exists(gp + ".tmp"));
  const PngImage g = read_png(gp);
  BOOST_TEST(g.width == 5);
  BOOST_TEST(g.height == 3);
  BOOST_TEST(g.channels == 1);
  BOOST_TEST(g.pixels == gray, boost::test_tools::per_element());

  const std::string cp = (dir.path / "c.png").string();
  std::vector<uint8_t> rgb(2 * 2 * 3);
  for (size_t i = 0; i < rgb.size(); ++i) rgb[i] = static_cast<uint8_t>(255 - i * 20);
  write_png(cp, rgb, 2, 2, 3);
  write_png(cp, rgb, 2, 2, 3);  // overwriting is fine
  const PngImage c = read_png(cp);
  BOOST_TEST(c.channels == 3);
  BOOST_TEST(c.pixels == rgb, boost::test_tools::per_element());

  expect_error([&] { write_png(gp, gray, 4, 3, 1); }, {gp, "15 bytes for 4x3x1 = 12"});
  expect_error([&] { write_png(gp, gray, 5, 3, 5); }, {gp, "channels 5"});
  const std::string nowhere = (dir.path / "missing" / "x.png").string();
  expect_error([&] { write_png(nowhere, gray, 5, 3, 1); }, {nowhere});
  expect_error([&] { read_png((dir.path / "nope.png").string()); }, {"nope.png"});
}

BOOST_AUTO_TEST_CASE(gray_grid_layout_padding_and_value_mapping) {
  TempDir dir;
  const std::string path = (dir.path / "grid.png").string();
  // 5 images 4x3 (H x W), image i filled with a distinct value; 2 columns, padding 1.
  const int64_t n = 5, h = 4, w = 3;
  const std::vector<double> fill = {-1.0, 1.0, 0.0, 2.0 /* clamps to 1 */, -0.5};
  std::vector<double> v;
  for (int64_t i = 0; i < n; ++i) v.insert(v.end(), static_cast<size_t>(h * w), fill[static_cast<size_t>(i)]);
  write_image_grid(path, Tensor::from_vector(v, {n, 1, h, w}, DType::Float32), 2, 1);
  BOOST_TEST(!fs::exists(path + ".tmp"));
  const PngImage im = read_png(path);
  BOOST_TEST(im.channels == 1);
  BOOST_TEST(im.width == 2 * (w + 1) + 1);
  BOOST_TEST(im.height == 3 * (h + 1) + 1);
  const int want[] = {0, 255, 128, 255, 64};  // round((v + 1) * 127.5)
  for (int64_t i = 0; i < n; ++i) {
    const int64_t x0 = 1 + (i % 2) * (w + 1), y0 = 1 + (i / 2) * (h + 1);
    BOOST_TEST(px(im, x0, y0) == want[i]);
    BOOST_TEST(px(im, x0 + w - 1, y0 + h - 1) == want[i]);
  }
  // Padding rows/columns and the unused sixth tile stay black.
  BOOST_TEST(px(im, 0, 0) == 0);
  BOOST_TEST(px(im, 1 + w, 2) == 0);
  BOOST_TEST(px(im, 1 + (w + 1) + 1, 1 + 2 * (h + 1) + 1) == 0);
  BOOST_TEST(px(im, 1 + (w + 1), 1 + (h + 1)) == 255);  // tile 3 (value 2 -> clamped to 255)
}

BOOST_AUTO_TEST_CASE(rgb_grid_keeps_channel_order_and_handles_nan) {
  TempDir dir;
  const std::string path = (dir.path / "rgb.png").string();
  const double nan = std::numeric_limits<double>::quiet_NaN();
  // One 1x2 image: R = [1, nan], G = [-1, -3], B = [0, 0.5]; float64, no padding, many columns.
  const Tensor img = Tensor::from_vector(std::vector<double>{1, nan, -1, -3, 0, 0.5}, {1, 3, 1, 2}, DType::Float64);
  write_image_grid(path, img, 8, 0);
  const PngImage im = read_png(path);
  BOOST_TEST(im.width == 2);
  BOOST_TEST(im.height == 1);
  BOOST_TEST(im.channels == 3);
  BOOST_TEST(px(im, 0, 0, 0) == 255);
  BOOST_TEST(px(im, 0, 0, 1) == 0);
  BOOST_TEST(px(im, 0, 0, 2) == 128);
  BOOST_TEST(px(im, 1, 0, 0) == 0);  // NaN -> black
  BOOST_TEST(px(im, 1, 0, 1) == 0);
  BOOST_TEST(px(im, 1, 0, 2) == 191);
}

BOOST_AUTO_TEST_CASE(grid_rejects_bad_shapes_naming_them) {
  TempDir dir;
  const std::string path = (dir.path / "bad.png").string();
  expect_error([&] { write_image_grid(path, Tensor::from_vector(std::vector<double>(2 * 2 * 4 * 4, 0.0), {2, 2, 4, 4}), 2); },
               {path, "[2, 2, 4, 4]", "C = 1 or 3"});
  expect_error([&] { write_image_grid(path, Tensor::from_vector(std::vector<double>(16, 0.0), {1, 4, 4}), 2); },
               {"[1, 4, 4]"});
  expect_error([&] { write_image_grid(path, Tensor::from_vector(std::vector<double>{}, {0, 1, 4, 4}), 2); },
               {"[0, 1, 4, 4]"});
  expect_error([&] { write_image_grid(path, Tensor(), 2); }, {"undefined"});
  expect_error([&] { write_image_grid(path, Tensor::from_vector(std::vector<double>(16, 0.0), {1, 1, 4, 4}), 0); },
               {"columns 0"});
  BOOST_TEST(!fs::exists(path));
}
