// jebm::throw_error: formats "msg (file:line)" so every failed check says where it fired.
#include "runtime/check.hpp"

#include <cstring>

namespace jebm {

[[noreturn]] void throw_error(const char* file, int line, const std::string& msg) {
  const char* base = std::strrchr(file, '/');
  std::ostringstream os;
  os << msg << " (" << (base ? base + 1 : file) << ":" << line << ")";
  throw Error(os.str());
}

}  // namespace jebm
