// The classifiers' training run, image sets and batches (see classifier_training.hpp). Tested by
// tests/test_classifier_cmd.cpp and tests/test_classifier_resume.cpp.
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
#include "experiments/classifier_checkpoint.hpp"
#include "experiments/downsample.hpp"
#include "experiments/sigint.hpp"
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

namespace fs = std::filesystem;

std::string fmt(double v, const char* f = "%.6g") {
  char buf[64];
  std::snprintf(buf, sizeof buf, f, v);
  return buf;
}

std::vector<std::string> metric_columns(bool rejects) {
  std::vector<std::string> c = {"epoch", "train_loss", "train_accuracy", "test_accuracy", "lr", "seconds"};
  if (rejects) c.push_back("reject_accuracy");
  return c;
}

// What one pass over the training images adds up; stopped: Ctrl-C came in the middle of it.
struct EpochSums {
  double loss_sum = 0.0;
  int64_t right = 0;
  bool stopped = false;
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
    if (sigint_on_any_rank(world())) {
      sums.stopped = true;
      break;
    }
  }
  progress.finish();
  return sums;
}

// Moves the model to `dev` in training mode, then builds Adam on its parameters and the schedule.
Optimisation make_optimisation(const ClassifierOptions& o, Classifier& c, int64_t train_count, Device dev) {
  c.module().to(dev);
  c.module().train();
  const int64_t steps_per_epoch = ceil_div(train_count, o.batch_size);
  const int64_t total_steps = checked_mul(steps_per_epoch, o.epochs, "--epochs " + std::to_string(o.epochs) + " x " +
                                          std::to_string(steps_per_epoch) + " steps per epoch (images / --batch-size)");
  return Optimisation{Adam(c.module().parameters(), o.lr), LinearDecayLR(o.lr, total_steps, 0.0), steps_per_epoch};
}

Tensor all_images(const ImageSet& s) {
  std::vector<int64_t> idx(static_cast<size_t>(s.count));
  std::iota(idx.begin(), idx.end(), 0);
  return image_batch(s, idx, {}, Device::cpu());
}

}  // namespace

struct ClassifierRun::State {
  const ClassifierOptions& o;
  Classifier& c;
  const ImageSet& train;
  const ImageSet& test;
  const ImageSet* rejects;
  std::string title;
  Device dev;
  Optimisation opt;
  Tensor test_images, reject_images;
  std::vector<int64_t> reject_labels;
  std::vector<std::string> columns;
  ClassifierProgress progress;
  bool resumed = false;
  std::string ckpt;
  fs::path csv_path;

  State(const ClassifierOptions& o_, Classifier& c_, const ImageSet& train_, const ImageSet& test_, std::string t,
        const ImageSet* rejects_)
      : o(o_), c(c_), train(train_), test(test_), rejects(rejects_), title(std::move(t)),
        dev(device_from_name(o_.device)), opt(make_optimisation(o_, c_, train_.count, dev)),
        test_images(all_images(test_)), columns(metric_columns(rejects_ != nullptr)),
        ckpt(classifier_checkpoint_path(o_.out)), csv_path(fs::path(o_.out) / "metrics.csv") {
    if (rejects) {
      reject_images = all_images(*rejects);
      reject_labels = rejects->labels;
    }
  }

  void checkpoint() { save_classifier_checkpoint(ckpt, o, c.module(), opt.adam, progress, train.count); }
  void save_trained();
  bool epoch(CsvWriter& csv, std::chrono::steady_clock::time_point start);
};

// out/classifier.safetensors with what made it.
void ClassifierRun::State::save_trained() {
  c.module().to(Device::cpu());
  c.module().eval();
  const fs::path path = fs::path(o.out) / "classifier.safetensors";
  std::map<std::string, std::string> meta = {{"test_accuracy", fmt(progress.test_accuracy, "%.6f")},
                                             {"test_count", std::to_string(test.count)},
                                             {"train_count", std::to_string(train.count)},
                                             {"epochs", std::to_string(o.epochs)},
                                             {"batch_size", std::to_string(o.batch_size)},
                                             {"lr", fmt(o.lr)},
                                             {"seed", std::to_string(o.seed)},
                                             {"train_seconds", fmt(progress.elapsed_s, "%.1f")},
                                             {"data", o.data}};
  if (c.kind == ClassifierKind::Mnist) meta["digits"] = class_list_text(c.classes);  // the labels; for readers
  if (rejects) {
    meta["reject_accuracy"] = fmt(progress.reject_accuracy, "%.6f");
    meta["reject_test_count"] = std::to_string(rejects->count);
  }
  for (const auto& [k, v] : run_provenance(1)) meta[k] = v;  // what made it (jebm.version, ...)
  save_classifier(path.string(), c, meta);
  std::cout << title << ": test accuracy " << fmt(100 * progress.test_accuracy, "%.2f") << "% on " << test.count
            << " test images of classes " << class_list_text(c.classes) << " after "
            << fmt(progress.elapsed_s, "%.1f") << " s";
  if (rejects)
    std::cout << "; " << fmt(100 * progress.reject_accuracy, "%.2f") << "% of " << rejects->count
              << " generated non-digits labelled " << kRejectName;
  std::cout << "; saved " << path.string() << "\n";
}

// The next epoch, its metrics.csv row and checkpoint; false when Ctrl-C stopped it (nothing of it is kept).
bool ClassifierRun::State::epoch(CsvWriter& csv, std::chrono::steady_clock::time_point start) {
  const int64_t e = progress.epochs_done;
  const EpochSums sums = train_epoch(o, c, train, opt, e, dev, title);
  if (sums.stopped) return false;
  progress.test_accuracy = accuracy(c, test_images, test.labels);
  if (rejects) progress.reject_accuracy = accuracy(c, reject_images, reject_labels);
  c.module().train();
  progress.elapsed_s += std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  progress.epochs_done = e + 1;
  const double n = static_cast<double>(train.count), train_acc = static_cast<double>(sums.right) / n;
  std::vector<double> row = {static_cast<double>(e + 1), sums.loss_sum / n, train_acc, progress.test_accuracy,
                             opt.adam.lr(), progress.elapsed_s};
  if (rejects) row.push_back(progress.reject_accuracy);
  csv.row(row);
  checkpoint();
  std::cout << "epoch " << e + 1 << ": train loss " << fmt(sums.loss_sum / n, "%.4f") << ", train accuracy "
            << fmt(100 * train_acc, "%.2f") << "%, test accuracy " << fmt(100 * progress.test_accuracy, "%.2f")
            << "%" << (rejects ? ", rejects " + fmt(100 * progress.reject_accuracy, "%.2f") + "%" : std::string())
            << " (" << fmt(progress.elapsed_s, "%.1f") << " s)\n";
  return true;
}

ClassifierRun::ClassifierRun(const ClassifierOptions& o, Classifier& c, const ImageSet& train, const ImageSet& test,
                             std::string title, const ImageSet* test_rejects)
    : s_(std::make_unique<State>(o, c, train, test, std::move(title), test_rejects)) {}

ClassifierRun::~ClassifierRun() = default;

void ClassifierRun::restore() {
  State& s = *s_;
  s.progress = load_classifier_checkpoint(s.ckpt, s.o, s.c.module(), s.opt.adam, s.train.count);
  s.resumed = true;
  // Rows are epochs 1..E; the checkpoint after E epochs covers those below E + 1.
  const int64_t e = s.progress.epochs_done;
  check_resume_csv(s.csv_path, s.columns, e == 0 ? 0 : e + 1, 1, s.ckpt,
                   "jebm " + s.title + " --out " + s.o.out + " --force");
}

int ClassifierRun::run() {
  State& s = *s_;
  if (s.resumed) {
    truncate_csv_rows(s.csv_path, static_cast<double>(s.progress.epochs_done + 1));
    std::cerr << s.title << ": resumed from " << s.ckpt << " after epoch " << s.progress.epochs_done << "\n";
  } else {
    s.checkpoint();  // epoch 0: a run stopped in its first epoch resumes from the start
  }
  CsvWriter csv(s.csv_path, s.columns, s.resumed);
  std::cout << s.title << ": " << s.train.count << " training images, " << s.test.count << " test images ("
            << shape_str(s.c.input_shape()) << " each), classes " << class_list_text(s.c.classes) << ", "
            << s.o.epochs << " epochs of " << s.opt.steps_per_epoch << " steps (batch " << s.o.batch_size
            << "), Adam lr " << s.o.lr << " -> 0, " << s.dev.str() << ", " << omp_get_max_threads() << " threads\n";
  SigintGuard sigint;
  while (s.progress.epochs_done < s.o.epochs) {
    const bool testing_stop = s.progress.epochs_done == s.o.interrupt_at;
    if (!testing_stop && s.epoch(csv, std::chrono::steady_clock::now())) continue;
    std::cerr << s.title << ": interrupted " << (testing_stop ? "after" : "in") << " epoch "
              << s.progress.epochs_done + (testing_stop ? 0 : 1) << "; the checkpoint of epoch "
              << s.progress.epochs_done << " is kept: jebm " << s.title << " --resume " << s.o.out
              << " continues from it\n";
    return 130;
  }
  s.save_trained();
  return 0;
}

bool classifier_run_finished(const ClassifierOptions& o, const std::string& title) {
  if (o.resume.empty()) return false;
  const int64_t done = classifier_checkpoint_epochs(classifier_checkpoint_path(o.out), o);
  if (done < o.epochs || !fs::is_regular_file(fs::path(o.out) / "classifier.safetensors")) return false;
  std::cout << title << ": the run in " << o.out << " is finished (" << done << " epochs): nothing to do\n";
  return true;
}

}  // namespace jebm
