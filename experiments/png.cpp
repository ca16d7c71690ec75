// PNG writer/reader over libpng's simplified API (png_image_*), which reports errors through a message
// instead of longjmp, so C++ objects unwind normally. Tested by tests/test_png.cpp.
#include "experiments/png.hpp"

#include <png.h>

#include <algorithm>
#include <cmath>
#include <cstring>

#include "runtime/file_io.hpp"
#include "runtime/user_error.hpp"

namespace jebm {

namespace {
constexpr png_alloc_size_t kMaxPngReadBytes = png_alloc_size_t{1} << 30;  // 1 GiB of decoded pixels
}  // namespace

void write_png(const std::string& path, const std::vector<uint8_t>& pixels, int64_t width, int64_t height,
               int64_t channels) {
  JEBM_CHECK(channels >= 1 && channels <= 4, "write_png: " << path << ": channels " << channels << ", expected 1..4");
  // PNG allows 2^31-1; the product check below keeps the stride arithmetic in range too.
  JEBM_CHECK(width > 0 && height > 0 && width <= (1 << 24) && height <= (1 << 24),
             "write_png: " << path << ": size " << width << "x" << height << " is not a valid image size");
  JEBM_CHECK(static_cast<int64_t>(pixels.size()) == width * height * channels,
             "write_png: " << path << ": " << pixels.size() << " bytes for " << width << "x" << height << "x"
                           << channels << " = " << width * height * channels);
  static const png_uint_32 kFormats[] = {PNG_FORMAT_GRAY, PNG_FORMAT_GA, PNG_FORMAT_RGB, PNG_FORMAT_RGBA};
  png_image image;
  std::memset(&image, 0, sizeof image);
  image.version = PNG_IMAGE_VERSION;
  image.width = static_cast<png_uint_32>(width);
  image.height = static_cast<png_uint_32>(height);
  image.format = kFormats[channels - 1];

  // Encode in memory, then one checked atomic replace: a full disk never leaves a cut PNG under `path`.
  png_alloc_size_t size = 0;
  JEBM_CHECK(png_image_write_get_memory_size(image, size, 0, pixels.data(), 0, nullptr) != 0,
             "write_png: " << path << ": libpng: " << image.message);
  std::string bytes(size, '\0');
  JEBM_CHECK(png_image_write_to_memory(&image, bytes.data(), &size, 0, pixels.data(), 0, nullptr) != 0,
             "write_png: " << path << ": libpng: " << image.message);
  bytes.resize(size);
  write_file_atomic(path, bytes);
}

void write_image_grid(const std::string& path, const Tensor& images, int64_t columns, int64_t padding) {
  const Shape& s = images.shape();
  JEBM_CHECK(images.defined() && s.size() == 4 && (s[1] == 1 || s[1] == 3) && s[0] > 0 && s[2] > 0 && s[3] > 0,
             "write_image_grid: " << path << ": images must be [N, C, H, W] with N > 0 and C = 1 or 3, got "
                                  << (images.defined() ? shape_str(s) : "an undefined tensor"));
  JEBM_CHECK(columns > 0, "write_image_grid: " << path << ": columns " << columns << " must be positive");
  JEBM_CHECK(padding >= 0, "write_image_grid: " << path << ": padding " << padding << " must be non-negative");
  const int64_t n = s[0], c = s[1], h = s[2], w = s[3];
  const int64_t cols = std::min(columns, n);
  const int64_t rows = (n + cols - 1) / cols;
  const int64_t width = cols * (w + padding) + padding;
  const int64_t height = rows * (h + padding) + padding;
  const std::vector<double> v = images.to_vector();  // host, any dtype
  std::vector<uint8_t> out(static_cast<size_t>(width * height * c), 0);
  for (int64_t i = 0; i < n; ++i) {
    const int64_t y0 = padding + (i / cols) * (h + padding);
    const int64_t x0 = padding + (i % cols) * (w + padding);
    for (int64_t ch = 0; ch < c; ++ch)
      for (int64_t y = 0; y < h; ++y)
        for (int64_t x = 0; x < w; ++x) {
          const double val = v[static_cast<size_t>(((i * c + ch) * h + y) * w + x)];
          // [-1, 1] -> [0, 255]; NaN would make the cast undefined, so it becomes black.
          const double u = std::isnan(val) ? 0.0 : std::round((std::clamp(val, -1.0, 1.0) + 1.0) * 127.5);
          out[static_cast<size_t>(((y0 + y) * width + (x0 + x)) * c + ch)] = static_cast<uint8_t>(u);
        }
  }
  write_png(path, out, width, height, c);
}

PngImage read_png(const std::string& path) {
  png_image image;
  std::memset(&image, 0, sizeof image);
  image.version = PNG_IMAGE_VERSION;
  JEBM_USER_CHECK(png_image_begin_read_from_file(&image, path.c_str()) != 0,
             "read_png: " << path << ": " << image.message);
  PngImage out;
  const bool color = (image.format & PNG_FORMAT_FLAG_COLOR) != 0;
  image.format = color ? PNG_FORMAT_RGB : PNG_FORMAT_GRAY;
  // The header's size alone would decide the allocation: a damaged or hostile file must not ask for terabytes.
  if (PNG_IMAGE_SIZE(image) > kMaxPngReadBytes) {
    png_image_free(&image);
    JEBM_USER_FAIL("read_png: " << path << ": " << image.width << "x" << image.height << " pixels ("
                           << (color ? 3 : 1) << " channels) exceed the reader's limit of " << kMaxPngReadBytes
                           << " bytes");
  }
  out.width = image.width;
  out.height = image.height;
  out.channels = color ? 3 : 1;
  out.pixels.resize(PNG_IMAGE_SIZE(image));
  if (png_image_finish_read(&image, nullptr, out.pixels.data(), 0, nullptr) == 0) {
    const std::string msg = image.message;
    png_image_free(&image);
    JEBM_USER_FAIL("read_png: " << path << ": " << msg);
  }
  return out;
}

}  // namespace jebm
