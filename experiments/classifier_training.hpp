// The training of the metric classifiers: labelled images kept as uint8 (ImageSet), batches in the walkers'
// space, and the run (Adam on cross-entropy over the epochs, metrics.csv, a checkpoint per epoch, --resume, the
// saved classifier). Used by experiments/classifier_cmd.cpp. Tested by tests/test_classifier_cmd.cpp and
// tests/test_classifier_resume.cpp.
#pragma once
#include <cstdint>
#include <filesystem>
#include <memory>
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
  bool reject = false;     // mnist-classifier only: a reject class trained on generated non-digits
  std::string resume;      // --resume DIR (then out == resume)
  int64_t interrupt_at = -1;  // testing: stop as Ctrl-C would after this many epochs (-1: never)
};

// Where a run stands after `epochs_done` epochs.
struct ClassifierProgress {
  int64_t epochs_done = 0;
  double test_accuracy = 0.0;  // after the last epoch done (0 before the first)
  double reject_accuracy = 0.0;  // with test rejects: the share of them labelled reject, after the last epoch done
  double elapsed_s = 0.0;      // training time of the runs so far (for the reports only)
};

// One training run in o.out: Adam on cross-entropy with the learning rate decayed linearly to 0 over all steps of
// --epochs (a short run ends at a low lr, which is worth a few tenths of a percent of accuracy over a constant lr).
// After each epoch a metrics.csv row and a checkpoint (experiments/classifier_checkpoint.hpp); at the end
// classifier.safetensors. `title` ("mnist-classifier") opens the printed lines.
class ClassifierRun {
 public:
  // test_rejects: generated non-digits (experiments/reject_images.hpp) for a classifier with a reject class, whose
  // share labelled reject is metrics.csv's reject_accuracy; null without.
  ClassifierRun(const ClassifierOptions& o, Classifier& c, const ImageSet& train, const ImageSet& test,
                std::string title, const ImageSet* test_rejects = nullptr);
  ~ClassifierRun();
  ClassifierRun(const ClassifierRun&) = delete;
  ClassifierRun& operator=(const ClassifierRun&) = delete;
  // --resume: the checkpoint's model, Adam state and epochs, and metrics.csv checked against them; changes no file.
  void restore();
  // The remaining epochs. Returns the exit code: 0 done, 130 stopped by Ctrl-C or --interrupt-at (the last
  // checkpoint is kept; --resume continues from it).
  int run();

 private:
  struct State;
  std::unique_ptr<State> s_;
};

// --resume of a run whose epochs are all done and whose classifier.safetensors exists: prints that there is
// nothing to do and returns true, touching no file. A missing or bad checkpoint is a UserError naming it.
bool classifier_run_finished(const ClassifierOptions& o, const std::string& title);

}  // namespace jebm
