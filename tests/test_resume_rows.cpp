// --resume never loses a metrics row (experiments/output's resume_csv, through `jebm gmm`): a CSV cut before the
// checkpoint's iteration, or cut inside its header line, is refused with the numbers and the way out, and the
// file is left byte for byte as it was; an intact CSV resumes as before.
#include "tests/helpers.hpp"

#include <filesystem>
#include <fstream>
#include <iterator>
#include <sstream>
#include <string>
#include <vector>

namespace jebm {
int run_gmm(const std::vector<std::string>& args);  // experiments/gmm.cpp
}

using jebm::test::slurp;
using jebm::test::expect_error;
using jebm::test::TempDir;
namespace fs = std::filesystem;

namespace {

void put(const fs::path& p, const std::string& text) { std::ofstream(p, std::ios::binary | std::ios::trunc) << text; }

// A finished 30-iteration run: rows at 0, 5, ..., 25 and the final one; its checkpoint is at iteration 30.
fs::path finished_run(const TempDir& tmp) {
  const fs::path out = tmp.path / "run";
  BOOST_REQUIRE(jebm::run_gmm({"--dim", "2", "--samples", "64", "--walkers", "64", "--iterations", "30", "--log-every",
                               "5", "--checkpoint-every", "10", "--algo", "jarzynski", "--no-progress", "--out",
                               out.string()}) == 0);
  return out;
}

const std::vector<std::string> kResume(const fs::path& out) {
  return {"--resume", out.string(), "--iterations", "60", "--no-progress"};
}

}  // namespace

BOOST_AUTO_TEST_CASE(a_csv_cut_before_the_checkpoint_is_refused_and_left_as_it_was) {
  TempDir tmp;
  const fs::path out = finished_run(tmp);
  const fs::path csv = out / "metrics_jarzynski.csv";
  // Keep the header and the rows of iterations 0, 5 and 10.
  std::istringstream lines(slurp(csv));
  std::string cut, line;
  for (int i = 0; i < 4 && std::getline(lines, line); ++i) cut += line + "\n";
  put(csv, cut);
  const std::string options = slurp(out / "options.txt");
  expect_error([&] { jebm::run_gmm(kResume(out)); },
               {csv.string(), "last row is iteration 10", "iteration 30", "rows are missing", "--force"});
  BOOST_TEST(slurp(csv) == cut);
  BOOST_TEST(slurp(out / "options.txt") == options);  // checked before anything is rewritten
}

BOOST_AUTO_TEST_CASE(a_csv_cut_inside_its_header_is_refused_and_not_emptied) {
  TempDir tmp;
  const fs::path out = finished_run(tmp);
  const fs::path csv = out / "metrics_jarzynski.csv";
  const std::string partial = slurp(csv).substr(0, 50);
  put(csv, partial);
  expect_error([&] { jebm::run_gmm(kResume(out)); }, {csv.string(), "no complete header line", "left as it is"});
  BOOST_TEST(slurp(csv) == partial);
}

BOOST_AUTO_TEST_CASE(a_missing_csv_of_a_checkpointed_run_is_refused_and_an_intact_one_resumes) {
  TempDir tmp;
  const fs::path out = finished_run(tmp);
  const fs::path csv = out / "metrics_jarzynski.csv";
  const std::string whole = slurp(csv);
  fs::remove(csv);
  expect_error([&] { jebm::run_gmm(kResume(out)); }, {csv.string(), "is missing", "iteration 30"});
  BOOST_TEST(!fs::exists(csv));
  put(csv, whole);
  BOOST_TEST(jebm::run_gmm(kResume(out)) == 0);
  BOOST_TEST(slurp(csv).rfind(whole.substr(0, whole.rfind('\n', whole.size() - 2) + 1), 0) == 0);
}
