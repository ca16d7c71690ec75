// Progress (see progress.hpp). Tested by tests/test_image_ebm.cpp.
#include "experiments/progress.hpp"

#include <unistd.h>

#include <cstdio>
#include <iomanip>
#include <iostream>
#include <sstream>

namespace jebm {

namespace {

// A log file gets a line this often; a terminal line is redrawn at most this often.
constexpr auto kLogInterval = std::chrono::seconds(5);
constexpr auto kTtyInterval = std::chrono::milliseconds(200);

std::string hms(double s) {
  const int64_t t = static_cast<int64_t>(s + 0.5);
  char buf[32];
  if (t >= 3600)
    std::snprintf(buf, sizeof buf, "%lld:%02lld:%02lld", static_cast<long long>(t / 3600),
                  static_cast<long long>(t / 60 % 60), static_cast<long long>(t % 60));
  else
    std::snprintf(buf, sizeof buf, "%lld:%02lld", static_cast<long long>(t / 60), static_cast<long long>(t % 60));
  return buf;
}

}  // namespace

Progress::Progress(std::string label, int64_t total, bool enabled)
    : label_(std::move(label)),
      total_(total),
      enabled_(enabled),
      tty_(isatty(STDERR_FILENO) != 0),
      start_(std::chrono::steady_clock::now()),
      // A terminal shows the line at once; a log file's first line comes after one interval.
      last_(tty_ ? start_ - kTtyInterval : start_) {}

void Progress::update(int64_t done, const std::string& extra) {
  if (!enabled_) return;
  const auto now = std::chrono::steady_clock::now();
  if (tty_ ? (now - last_ < kTtyInterval && done < total_) : (now - last_ < kLogInterval)) return;
  last_ = now;
  const double el = std::chrono::duration<double>(now - start_).count();
  const double rate = el > 0 ? static_cast<double>(done) / el : 0.0;
  std::ostringstream os;
  os << (tty_ ? "\r" : "") << label_ << " " << done << "/" << total_ << " (" << std::fixed << std::setprecision(1)
     << (total_ ? 100.0 * static_cast<double>(done) / static_cast<double>(total_) : 100.0) << "%) "
     << std::setprecision(1) << rate << " it/s ETA "
     << (rate > 0 ? hms(static_cast<double>(total_ - done) / rate) : std::string("?")) << (extra.empty() ? "" : " ")
     << extra << (tty_ ? "   " : "\n");
  std::cerr << os.str() << std::flush;
}

void Progress::finish() {
  if (!enabled_) return;
  const double el = std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  std::cerr << (tty_ ? "\r" : "") << label_ << " " << total_ << "/" << total_ << " done in " << hms(el) << " ("
            << std::fixed << std::setprecision(1) << (el > 0 ? static_cast<double>(total_) / el : 0.0) << " it/s)"
            << (tty_ ? std::string(30, ' ') : std::string()) << "\n";
}

}  // namespace jebm
