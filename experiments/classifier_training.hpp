// The training of the metric classifiers: labelled images kept as uint8 (ImageSet), batches in the walkers'
// space, and Adam on cross-entropy over the epochs with metrics.csv and the saved classifier. Used by
// experiments/classifier_cmd.cpp. Tested by tests/test_classifier_cmd.cpp.
#pragma once
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "experiments/metric_classifier.hpp"

namespace jebm {

// A labelled image set kept as uint8 (CIFAR-10 as float would be 600 MB); batches are converted on the fly,
// downsampled by `downsample` (block means, experiments/downsample.hpp) on the way.
struct ImageSet {
  int64_t count = 0, channels = 0, height = 0, width = 0;  // as stored
  int64_t downsample = 1;
  std::vector<uint8_t> pixels;  // [count, channels, height, width]
  std::vector<int64_t> labels;  // class indices 0..C-1
  int64_t image_bytes() const { return channels * height * width; }
  int64_t out_height() const { return height / downsample; }
  int64_t out_width() const { return width / downsample; }
};

// Keeps the images whose label is one of `classes` (relabelled to the class index), at most `limit` of them
// (0: all), in file order.
ImageSet select_classes(const std::vector<uint8_t>& pixels, const std::vector<uint8_t>& labels, int64_t c, int64_t h,
                        int64_t w, const std::vector<int>& classes, int64_t limit);

// Images idx (flipped left-right where flip[i]) as a float32 [B, C, H/f, W/f] tensor in [-1, 1] on `device`,
// scaled as the image experiments scale their data (downsampled_images_to_tensor), so that the classifier sees
// the walkers' space exactly.
Tensor image_batch(const ImageSet& s, const std::vector<int64_t>& idx, const std::vector<bool>& flip, Device device);

// The options of both classifier commands (the defaults differ per data set: see classifier_cmd.cpp).
struct ClassifierOptions {
  std::string data, out, device = "cpu";
  bool force = false;
  std::string digits = "2,3,6";
  int64_t epochs = 0, batch_size = 0, limit = 0;
  double lr = 0.0;
  uint64_t seed = 1;
  int threads = 0;
  bool no_progress = false;
  std::string config;
  bool flip = false;
  int64_t downsample = 1;  // mnist-classifier only
};

struct ClassifierTrainResult {
  double test_accuracy = 0.0;
  int64_t train_count = 0, test_count = 0;
  double seconds = 0.0;
};

// Adam on cross-entropy with the learning rate decayed linearly to 0 over all steps (a short run ends at a low
// lr, which is worth a few tenths of a percent of accuracy over a constant lr). Writes out_dir/metrics.csv per
// epoch and out_dir/classifier.safetensors at the end; `title` opens the printed lines.
ClassifierTrainResult train_classifier(const ClassifierOptions& o, Classifier& c, const ImageSet& train,
                                       const ImageSet& test, const std::filesystem::path& out_dir,
                                       const std::string& title);

}  // namespace jebm
