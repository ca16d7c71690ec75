// The end-of-run summary of the image runs, through the jebm binary: every line at most 100 columns, '-' (never
// "nan") where a value does not apply, one verdict line against the truth (the walkers' class weights from a
// classifier next to the --counts proportions), and a last "wrote" line that names every file the run wrote,
// checkpoint included. Also the summary helpers (experiments/summary_text.hpp).
#include <boost/test/unit_test.hpp>

#include <filesystem>
#include <string>
#include <vector>

#include "experiments/summary_text.hpp"
#include "tests/binary_helpers.hpp"
#include "tests/run_helpers.hpp"

namespace fs = std::filesystem;
using jebm::test::lines_of;
using jebm::test::Ran;
using jebm::test::run_jebm;

namespace {

// A tiny `jebm mnist` run on synthetic digits 2, 3, 6 (counts 4, 2, 1).
std::vector<std::string> mnist_args(const fs::path& data, const fs::path& out, const std::string& algo) {
  return {"mnist", "--data", data.string(), "--out", out.string(), "--algo", algo, "--counts", "4,2,1",
          "--walkers", "8", "--burn-in", "3", "--moving-subsets", "2", "--moving-batch", "3",
          "--moves-per-update", "2", "--gradient-batch", "4", "--data-batch", "3", "--epochs", "2", "--h", "0.01",
          "--noise", "0.05", "--grid-count", "4", "--no-progress", "--threads", "1"};
}

// The summary's shape: short lines, no nan, one verdict, a last line naming every file of the run directory.
void check_summary(const Ran& r, const fs::path& out, const std::string& verdict) {
  BOOST_TEST_INFO("stdout:\n" << r.out << "stderr:\n" << r.err);
  BOOST_REQUIRE_EQUAL(r.code, 0);
  const std::vector<std::string> lines = lines_of(r.out);
  BOOST_REQUIRE(lines.size() >= 4u);
  int verdicts = 0;
  for (const auto& l : lines) {
    BOOST_TEST(l.size() <= 100u, "too wide: " << l);
    BOOST_TEST(l.find("nan") == std::string::npos, l);
    if (l.rfind("  verdict: ", 0) == 0) {
      ++verdicts;
      BOOST_TEST(l.find(verdict) != std::string::npos, l);
    }
  }
  BOOST_TEST(verdicts == 1);
  // The "wrote" line (it may wrap) ends the summary and names every file in the run directory.
  size_t first = lines.size();
  while (first > 0 && lines[first - 1].rfind("  wrote ", 0) != 0) --first;
  BOOST_REQUIRE(first > 0);
  std::string wrote;
  for (size_t i = first - 1; i < lines.size(); ++i) wrote += lines[i] + " ";
  for (const auto& e : fs::directory_iterator(out)) {
    const std::string name = e.path().filename().string();
    if (name != "jebm.lock") BOOST_TEST(wrote.find(name) != std::string::npos, "wrote line lacks " << name);
  }
  BOOST_TEST(wrote.find("checkpoint.safetensors") != std::string::npos);
}

}  // namespace

BOOST_AUTO_TEST_CASE(image_summary_reads_at_a_glance) {
  const jebm::test::TempDir tmp;
  const fs::path data = tmp.path / "data";
  fs::create_directories(data);
  jebm::test::write_mnist_split(data, "train", 12, 7, {2, 3, 6}, 2, 40);
  jebm::test::write_mnist_split(data, "t10k", 6, 8, {2, 3, 6}, 2, 40);
  // A classifier of digits 2, 3, 6 (barely trained: the test is about the summary, not its numbers).
  const fs::path clf = tmp.path / "clf";
  const Ran trained = run_jebm({"mnist-classifier", "--data", data.string(), "--out", clf.string(), "--epochs", "1",
                                "--limit", "24", "--no-progress", "--threads", "1"});
  BOOST_TEST_INFO(trained.err);
  BOOST_REQUIRE_EQUAL(trained.code, 0);
  for (const std::string algo : {"jarzynski", "pcd"}) {
    BOOST_TEST_CONTEXT(algo) {
      const fs::path out = tmp.path / algo;
      std::vector<std::string> args = mnist_args(data, out, algo);
      args.insert(args.end(), {"--classifier", (clf / "classifier.safetensors").string()});
      check_summary(run_jebm(args), out, "total variation ");
    }
  }
  // Without a classifier there are no class weights: the verdict says so.
  const fs::path bare = tmp.path / "bare";
  check_summary(run_jebm(mnist_args(data, bare, "pcd")), bare, "- (no class weights");
}

BOOST_AUTO_TEST_CASE(summary_helpers) {
  BOOST_TEST(jebm::value_or_dash(std::nan("")) == "-");
  BOOST_TEST(jebm::value_or_dash(1.0 / 0.0) == "-");
  BOOST_TEST(jebm::value_or_dash(0.123456, 3) == "0.123");
  const std::string long_text = "  head " + std::string(60, 'a') + " " + std::string(60, 'b') + " c";
  const std::string wrapped = jebm::wrap_text(long_text, 100, 4);
  BOOST_TEST(wrapped == "  head " + std::string(60, 'a') + "\n    " + std::string(60, 'b') + " c\n");
}
