// Checked file writes, the one layer every file jebm leaves on disk goes through: replacing a file atomically
// (temporary, fsync, rename, fsync of the directory) and appending with every write checked. A failure (full
// disk, I/O error, kill) never loses what was there before, and throws a jebm::Error naming the file and the
// system's reason. No write ever follows a symbolic link: temporaries are created exclusively, final files are
// replaced only by rename, appends open with O_NOFOLLOW. Tested by tests/test_run_files.cpp (tmpfs full disk,
// RLIMIT_FSIZE, /dev/full) and tests/test_run_links.cpp (planted links).
#pragma once
#include <cstddef>
#include <string>

namespace jebm {

// A new version of `path`, written to `path + ".tmp"` (whatever held that name is unlinked first, and the temporary
// is created with O_EXCL | O_NOFOLLOW) and renamed over `path` by commit(). Until commit() the old file is untouched; a destructor without commit() removes the temporary (an exception unwound us).
class AtomicFile {
 public:
  explicit AtomicFile(std::string path);
  ~AtomicFile();
  AtomicFile(const AtomicFile&) = delete;
  AtomicFile& operator=(const AtomicFile&) = delete;

  void write(const void* data, size_t n);
  void write(const std::string& s) { write(s.data(), s.size()); }
  // fsync + close (both checked), rename over the target, fsync the directory so the rename survives a crash.
  void commit();
  const std::string& path() const { return path_; }

 private:
  void abort() noexcept;
  std::string path_, tmp_;
  int fd_ = -1;
  bool committed_ = false;
};

// Replaces `path` with `bytes` through an AtomicFile.
void write_file_atomic(const std::string& path, const std::string& bytes);

// A file written at its end (metrics rows): each append() is written whole to the kernel at once, checked, and
// reported as a jebm::Error naming the file when it fails (e.g. ENOSPC). Nothing is buffered in the process, so
// a killed run keeps every row it appended.
class AppendFile {
 public:
  AppendFile() = default;
  // truncate: start a new empty file (a new run; a regular file there is unlinked first, never truncated in
  // place); else keep what is there (a resumed run). A symbolic link at `path` is an error either way.
  AppendFile(std::string path, bool truncate);
  ~AppendFile();
  AppendFile(AppendFile&& o) noexcept;
  AppendFile& operator=(AppendFile&& o) noexcept;
  AppendFile(const AppendFile&) = delete;
  AppendFile& operator=(const AppendFile&) = delete;

  bool is_open() const { return fd_ >= 0; }
  void append(const std::string& s);
  void sync();  // fsync: the rows so far survive a power cut too
  const std::string& path() const { return path_; }

 private:
  std::string path_;
  int fd_ = -1;
};

// Reads a whole file (checked; the error names it), never through a symbolic link: what jebm reads back this way
// is its own run files (a CSV to resume, options.txt). Used to rewrite a file from its current content.
std::string read_file(const std::string& path);

}  // namespace jebm
