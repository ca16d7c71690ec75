// Names and sizes of dtypes and devices.
#include "runtime/dtype.hpp"

#include <cstdlib>

#include "runtime/check.hpp"
#include "runtime/user_error.hpp"

namespace jebm {

size_t dtype_size(DType t) {
  switch (t) {
    case DType::Float32: return 4;
    case DType::Float64: return 8;
    case DType::Int64: return 8;
  }
  JEBM_FAIL("dtype_size: unknown dtype " << static_cast<int>(t));
}

const char* dtype_name(DType t) {
  switch (t) {
    case DType::Float32: return "float32";
    case DType::Float64: return "float64";
    case DType::Int64: return "int64";
  }
  return "unknown";
}

std::string Device::str() const {
  return is_cpu() ? std::string("cpu") : "cuda:" + std::to_string(index);
}

Device device_from_name(const std::string& name) {
  if (name == "cpu") return Device::cpu();
  if (name == "cuda") return Device::cuda(0);
  if (name.rfind("cuda:", 0) == 0 && name.size() > 5) {
    char* end = nullptr;
    const long i = std::strtol(name.c_str() + 5, &end, 10);
    if (*end == '\0' && i >= 0) return Device::cuda(static_cast<int>(i));
  }
  JEBM_USER_FAIL("unknown device '" << name << "' (expected cpu, cuda or cuda:N)");
}

}  // namespace jebm
