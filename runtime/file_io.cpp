// Checked writes over POSIX file descriptors: no stdio or iostream buffer stands between a write and its error
// code, so ENOSPC/EIO/EFBIG are seen at the write that caused them. Tested by tests/test_run_files.cpp.
#include "runtime/file_io.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <utility>

#include "runtime/check.hpp"
#include "runtime/user_error.hpp"

namespace jebm {

namespace {

std::string errno_str(int e) { return std::strerror(e); }

// Writes all n bytes or throws naming `what` (the file the user knows) with the system's reason.
void write_all(int fd, const void* data, size_t n, const std::string& what) {
  const char* p = static_cast<const char*>(data);
  while (n > 0) {
    const ssize_t w = ::write(fd, p, n);
    if (w < 0 && errno == EINTR) continue;
    // A 0-byte write of a non-empty buffer is no progress: treat it as the error it would become.
    JEBM_USER_CHECK(w > 0, "cannot write " << what << ": " << (w < 0 ? errno_str(errno) : std::string("no progress")));
    p += w;
    n -= static_cast<size_t>(w);
  }
}

// Makes a rename durable. Best effort: some filesystems refuse fsync on directories, and the data itself is
// already safe in the renamed file.
void fsync_parent_dir(const std::string& path) {
  std::filesystem::path parent = std::filesystem::path(path).parent_path();
  if (parent.empty()) parent = ".";
  const int fd = ::open(parent.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return;
  (void)::fsync(fd);
  ::close(fd);
}

bool is_symlink(const std::string& path) {
  struct stat st {};
  return ::lstat(path.c_str(), &st) == 0 && S_ISLNK(st.st_mode);
}

// Why open() of `path` failed, in words: a link gets its own sentence, since O_NOFOLLOW's ELOOP/EEXIST say nothing.
std::string open_failure(const std::string& path, int e) {
  if (is_symlink(path)) return path + " is a symbolic link, and jebm never follows one in a run directory (remove it)";
  return errno_str(e);
}

}  // namespace

// --- AtomicFile ----------------------------------------------------------------------------------------------

AtomicFile::AtomicFile(std::string path) : path_(std::move(path)), tmp_(path_ + ".tmp") {
  // The temporary is this writer's alone: whatever holds its name (a killed run's leftover, a planted link) is
  // unlinked, never followed, and a new file is created exclusively, so no byte lands anywhere but in it. The
  // final name is only ever replaced by rename(), which replaces a link itself, never its target.
  if (::unlink(tmp_.c_str()) != 0 && errno != ENOENT) {
    // Not removable (a directory, say): the exclusive create below fails and names it.
  }
  fd_ = ::open(tmp_.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
  JEBM_USER_CHECK(fd_ >= 0, "cannot write " << path_ << ": cannot create " << tmp_ << ": " << open_failure(tmp_, errno));
}

AtomicFile::~AtomicFile() {
  if (!committed_) abort();
}

void AtomicFile::abort() noexcept {
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
  ::unlink(tmp_.c_str());
}

void AtomicFile::write(const void* data, size_t n) {
  JEBM_CHECK(fd_ >= 0 && !committed_, "AtomicFile: write to " << path_ << " after commit or failure");
  try {
    write_all(fd_, data, n, path_ + " (temporary " + tmp_ + "; the previous file is unchanged)");
  } catch (...) {
    abort();
    throw;
  }
}

void AtomicFile::commit() {
  JEBM_CHECK(fd_ >= 0 && !committed_, "AtomicFile: commit of " << path_ << " after commit or failure");
  const std::string keep = " (the previous file is unchanged)";
  if (::fsync(fd_) != 0) {
    const int e = errno;
    abort();
    JEBM_USER_FAIL("cannot write " << path_ << ": fsync of " << tmp_ << " failed: " << errno_str(e) << keep);
  }
  const int rc = ::close(fd_);
  const int close_errno = errno;
  fd_ = -1;
  if (rc != 0) {
    abort();
    JEBM_USER_FAIL("cannot write " << path_ << ": close of " << tmp_ << " failed: " << errno_str(close_errno) << keep);
  }
  if (::rename(tmp_.c_str(), path_.c_str()) != 0) {
    const int e = errno;
    abort();
    JEBM_USER_FAIL("cannot write " << path_ << ": rename of " << tmp_ << " failed: " << errno_str(e) << keep);
  }
  committed_ = true;
  fsync_parent_dir(path_);
}

void write_file_atomic(const std::string& path, const std::string& bytes) {
  AtomicFile f(path);
  f.write(bytes);
  f.commit();
}

// --- AppendFile ----------------------------------------------------------------------------------------------

AppendFile::AppendFile(std::string path, bool truncate) : path_(std::move(path)) {
  // O_NOFOLLOW: a link at the path is an error, never a write into its target. A new file (truncate) replaces a
  // regular one by unlink + exclusive create, so even a hard link to someone's file is left as it was; a device
  // (/dev/full in the tests) is opened as it is.
  int flags = O_WRONLY | O_NOFOLLOW | O_CLOEXEC | (truncate ? 0 : O_APPEND | O_CREAT);
  if (truncate) {
    struct stat st {};
    const bool exists = ::lstat(path_.c_str(), &st) == 0;
    if (!exists || S_ISREG(st.st_mode) || S_ISLNK(st.st_mode)) flags |= O_CREAT | O_EXCL;
    if (exists && S_ISREG(st.st_mode) && ::unlink(path_.c_str()) != 0)
      JEBM_USER_FAIL("cannot write " << path_ << ": cannot replace it: " << errno_str(errno));
  }
  fd_ = ::open(path_.c_str(), flags, 0644);
  JEBM_USER_CHECK(fd_ >= 0, "cannot write " << path_ << ": " << open_failure(path_, errno));
}

AppendFile::~AppendFile() {
  if (fd_ >= 0) ::close(fd_);
}

AppendFile::AppendFile(AppendFile&& o) noexcept : path_(std::move(o.path_)), fd_(std::exchange(o.fd_, -1)) {}

AppendFile& AppendFile::operator=(AppendFile&& o) noexcept {
  if (this != &o) {
    if (fd_ >= 0) ::close(fd_);
    path_ = std::move(o.path_);
    fd_ = std::exchange(o.fd_, -1);
  }
  return *this;
}

void AppendFile::append(const std::string& s) {
  JEBM_CHECK(fd_ >= 0, "AppendFile: " << path_ << " is not open");
  // A full disk can take part of the write: cut the file back to where it was, so it never ends in half a row.
  const off_t before = ::lseek(fd_, 0, SEEK_END);
  try {
    write_all(fd_, s.data(), s.size(), path_);
  } catch (...) {
    if (before >= 0 && ::ftruncate(fd_, before) != 0) {
      // Nothing more to do: the error being thrown already names the file.
    }
    throw;
  }
}

void AppendFile::sync() {
  JEBM_CHECK(fd_ >= 0, "AppendFile: " << path_ << " is not open");
  JEBM_USER_CHECK(::fsync(fd_) == 0, "cannot write " << path_ << ": fsync failed: " << errno_str(errno));
}

std::string read_file(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
  JEBM_USER_CHECK(fd >= 0, "cannot read " << path << ": " << open_failure(path, errno));
  std::string out;
  char buf[1 << 16];
  for (;;) {
    const ssize_t r = ::read(fd, buf, sizeof buf);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) {
      const int e = errno;
      ::close(fd);
      JEBM_USER_FAIL("cannot read " << path << ": " << errno_str(e));
    }
    if (r == 0) break;
    out.append(buf, static_cast<size_t>(r));
  }
  ::close(fd);
  return out;
}

}  // namespace jebm
