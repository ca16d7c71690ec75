// Tests for experiments/classifier_cmd.{hpp,cpp}: `jebm mnist-classifier` on tiny synthetic IDX files (three
// easily separated patterns) trains, saves, reloads and classifies well; load_classifier rejects wrong kinds,
// classes and shapes naming the file; bad options name the option and value.
#include <cmath>
#include <cstdint>
#include <tuple>
#include <fstream>
#include <random>

#include "experiments/classifier_cmd.hpp"
#include "models/checkpoint.hpp"
#include "tests/helpers.hpp"
#include "tests/run_helpers.hpp"

namespace fs = std::filesystem;
using jebm::test::TempDir;

namespace {

// Writes {prefix}-images-idx3-ubyte and {prefix}-labels-idx1-ubyte with `per_digit` images of each digit of
// {2, 3, 6, 7}, interleaved.
void write_split(const fs::path& dir, const std::string& prefix, int per_digit, uint64_t seed) {
  jebm::test::write_mnist_split(dir, prefix, per_digit, seed, {2, 3, 6, 7}, 3, 60);
}

// The synthetic test images of digits 2, 3, 6 as a [N, 1, 28, 28] tensor in [-1, 1] and their class indices.
void synthetic_test_set(int per_digit, uint64_t seed, jebm::Tensor& images, std::vector<int64_t>& labels) {
  std::mt19937_64 rng(seed);
  std::vector<double> values;
  labels.clear();
  for (int i = 0; i < per_digit; ++i)
    for (int d : {2, 3, 6, 7}) {
      const std::vector<uint8_t> img = jebm::test::digit_pattern(d, rng, 3, 60);  // drawn even for 7 so the stream matches write_split
      if (d == 7) continue;
      for (uint8_t p : img) values.push_back(p / 127.5 - 1.0);
      labels.push_back(d == 2 ? 0 : d == 3 ? 1 : 2);
    }
  images = jebm::Tensor::from_vector(values, {static_cast<int64_t>(labels.size()), 1, 28, 28});
}

bool message_contains(const jebm::Error& e, const std::string& part) {
  const bool ok = std::string(e.what()).find(part) != std::string::npos;
  if (!ok) std::cerr << "error message '" << e.what() << "' lacks '" << part << "'\n";
  return ok;
}

// One trained run shared by the test cases (training takes a couple of seconds).
struct TrainedRun {
  TempDir tmp;
  fs::path data, out;
  int rc = -1;
  TrainedRun() {
    data = tmp.path / "mnist";
    out = tmp.path / "run";
    fs::create_directories(data);
    write_split(data, "train", 100, 1);
    write_split(data, "t10k", 30, 2);
    rc = jebm::run_mnist_classifier({"--data", data.string(), "--out", out.string(), "--epochs", "2",
                                     "--batch-size", "32", "--lr", "2e-3", "--seed", "3"});
  }
};

TrainedRun& trained() {
  static TrainedRun run;
  return run;
}

}  // namespace

BOOST_AUTO_TEST_CASE(mnist_classifier_trains_saves_and_reloads) {
  TrainedRun& r = trained();
  BOOST_TEST(r.rc == 0);
  const fs::path ckpt = r.out / "classifier.safetensors";
  BOOST_TEST_REQUIRE(fs::is_regular_file(ckpt));
  BOOST_TEST(fs::is_regular_file(r.out / "metrics.csv"));
  BOOST_TEST(fs::is_regular_file(r.out / "options.txt"));

  jebm::Classifier c = jebm::load_classifier(ckpt.string(), jebm::ClassifierKind::Mnist, {2, 3, 6});
  BOOST_TEST(c.num_classes() == 3);
  BOOST_TEST(c.metadata.at("epochs") == "2");
  BOOST_TEST(c.metadata.at("digits") == "2,3,6");
  BOOST_TEST(c.metadata.at("train_count") == "300");  // the 100 images of digit 7 are skipped
  BOOST_TEST(c.metadata.at("test_count") == "90");
  const double saved_acc = std::stod(c.metadata.at("test_accuracy"));
  BOOST_TEST(saved_acc >= 0.95);

  // The reloaded model reproduces the accuracy recorded at save time on the same test images.
  jebm::Tensor images;
  std::vector<int64_t> labels;
  synthetic_test_set(30, 2, images, labels);
  const double acc = jebm::accuracy(c, images, labels, /*batch_size=*/7);  // odd batch: a ragged last batch
  BOOST_TEST(acc == saved_acc, boost::test_tools::tolerance(1e-5));

  // predict == argmax of logits; features have the classifier's width, whatever the batch size.
  const std::vector<int64_t> p = jebm::predict(c, images, 16);
  jebm::ag::NoGradGuard no_grad;
  const jebm::Tensor logits = c.logits(jebm::ag::Var(images)).value();
  BOOST_TEST(p == jebm::argmax_rows(logits));
  // max_probability == the softmax at the argmax, computed here directly from the logits, whatever the batch.
  const std::vector<double> mp = jebm::max_probability(c, images, 16), l = logits.to_vector();
  BOOST_TEST_REQUIRE(mp.size() == 90u);
  for (size_t i = 0; i < mp.size(); ++i) {
    double z = 0.0;
    for (size_t j = 0; j < 3; ++j) z += std::exp(l[i * 3 + j]);
    const double want = std::exp(l[i * 3 + static_cast<size_t>(p[i])]) / z;
    BOOST_TEST(mp[i] == want, boost::test_tools::tolerance(1e-6));
  }
  const std::vector<double> mp_one_batch = jebm::max_probability(c, images, 1000);  // other GEMM sizes: last bits
  for (size_t i = 0; i < mp.size(); ++i) BOOST_TEST(mp_one_batch[i] == mp[i], boost::test_tools::tolerance(1e-6));
  const jebm::Tensor f1 = jebm::features(c, images, 16), f2 = jebm::features(c, images, 1000);
  BOOST_TEST((f1.shape() == jebm::Shape{90, jebm::MnistClassifier::kFeatureDim}));
  BOOST_TEST(jebm::test::all_close(f1, f2, 1e-6, 1e-5, "features by batch size"));
  BOOST_TEST(jebm::test::all_close(f1, c.features(jebm::ag::Var(images)).value(), 1e-6, 1e-5, "features"));
}

BOOST_AUTO_TEST_CASE(limit_uses_only_the_first_images_and_run_dir_is_not_overwritten) {
  TrainedRun& r = trained();
  // A second run into the same directory is refused without --force.
  BOOST_CHECK_THROW(jebm::run_mnist_classifier({"--data", r.data.string(), "--out", r.out.string(), "--epochs", "1"}),
                    std::exception);
  const fs::path out2 = r.tmp.path / "limited";
  BOOST_TEST(jebm::run_mnist_classifier({"--data", r.data.string(), "--out", out2.string(), "--epochs", "1",
                                         "--limit", "40", "--digits", "3,6"}) == 0);
  const jebm::Classifier c = jebm::load_classifier((out2 / "classifier.safetensors").string());
  BOOST_TEST(c.metadata.at("train_count") == "40");
  BOOST_TEST(c.metadata.at("test_count") == "60");
  BOOST_TEST((c.classes == std::vector<int>{3, 6}));
}

BOOST_AUTO_TEST_CASE(load_classifier_validates_the_checkpoint) {
  TrainedRun& r = trained();
  const std::string ckpt = (r.out / "classifier.safetensors").string();
  try {
    jebm::load_classifier(ckpt, jebm::ClassifierKind::Cifar10);
    BOOST_FAIL("wrong kind accepted");
  } catch (const jebm::Error& e) {
    BOOST_TEST(message_contains(e, ckpt));
    BOOST_TEST(message_contains(e, "cifar10"));
  }
  try {
    jebm::load_classifier(ckpt, std::nullopt, {1, 2, 3});
    BOOST_FAIL("wrong classes accepted");
  } catch (const jebm::Error& e) {
    BOOST_TEST(message_contains(e, "2,3,6"));
  }
  const std::string missing = (r.tmp.path / "nope.safetensors").string();
  try {
    jebm::load_classifier(missing);
    BOOST_FAIL("missing file accepted");
  } catch (const jebm::Error& e) {
    BOOST_TEST(message_contains(e, missing));
  }

  // A tensor of the wrong shape, and a file without the classifier metadata.
  jebm::SafeTensors st = jebm::load_safetensors(ckpt);
  std::vector<std::pair<std::string, jebm::Tensor>> tensors(st.tensors.begin(), st.tensors.end());
  for (auto& [name, t] : tensors)
    if (name == "head.weight") t = jebm::Tensor::zeros({4, jebm::MnistClassifier::kFeatureDim});
  const std::string bad_shape = (r.tmp.path / "bad_shape.safetensors").string();
  jebm::save_safetensors(bad_shape, tensors, st.metadata);
  try {
    jebm::load_classifier(bad_shape);
    BOOST_FAIL("wrong shape accepted");
  } catch (const jebm::Error& e) {
    BOOST_TEST(message_contains(e, "head.weight"));
    BOOST_TEST(message_contains(e, bad_shape));
  }
  const std::string no_meta = (r.tmp.path / "no_meta.safetensors").string();
  jebm::save_safetensors(no_meta, {tensors.front()});
  try {
    jebm::load_classifier(no_meta);
    BOOST_FAIL("file without metadata accepted");
  } catch (const jebm::Error& e) {
    BOOST_TEST(message_contains(e, "format"));
  }
}

BOOST_AUTO_TEST_CASE(bad_options_name_the_option_and_value) {
  TempDir tmp;
  const std::string bad = (tmp.path / "no-such-dir").string();
  try {
    jebm::run_mnist_classifier({"--data", bad, "--out", (tmp.path / "out").string()});
    BOOST_FAIL("missing --data directory accepted");
  } catch (const jebm::Error& e) {
    BOOST_TEST(message_contains(e, bad));
    BOOST_TEST(message_contains(e, "--data"));
  }
  // An existing directory without MNIST files: the loader names the file it looked for.
  try {
    jebm::run_mnist_classifier({"--data", tmp.path.string(), "--out", (tmp.path / "out").string()});
    BOOST_FAIL("empty --data directory accepted");
  } catch (const jebm::Error& e) {
    BOOST_TEST(message_contains(e, tmp.path.string()));
  }
  try {
    jebm::run_mnist_classifier({"--data", tmp.path.string(), "--out", (tmp.path / "out").string(), "--digits", "2,2"});
    BOOST_FAIL("repeated digit accepted");
  } catch (const jebm::Error& e) {
    BOOST_TEST(message_contains(e, "--digits"));
  }
  BOOST_CHECK_THROW(jebm::run_mnist_classifier({"--data", tmp.path.string(), "--out", (tmp.path / "out").string(),
                                                "--epochs", "0"}),
                    jebm::Error);
  // Every numeric option has a range, checked at parse time (--lr inf used to pass the old check only by luck).
  for (const auto& [opt, val, range] : std::vector<std::tuple<std::string, std::string, std::string>>{
           {"--lr", "inf", "(> 0)"}, {"--lr", "nan", "(> 0)"}, {"--batch-size", "0", "(>= 1)"},
           {"--limit", "-1", "(>= 0)"}, {"--threads", "100000", "(in [0, 4096])"}}) {
    try {
      jebm::run_mnist_classifier({"--data", tmp.path.string(), "--out", (tmp.path / "out").string(), opt, val});
      BOOST_ERROR(opt << " " << val << " accepted");
    } catch (const jebm::Error& e) {
      BOOST_TEST(message_contains(e, opt + " " + val + " is outside its range " + range));
    }
  }
  BOOST_TEST(jebm::run_mnist_classifier({"--help"}) == 0);
}
