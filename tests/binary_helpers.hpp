// Running the built jebm binary from a test (JEBM_BINARY, set by tests/CMakeLists.txt): its exit code, stdout and
// stderr. Used by tests/test_cli_binary.cpp and tests/test_run_provenance.cpp.
#pragma once
#include <sys/wait.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <initializer_list>
#include <sstream>
#include <string>
#include <vector>

#include "tests/helpers.hpp"

namespace jebm::test {

struct Ran {
  int code = -1;
  std::string out, err;
};

inline std::string shell_quote(const std::string& s) {
  std::string q = "'";
  for (char c : s) q += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return q + "'";
}

// Runs `jebm ARGS...` (with `env` prefixed, e.g. "OMP_NUM_THREADS=1 ") and returns what it printed.
inline Ran run_jebm(const std::vector<std::string>& args, const std::string& env = "") {
  static int calls = 0;
  const auto base = std::filesystem::temp_directory_path() /
                    ("jebm_run_" + std::to_string(::getpid()) + "_" + std::to_string(calls++));
  std::string cmd = env + shell_quote(JEBM_BINARY);
  for (const auto& a : args) cmd += " " + shell_quote(a);
  cmd += " >" + shell_quote(base.string() + ".out") + " 2>" + shell_quote(base.string() + ".err");
  const int status = std::system(cmd.c_str());
  Ran r;
  r.code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  r.out = slurp(base.string() + ".out");
  r.err = slurp(base.string() + ".err");
  std::filesystem::remove(base.string() + ".out");
  std::filesystem::remove(base.string() + ".err");
  return r;
}

}  // namespace jebm::test
