// Generated non-digit images for the reject class (see reject_images.hpp). Tested by
// tests/test_classifier_reject.cpp.
#include "experiments/reject_images.hpp"

#include <algorithm>
#include <vector>

#include "runtime/philox.hpp"
#include "runtime/user_error.hpp"

namespace jebm {

namespace {

constexpr uint64_t kRejectKey = 0x72656a6563742121ULL;  // "reject!!"

// Philox draws of one generated image: word k of the stream, as a uniform integer in [0, n).
struct Draws {
  uint64_t key, stream;
  uint32_t word(uint64_t k) const { return philox_block(key, stream, k / 4).v[k % 4]; }
  int64_t below(uint64_t k, int64_t n) const { return static_cast<int64_t>(word(k) % static_cast<uint64_t>(n)); }
};

void noise(const ImageSet& s, const Draws& d, uint8_t* dst) {
  const int64_t f = s.downsample, oh = s.out_height(), ow = s.out_width();
  for (int64_t ch = 0; ch < s.channels; ++ch)
    for (int64_t y = 0; y < s.height; ++y)
      for (int64_t x = 0; x < s.width; ++x) {
        const auto block = static_cast<uint64_t>((ch * oh + y / f) * ow + x / f);
        dst[(ch * s.height + y) * s.width + x] = static_cast<uint8_t>(d.word(block) & 0xFFu);
      }
}

// The mean of image a and an image of another label (chosen among those labels, then among their images).
bool blend(const ImageSet& s, int64_t n, const Draws& d, uint8_t* dst) {
  const int64_t a = d.below(0, n);
  std::vector<int64_t> others;
  for (int64_t j = 0; j < n; ++j)
    if (s.labels[static_cast<size_t>(j)] != s.labels[static_cast<size_t>(a)]) others.push_back(j);
  if (others.empty()) return false;
  const int64_t b = others[static_cast<size_t>(d.below(1, static_cast<int64_t>(others.size())))];
  const uint8_t* pa = s.pixels.data() + a * s.image_bytes();
  const uint8_t* pb = s.pixels.data() + b * s.image_bytes();
  for (int64_t k = 0; k < s.image_bytes(); ++k) dst[k] = static_cast<uint8_t>((pa[k] + pb[k] + 1) / 2);
  return true;
}

// Box blur of radius r along one axis: len values `stride` apart, the window cut at the ends.
void box_1d(const double* in, double* out, int64_t len, int64_t stride, int64_t r) {
  for (int64_t i = 0; i < len; ++i) {
    const int64_t lo = std::max<int64_t>(0, i - r), hi = std::min(len - 1, i + r);
    double sum = 0.0;
    for (int64_t j = lo; j <= hi; ++j) sum += in[j * stride];
    out[i * stride] = sum / static_cast<double>(hi - lo + 1);
  }
}

void blur(const ImageSet& s, int64_t n, const Draws& d, uint8_t* dst) {
  const uint8_t* src = s.pixels.data() + d.below(0, n) * s.image_bytes();
  const int64_t h = s.height, w = s.width, r = std::max<int64_t>(1, h / 4);
  std::vector<double> a(static_cast<size_t>(h * w)), b(a.size());
  for (int64_t ch = 0; ch < s.channels; ++ch) {
    std::copy(src + ch * h * w, src + (ch + 1) * h * w, a.begin());
    for (int64_t y = 0; y < h; ++y) box_1d(a.data() + y * w, b.data() + y * w, w, 1, r);  // rows
    for (int64_t x = 0; x < w; ++x) box_1d(b.data() + x, a.data() + x, h, w, r);          // columns
    for (int64_t k = 0; k < h * w; ++k) dst[ch * h * w + k] = static_cast<uint8_t>(a[static_cast<size_t>(k)] + 0.5);
  }
}

}  // namespace

void append_reject_images(ImageSet& s, int64_t count, int64_t label, uint64_t seed, uint64_t stream) {
  const int64_t n = s.count;
  JEBM_CHECK(n > 0 && count >= 0, "append_reject_images: " << count << " images from " << n);
  const int64_t bytes = s.image_bytes();
  s.pixels.resize(static_cast<size_t>((n + count) * bytes));
  for (int64_t i = 0; i < count; ++i) {
    const Draws d{seed ^ kRejectKey, (stream << 40) + static_cast<uint64_t>(i)};
    uint8_t* dst = s.pixels.data() + (n + i) * bytes;
    if (i % 3 == 2) blur(s, n, d, dst);
    else if (i % 3 == 0 || !blend(s, n, d, dst)) noise(s, d, dst);
    s.labels.push_back(label);
  }
  s.count = n + count;
}

ImageSet reject_images_only(const ImageSet& from, int64_t count, int64_t label, uint64_t seed, uint64_t stream) {
  ImageSet s = from;
  append_reject_images(s, count, label, seed, stream);
  s.pixels.erase(s.pixels.begin(), s.pixels.begin() + from.count * from.image_bytes());
  s.labels.erase(s.labels.begin(), s.labels.begin() + from.count);
  s.count = count;
  return s;
}

}  // namespace jebm
