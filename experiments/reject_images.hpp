// The reject class of `jebm mnist-classifier --reject`: generated images that are not digits, so that the
// classifier can say "none of them" instead of naming a digit for a noise walker. Three kinds, in turn: uniform
// noise, pixelwise 0.5/0.5 blends of two digits of different classes, and digits under a heavy box blur.
// Tested by tests/test_classifier_reject.cpp.
#pragma once
#include <cstdint>

#include "experiments/classifier_training.hpp"

namespace jebm {

// Appends `count` generated images to s, labelled `label`, drawn from s's own images (those already there) by
// Philox keyed by (seed, stream): image i is noise when i % 3 == 0, a blend when 1, a blur when 2.
// - noise: every pixel uniform in 0..255, constant over each s.downsample x s.downsample block, so that the
//   classifier's input is uniform on [-1, 1] like the walkers' starting points;
// - blend: the rounded mean of two images of different labels (noise when s holds a single label);
// - blur: a box blur of radius height / 4 (7 pixels at 28x28), the window cut at the border.
// `stream` keeps the training and the test rejects apart.
void append_reject_images(ImageSet& s, int64_t count, int64_t label, uint64_t seed, uint64_t stream);
// `count` such images drawn from the images of `from`, alone in a set of their own (the test rejects).
ImageSet reject_images_only(const ImageSet& from, int64_t count, int64_t label, uint64_t seed, uint64_t stream);

}  // namespace jebm
