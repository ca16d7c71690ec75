// Error handling. JEBM_CHECK guards jebm's own invariants: a failure is a bug, thrown as jebm::Error with file:line.
// JEBM_USER_CHECK guards what a user gives (an option, a value, a file) and what the machine does (a full disk, a
// file that cannot be read): a jebm::UserError whose message names the option/file/value and the fix, without a
// source location. main() prints both and exits non-zero.
// Tested by tests/test_cli_binary.cpp (what the jebm binary prints for each kind).
#pragma once
#include <sstream>
#include <stdexcept>
#include <string>

namespace jebm {

class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& message) : std::runtime_error(message), message_(message) {}
  // what(): "message (where)"; message(): the message alone.
  Error(const std::string& message, const std::string& where)
      : std::runtime_error(message + " (" + where + ")"), message_(message) {}
  const std::string& message() const { return message_; }

 private:
  std::string message_;
};

// A mistake in the user's input, not in jebm: the message alone is what the user reads.
class UserError : public Error {
 public:
  using Error::Error;
};

[[noreturn]] void throw_error(const char* file, int line, const std::string& msg);

// Runs fn, which reads a file the user named (a checkpoint, a data file): whatever check fails in it is about that
// file, so a jebm::Error from it is rethrown as a UserError with its message alone.
template <typename Fn>
auto reading_user_file(Fn&& fn) -> decltype(fn()) {
  try {
    return fn();
  } catch (const UserError&) {
    throw;
  } catch (const Error& e) {
    throw UserError(e.message());
  }
}

}  // namespace jebm

// JEBM_CHECK(cond, "op: shapes " << a << " vs " << b): the message is a stream expression.
#define JEBM_CHECK(cond, msg)                                       \
  do {                                                              \
    if (!(cond)) {                                                  \
      std::ostringstream jebm_check_os_;                            \
      jebm_check_os_ << msg;                                        \
      ::jebm::throw_error(__FILE__, __LINE__, jebm_check_os_.str()); \
    }                                                               \
  } while (0)

// Unconditional, so the compiler sees the [[noreturn]] call (no "control reaches end" warnings at -O0).
#define JEBM_FAIL(msg)                                          \
  do {                                                          \
    std::ostringstream jebm_fail_os_;                           \
    jebm_fail_os_ << msg;                                       \
    ::jebm::throw_error(__FILE__, __LINE__, jebm_fail_os_.str()); \
  } while (0)

// JEBM_USER_CHECK(cond, "--walkers " << n << ": must be >= 1"): a UserError, no source location.
#define JEBM_USER_CHECK(cond, msg)                  \
  do {                                              \
    if (!(cond)) {                                  \
      std::ostringstream jebm_user_os_;             \
      jebm_user_os_ << msg;                         \
      throw ::jebm::UserError(jebm_user_os_.str()); \
    }                                               \
  } while (0)

#define JEBM_USER_FAIL(msg)                       \
  do {                                            \
    std::ostringstream jebm_user_os_;             \
    jebm_user_os_ << msg;                         \
    throw ::jebm::UserError(jebm_user_os_.str()); \
  } while (0)
