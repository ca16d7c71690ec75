// CollectiveWatchdog: a thread that notices when one collective has waited longer than a timeout (a rank that
// died, hung or skipped a call) and reports it, so that no rank waits forever. The MPI communicator arms it around
// every call; its report prints the collective, the rank and the timeout, then ends the process, and mpirun ends
// the other ranks. Tested by tests/test_comm.cpp (the callback fires once, and not for fast calls).
#pragma once
#include <chrono>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <string>
#include <thread>

namespace jebm {

class CollectiveWatchdog {
 public:
  // on_timeout(what, waited_s) runs on the watchdog thread, at most once per armed call.
  CollectiveWatchdog(double timeout_s, std::function<void(const std::string&, double)> on_timeout);
  ~CollectiveWatchdog();
  CollectiveWatchdog(const CollectiveWatchdog&) = delete;
  CollectiveWatchdog& operator=(const CollectiveWatchdog&) = delete;

  double timeout_s() const { return timeout_s_; }
  void arm(const char* what);  // before a blocking call
  void disarm();               // after it returns

  // Arms for its lifetime.
  struct Scope {
    Scope(CollectiveWatchdog& w, const char* what) : w_(w) { w_.arm(what); }
    ~Scope() { w_.disarm(); }
    Scope(const Scope&) = delete;
    Scope& operator=(const Scope&) = delete;
    CollectiveWatchdog& w_;
  };

 private:
  void run();
  using Clock = std::chrono::steady_clock;
  double timeout_s_;
  std::function<void(const std::string&, double)> on_timeout_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;
  bool armed_ = false;
  bool fired_ = false;
  const char* what_ = "";
  Clock::time_point since_;
  std::thread thread_;
};

}  // namespace jebm
