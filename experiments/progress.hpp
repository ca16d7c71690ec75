// Progress: the progress line of long loops on stderr. On a terminal it rewrites one line with '\r' (at most
// 5 times a second); when stderr is not a TTY (a log file, a pipe) it prints a plain line every few seconds
// instead, so a log stays readable. Tested by tests/test_image_ebm.cpp (runs with stderr redirected).
#pragma once
#include <chrono>
#include <cstdint>
#include <string>

namespace jebm {

class Progress {
 public:
  // enabled = false: prints nothing. The TTY check is made once, here.
  Progress(std::string label, int64_t total, bool enabled = true);
  void update(int64_t done, const std::string& extra = "");
  void finish();  // final line with the total time, then a newline

 private:
  std::string label_;
  int64_t total_;
  bool enabled_, tty_;
  std::chrono::steady_clock::time_point start_, last_;
};

}  // namespace jebm
