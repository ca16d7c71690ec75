// `jebm gmm` through the binary, as a user runs it: a run directory written by jebm 0.1.0 (tests/fixtures) still
// resumes and ends as a fresh run does.
#include <sys/wait.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "tests/helpers.hpp"

namespace fs = std::filesystem;

namespace {

std::string slurp(const fs::path& p) {
  std::ifstream is(p);
  std::stringstream ss;
  ss << is.rdbuf();
  return ss.str();
}

// What one `jebm gmm ARGS` printed, and its exit code.
struct Ran {
  int rc = -1;
  std::string out, err;
};

Ran jebm_gmm(const fs::path& tmp, const std::vector<std::string>& args) {
  std::string cmd = "'" JEBM_BINARY "' gmm";
  for (const auto& a : args) cmd += " '" + a + "'";
  const fs::path out = tmp / "stdout.txt", err = tmp / "stderr.txt";
  cmd += " > '" + out.string() + "' 2> '" + err.string() + "'";
  const int status = std::system(cmd.c_str());
  Ran r;
  r.rc = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  r.out = slurp(out);
  r.err = slurp(err);
  return r;
}

// Every metrics column but the last (time_s), row by row.
std::string without_time(const std::string& csv) {
  std::istringstream is(csv);
  std::string out;
  for (std::string line; std::getline(is, line);) out += line.substr(0, line.rfind(',')) + "\n";
  return out;
}

const char* const kAlgos[] = {"jarzynski", "pcd", "cd"};

}  // namespace

// tests/fixtures/gmm-run-0.1.0 was written by jebm 0.1.0 with
//   jebm gmm --quick --dim 3 --walkers 100 --data 200 --iterations 30 --checkpoint-every 30 --log-every 5
//            --holdout-walkers 20 --holdout-blocks 2 --sigma 0.4 --resample-cv2 0.0625 --out DIR
// Resumed to 60 iterations with its own options.txt (which names --data, --sigma and --resample-cv2), it writes the
// rows of a fresh 60-iteration run made with today's names, and says once which names are old.
BOOST_AUTO_TEST_CASE(a_run_written_by_jebm_0_1_0_resumes) {
  jebm::test::TempDir tmp;
  const fs::path run = tmp.path / "run", fresh = tmp.path / "fresh";
  fs::copy(fs::path(JEBM_FIXTURES) / "gmm-run-0.1.0", run);
  const Ran resumed = jebm_gmm(tmp.path, {"--resume", run.string(), "--iterations", "60", "--no-progress"});
  BOOST_TEST(resumed.rc == 0, resumed.err);
  BOOST_TEST(std::count(resumed.err.begin(), resumed.err.end(), '\n') == 1, resumed.err);
  for (const char* part : {"options.txt has old option names", "--data is now --samples", "--sigma is now --noise",
                           "--resample-cv2 C is now --resample-cv sqrt(C)"})
    BOOST_TEST(resumed.err.find(part) != std::string::npos, part);
  const Ran straight = jebm_gmm(tmp.path, {"--quick", "--dim", "3", "--walkers", "100", "--samples", "200",
                                           "--iterations", "60", "--checkpoint-every", "30", "--log-every", "5",
                                           "--holdout-walkers", "20", "--holdout-blocks", "2", "--noise", "0.4",
                                           "--resample-cv", "0.25", "--no-progress", "--out", fresh.string()});
  BOOST_TEST(straight.rc == 0, straight.err);
  BOOST_TEST(straight.err.empty(), straight.err);
  for (const char* algo : kAlgos) {
    const std::string f = "metrics_" + std::string(algo) + ".csv";
    const std::string a = without_time(slurp(run / f)), b = without_time(slurp(fresh / f));
    BOOST_TEST(std::count(b.begin(), b.end(), '\n') == 1 + 12 + 1, f);  // header, iterations 0, 5, ..., 55, final
    BOOST_TEST(a == b, f);
  }
}
