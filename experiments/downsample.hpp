// Block-mean downsampling of uint8 images for `jebm mnist --downsample F` and `jebm mnist-classifier --downsample
// F` (2: 2x2-averaged 14x14 digits, the CPU-scale MNIST setup), with the conversion to [-1, 1] that
// images_to_tensor does. Tested by tests/test_downsample.cpp (hand-computed block means, F = 1 equals
// images_to_tensor bit for bit, bad sizes).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "runtime/tensor.hpp"

namespace jebm {

// The factors the MNIST commands offer: 1 (the 28x28 digits) and 2 (14x14). Throws naming `option` and the value.
void check_downsample_factor(int64_t factor, const std::string& option);

// One image: dst [c, h/f, w/f] = the mean of each f x f block of src [c, h, w], summed and divided in T, then
// scaled as images_to_tensor scales a pixel (mean / 127.5 - 1: 0 -> -1, 255 -> 1). h and w must be multiples of
// f (checked). T: float or double.
template <typename T>
void downsample_to_unit_range(const uint8_t* src, int64_t c, int64_t h, int64_t w, int64_t f, T* dst);

// uint8 pixels [n, c, h, w] -> a tensor [n, c, h/f, w/f] in [-1, 1]; f = 1 gives images_to_tensor's values.
Tensor downsampled_images_to_tensor(const std::vector<uint8_t>& pixels, int64_t n, int64_t c, int64_t h, int64_t w,
                                    int64_t f, DType dtype = DType::Float32);

}  // namespace jebm
