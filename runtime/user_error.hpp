// Errors that are not jebm's bugs: what a user gives (an option, a value, a file) and what the machine does (a full
// disk, a file that cannot be read). JEBM_USER_CHECK throws a jebm::UserError whose message names the option, file
// or value and the fix, without a source location; JEBM_CHECK (runtime/check.hpp) stays for jebm's own invariants,
// whose failures are bugs and carry file:line. Tested by tests/test_cli_binary.cpp (what the binary prints).
#pragma once
#include <sstream>
#include <string>

#include "runtime/check.hpp"

namespace jebm {

class UserError : public Error {
 public:
  using Error::Error;
};

// Whether `what` ends with the " (file.cpp:123)" that JEBM_CHECK appends: the mark of a failed internal check.
inline bool has_source_location(const std::string& what) {
  const size_t open = what.rfind(" (");
  if (open == std::string::npos || what.empty() || what.back() != ')') return false;
  const std::string loc = what.substr(open + 2, what.size() - open - 3);
  const size_t colon = loc.rfind(':');
  if (colon == std::string::npos || colon + 1 >= loc.size() || loc.find(' ') != std::string::npos) return false;
  if (loc.find_first_not_of("0123456789", colon + 1) != std::string::npos) return false;
  const size_t dot = loc.rfind('.', colon);
  return dot != std::string::npos && dot > 0 && dot < colon;
}

// Runs fn, which reads a file the user named (a checkpoint, a data file): whatever check fails in it is about that
// file, so a jebm::Error from it is rethrown as a UserError, without its source location.
template <typename Fn>
auto reading_user_file(Fn&& fn) -> decltype(fn()) {
  try {
    return fn();
  } catch (const UserError&) {
    throw;
  } catch (const Error& e) {
    std::string what = e.what();
    if (has_source_location(what)) what.erase(what.rfind(" ("));
    throw UserError(what);
  }
}

}  // namespace jebm

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
