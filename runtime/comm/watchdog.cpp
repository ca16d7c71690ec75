// The collective watchdog's thread: sleeps until the armed call's deadline (or a disarm), then reports once.
// Tested by tests/test_comm.cpp.
#include "runtime/comm/watchdog.hpp"

#include "runtime/check.hpp"

namespace jebm {

CollectiveWatchdog::CollectiveWatchdog(double timeout_s, std::function<void(const std::string&, double)> on_timeout)
    : timeout_s_(timeout_s), on_timeout_(std::move(on_timeout)) {
  JEBM_CHECK(timeout_s > 0.0, "CollectiveWatchdog: timeout " << timeout_s << " s");
  thread_ = std::thread([this] { run(); });
}

CollectiveWatchdog::~CollectiveWatchdog() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  thread_.join();
}

void CollectiveWatchdog::arm(const char* what) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    armed_ = true;
    fired_ = false;
    what_ = what;
    since_ = Clock::now();
  }
  cv_.notify_all();
}

void CollectiveWatchdog::disarm() {
  std::lock_guard<std::mutex> lock(mu_);
  armed_ = false;
}

void CollectiveWatchdog::run() {
  const auto timeout = std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(timeout_s_));
  std::unique_lock<std::mutex> lock(mu_);
  while (!stop_) {
    if (!armed_ || fired_) {
      cv_.wait(lock);
      continue;
    }
    const Clock::time_point since = since_;
    // Wakes at the deadline, or earlier on disarm/re-arm/stop (then the loop re-reads the state).
    if (cv_.wait_until(lock, since + timeout, [&] { return stop_ || !armed_ || since_ != since; })) continue;
    fired_ = true;
    const std::string what = what_;
    const double waited = std::chrono::duration<double>(Clock::now() - since).count();
    lock.unlock();
    on_timeout_(what, waited);
    lock.lock();
  }
}

}  // namespace jebm
