// Error handling: every failed check throws jebm::Error naming the statement and file:line.
// User-facing errors (bad file, bad option) are jebm::Error too; main() prints them and exits non-zero.
#pragma once
#include <sstream>
#include <stdexcept>
#include <string>

namespace jebm {

class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

[[noreturn]] void throw_error(const char* file, int line, const std::string& msg);

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
