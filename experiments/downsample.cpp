// Block-mean downsampling of uint8 images (see downsample.hpp). Tested by tests/test_downsample.cpp.
#include "experiments/downsample.hpp"

#include "runtime/check.hpp"

namespace jebm {

void check_downsample_factor(int64_t factor, const std::string& option) {
  JEBM_CHECK(factor == 1 || factor == 2,
             option << " " << factor << ": expected 1 (28x28 digits) or 2 (2x2 block means, 14x14 digits)");
}

template <typename T>
void downsample_to_unit_range(const uint8_t* src, int64_t c, int64_t h, int64_t w, int64_t f, T* dst) {
  JEBM_CHECK(f >= 1 && c > 0 && h > 0 && w > 0 && h % f == 0 && w % f == 0,
             "downsample: images [" << c << ", " << h << ", " << w << "] do not split into " << f << "x" << f
                                    << " blocks");
  const int64_t oh = h / f, ow = w / f;
  // The block sums (at most 255 f^2) and, for f = 1 or 2, the division by f^2 are exact in float, so f = 1 gives
  // images_to_tensor's values bit for bit and f = 2 the exact quarter-pixel means.
  const T area = static_cast<T>(f * f);
  for (int64_t p = 0; p < c; ++p)
    for (int64_t y = 0; y < oh; ++y)
      for (int64_t x = 0; x < ow; ++x) {
        T sum = 0;
        for (int64_t dy = 0; dy < f; ++dy)
          for (int64_t dx = 0; dx < f; ++dx) sum += static_cast<T>(src[(p * h + y * f + dy) * w + x * f + dx]);
        dst[(p * oh + y) * ow + x] = sum / area / T(127.5) - T(1);
      }
}

template void downsample_to_unit_range<float>(const uint8_t*, int64_t, int64_t, int64_t, int64_t, float*);
template void downsample_to_unit_range<double>(const uint8_t*, int64_t, int64_t, int64_t, int64_t, double*);

Tensor downsampled_images_to_tensor(const std::vector<uint8_t>& pixels, int64_t n, int64_t c, int64_t h, int64_t w,
                                    int64_t f, DType dtype) {
  JEBM_CHECK(n >= 0 && c > 0 && h > 0 && w > 0 && f >= 1 && h % f == 0 && w % f == 0,
             "downsampled_images_to_tensor: shape [" << n << ", " << c << ", " << h << ", " << w
                                                     << "] does not split into " << f << "x" << f << " blocks");
  const int64_t in_bytes = c * h * w, out_numel = c * (h / f) * (w / f);
  JEBM_CHECK(static_cast<int64_t>(pixels.size()) == n * in_bytes,
             "downsampled_images_to_tensor: " << pixels.size() << " pixels for shape [" << n << ", " << c << ", " << h
                                              << ", " << w << "] (" << n * in_bytes << ")");
  Tensor t = Tensor::empty({n, c, h / f, w / f}, dtype, Device::cpu());
  JEBM_DISPATCH_FLOAT(dtype, "downsampled_images_to_tensor", [&] {
    scalar_t* p = t.data<scalar_t>();
    for (int64_t i = 0; i < n; ++i) downsample_to_unit_range(pixels.data() + i * in_bytes, c, h, w, f, p + i * out_numel);
  });
  return t;
}

}  // namespace jebm
