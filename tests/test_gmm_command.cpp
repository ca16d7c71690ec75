// `jebm gmm` through the binary, as a user runs it: a run directory written by jebm 0.1.0 (tests/fixtures) still
// resumes and ends as a fresh run does; the summary (width with 2, 3 and 5 modes, "-", the verdict line, the "wrote"
// line); resuming a finished run.
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "tests/binary_helpers.hpp"

namespace fs = std::filesystem;
using jebm::test::lines_of;
using jebm::test::Ran;
using jebm::test::run_jebm;
using jebm::test::slurp;

namespace {

// What `jebm gmm ARGS` printed, and its exit code.
Ran jebm_gmm(std::vector<std::string> args) {
  args.insert(args.begin(), "gmm");
  return run_jebm(args);
}

// Every metrics column but the last (time_s), row by row; on the rows before iteration `fixed_from`, also without
// the held-out estimate and its standard error (0.1.0 counted a resampling block's log mean twice there).
std::string without_time(const std::string& csv, long fixed_from = 0) {
  std::istringstream is(csv);
  std::string out, header;
  std::vector<bool> holdout_estimate;
  for (std::string line; std::getline(is, line);) {
    line = line.substr(0, line.rfind(','));
    std::vector<std::string> cells;
    std::istringstream cs(line);
    for (std::string cell; std::getline(cs, cell, ',');) cells.push_back(cell);
    if (header.empty()) {
      header = line;
      for (const std::string& name : cells) holdout_estimate.push_back(name == "holdout_ce" || name == "holdout_ce_se");
      out += line + "\n";
      continue;
    }
    const bool old_row = !cells.empty() && std::strtol(cells[0].c_str(), nullptr, 10) < fixed_from;
    for (size_t i = 0; i < cells.size(); ++i)
      out += (i ? "," : "") + (old_row && i < holdout_estimate.size() && holdout_estimate[i] ? "-" : cells[i]);
    out += "\n";
  }
  return out;
}

const char* const kAlgos[] = {"jarzynski", "pcd", "cd"};

}  // namespace

// tests/fixtures/gmm-run-0.1.0 was written by jebm 0.1.0 with
//   jebm gmm --quick --dim 3 --walkers 100 --data 200 --iterations 30 --checkpoint-every 30 --log-every 5
//            --holdout-walkers 20 --holdout-blocks 2 --sigma 0.4 --resample-cv2 0.0625 --out DIR
// Resumed to 60 iterations with its own options.txt (which names --data, --sigma and --resample-cv2), it writes the
// rows of a fresh 60-iteration run made with today's names, and says once which names are old. (The held-out
// estimate of the rows 0.1.0 wrote is left out of the comparison: 0.1.0 counted a resampling block's log mean twice
// in it, which tests/test_gmm_training.cpp checks no longer happens.)
BOOST_AUTO_TEST_CASE(a_run_written_by_jebm_0_1_0_resumes) {
  jebm::test::TempDir tmp;
  const fs::path run = tmp.path / "run", fresh = tmp.path / "fresh";
  fs::copy(fs::path(JEBM_FIXTURES) / "gmm-run-0.1.0", run);
  const Ran resumed = jebm_gmm({"--resume", run.string(), "--iterations", "60", "--no-progress"});
  BOOST_TEST(resumed.code == 0, resumed.err);
  BOOST_TEST(std::count(resumed.err.begin(), resumed.err.end(), '\n') == 1, resumed.err);
  for (const char* part : {"options.txt has old option names", "--data is now --samples", "--sigma is now --noise",
                           "--resample-cv2 C is now --resample-cv sqrt(C)"})
    BOOST_TEST(resumed.err.find(part) != std::string::npos, part);
  const Ran straight = jebm_gmm({"--quick", "--dim", "3", "--walkers", "100", "--samples", "200",
                                           "--iterations", "60", "--checkpoint-every", "30", "--log-every", "5",
                                           "--holdout-walkers", "20", "--holdout-blocks", "2", "--noise", "0.4",
                                           "--resample-cv", "0.25", "--no-progress", "--out", fresh.string()});
  BOOST_TEST(straight.code == 0, straight.err);
  BOOST_TEST(straight.err.empty(), straight.err);
  for (const char* algo : kAlgos) {
    const std::string f = "metrics_" + std::string(algo) + ".csv";
    const std::string a = without_time(slurp(run / f), 30), b = without_time(slurp(fresh / f), 30);
    BOOST_TEST(std::count(b.begin(), b.end(), '\n') == 1 + 12 + 1, f);  // header, iterations 0, 5, ..., 55, final
    BOOST_TEST(a == b, f);
  }
}

namespace {

// The last row's value of `column` in a metrics CSV.
double last_value(const fs::path& csv, const std::string& column) {
  const std::vector<std::string> rows = lines_of(slurp(csv));
  auto cells = [](const std::string& line) {
    std::vector<std::string> out;
    std::istringstream is(line);
    for (std::string c; std::getline(is, c, ',');) out.push_back(c);
    return out;
  };
  const std::vector<std::string> head = cells(rows.front()), last = cells(rows.back());
  const auto at = std::find(head.begin(), head.end(), column);
  BOOST_REQUIRE(at != head.end());
  return std::stod(last[static_cast<size_t>(at - head.begin())]);
}

const std::vector<std::string> kSmallRun = {"--dim", "3", "--walkers", "100", "--samples", "200", "--iterations", "40",
                                            "--checkpoint-every", "15", "--log-every", "5", "--holdout-walkers", "20",
                                            "--holdout-blocks", "2", "--no-progress"};

}  // namespace

// The summary: at most 100 columns, "-" where a value does not apply (never nan), one verdict line (each
// algorithm's weight of the small mode next to the teacher's 0.25, with the difference), and a last "wrote" line
// that names every file of the run directory, the checkpoints included.
BOOST_AUTO_TEST_CASE(the_summary_reads_at_a_glance) {
  jebm::test::TempDir tmp;
  const fs::path run = tmp.path / "run";
  std::vector<std::string> args = kSmallRun;
  args.insert(args.end(), {"--out", run.string()});
  const Ran r = jebm_gmm(args);
  BOOST_REQUIRE(r.code == 0);
  const std::vector<std::string> lines = lines_of(r.out);
  for (const auto& line : lines) BOOST_TEST(line.size() <= 100u, line);
  BOOST_TEST(r.out.find("nan") == std::string::npos, r.out);
  int verdicts = 0;
  for (const auto& line : lines) {
    if (line.rfind("pcd ", 0) == 0 && line.find("final means") == std::string::npos)
      BOOST_TEST(line.find(" - ") != std::string::npos, line);  // PCD has no Jarzynski estimate nor resamplings
    if (line.rfind("small mode vs teacher 0.25: ", 0) != 0) continue;
    ++verdicts;
    for (const char* algo : kAlgos) {
      const double w = last_value(run / ("metrics_" + std::string(algo) + ".csv"), "weight_0");
      char want[64];
      std::snprintf(want, sizeof want, "%s %.4f (%+.4f)", algo, w, w - 0.25);
      BOOST_TEST(line.find(want) != std::string::npos, line << " lacks " << want);
    }
  }
  BOOST_TEST(verdicts == 1);
  // The "wrote" line (it may wrap) is the last: every file there, and only those.
  const size_t wrote = r.out.rfind("wrote " + run.string() + ": ");
  BOOST_REQUIRE(wrote != std::string::npos);
  const std::string listed = r.out.substr(wrote);
  int files = 0;
  for (const auto& f : fs::directory_iterator(run)) {
    ++files;
    BOOST_TEST(listed.find(" " + f.path().filename().string()) != std::string::npos, f.path().filename());
  }
  BOOST_TEST(files == 8);  // options.txt, gmm.svg, a metrics CSV and a checkpoint per algorithm
  BOOST_TEST(std::count(listed.begin(), listed.end(), ',') == files - 1, listed);
}

// With more modes than the table's weights column holds (3 and 5 here), the summary still fits 100 columns: the
// weights move to a table of their own (the teacher's row first, then each algorithm's final weights), and the
// verdict names the teacher's smallest mode.
BOOST_AUTO_TEST_CASE(the_summary_fits_with_more_modes) {
  jebm::test::TempDir tmp;
  const std::vector<std::pair<std::vector<std::string>, std::string>> teachers = {
      {{"-10", "0", "6"}, "0.2,0.3,0.5"}, {{"-10", "-5", "0", "6", "12"}, "0.1,0.15,0.2,0.25,0.3"}};
  for (const auto& [means, weights] : teachers) {
    BOOST_TEST_CONTEXT(means.size() << " modes") {
      const fs::path run = tmp.path / ("run" + std::to_string(means.size()));
      std::vector<std::string> args = kSmallRun;
      for (const std::string& m : means) args.insert(args.end(), {"--teacher-mean", m});
      args.insert(args.end(), {"--teacher-weights", weights, "--student-modes", std::to_string(means.size()),
                               "--out", run.string()});
      const Ran r = jebm_gmm(args);
      BOOST_TEST_INFO("stdout:\n" << r.out << "stderr:\n" << r.err);
      BOOST_REQUIRE(r.code == 0);
      const std::vector<std::string> lines = lines_of(r.out);
      for (const auto& line : lines) BOOST_TEST(line.size() <= 100u, line);
      BOOST_TEST(r.out.find("nan") == std::string::npos);
      auto line_starting = [&](const std::string& head) {
        const auto it =
            std::find_if(lines.begin(), lines.end(), [&](const std::string& l) { return l.rfind(head, 0) == 0; });
        return it == lines.end() ? std::string() : *it;
      };
      // The main table keeps every other column; PCD has no Jarzynski estimate nor resamplings.
      BOOST_TEST(line_starting("algorithm  max|a-a*|  exact CE").find("Jarzynski CE") != std::string::npos);
      BOOST_TEST(line_starting("pcd ").find(" - ") != std::string::npos);
      // The weights table: the teacher's weights, then each algorithm's last logged weights, 4 decimals each.
      BOOST_TEST(line_starting("algorithm  mode weights") == "algorithm  mode weights");
      std::string teacher = "teacher   ";
      for (size_t j = 0, a = 0; j < means.size(); ++j) {
        const size_t b = weights.find(',', a);
        char cell[32];
        std::snprintf(cell, sizeof cell, "%s%.4f", j ? "," : " ", std::stod(weights.substr(a, b - a)));
        teacher += cell;
        a = b + 1;
      }
      BOOST_TEST(std::count(lines.begin(), lines.end(), teacher) == 1, "no row " << teacher);
      for (const char* algo : kAlgos) {
        std::string row = algo;
        row.resize(10, ' ');
        for (size_t j = 0; j < means.size(); ++j) {
          const double w = last_value(run / ("metrics_" + std::string(algo) + ".csv"), "weight_" + std::to_string(j));
          char cell[32];
          std::snprintf(cell, sizeof cell, "%s%.4f", j ? "," : " ", w);
          row += cell;
        }
        BOOST_TEST(std::count(lines.begin(), lines.end(), row) == 1, "no row " << row);
        BOOST_TEST(!line_starting(std::string(algo) + " final means (first coordinate): ").empty());
      }
      const std::string smallest = weights.substr(0, weights.find(','));  // the teachers' first mode is their smallest
      BOOST_TEST(!line_starting("small mode 0 vs teacher " + smallest + ": jarzynski ").empty());
      BOOST_TEST(!line_starting("teacher means (first coordinate): -10,").empty());
      BOOST_TEST(r.out.find("wrote " + run.string() + ": options.txt") != std::string::npos);
    }
  }
}

// Resuming a finished run says there is nothing to do and exits 0: no rate, no table, no file touched.
BOOST_AUTO_TEST_CASE(resuming_a_finished_run_has_nothing_to_do) {
  jebm::test::TempDir tmp;
  const fs::path run = tmp.path / "run";
  std::vector<std::string> args = kSmallRun;
  args.insert(args.end(), {"--out", run.string()});
  BOOST_REQUIRE(jebm_gmm(args).code == 0);
  std::vector<std::string> before;
  for (const char* f : {"options.txt", "metrics_cd.csv", "checkpoint_cd.safetensors", "gmm.svg"})
    before.push_back(slurp(run / f));
  const Ran again = jebm_gmm({"--resume", run.string()});
  BOOST_TEST(again.code == 0);
  BOOST_TEST(again.out.find("nothing to do") != std::string::npos, again.out);
  BOOST_TEST(again.out.find("algorithm") == std::string::npos, again.out);
  BOOST_TEST(again.err.find("it/s") == std::string::npos, again.err);
  size_t i = 0;
  for (const char* f : {"options.txt", "metrics_cd.csv", "checkpoint_cd.safetensors", "gmm.svg"})
    BOOST_TEST(slurp(run / f) == before[i++], f);
  // A larger --iterations extends it.
  const Ran longer = jebm_gmm({"--resume", run.string(), "--iterations", "45", "--no-progress"});
  BOOST_TEST(longer.code == 0);
  BOOST_TEST(longer.out.find("algorithm") != std::string::npos, longer.out);
}
