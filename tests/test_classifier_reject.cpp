// Tests for the reject class (experiments/reject_images.*, split_reject in experiments/metric_classifier.*, the
// metrics of experiments/mnist.cpp): the digit fractions renormalised over the weight not rejected on a hand-made
// histogram; the generated non-digits (deterministic; noise constant over the downsampling blocks, blends of two
// labels, blurs); `jebm mnist-classifier --reject` on tiny synthetic data labels uniform noise as reject far more
// often than chance, saves its class list and resumes; `jebm mnist` with it writes rejected_weight, and with a
// 3-class classifier the columns it always wrote.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <random>

#include "experiments/classifier_cmd.hpp"
#include "experiments/image_ebm.hpp"
#include "experiments/metrics.hpp"
#include "experiments/reject_images.hpp"
#include "tests/helpers.hpp"
#include "tests/run_helpers.hpp"

namespace fs = std::filesystem;
using jebm::test::TempDir;
using jebm::test::with;

namespace jebm {
int run_mnist(const std::vector<std::string>& args);
}

namespace {

// Synthetic digits 2, 3, 6 and two classifiers of 14x14 images trained on them: with and without --reject.
struct Fixture {
  TempDir tmp;
  fs::path data, plain, reject;
  int rc_plain = -1, rc_reject = -1;
  Fixture() : data(tmp.path / "mnist"), plain(tmp.path / "plain"), reject(tmp.path / "reject") {
    fs::create_directories(data);
    jebm::test::write_mnist_split(data, "train", 90, 1, {2, 3, 6}, 2, 40);
    jebm::test::write_mnist_split(data, "t10k", 30, 2, {2, 3, 6}, 2, 40);
    const std::vector<std::string> base = {"--data", data.string(), "--downsample", "2", "--epochs", "3",
                                           "--batch-size", "32", "--lr", "2e-3", "--seed", "4", "--threads", "1",
                                           "--no-progress"};
    rc_plain = jebm::run_mnist_classifier(with(base, {"--out", plain.string()}));
    // The reject run stops after epoch 1 and is resumed: its options.txt must give --reject back.
    BOOST_TEST(jebm::run_mnist_classifier(with(base, {"--out", reject.string(), "--reject", "--interrupt-at", "1"})) ==
               130);
    rc_reject = jebm::run_mnist_classifier({"--resume", reject.string()});
  }
};

Fixture& fixture() {
  static Fixture f;
  return f;
}

// A synthetic image set of `per_label` images of each of the labels 0 and 1 (patterns of digits 2 and 3).
jebm::ImageSet two_label_set(int per_label, int64_t downsample) {
  jebm::ImageSet s;
  s.channels = 1;
  s.height = s.width = 28;
  s.downsample = downsample;
  std::mt19937_64 rng(9);
  for (int i = 0; i < per_label; ++i)
    for (int label : {0, 1}) {
      const std::vector<uint8_t> img = jebm::test::digit_pattern(label == 0 ? 2 : 3, rng, 2, 40);
      s.pixels.insert(s.pixels.end(), img.begin(), img.end());
      s.labels.push_back(label);
      ++s.count;
    }
  return s;
}

// Mean absolute difference of horizontally neighbouring pixels of image i.
double roughness(const jebm::ImageSet& s, int64_t i) {
  const uint8_t* p = s.pixels.data() + i * s.image_bytes();
  double sum = 0.0;
  for (int64_t y = 0; y < s.height; ++y)
    for (int64_t x = 1; x < s.width; ++x) sum += std::abs(p[y * s.width + x] - p[y * s.width + x - 1]);
  return sum / static_cast<double>(s.height * (s.width - 1));
}

}  // namespace

BOOST_AUTO_TEST_CASE(split_reject_renormalises_over_the_weight_not_rejected) {
  // Weights 0.3, 0.2, 0.1 on three digits and 0.4 rejected: the digits hold 0.6, so 1/2, 1/3, 1/6.
  const jebm::ClassWeights w = jebm::split_reject({0.3, 0.2, 0.1, 0.4}, true);
  BOOST_TEST(w.rejected == 0.4);
  BOOST_TEST(jebm::test::all_close(w.classes, {0.5, 1.0 / 3.0, 1.0 / 6.0}, 1e-15, 1e-15, "renormalised"));
  // Its distance to 4:2:1 is that of the renormalised fractions: 0.5 |1/2 - 4/7| + ... = 1/14.
  BOOST_TEST(jebm::total_variation(w.classes, {4.0 / 7, 2.0 / 7, 1.0 / 7}) == 1.0 / 14.0,
             boost::test_tools::tolerance(1e-15));
  // Without a reject class the histogram is passed on as it is, to the bit.
  const std::vector<double> h = {0.1 + 0.2, 0.3, 0.4};
  const jebm::ClassWeights plain = jebm::split_reject(h, false);
  BOOST_TEST(plain.classes == h);
  BOOST_TEST(plain.rejected == 0.0);
  // Everything rejected: no fractions to speak of.
  const jebm::ClassWeights all = jebm::split_reject({0.0, 0.0, 0.0, 1.0}, true);
  BOOST_TEST(std::isnan(all.classes[0]));
  BOOST_TEST(all.rejected == 1.0);
}

BOOST_AUTO_TEST_CASE(generated_rejects_are_deterministic_and_of_three_kinds) {
  const jebm::ImageSet base = two_label_set(5, 2);
  jebm::ImageSet a = base, b = base, c = base;
  jebm::append_reject_images(a, 9, 2, 7, 0);
  jebm::append_reject_images(b, 9, 2, 7, 0);
  jebm::append_reject_images(c, 9, 2, 8, 0);
  BOOST_TEST(a.count == 19);
  BOOST_TEST(a.pixels == b.pixels);
  BOOST_TEST(a.pixels != c.pixels);
  for (int64_t i = 10; i < 19; ++i) BOOST_TEST(a.labels[static_cast<size_t>(i)] == 2);
  // Noise (i % 3 == 0): constant over every 2x2 block, and as rough as noise gets.
  const uint8_t* n = a.pixels.data() + 10 * a.image_bytes();
  for (int64_t y = 0; y < 28; y += 2)
    for (int64_t x = 0; x < 28; x += 2) {
      BOOST_TEST(n[y * 28 + x] == n[y * 28 + x + 1]);
      BOOST_TEST(n[y * 28 + x] == n[(y + 1) * 28 + x + 1]);
    }
  // A blend (i % 3 == 1): the rounded mean of two images of different labels.
  const uint8_t* m = a.pixels.data() + 11 * a.image_bytes();
  bool found = false;
  for (int64_t i = 0; i < 10 && !found; ++i)
    for (int64_t j = 0; j < 10 && !found; ++j) {
      if (base.labels[static_cast<size_t>(i)] == base.labels[static_cast<size_t>(j)]) continue;
      const uint8_t* pi = base.pixels.data() + i * base.image_bytes();
      const uint8_t* pj = base.pixels.data() + j * base.image_bytes();
      bool same = true;
      for (int64_t k = 0; k < 784 && same; ++k) same = m[k] == (pi[k] + pj[k] + 1) / 2;
      found = same;
    }
  BOOST_TEST(found, "image 11 is not the mean of two images of different labels");
  // A blur (i % 3 == 2, radius 7): far smoother than the digits it comes from.
  double digits = 0.0;
  for (int64_t i = 0; i < 10; ++i) digits += roughness(base, i) / 10;
  BOOST_TEST(roughness(a, 12) < 0.25 * digits, "blur " << roughness(a, 12) << ", digits " << digits);
  // reject_images_only: the same images, alone.
  const jebm::ImageSet only = jebm::reject_images_only(base, 9, 2, 7, 0);
  BOOST_TEST(only.count == 9);
  BOOST_TEST(std::memcmp(only.pixels.data(), a.pixels.data() + 10 * a.image_bytes(), 9 * 784) == 0);
}

BOOST_AUTO_TEST_CASE(reject_classifier_labels_uniform_noise_as_reject) {
  Fixture& f = fixture();
  BOOST_REQUIRE_EQUAL(f.rc_plain, 0);
  BOOST_REQUIRE_EQUAL(f.rc_reject, 0);
  jebm::Classifier c = jebm::load_classifier((f.reject / "classifier.safetensors").string(),
                                             jebm::ClassifierKind::Mnist, {2, 3, 6});
  BOOST_TEST(c.reject);
  BOOST_TEST(c.num_classes() == 4);
  BOOST_TEST(c.metadata.at("classes") == "2,3,6,reject");
  BOOST_TEST(c.metadata.at("train_count") == "360");  // 270 digits and 90 rejects
  BOOST_TEST(c.metadata.at("reject_test_count") == "30");
  BOOST_TEST(std::stod(c.metadata.at("test_accuracy")) >= 0.9);
  std::vector<std::string> header;
  jebm::test::csv_rows(f.reject / "metrics.csv", &header);
  BOOST_TEST(header.back() == "reject_accuracy");
  jebm::Classifier plain = jebm::load_classifier((f.plain / "classifier.safetensors").string());
  BOOST_TEST(!plain.reject);
  BOOST_TEST(plain.num_classes() == 3);

  // Fresh walkers' starting points: uniform on [-1, 1]^(14x14). A 3-class classifier can never say reject; a
  // guess would say it for a quarter of them.
  jebm::Generator gen{11, 0};
  const jebm::Tensor noise = jebm::rand_uniform({300, 1, 14, 14}, -1.0, 1.0, gen);
  const std::vector<int64_t> p = jebm::predict(c, noise);
  const double rejected = static_cast<double>(std::count(p.begin(), p.end(), 3)) / 300.0;
  BOOST_TEST(rejected > 0.9, "share of uniform noise labelled reject: " << rejected << " (chance 0.25)");
}

BOOST_AUTO_TEST_CASE(mnist_metrics_with_and_without_a_reject_class) {
  Fixture& f = fixture();
  BOOST_REQUIRE_EQUAL(f.rc_plain, 0);
  BOOST_REQUIRE_EQUAL(f.rc_reject, 0);
  TempDir out;
  const std::vector<std::string> run = {
      "--data", f.data.string(), "--downsample", "2", "--counts", "4,2,1", "--walkers", "8", "--burn-in", "3",
      "--moving-subsets", "1", "--moving-batch", "0", "--moves-per-update", "2", "--gradient-batch", "0",
      "--data-batch", "2", "--epochs", "2", "--h", "0.01", "--noise", "0.05", "--lr", "0.01", "--no-progress",
      "--threads", "1"};
  const fs::path with_reject = out.path / "reject", without = out.path / "plain";
  BOOST_REQUIRE_EQUAL(jebm::run_mnist(with(run, {"--out", with_reject.string(), "--classifier",
                                                 (f.reject / "classifier.safetensors").string()})), 0);
  BOOST_REQUIRE_EQUAL(jebm::run_mnist(with(run, {"--out", without.string(), "--classifier",
                                                 (f.plain / "classifier.safetensors").string()})), 0);
  std::vector<std::string> h_plain, h_reject;
  const auto rows_plain = jebm::test::csv_rows(without / "metrics.csv", &h_plain);
  const auto rows_reject = jebm::test::csv_rows(with_reject / "metrics.csv", &h_reject);
  // The 3-class run's columns are those jebm mnist always wrote; the reject run adds rejected_weight only.
  BOOST_TEST(std::count(h_plain.begin(), h_plain.end(), "rejected_weight") == 0);
  std::vector<std::string> want = h_plain;
  want.insert(std::find(want.begin(), want.end(), "confident_frac") + 1, "rejected_weight");
  BOOST_TEST(h_reject == want);
  const size_t w2 = jebm::test::csv_index(h_reject, "weight_2", with_reject);
  const size_t rw = jebm::test::csv_index(h_reject, "rejected_weight", with_reject);
  BOOST_REQUIRE(!rows_reject.empty());
  for (const auto& r : rows_reject) {
    BOOST_TEST((r[rw] >= 0.0 && r[rw] <= 1.0));
    if (r[rw] < 1.0) BOOST_TEST(r[w2] + r[w2 + 1] + r[w2 + 2] == 1.0, boost::test_tools::tolerance(1e-9));
  }
}
