// One run per directory: DIR/jebm.lock, held with flock() by the process that writes the run (rank 0 under
// mpirun) from prepare_run_dir until the run ends, --resume included, and naming that process (pid, host, start
// time) for the refusal of a second run. The kernel drops a flock when its process dies, so a lock left by a
// killed run is taken over. Tested by tests/test_run_lock.cpp (two real jebm processes, a stale lock).
#pragma once
#include <string>

namespace jebm {

inline constexpr const char* kRunLockName = "jebm.lock";

class RunDirLock {
 public:
  RunDirLock() = default;
  // Takes DIR/jebm.lock (created as needed; a link there is an error). Held by a live process: a jebm::Error
  // naming that run's pid, host and start time, with `option` ("--out DIR" or "--resume DIR") in front.
  static RunDirLock acquire(const std::string& dir, const std::string& option);
  ~RunDirLock() { release(); }
  RunDirLock(RunDirLock&& o) noexcept;
  RunDirLock& operator=(RunDirLock&& o) noexcept;
  RunDirLock(const RunDirLock&) = delete;
  RunDirLock& operator=(const RunDirLock&) = delete;

  bool held() const { return fd_ >= 0; }
  // "pid P on host H, started T" of the dead run whose lock file this one took over; empty when there was none.
  const std::string& stale_owner() const { return stale_owner_; }
  // Writes this process's pid, host and start time into the lock file (once the run is sure to go ahead).
  void claim();
  // Drops the lock; the file goes too, unless `keep_file` (a refused run leaves the directory as it found it).
  void release(bool keep_file = false) noexcept;
  bool created_file() const { return created_; }

 private:
  std::string path_, stale_owner_;
  int fd_ = -1;
  bool created_ = false;
};

}  // namespace jebm
