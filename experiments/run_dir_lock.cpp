// The run-directory lock: flock() on DIR/jebm.lock, whose text names the holder. Tested by
// tests/test_run_lock.cpp.
#include "experiments/run_dir_lock.hpp"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <utility>

#include "runtime/check.hpp"
#include "runtime/user_error.hpp"

namespace jebm {

namespace {

// The lock file's text in one line: "pid P on host H, started T" (what the refusal and the take-over note print).
std::string read_owner(int fd) {
  std::string text;
  char buf[512];
  ssize_t r = 0;
  off_t at = 0;
  while ((r = ::pread(fd, buf, sizeof buf, at)) > 0 && text.size() < 4096) {
    text.append(buf, static_cast<size_t>(r));
    at += r;
  }
  while (!text.empty() && (text.back() == '\n' || text.back() == '\r')) text.pop_back();
  for (char& c : text)
    if (c == '\n') c = ' ';
  return text;
}

std::string this_owner() {
  char host[256] = {};
  if (::gethostname(host, sizeof host - 1) != 0) std::strcpy(host, "?");
  const std::time_t now = std::chrono::system_clock::to_time_t(std::chrono::system_clock::now());
  std::tm utc{};
  ::gmtime_r(&now, &utc);
  char when[32];
  std::strftime(when, sizeof when, "%Y-%m-%d %H:%M:%S UTC", &utc);
  return "pid " + std::to_string(::getpid()) + " on host " + host + ", started " + when + "\n";
}

}  // namespace

RunDirLock RunDirLock::acquire(const std::string& dir, const std::string& option) {
  RunDirLock lock;
  lock.path_ = (std::filesystem::path(dir) / kRunLockName).string();
  // A holder that ends unlinks the file before closing it; a second process may then hold a lock on the unlinked
  // file. Locking again until the locked file is the one the name points to closes that gap.
  for (int attempt = 0; attempt < 100; ++attempt) {
    int fd = ::open(lock.path_.c_str(), O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
    bool created = fd >= 0;
    if (!created && errno == EEXIST) fd = ::open(lock.path_.c_str(), O_RDWR | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0 && errno == ENOENT) continue;  // removed between the two opens: try again
    JEBM_USER_CHECK(fd >= 0, option << ": cannot open its lock file " << lock.path_ << ": "
                               << (errno == ELOOP ? "it is a symbolic link (remove it)" : std::strerror(errno)));
    if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
      const int e = errno;
      const std::string owner = read_owner(fd);
      ::close(fd);
      JEBM_USER_CHECK(e != EWOULDBLOCK, option << ": is in use by a live jebm run ("
                                          << (owner.empty() ? "a process that has not written its name yet" : owner)
                                          << "); two runs on one directory would mix their files: wait for it to "
                                          << "end, stop it, or give another directory");
      JEBM_USER_FAIL(option << ": cannot lock " << lock.path_ << ": " << std::strerror(e));
    }
    struct stat held {}, named {};
    if (::fstat(fd, &held) != 0 || ::lstat(lock.path_.c_str(), &named) != 0 || held.st_ino != named.st_ino ||
        held.st_dev != named.st_dev) {
      ::close(fd);
      continue;
    }
    lock.fd_ = fd;
    lock.created_ = created;
    if (!created) lock.stale_owner_ = read_owner(fd);
    return lock;
  }
  JEBM_USER_FAIL(option << ": cannot lock " << lock.path_ << ": it keeps being replaced by another process");
}

RunDirLock::RunDirLock(RunDirLock&& o) noexcept
    : path_(std::move(o.path_)), stale_owner_(std::move(o.stale_owner_)), fd_(std::exchange(o.fd_, -1)),
      created_(o.created_) {}

RunDirLock& RunDirLock::operator=(RunDirLock&& o) noexcept {
  if (this != &o) {
    release();
    path_ = std::move(o.path_);
    stale_owner_ = std::move(o.stale_owner_);
    fd_ = std::exchange(o.fd_, -1);
    created_ = o.created_;
  }
  return *this;
}

void RunDirLock::claim() {
  JEBM_CHECK(fd_ >= 0, "RunDirLock::claim: " << path_ << " is not held (a bug)");
  const std::string text = this_owner();
  JEBM_USER_CHECK(::ftruncate(fd_, 0) == 0 && ::pwrite(fd_, text.data(), text.size(), 0) == static_cast<ssize_t>(text.size()),
             "cannot write " << path_ << ": " << std::strerror(errno));
}

void RunDirLock::release(bool keep_file) noexcept {
  if (fd_ < 0) return;
  // Unlinked while still locked, so no other process can lock this file and believe it holds the directory.
  if (!keep_file) ::unlink(path_.c_str());
  ::close(fd_);
  fd_ = -1;
}

}  // namespace jebm
