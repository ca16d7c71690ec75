// Element types and devices. Float32/Float64 are the compute types; Int64 exists only for index tensors
// (gather/scatter, resampling) and is rejected by arithmetic kernels.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>

namespace jebm {

enum class DType : uint8_t { Float32, Float64, Int64 };

size_t dtype_size(DType t);
const char* dtype_name(DType t);  // "float32", "float64", "int64"

template <typename T> struct DTypeOf;
template <> struct DTypeOf<float> { static constexpr DType value = DType::Float32; };
template <> struct DTypeOf<double> { static constexpr DType value = DType::Float64; };
template <> struct DTypeOf<int64_t> { static constexpr DType value = DType::Int64; };

enum class DeviceType : uint8_t { CPU, CUDA };

struct Device {
  DeviceType type = DeviceType::CPU;
  int index = 0;
  static Device cpu() { return {DeviceType::CPU, 0}; }
  static Device cuda(int i = 0) { return {DeviceType::CUDA, i}; }
  bool is_cpu() const { return type == DeviceType::CPU; }
  bool is_cuda() const { return type == DeviceType::CUDA; }
  bool operator==(const Device& o) const { return type == o.type && index == o.index; }
  bool operator!=(const Device& o) const { return !(*this == o); }
  std::string str() const;  // "cpu", "cuda:0"
};

Device device_from_name(const std::string& name);  // "cpu", "cuda", "cuda:1"; throws on anything else

}  // namespace jebm

// Float-only dispatch: runs BODY with `scalar_t` bound to float or double.
#define JEBM_DISPATCH_FLOAT(dtype, opname, ...)                                           \
  [&] {                                                                                    \
    switch (dtype) {                                                                       \
      case ::jebm::DType::Float32: { using scalar_t = float; return __VA_ARGS__(); }       \
      case ::jebm::DType::Float64: { using scalar_t = double; return __VA_ARGS__(); }      \
      default: JEBM_FAIL(opname << ": dtype " << ::jebm::dtype_name(dtype) << " is not supported"); \
    }                                                                                      \
  }()
