// The jebm binary (JEBM_BINARY, set by tests/CMakeLists.txt) run as a real process by the tests that need one:
// two runs at once on one directory (test_run_lock), every integer option at its limits (test_option_bounds).
#pragma once
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <thread>
#include <vector>

#include "tests/helpers.hpp"

extern char** environ;

namespace jebm::test {

// `jebm ARGS` started in the background, its stdout and stderr going to `log`.
inline pid_t start_jebm(const std::vector<std::string>& args, const std::filesystem::path& log) {
  std::vector<std::string> all = {JEBM_BINARY};
  all.insert(all.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (std::string& a : all) argv.push_back(a.data());
  argv.push_back(nullptr);
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 1, log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  posix_spawn_file_actions_adddup2(&fa, 1, 2);
  pid_t pid = -1;
  const int rc = posix_spawn(&pid, JEBM_BINARY, &fa, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&fa);
  BOOST_REQUIRE_MESSAGE(rc == 0, "cannot start " << JEBM_BINARY);
  return pid;
}

struct Finished {
  int status = 0;
  bool killed_at_limit = false;  // still running after the limit: killed (a value validation should have refused)
  std::string output;
};

// Waits for `pid` (started by start_jebm with `log`); after `limit_s` seconds it is killed and reported so.
inline Finished wait_jebm(pid_t pid, const std::filesystem::path& log, double limit_s = 1e9) {
  Finished f;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::duration<double>(limit_s);
  for (;;) {
    const pid_t r = ::waitpid(pid, &f.status, WNOHANG);
    BOOST_REQUIRE(r >= 0);
    if (r == pid) break;
    if (std::chrono::steady_clock::now() > deadline) {
      ::kill(pid, SIGKILL);
      BOOST_REQUIRE(::waitpid(pid, &f.status, 0) == pid);
      f.killed_at_limit = true;
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  f.output = slurp(log);
  return f;
}

inline Finished run_jebm(const std::vector<std::string>& args, const std::filesystem::path& log,
                         double limit_s = 1e9) {
  return wait_jebm(start_jebm(args, log), log, limit_s);
}

}  // namespace jebm::test
