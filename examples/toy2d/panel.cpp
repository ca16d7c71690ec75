// The toy example's PNG panels (see panel.hpp): tiles drawn into one RGB image, encoded in memory by libpng's
// simplified API, written through jebm::write_file_atomic. Run by the out-of-tree test tests/install.
#include "panel.hpp"

#include <png.h>

#include <algorithm>
#include <cmath>
#include <stdexcept>

#include "runtime/file_io.hpp"

namespace toy2d {
namespace {

struct Image {
  int64_t width, height;
  std::vector<uint8_t> rgb;
  void set(int64_t x, int64_t y, const uint8_t c[3]) {
    if (x < 0 || y < 0 || x >= width || y >= height) return;
    uint8_t* px = &rgb[static_cast<size_t>(3 * (y * width + x))];
    px[0] = c[0];
    px[1] = c[1];
    px[2] = c[2];
  }
};

// A dark-blue -> orange -> pale-yellow ramp for t in [0, 1].
void ramp(double t, uint8_t c[3]) {
  t = std::clamp(t, 0.0, 1.0);
  const double stops[3][3] = {{12, 16, 48}, {220, 90, 40}, {255, 245, 200}};
  const double s = t * 2.0;
  const int k = std::min(1, static_cast<int>(s));
  const double f = s - k;
  for (int i = 0; i < 3; ++i) c[i] = static_cast<uint8_t>(stops[k][i] + f * (stops[k + 1][i] - stops[k][i]));
}

// The density resampled to tile x tile pixels (nearest cell), row 0 of the image at the top (largest y).
void draw_density(Image& im, int64_t x0, int64_t tile, const DensityTile& d, double peak) {
  for (int64_t py = 0; py < tile; ++py)
    for (int64_t px = 0; px < tile; ++px) {
      const int64_t cx = px * d.g / tile, cy = (tile - 1 - py) * d.g / tile;
      const double v = d.p[static_cast<size_t>(cy * d.g + cx)];
      uint8_t c[3];
      ramp(peak > 0 && std::isfinite(v) ? std::sqrt(std::max(v, 0.0) / peak) : 0.0, c);
      im.set(x0 + px, py, c);
    }
}

void draw_walkers(Image& im, int64_t x0, int64_t tile, const WalkerTile& w, double lo, double hi) {
  const uint8_t white[3] = {255, 255, 255};
  for (int64_t py = 0; py < tile; ++py)
    for (int64_t px = 0; px < tile; ++px) im.set(x0 + px, py, white);
  const size_t n = w.xy.size() / 2;
  for (size_t i = 0; i < n; ++i) {
    // Shade: a walker of average weight is black; one of a tenth of it light grey.
    const double rel = w.w.empty() ? 1.0 : w.w[i] * static_cast<double>(n);
    const auto shade = static_cast<uint8_t>(200.0 * (1.0 - std::clamp(rel, 0.1, 1.0) ) / 0.9);
    const uint8_t c[3] = {shade, shade, shade};
    const double fx = (w.xy[2 * i] - lo) / (hi - lo), fy = (w.xy[2 * i + 1] - lo) / (hi - lo);
    const auto px = static_cast<int64_t>(std::floor(fx * static_cast<double>(tile)));
    const auto py = tile - 1 - static_cast<int64_t>(std::floor(fy * static_cast<double>(tile)));
    if (px < 0 || py < 0 || px >= tile || py >= tile) continue;
    for (int64_t dy = 0; dy < 2; ++dy)
      for (int64_t dx = 0; dx < 2; ++dx) im.set(x0 + std::min(px + dx, tile - 1), std::min(py + dy, tile - 1), c);
  }
}

}  // namespace

void write_panel(const std::string& path, const DensityTile& data, const std::vector<PanelColumn>& columns,
                 double lo, double hi, int64_t tile) {
  const int64_t gap = 4, tiles = 1 + 2 * static_cast<int64_t>(columns.size());
  Image im{tiles * tile + (tiles - 1) * gap, tile, {}};
  im.rgb.assign(static_cast<size_t>(3 * im.width * im.height), 255);
  const double peak = *std::max_element(data.p.begin(), data.p.end());
  draw_density(im, 0, tile, data, peak);
  int64_t x0 = tile + gap;
  for (const PanelColumn& c : columns) {
    draw_density(im, x0, tile, c.density, peak);
    draw_walkers(im, x0 + tile + gap, tile, c.walkers, lo, hi);
    x0 += 2 * (tile + gap);
  }
  png_image png{};
  png.version = PNG_IMAGE_VERSION;
  png.width = static_cast<png_uint_32>(im.width);
  png.height = static_cast<png_uint_32>(im.height);
  png.format = PNG_FORMAT_RGB;
  png_alloc_size_t bytes = 0;
  if (!png_image_write_to_memory(&png, nullptr, &bytes, 0, im.rgb.data(), 0, nullptr))
    throw std::runtime_error(path + ": PNG encoding failed: " + png.message);
  std::string out(bytes, '\0');
  if (!png_image_write_to_memory(&png, out.data(), &bytes, 0, im.rgb.data(), 0, nullptr))
    throw std::runtime_error(path + ": PNG encoding failed: " + png.message);
  out.resize(bytes);
  jebm::write_file_atomic(path, out);
}

}  // namespace toy2d
