// Tensor: shape + dtype + device over shared Storage. Always contiguous (row-major); reshape and row slices
// are cheap views sharing the storage. Ops that compute live in runtime/ops.hpp; this file only holds
// creation, host transfer, views and printing. Tested by tests/test_tensor.cpp.
#pragma once
#include <cstdint>
#include <initializer_list>
#include <iosfwd>
#include <memory>
#include <string>
#include <vector>

#include "runtime/check.hpp"
#include "runtime/dtype.hpp"
#include "runtime/storage.hpp"

namespace jebm {

using Shape = std::vector<int64_t>;
std::string shape_str(const Shape& s);  // "[2, 3]"
// Number of elements; a negative dimension or a product beyond int64 is a jebm::Error naming the shape.
int64_t shape_numel(const Shape& s);
// shape_numel(s) * dtype_size(dtype), checked the same way.
int64_t shape_nbytes(const Shape& s, DType dtype);
std::string bytes_str(int64_t bytes);  // "1.5 GiB": sizes in error messages

class Tensor {
 public:
  Tensor() = default;  // undefined tensor

  // --- creation -------------------------------------------------------------------------------------
  // Sizes are checked (shape_nbytes); an allocation that fails is a jebm::Error naming bytes, dtype and shape.
  static Tensor empty(const Shape& shape, DType dtype = DType::Float32, Device device = Device::cpu());
  static Tensor zeros(const Shape& shape, DType dtype = DType::Float32, Device device = Device::cpu());
  static Tensor ones(const Shape& shape, DType dtype = DType::Float32, Device device = Device::cpu());
  static Tensor full(const Shape& shape, double value, DType dtype = DType::Float32,
                     Device device = Device::cpu());
  static Tensor arange(int64_t n, DType dtype = DType::Float32, Device device = Device::cpu());
  static Tensor scalar(double value, DType dtype = DType::Float32, Device device = Device::cpu());  // shape {}
  // Copies host data (converted to dtype) into a new tensor on `device`.
  static Tensor from_vector(const std::vector<double>& values, const Shape& shape,
                            DType dtype = DType::Float32, Device device = Device::cpu());
  static Tensor from_vector(const std::vector<float>& values, const Shape& shape,
                            Device device = Device::cpu());
  static Tensor from_vector(const std::vector<int64_t>& values, const Shape& shape,
                            Device device = Device::cpu());

  // --- metadata -------------------------------------------------------------------------------------
  bool defined() const { return storage_ != nullptr; }
  const Shape& shape() const { return shape_; }
  int64_t dim() const { return static_cast<int64_t>(shape_.size()); }
  int64_t size(int64_t d) const;  // negative d counts from the end
  int64_t numel() const { return numel_; }
  DType dtype() const { return dtype_; }
  Device device() const;
  size_t nbytes() const { return static_cast<size_t>(numel_) * dtype_size(dtype_); }
  bool same_storage(const Tensor& o) const { return storage_ == o.storage_; }
  // No other Tensor shares this one's storage and it spans all of it: a caller may hand it on instead of a copy.
  bool sole_owner() const {
    return storage_ != nullptr && storage_.use_count() == 1 && offset_ == 0 && nbytes() == storage_->bytes;
  }

  // --- raw data ---------------------------------------------------------------------------------------
  // raw_data and device_data: a pointer on the tensor's own device (kernels, copies, communicators).
  void* raw_data();
  const void* raw_data() const;
  template <typename T> T* device_data() {
    check_dtype(DTypeOf<T>::value);
    return static_cast<T*>(raw_data());
  }
  template <typename T> const T* device_data() const {
    check_dtype(DTypeOf<T>::value);
    return static_cast<const T*>(raw_data());
  }
  // data: a host pointer, for code that reads or writes the elements on the CPU. Debug and sanitizer builds refuse
  // a device tensor here (its pointer would be dereferenced on the host); release builds skip that check.
  template <typename T> T* data() {
    check_host();
    return device_data<T>();
  }
  template <typename T> const T* data() const {
    check_host();
    return device_data<T>();
  }

  // --- views ----------------------------------------------------------------------------------------
  Tensor reshape(const Shape& shape) const;  // one -1 allowed; shares storage
  Tensor flatten() const { return reshape({numel_}); }
  Tensor rows(int64_t begin, int64_t end) const;  // view of rows [begin, end) along dim 0

  // --- copies ---------------------------------------------------------------------------------------
  Tensor clone() const;
  Tensor to(Device device) const;  // shares storage when already there
  Tensor copy_to(Device device) const;  // a copy on `device` that never shares this tensor's storage
  Tensor to(DType dtype) const;    // shares storage when already that dtype
  void copy_(const Tensor& src);   // same shape; any device/dtype pair
  std::vector<double> to_vector() const;  // host copy, converted to double
  template <typename T> std::vector<T> host_vector() const;  // host copy in the tensor's own dtype
  double item() const;  // one-element tensors only

  std::string str(int64_t max_elements = 64) const;

 private:
  void check_dtype(DType asked) const {
    JEBM_CHECK(asked == dtype_,
               "Tensor::data: tensor is " << dtype_name(dtype_) << ", asked for " << dtype_name(asked));
  }
#if defined(JEBM_SANITIZE) || !defined(NDEBUG)
  void check_host() const {
    JEBM_CHECK(!defined() || device().is_cpu(), "Tensor::data: a host pointer was asked of a tensor on "
                                                    << device().str() << " (device code uses device_data)");
  }
#else
  void check_host() const {}
#endif

  std::shared_ptr<Storage> storage_;
  int64_t offset_ = 0;  // in elements
  Shape shape_;
  int64_t numel_ = 0;
  DType dtype_ = DType::Float32;
};

std::ostream& operator<<(std::ostream& os, const Tensor& t);

// Copies `bytes` between two buffers on any pair of devices (host<->device through the CUDA backend).
void copy_bytes(void* dst, Device dst_device, const void* src, Device src_device, size_t bytes);

}  // namespace jebm
