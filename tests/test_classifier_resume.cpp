// Tests for the classifier runs' --resume (experiments/classifier_checkpoint.*, classifier_training.*): a run of
// `jebm mnist-classifier` stopped after epoch 2 of 3 and resumed ends bit-identical to an uninterrupted 3-epoch
// run (classifier, checkpoint, metrics rows; a row written after the last checkpoint is redone); a finished run has
// nothing to do and is left untouched; a missing or damaged checkpoint, or a changed --epochs, is refused naming
// the file or the option. Tiny synthetic IDX data.
#include <cstring>
#include <fstream>
#include <map>

#include "experiments/classifier_cmd.hpp"
#include "models/checkpoint.hpp"
#include "runtime/file_io.hpp"
#include "tests/helpers.hpp"
#include "tests/run_helpers.hpp"

namespace fs = std::filesystem;
using jebm::test::TempDir;

namespace {

// The synthetic data and the options of a small 3-epoch run.
struct Data {
  TempDir tmp;
  fs::path dir;
  Data() : dir(tmp.path / "mnist") {
    fs::create_directories(dir);
    jebm::test::write_mnist_split(dir, "train", 40, 1, {2, 3, 6}, 3, 60);
    jebm::test::write_mnist_split(dir, "t10k", 10, 2, {2, 3, 6}, 3, 60);
  }
  // The uninterrupted run (made once).
  const fs::path& straight() {
    if (!fs::exists(tmp.path / "straight" / "classifier.safetensors"))
      BOOST_TEST_REQUIRE(jebm::run_mnist_classifier(args(tmp.path / "straight")) == 0);
    static const fs::path p = tmp.path / "straight";
    return p;
  }
  std::vector<std::string> args(const fs::path& out) const {
    return {"--data", dir.string(), "--out", out.string(), "--epochs", "3", "--batch-size", "16",
            "--lr", "2e-3", "--seed", "5", "--threads", "1", "--no-progress"};
  }
};

Data& data() {
  static Data d;
  return d;
}

bool message_contains(const jebm::Error& e, const std::string& part) {
  const bool ok = std::string(e.what()).find(part) != std::string::npos;
  if (!ok) std::cerr << "error message '" << e.what() << "' lacks '" << part << "'\n";
  return ok;
}

// metrics.csv without its last column (the wall time).
std::vector<std::vector<double>> rows_without_time(const fs::path& csv) {
  std::vector<std::vector<double>> rows = jebm::test::csv_rows(csv);
  for (auto& r : rows) r.pop_back();
  return rows;
}

// Every file of a directory with its bytes and modification time.
std::map<std::string, std::pair<std::string, fs::file_time_type>> snapshot(const fs::path& dir) {
  std::map<std::string, std::pair<std::string, fs::file_time_type>> s;
  for (const auto& e : fs::directory_iterator(dir))
    s[e.path().filename().string()] = {jebm::read_file(e.path().string()), fs::last_write_time(e.path())};
  return s;
}

// A run stopped after epoch 2 (as Ctrl-C would), left for the test to resume.
fs::path interrupted_run(const std::string& name) {
  const fs::path out = data().tmp.path / name;
  BOOST_TEST(jebm::run_mnist_classifier(jebm::test::with(data().args(out), {"--interrupt-at", "2"})) == 130);
  BOOST_TEST(!fs::exists(out / "classifier.safetensors"));
  return out;
}

}  // namespace

BOOST_AUTO_TEST_CASE(resumed_run_is_bit_identical_to_an_uninterrupted_one) {
  const fs::path straight = data().straight();
  const fs::path resumed = interrupted_run("resumed");
  BOOST_TEST(rows_without_time(resumed / "metrics.csv").size() == 2u);
  {  // As if killed after epoch 3's row but before its checkpoint: the resume drops the row and redoes the epoch.
    std::ofstream csv(resumed / "metrics.csv", std::ios::app);
    csv << "3,9,9,9,9,9\n";
  }
  // Only the options that do not change the result may differ on resume.
  BOOST_TEST_REQUIRE(jebm::run_mnist_classifier({"--resume", resumed.string(), "--threads", "2"}) == 0);

  jebm::test::check_identical_checkpoints((straight / "checkpoint.safetensors").string(),
                                          (resumed / "checkpoint.safetensors").string());
  const jebm::SafeTensors a = jebm::load_safetensors((straight / "classifier.safetensors").string());
  const jebm::SafeTensors b = jebm::load_safetensors((resumed / "classifier.safetensors").string());
  BOOST_TEST_REQUIRE(a.tensors.size() == b.tensors.size());
  for (const auto& [name, t] : a.tensors) {
    BOOST_TEST_REQUIRE(b.tensors.count(name));
    const jebm::Tensor& u = b.tensors.at(name);
    BOOST_TEST_REQUIRE((t.shape() == u.shape()));
    BOOST_TEST(std::memcmp(t.raw_data(), u.raw_data(), t.nbytes()) == 0, "tensor " << name);
  }
  BOOST_TEST(a.metadata.at("test_accuracy") == b.metadata.at("test_accuracy"));
  const auto rows = rows_without_time(straight / "metrics.csv");
  BOOST_TEST(rows.size() == 3u);
  BOOST_TEST(jebm::test::same_bits(rows, rows_without_time(resumed / "metrics.csv")));
  BOOST_TEST(jebm::read_file((resumed / "options.txt").string()).find("# jebm.resumed") != std::string::npos);

  // A finished run: nothing to do, exit 0, no file touched (jebm.lock included: none is created).
  const auto before = snapshot(resumed);
  BOOST_TEST(jebm::run_mnist_classifier({"--resume", resumed.string()}) == 0);
  BOOST_TEST((snapshot(resumed) == before));
}

BOOST_AUTO_TEST_CASE(a_run_stopped_before_its_first_epoch_resumes_from_the_start) {
  const fs::path out = data().tmp.path / "early";
  BOOST_TEST(jebm::run_mnist_classifier(jebm::test::with(data().args(out), {"--interrupt-at", "0"})) == 130);
  BOOST_TEST(rows_without_time(out / "metrics.csv").empty());
  BOOST_TEST_REQUIRE(jebm::run_mnist_classifier({"--resume", out.string()}) == 0);
  jebm::test::check_identical_checkpoints((data().straight() / "checkpoint.safetensors").string(),
                                          (out / "checkpoint.safetensors").string());
}

BOOST_AUTO_TEST_CASE(bad_resumes_are_refused_naming_the_file_or_option) {
  const fs::path out = interrupted_run("bad");
  const std::string ckpt = (out / "checkpoint.safetensors").string();
  // --epochs fixes the learning-rate schedule: it cannot change.
  try {
    jebm::run_mnist_classifier({"--resume", out.string(), "--epochs", "4"});
    BOOST_FAIL("a changed --epochs accepted");
  } catch (const jebm::Error& e) {
    BOOST_TEST(message_contains(e, "--epochs"));
  }
  // A damaged checkpoint: named, and the run directory is left as it was.
  const std::string good = jebm::read_file(ckpt);
  {
    std::ofstream f(ckpt, std::ios::binary | std::ios::trunc);
    f << good.substr(0, good.size() / 2);
  }
  const auto before = snapshot(out);
  try {
    jebm::run_mnist_classifier({"--resume", out.string()});
    BOOST_FAIL("a damaged checkpoint accepted");
  } catch (const jebm::UserError& e) {
    BOOST_TEST(message_contains(e, ckpt));
  }
  BOOST_TEST((snapshot(out) == before));
  // A missing one.
  fs::remove(ckpt);
  try {
    jebm::run_mnist_classifier({"--resume", out.string()});
    BOOST_FAIL("a missing checkpoint accepted");
  } catch (const jebm::UserError& e) {
    BOOST_TEST(message_contains(e, ckpt));
  }
  // Not a run directory at all.
  try {
    jebm::run_mnist_classifier({"--resume", (data().tmp.path / "nowhere").string()});
    BOOST_FAIL("a missing run directory accepted");
  } catch (const jebm::UserError& e) {
    BOOST_TEST(message_contains(e, "options.txt"));
  }
}
