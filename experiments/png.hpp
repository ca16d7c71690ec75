// PNG output for sample grids (libpng's simplified API), written atomically; plus a small reader used by the
// tests and by anyone who wants to compare images. Tested by tests/test_png.cpp.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "runtime/tensor.hpp"

namespace jebm {

// 8-bit PNG from interleaved pixels [height, width, channels]; channels 1 (gray), 2 (gray+alpha), 3 (RGB) or
// 4 (RGBA). Encoded in memory, then written to `path + ".tmp"`, fsync'ed and renamed over `path`
// (runtime/file_io): a failed write is a jebm::Error naming `path` and leaves the previous file.
void write_png(const std::string& path, const std::vector<uint8_t>& pixels, int64_t width, int64_t height,
               int64_t channels);

// Tiles images [N, C, H, W] (C = 1 or 3, values in [-1, 1], any dtype/device) into one PNG: `columns` per
// row (capped at N), `padding` black pixels around and between tiles. Values are clamped to [-1, 1] and mapped
// to 0..255 (NaN -> 0).
void write_image_grid(const std::string& path, const Tensor& images, int64_t columns, int64_t padding = 2);

struct PngImage {
  int64_t width = 0, height = 0, channels = 0;  // channels 1 (gray) or 3 (RGB); alpha is dropped
  std::vector<uint8_t> pixels;                  // [height, width, channels]
};
// Reads 8-bit gray or RGB (converted by libpng); images of more than 1 GiB of pixels are refused before any
// allocation. Every failure is a jebm::Error naming `path`.
PngImage read_png(const std::string& path);

}  // namespace jebm
