// One run per directory (experiments/run_dir_lock, prepare_run_dir): a second jebm process on the directory of a
// live run is refused, with or without --force and with --resume, naming the live run's pid, host and start time,
// and changes no file; a lock left by a killed run is taken over with a note. Real processes: the jebm binary.
#include "tests/helpers.hpp"

#include <chrono>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "experiments/output.hpp"
#include "experiments/run_dir_lock.hpp"
#include "tests/jebm_process.hpp"
#include "tests/run_helpers.hpp"

using namespace jebm;
using jebm::test::expect_error;
using jebm::test::Finished;
using jebm::test::run_jebm;
using jebm::test::slurp;
using jebm::test::start_jebm;
using jebm::test::TempDir;
using jebm::test::with;
namespace fs = std::filesystem;

namespace {

// A gmm run that would take hours: it holds its directory until it is killed.
std::vector<std::string> long_gmm(const fs::path& out) {
  return {"gmm", "--dim", "2", "--samples", "64", "--walkers", "64", "--iterations", "100000000", "--log-every", "1000",
          "--algo", "jarzynski", "--checkpoint-every", "1000", "--no-progress", "--out", out.string()};
}

}  // namespace

BOOST_AUTO_TEST_CASE(a_second_run_on_a_live_runs_directory_is_refused_and_a_dead_runs_lock_is_taken_over) {
  TempDir tmp;
  const fs::path out = tmp.path / "run";
  const pid_t live = start_jebm(long_gmm(out), tmp.path / "live.log");
  const std::string pid_text = "pid " + std::to_string(live) + " on host ";
  // The live run has locked its directory and written its options once the lock names it.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(120);
  while (slurp(out / kRunLockName).find(pid_text) == std::string::npos || !fs::exists(out / "options.txt")) {
    int status = 0;
    BOOST_REQUIRE_MESSAGE(::waitpid(live, &status, WNOHANG) == 0, "the first run ended: " << slurp(tmp.path / "live.log"));
    BOOST_REQUIRE_MESSAGE(std::chrono::steady_clock::now() < deadline, "the first run never locked " << out);
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  const std::string options_before = slurp(out / "options.txt");
  const std::vector<std::vector<std::string>> seconds = {
      long_gmm(out), with(long_gmm(out), {"--force"}), {"gmm", "--resume", out.string(), "--no-progress"}};
  for (const auto& args : seconds) {
    const Finished f = run_jebm(args, tmp.path / "second.log");
    BOOST_TEST_CONTEXT(f.output) {
      BOOST_TEST(WIFEXITED(f.status));
      BOOST_TEST(WEXITSTATUS(f.status) == 2);
      BOOST_TEST(f.output.find("in use by a live jebm run") != std::string::npos);
      BOOST_TEST(f.output.find(pid_text) != std::string::npos);
      BOOST_TEST(f.output.find("started 20") != std::string::npos);
    }
    BOOST_TEST(slurp(out / "options.txt") == options_before);
  }
  // Killed, it leaves its lock file behind; the kernel has dropped the lock, and the next run takes it over.
  ::kill(live, SIGKILL);
  int status = 0;
  BOOST_REQUIRE(::waitpid(live, &status, 0) == live);
  BOOST_TEST(slurp(out / kRunLockName).find(pid_text) != std::string::npos);
  const Finished f = run_jebm(with(long_gmm(out), {"--iterations", "3", "--force"}), tmp.path / "third.log");
  BOOST_TEST_CONTEXT(f.output) {
    BOOST_TEST((WIFEXITED(f.status) && WEXITSTATUS(f.status) == 0));
    BOOST_TEST(f.output.find("(" + pid_text) != std::string::npos);
    BOOST_TEST(f.output.find("is gone; its lock is taken over") != std::string::npos);
  }
  BOOST_TEST(!fs::exists(out / kRunLockName));  // a run that ends removes its lock file
}

BOOST_AUTO_TEST_CASE(a_lock_is_exclusive_between_open_files_and_a_refused_run_leaves_no_lock_file) {
  TempDir tmp;
  const fs::path run = tmp.path / "run";
  {
    const RunDirLock held = prepare_run_dir(run, false, false);
    expect_error([&] { (void)prepare_run_dir(run, true, false); }, {run.string(), "in use by a live jebm run", "pid "});
    expect_error([&] { (void)prepare_run_dir(run, false, true); }, {"--resume " + run.string(), "in use"});
  }
  BOOST_TEST(!fs::exists(run / kRunLockName));
  std::ofstream(run / "options.txt") << "a = 1\n";
  expect_error([&] { (void)prepare_run_dir(run, false, false); }, {"options.txt", "--force"});
  BOOST_TEST(!fs::exists(run / kRunLockName));  // the refused run created no lock file
}
