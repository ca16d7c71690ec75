// Tests for the CPU-scale MNIST setup (docs/experiments.md) on tiny synthetic IDX files: `jebm mnist-classifier
// --downsample 2` and `jebm mnist --downsample 2 --classifier` end to end (14x14 walkers, checkpoint and options
// record the size, `jebm sample` draws 14x14 digits); a classifier of another image size or other digits, or a
// missing one, stops `jebm mnist` before any work, naming the option, the file and both values; the presets
// experiments/presets/mnist-cpu.ini and mnist-cpu-14x14.ini start, write their outputs and resume bit-identically
// after a Ctrl-C; the
// --weight-kernel choice is recorded in options.txt and the checkpoint and cannot change on resume.
#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "experiments/classifier_cmd.hpp"
#include "experiments/image_ebm.hpp"
#include "experiments/png.hpp"
#include "models/checkpoint.hpp"
#include "runtime/file_io.hpp"
#include "tests/helpers.hpp"
#include "tests/run_helpers.hpp"

namespace jebm {
int run_mnist(const std::vector<std::string>& args);
int run_sample(const std::vector<std::string>& args);
}  // namespace jebm

namespace fs = std::filesystem;
using jebm::test::check_identical_checkpoints;
using jebm::test::csv_rows;
using jebm::test::expect_error;
using jebm::test::same_bits;
using jebm::test::TempDir;
using jebm::test::with;

namespace {

// Train and test files with the digits 2, 3, 6 and 7 (the 7s must be skipped), and two classifiers trained on
// them: 14x14 (--downsample 2) and 28x28. Shared by the test cases (training takes a few seconds).
struct Fixture {
  TempDir tmp;
  fs::path data, clf14, clf28;
  int rc14 = -1, rc28 = -1;
  Fixture() {
    data = tmp.path / "mnist";
    fs::create_directories(data);
    jebm::test::write_mnist_split(data, "train", 60, 1, {7, 2, 3, 6}, 2, 40);
    jebm::test::write_mnist_split(data, "t10k", 20, 2, {7, 2, 3, 6}, 2, 40);
    const std::vector<std::string> base = {"--data", data.string(), "--batch-size", "32", "--lr", "2e-3",
                                           "--seed", "3", "--threads", "1"};
    rc14 = jebm::run_mnist_classifier(with(base, {"--out", (tmp.path / "clf14").string(), "--downsample", "2",
                                                  "--epochs", "2"}));
    rc28 = jebm::run_mnist_classifier(with(base, {"--out", (tmp.path / "clf28").string(), "--epochs", "1"}));
    clf14 = tmp.path / "clf14" / "classifier.safetensors";
    clf28 = tmp.path / "clf28" / "classifier.safetensors";
  }
};

Fixture& fixture() {
  static Fixture f;
  return f;
}

// A tiny `jebm mnist` run: 7 images (4 twos, 2 threes, 1 six), batch 2 -> 3 updates per epoch.
std::vector<std::string> tiny_args(const fs::path& data, const fs::path& out) {
  return {"--data", data.string(), "--out", out.string(), "--counts", "4,2,1", "--walkers", "8", "--burn-in", "3",
          "--moving-subsets", "1", "--moving-batch", "0", "--moves-per-update", "2", "--gradient-batch", "0",
          "--data-batch", "2", "--epochs", "2", "--h", "0.01", "--noise", "0.05", "--lr", "0.01",
          "--grid-every", "1", "--grid-count", "6", "--no-progress", "--threads", "1"};
}

bool has_line(const fs::path& file, const std::string& line) {
  return ("\n" + jebm::read_file(file.string()) + "\n").find("\n" + line + "\n") != std::string::npos;
}

// Width or height of a PNG grid of `cells` images of side `side` (a 2-pixel frame around each, see png.hpp).
int64_t grid_extent(int64_t cells, int64_t side) { return cells * (side + 2) + 2; }

}  // namespace

BOOST_AUTO_TEST_CASE(downsampled_classifier_and_run_end_to_end) {
  Fixture& f = fixture();
  BOOST_REQUIRE_EQUAL(f.rc14, 0);
  BOOST_TEST(has_line(f.clf14.parent_path() / "options.txt", "downsample = 2"));
  const jebm::Classifier c = jebm::load_classifier(f.clf14.string(), jebm::ClassifierKind::Mnist, {2, 3, 6});
  BOOST_TEST(c.image_size == 14);
  BOOST_TEST(c.metadata.at("image_size") == "14x14");
  BOOST_TEST((c.input_shape() == jebm::Shape{1, 14, 14}));
  BOOST_TEST(c.metadata.at("train_count") == "180");  // the 60 sevens are skipped
  BOOST_TEST(std::stod(c.metadata.at("test_accuracy")) >= 0.9, "the bars stay easy to tell apart at 14x14");
  BOOST_TEST(jebm::load_classifier(f.clf28.string()).metadata.at("image_size") == "28x28");

  TempDir out;
  const fs::path run = out.path / "run";
  BOOST_REQUIRE_EQUAL(
      jebm::run_mnist(with(tiny_args(f.data, run), {"--downsample", "2", "--classifier", f.clf14.string()})), 0);
  BOOST_TEST(has_line(run / "options.txt", "downsample = 2"));
  const jebm::SafeTensors st = jebm::load_safetensors(jebm::image_ebm_checkpoint_path(run.string()));
  BOOST_TEST(jebm::get(st, "walkers.x").shape() == (jebm::Shape{8, 1, 14, 14}));
  std::vector<std::string> header;
  const auto rows = csv_rows(run / "metrics.csv", &header);
  BOOST_REQUIRE_EQUAL(rows.size(), 6u);  // 2 epochs x 3 updates
  BOOST_TEST(header.back() == "weight_6");
  for (const auto& r : rows) BOOST_TEST(r[r.size() - 3] + r[r.size() - 2] + r.back() == 1.0, boost::test_tools::tolerance(1e-9));
  // Grids of 14x14 images: 6 walkers in 3 columns, 7 data images in 3 columns.
  const jebm::PngImage final_grid = jebm::read_png((run / "samples_final.png").string());
  BOOST_TEST(final_grid.width == grid_extent(3, 14));
  BOOST_TEST(final_grid.height == grid_extent(2, 14));

  // jebm sample draws images of the run's size, from noise and from the saved walkers.
  const fs::path sampled = out.path / "sampled", grid = sampled / "samples.png";
  const std::vector<std::string> sample = {"--checkpoint", jebm::image_ebm_checkpoint_path(run.string()), "--out",
                                           sampled.string(), "--n", "4", "--columns", "4", "--no-progress",
                                           "--threads", "1", "--force"};
  BOOST_REQUIRE_EQUAL(jebm::run_sample(with(sample, {"--steps", "2"})), 0);
  jebm::PngImage g = jebm::read_png(grid.string());
  BOOST_TEST(g.width == grid_extent(4, 14));
  BOOST_TEST(g.height == grid_extent(1, 14));
  BOOST_REQUIRE_EQUAL(jebm::run_sample(with(sample, {"--steps", "0", "--from", "checkpoint-walkers"})), 0);
  const fs::path direct = out.path / "direct.png";
  jebm::write_image_grid(direct.string(), jebm::get(st, "walkers.x").rows(0, 4), 4);
  BOOST_TEST(jebm::read_png(grid.string()).pixels == jebm::read_png(direct.string()).pixels);

  // A resume with another --downsample is refused, and the run's options.txt stays as it was.
  const std::string options_before = jebm::read_file((run / "options.txt").string());
  expect_error([&] { jebm::run_mnist({"--resume", run.string(), "--downsample", "1", "--epochs", "3", "--no-progress"}); },
               {"--downsample 2 (its options.txt), the options say --downsample 1"});
  BOOST_TEST(jebm::read_file((run / "options.txt").string()) == options_before);
}

BOOST_AUTO_TEST_CASE(classifier_of_another_size_or_other_digits_stops_the_run_before_any_work) {
  Fixture& f = fixture();
  BOOST_REQUIRE_EQUAL(f.rc14, 0);
  BOOST_REQUIRE_EQUAL(f.rc28, 0);
  TempDir out;
  const fs::path run = out.path / "run";
  const auto args = tiny_args(f.data, run);
  expect_error([&] { jebm::run_mnist(with(args, {"--downsample", "2", "--classifier", f.clf28.string()})); },
               {"--classifier '" + f.clf28.string() + "'", "28x28", "14x14", "--downsample 2"});
  expect_error([&] { jebm::run_mnist(with(args, {"--classifier", f.clf14.string()})); },
               {"--classifier '" + f.clf14.string() + "'", "14x14", "28x28", "--downsample 1"});
  expect_error([&] {
    jebm::run_mnist(with(args, {"--downsample", "2", "--classifier", f.clf14.string(), "--digits", "2,3",
                                "--counts", "4,2"}));
  }, {"--classifier '" + f.clf14.string() + "'", "digits 2,3,6", "--digits is 2,3"});
  const std::string missing = (out.path / "none.safetensors").string();
  expect_error([&] { jebm::run_mnist(with(args, {"--classifier", missing})); },
               {"--classifier '" + missing + "': no such file"});
  expect_error([&] { jebm::run_mnist(with(args, {"--downsample", "3"})); }, {"--downsample 3"});
  BOOST_TEST(!fs::exists(run), "a refused start must not create the run directory");

  // Classifier checkpoints from before the image_size field are 28x28; an unknown size is an error.
  jebm::SafeTensors st = jebm::load_safetensors(f.clf28.string());
  std::vector<std::pair<std::string, jebm::Tensor>> tensors(st.tensors.begin(), st.tensors.end());
  st.metadata.erase("image_size");
  const std::string old = (out.path / "old.safetensors").string();
  jebm::save_safetensors(old, tensors, st.metadata);
  BOOST_TEST(jebm::load_classifier(old).image_size == 28);
  expect_error([&] { jebm::run_mnist(with(args, {"--downsample", "2", "--classifier", old})); },
               {"--classifier '" + old + "'", "28x28", "14x14"});
  st.metadata["image_size"] = "15x15";
  const std::string odd = (out.path / "odd.safetensors").string();
  jebm::save_safetensors(odd, tensors, st.metadata);
  expect_error([&] { jebm::load_classifier(odd); }, {odd, "image_size is '15x15'"});
  BOOST_TEST(!fs::exists(run));

  // mnist-classifier refuses a bad factor before writing anything.
  const fs::path clf_out = out.path / "clf";
  expect_error([&] {
    jebm::run_mnist_classifier({"--data", f.data.string(), "--out", clf_out.string(), "--downsample", "4"});
  }, {"--downsample 4"});
  BOOST_TEST(!fs::exists(clf_out));
}

namespace {

fs::path preset_path(const std::string& name) { return fs::path(JEBM_SOURCE_DIR) / "experiments" / "presets" / name; }

// A preset as documented, shrunk by command-line overrides: 3 updates per epoch, seconds in all.
std::vector<std::string> preset_args(const fs::path& preset, const fs::path& data, const std::string& clf,
                                     const fs::path& run) {
  return {"--config", preset.string(), "--data", data.string(), "--classifier", clf, "--out", run.string(),
          "--counts", "4,2,1", "--walkers", "8", "--moving-batch", "4", "--gradient-batch", "4", "--burn-in", "3",
          "--epochs", "3", "--data-batch", "2", "--log-every", "1", "--no-progress", "--threads", "1"};
}

// An untrained classifier of digits 2, 3, 6 on side x side images (enough for the per-digit columns), saved in dir.
std::string untrained_classifier(const fs::path& dir, int64_t side) {
  const std::string path = (dir / ("clf" + std::to_string(side) + ".safetensors")).string();
  jebm::Classifier clf = jebm::make_classifier(jebm::ClassifierKind::Mnist, {2, 3, 6}, 3, side);
  jebm::save_classifier(path, clf, {});
  return path;
}

// The preset runs with the classifier clf_path of its image side, writes its outputs with the preset's values
// (`lines`) in options.txt, and after a Ctrl-C, --resume alone gives the same checkpoint and CSV as the
// uninterrupted run. Returns the uninterrupted run's directory.
fs::path check_preset_runs_and_resumes(const fs::path& preset, int64_t side, const std::string& clf_path,
                                       const std::vector<std::string>& lines, const fs::path& data,
                                       const fs::path& out) {
  BOOST_REQUIRE_MESSAGE(fs::is_regular_file(preset), preset);
  const fs::path full = out / "full", cut = out / "cut";
  BOOST_REQUIRE_EQUAL(jebm::run_mnist(preset_args(preset, data, clf_path, full)), 0);
  for (const char* file : {"options.txt", "metrics.csv", "metrics.svg", "data.png", "samples_burnin.png",
                           "samples_final.png", "checkpoint.safetensors"})
    BOOST_TEST(fs::is_regular_file(full / file), file);
  for (const std::string& line : lines) BOOST_TEST(has_line(full / "options.txt", line), line);
  const jebm::SafeTensors st = jebm::load_safetensors(jebm::image_ebm_checkpoint_path(full.string()));
  BOOST_TEST(jebm::get(st, "walkers.x").shape() == (jebm::Shape{8, 1, side, side}));
  BOOST_TEST(st.metadata.at("weight_kernel") == "2h");
  BOOST_TEST(st.metadata.at("iteration") == "9");

  // Ctrl-C after update 4 (mid-epoch), then --resume alone: the same checkpoint and CSV as the uninterrupted run.
  BOOST_REQUIRE_EQUAL(jebm::run_mnist(with(preset_args(preset, data, clf_path, cut), {"--interrupt-at", "4"})), 130);
  BOOST_TEST(jebm::load_safetensors(jebm::image_ebm_checkpoint_path(cut.string())).metadata.at("iteration") == "5");
  BOOST_REQUIRE_EQUAL(jebm::run_mnist({"--resume", cut.string(), "--no-progress"}), 0);
  check_identical_checkpoints(jebm::image_ebm_checkpoint_path(full.string()),
                              jebm::image_ebm_checkpoint_path(cut.string()));
  BOOST_TEST(same_bits(csv_rows(full / "metrics.csv"), csv_rows(cut / "metrics.csv")));
  return full;
}

}  // namespace

// The 14x14 preset of the claim (warm moves after resampling, 120 epochs), for both algorithms: PCD ignores
// --rejuvenation-moves (bit for bit the run without it), so one file serves both.
BOOST_AUTO_TEST_CASE(preset_14x14_runs_and_resumes_bit_identically) {
  TempDir data, out;
  jebm::test::write_mnist_split(data.path, "train", 5, 7, {7, 2, 3, 6}, 2, 40);
  const fs::path preset = preset_path("mnist-cpu-14x14.ini");
  const std::string clf = untrained_classifier(out.path, 14);
  check_preset_runs_and_resumes(preset, 14, clf,
                                {"downsample = 2", "rejuvenation-moves = 1", "moves-per-update = 20",
                                 "weight-kernel = 2h", "resample-after-epoch = 0", "h = 0.01",
                                 "lr-decay-epochs = 1000"},
                                data.path, out.path);
  const fs::path pcd = out.path / "pcd", pcd0 = out.path / "pcd-no-rejuvenation";
  BOOST_REQUIRE_EQUAL(jebm::run_mnist(with(preset_args(preset, data.path, clf, pcd), {"--algo", "pcd"})), 0);
  BOOST_REQUIRE_EQUAL(
      jebm::run_mnist(with(preset_args(preset, data.path, clf, pcd0), {"--algo", "pcd", "--rejuvenation-moves", "0"})), 0);
  check_identical_checkpoints(jebm::image_ebm_checkpoint_path(pcd.string()), jebm::image_ebm_checkpoint_path(pcd0.string()));
  BOOST_TEST(same_bits(csv_rows(pcd / "metrics.csv"), csv_rows(pcd0 / "metrics.csv")));
}

BOOST_AUTO_TEST_CASE(preset_file_runs_and_resumes_bit_identically) {
  const fs::path preset = preset_path("mnist-cpu.ini");
  TempDir data, out;
  jebm::test::write_mnist_split(data.path, "train", 5, 7, {7, 2, 3, 6}, 2, 40);
  const std::string clf_path = untrained_classifier(out.path, 28);
  const auto args = [&](const fs::path& run) { return preset_args(preset, data.path, clf_path, run); };
  const fs::path full = check_preset_runs_and_resumes(
      preset, 28, clf_path,
      {"downsample = 1", "walkers = 8", "moves-per-update = 20", "moving-subsets = 1", "weight-kernel = 2h",
       "resample-after-epoch = 0", "grid-every = 20", "h = 0.01", "lr-decay-epochs = 1000", "rejuvenation-moves = 0"},
      data.path, out.path);

  // The claim's readings: tv_to_target is 0.5 sum |weight_d - target_d| of the same row (counts 4,2,1), and
  // confident_frac a fraction.
  std::vector<std::string> header;
  const auto rows = csv_rows(full / "metrics.csv", &header);
  const auto raw_col = [&](const std::string& name) {  // index in the file's lines
    const auto it = std::find(header.begin(), header.end(), name);
    BOOST_REQUIRE_MESSAGE(it != header.end(), "metrics.csv has no column " << name);
    return static_cast<size_t>(it - header.begin());
  };
  const auto col = [&](const std::string& name) { return jebm::test::csv_index(header, name, full / "metrics.csv"); };
  const size_t tv = col("tv_to_target"), conf = col("confident_frac"), w2 = col("weight_2");
  for (const auto& r : rows) {
    const double want = 0.5 * (std::fabs(r[w2] - 4.0 / 7) + std::fabs(r[w2 + 1] - 2.0 / 7) + std::fabs(r[w2 + 2] - 1.0 / 7));
    BOOST_TEST(r[tv] == want, boost::test_tools::tolerance(1e-9));
    BOOST_TEST((r[conf] >= 0.0 && r[conf] <= 1.0));
  }

  // A run started before those columns existed resumes with its own header (no column changes under its rows).
  const fs::path old_run = out.path / "old";
  BOOST_REQUIRE_EQUAL(jebm::run_mnist(with(args(old_run), {"--interrupt-at", "4"})), 130);
  {
    std::ifstream in(old_run / "metrics.csv");
    std::ostringstream kept;
    for (std::string line; std::getline(in, line);) {
      std::vector<std::string> cells;
      std::stringstream ss(line);
      for (std::string cell; std::getline(ss, cell, ',');) cells.push_back(cell);
      const auto first = static_cast<std::ptrdiff_t>(raw_col("tv_to_target"));
      cells.erase(cells.begin() + first, cells.begin() + first + 2);  // tv_to_target, confident_frac
      for (size_t i = 0; i < cells.size(); ++i) kept << (i ? "," : "") << cells[i];
      kept << "\n";
    }
    std::ofstream(old_run / "metrics.csv") << kept.str();
  }
  BOOST_REQUIRE_EQUAL(jebm::run_mnist({"--resume", old_run.string(), "--no-progress"}), 0);
  std::vector<std::string> old_header;
  const auto old_rows = csv_rows(old_run / "metrics.csv", &old_header);
  BOOST_TEST(old_rows.size() == rows.size());
  BOOST_TEST((std::find(old_header.begin(), old_header.end(), "tv_to_target") == old_header.end()));
  BOOST_TEST(old_header.size() == header.size() - 2);

  // A config file that is not there is named, and nothing is written.
  const std::string missing = (out.path / "no-such-preset.ini").string();
  const fs::path never = out.path / "never";
  expect_error([&] { jebm::run_mnist(with(args(never), {"--config", missing})); }, {"--config " + missing});
  BOOST_TEST(!fs::exists(never));
}

BOOST_AUTO_TEST_CASE(weight_kernel_is_recorded_and_cannot_change_on_resume) {
  TempDir data, out;
  jebm::test::write_mnist_split(data.path, "train", 5, 7, {7, 2, 3, 6}, 2, 40);
  const fs::path run = out.path / "run";
  BOOST_REQUIRE_EQUAL(jebm::run_mnist(with(tiny_args(data.path, run), {"--weight-kernel", "sigma",
                                                                       "--interrupt-at", "1"})), 130);
  BOOST_TEST(has_line(run / "options.txt", "weight-kernel = sigma"));
  BOOST_TEST(jebm::load_safetensors(jebm::image_ebm_checkpoint_path(run.string())).metadata.at("weight_kernel") ==
             "sigma");
  const std::string options_before = jebm::read_file((run / "options.txt").string());
  expect_error([&] { jebm::run_mnist({"--resume", run.string(), "--weight-kernel", "2h", "--no-progress"}); },
               {"--weight-kernel sigma", "the options say --weight-kernel 2h"});
  BOOST_TEST(jebm::read_file((run / "options.txt").string()) == options_before);
  expect_error([&] { jebm::run_mnist(with(tiny_args(data.path, out.path / "bad"), {"--weight-kernel", "4h"})); },
               {"--weight-kernel 4h"});
  BOOST_REQUIRE_EQUAL(jebm::run_mnist({"--resume", run.string(), "--no-progress"}), 0);
  BOOST_TEST(jebm::load_safetensors(jebm::image_ebm_checkpoint_path(run.string())).metadata.at("weight_kernel") ==
             "sigma");
}
