// The classifiers' training loop, image sets and batches (see classifier_training.hpp). Tested by
// tests/test_classifier_cmd.cpp.
#include "experiments/classifier_training.hpp"

#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <iostream>
#include <map>
#include <numeric>

#include "autograd/engine.hpp"
#include "experiments/downsample.hpp"
#include "experiments/output.hpp"
#include "experiments/version.hpp"
#include "models/optim.hpp"
#include "runtime/checked_size.hpp"
#include "runtime/philox.hpp"
#include "runtime/shuffle.hpp"
#include "runtime/user_error.hpp"

namespace jebm {

ImageSet select_classes(const std::vector<uint8_t>& pixels, const std::vector<uint8_t>& labels, int64_t c, int64_t h,
                        int64_t w, const std::vector<int>& classes, int64_t limit) {
  ImageSet s;
  s.channels = c;
  s.height = h;
  s.width = w;
  std::vector<int> index_of(256, -1);
  for (size_t k = 0; k < classes.size(); ++k) index_of[static_cast<size_t>(classes[k])] = static_cast<int>(k);
  const int64_t bytes = c * h * w;
  for (size_t i = 0; i < labels.size(); ++i) {
    if (limit > 0 && s.count >= limit) break;
    const int k = index_of[labels[i]];
    if (k < 0) continue;
    s.pixels.insert(s.pixels.end(), pixels.begin() + static_cast<int64_t>(i) * bytes,
                    pixels.begin() + static_cast<int64_t>(i + 1) * bytes);
    s.labels.push_back(k);
    ++s.count;
  }
  return s;
}

Tensor image_batch(const ImageSet& s, const std::vector<int64_t>& idx, const std::vector<bool>& flip, Device device) {
  const auto b = static_cast<int64_t>(idx.size());
  const int64_t oh = s.out_height(), ow = s.out_width(), out_numel = s.channels * oh * ow;
  Tensor t = Tensor::empty({b, s.channels, oh, ow});
  float* p = t.data<float>();
  for (int64_t i = 0; i < b; ++i) {
    float* dst = p + i * out_numel;
    downsample_to_unit_range(s.pixels.data() + idx[static_cast<size_t>(i)] * s.image_bytes(), s.channels, s.height,
                             s.width, s.downsample, dst);
    if (!flip.empty() && flip[static_cast<size_t>(i)])
      for (int64_t r = 0; r < s.channels * oh; ++r) std::reverse(dst + r * ow, dst + (r + 1) * ow);
  }
  return t.to(device);
}

namespace {

std::string fmt(double v, const char* f = "%.6g") {
  char buf[64];
  std::snprintf(buf, sizeof buf, f, v);
  return buf;
}

// What one pass over the training images adds up.
struct EpochSums {
  double loss_sum = 0.0;
  int64_t right = 0;
};

// The optimiser and its schedule, over the whole run.
struct Optimisation {
  Adam adam;
  LinearDecayLR schedule;
  int64_t steps_per_epoch;
};

// One epoch (0-based) of Adam steps over a Philox permutation of the training images keyed by (seed, epoch).
EpochSums train_epoch(const ClassifierOptions& o, Classifier& c, const ImageSet& train, Optimisation& opt,
                      int64_t epoch, Device dev, const std::string& title) {
  const std::vector<int64_t> order = philox_permutation(train.count, o.seed, static_cast<uint64_t>(epoch));
  Progress progress("epoch " + std::to_string(epoch + 1) + "/" + std::to_string(o.epochs), opt.steps_per_epoch,
                    !o.no_progress);
  EpochSums sums;
  for (int64_t s = 0; s < opt.steps_per_epoch; ++s) {
    const int64_t b0 = s * o.batch_size, b1 = std::min(b0 + o.batch_size, train.count);
    std::vector<int64_t> idx(order.begin() + b0, order.begin() + b1), labels;
    std::vector<bool> flip;
    for (int64_t i : idx) {
      labels.push_back(train.labels[static_cast<size_t>(i)]);
      // Stream 2^40 + i keeps the flip draws apart from the shuffle's streams 0..N-1.
      if (o.flip) flip.push_back(philox_block(o.seed, (uint64_t{1} << 40) + static_cast<uint64_t>(i),
                                              static_cast<uint64_t>(epoch)).v[0] & 1u);
    }
    const ag::Var x(image_batch(train, idx, flip, dev));
    opt.adam.set_lr(opt.schedule.lr_at(epoch * opt.steps_per_epoch + s));
    opt.adam.zero_grad();
    const ag::Var logits = c.logits(x);
    const ag::Var loss = cross_entropy(logits, labels);
    ag::backward(loss);
    opt.adam.step();
    const double l = loss.value().item();
    JEBM_USER_CHECK(std::isfinite(l), title << ": training loss is " << l << " at epoch " << epoch + 1 << " step "
                                       << s + 1 << " (lower --lr, now " << o.lr << ")");
    sums.loss_sum += l * static_cast<double>(idx.size());
    const std::vector<int64_t> p = argmax_rows(logits.value());
    for (size_t i = 0; i < p.size(); ++i) sums.right += p[i] == labels[i];
    progress.update(s + 1, "loss " + fmt(sums.loss_sum / static_cast<double>(b1), "%.4f"));
  }
  progress.finish();
  return sums;
}

// out_dir/classifier.safetensors with what made it.
void save_trained(const ClassifierOptions& o, Classifier& c, const ClassifierTrainResult& r,
                  const std::filesystem::path& out_dir, const std::string& title) {
  c.module().to(Device::cpu());
  c.module().eval();
  const std::filesystem::path ckpt = out_dir / "classifier.safetensors";
  std::map<std::string, std::string> meta = {{"test_accuracy", fmt(r.test_accuracy, "%.6f")},
                                             {"test_count", std::to_string(r.test_count)},
                                             {"train_count", std::to_string(r.train_count)},
                                             {"epochs", std::to_string(o.epochs)},
                                             {"batch_size", std::to_string(o.batch_size)},
                                             {"lr", fmt(o.lr)},
                                             {"seed", std::to_string(o.seed)},
                                             {"train_seconds", fmt(r.seconds, "%.1f")},
                                             {"data", o.data}};
  if (c.kind == ClassifierKind::Mnist) meta["digits"] = class_list_text(c.classes);  // same as "classes"; for readers
  for (const auto& [k, v] : run_provenance(1)) meta[k] = v;  // what made it (jebm.version, ...)
  save_classifier(ckpt.string(), c, meta);
  std::cout << title << ": test accuracy " << fmt(100 * r.test_accuracy, "%.2f") << "% on " << r.test_count
            << " test images of classes " << class_list_text(c.classes) << " after " << fmt(r.seconds, "%.1f")
            << " s; saved " << ckpt.string() << "\n";
}

}  // namespace

ClassifierTrainResult train_classifier(const ClassifierOptions& o, Classifier& c, const ImageSet& train,
                                       const ImageSet& test, const std::filesystem::path& out_dir,
                                       const std::string& title) {
  const Device dev = device_from_name(o.device);
  c.module().to(dev);
  c.module().train();
  const int64_t steps_per_epoch = ceil_div(train.count, o.batch_size);
  const int64_t total_steps = checked_mul(steps_per_epoch, o.epochs, "--epochs " + std::to_string(o.epochs) + " x " +
                                          std::to_string(steps_per_epoch) + " steps per epoch (images / --batch-size)");
  Optimisation opt{Adam(c.module().parameters(), o.lr), LinearDecayLR(o.lr, total_steps, 0.0), steps_per_epoch};
  CsvWriter csv(out_dir / "metrics.csv", {"epoch", "train_loss", "train_accuracy", "test_accuracy", "lr", "seconds"});

  std::vector<int64_t> test_idx(static_cast<size_t>(test.count));
  std::iota(test_idx.begin(), test_idx.end(), 0);
  const Tensor test_images = image_batch(test, test_idx, {}, Device::cpu());

  ClassifierTrainResult r;
  r.train_count = train.count;
  r.test_count = test.count;
  const auto start = std::chrono::steady_clock::now();
  std::cout << title << ": " << train.count << " training images, " << test.count << " test images ("
            << shape_str(c.input_shape()) << " each), classes " << class_list_text(c.classes) << ", " << o.epochs
            << " epochs of " << steps_per_epoch << " steps (batch " << o.batch_size << "), Adam lr " << o.lr
            << " -> 0, " << dev.str() << ", " << omp_get_max_threads() << " threads\n";
  for (int64_t epoch = 0; epoch < o.epochs; ++epoch) {
    const EpochSums sums = train_epoch(o, c, train, opt, epoch, dev, title);
    r.test_accuracy = accuracy(c, test_images, test.labels);
    c.module().train();
    r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    const double n = static_cast<double>(train.count), train_acc = static_cast<double>(sums.right) / n;
    csv.row({static_cast<double>(epoch + 1), sums.loss_sum / n, train_acc, r.test_accuracy, opt.adam.lr(), r.seconds});
    std::cout << "epoch " << epoch + 1 << ": train loss " << fmt(sums.loss_sum / n, "%.4f") << ", train accuracy "
              << fmt(100 * train_acc, "%.2f") << "%, test accuracy " << fmt(100 * r.test_accuracy, "%.2f") << "% ("
              << fmt(r.seconds, "%.1f") << " s)\n";
  }
  save_trained(o, c, r, out_dir, title);
  return r;
}

}  // namespace jebm
