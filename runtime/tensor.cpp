// Tensor creation, views, host transfer and printing, with every size checked (shape_numel, shape_nbytes).
// Arithmetic lives in runtime/ops.cpp. Tested by tests/test_tensor.cpp and tests/test_tensor_sizes.cpp.
#include "runtime/tensor.hpp"

#include <cstring>
#include <new>
#include <iomanip>
#include <ostream>
#include <sstream>

#include "runtime/cuda_api.hpp"
#include "runtime/ops.hpp"

namespace jebm {

std::string bytes_str(int64_t bytes) {
  std::ostringstream os;
  os << std::setprecision(3);
  const double b = static_cast<double>(bytes);
  if (b >= 1099511627776.0) os << b / 1099511627776.0 << " TiB";
  else if (b >= 1073741824.0) os << b / 1073741824.0 << " GiB";
  else if (b >= 1048576.0) os << b / 1048576.0 << " MiB";
  else os << bytes << " B";
  return os.str();
}

std::string shape_str(const Shape& s) {
  std::ostringstream os;
  os << "[";
  for (size_t i = 0; i < s.size(); ++i) os << (i ? ", " : "") << s[i];
  os << "]";
  return os.str();
}

int64_t shape_numel(const Shape& s) {
  // Every dimension is checked before the product: a zero anywhere must not hide a negative one, and the product
  // of a huge shape must be an error naming it, not a wrapped (undefined) value that later sizes a buffer.
  bool empty = false;
  for (int64_t d : s) {
    JEBM_CHECK(d >= 0, "shape " << shape_str(s) << " has a negative dimension");
    empty = empty || d == 0;
  }
  if (empty) return 0;  // [0, huge, huge] is a valid empty shape whatever the other dimensions
  int64_t n = 1;
  for (int64_t d : s) {
    JEBM_CHECK(!__builtin_mul_overflow(n, d, &n),
               "shape " << shape_str(s) << " has more elements than a 64-bit size can count");
  }
  return n;
}

int64_t shape_nbytes(const Shape& s, DType dtype) {
  int64_t bytes = 0;
  JEBM_CHECK(!__builtin_mul_overflow(shape_numel(s), static_cast<int64_t>(dtype_size(dtype)), &bytes),
             "a " << dtype_name(dtype) << " tensor of shape " << shape_str(s)
                  << " needs more bytes than a 64-bit size can count");
  return bytes;
}

void copy_bytes(void* dst, Device dst_device, const void* src, Device src_device, size_t bytes) {
  if (bytes == 0) return;
  if (dst_device.is_cpu() && src_device.is_cpu()) {
    std::memcpy(dst, src, bytes);
    return;
  }
  cuda_api::memcpy(dst, dst_device.is_cuda(), src, src_device.is_cuda(), bytes);
}

// --- creation ---------------------------------------------------------------------------------------------

Tensor Tensor::empty(const Shape& shape, DType dtype, Device device) {
  Tensor t;
  t.shape_ = shape;
  t.numel_ = shape_numel(shape);
  t.dtype_ = dtype;
  const int64_t bytes = shape_nbytes(shape, dtype);
  // The allocator knows how many bytes failed, only this call knows for which tensor: say both.
  try {
    t.storage_ = std::make_shared<Storage>(static_cast<size_t>(bytes), device);
  } catch (const std::bad_alloc&) {
    JEBM_FAIL("Tensor::empty: cannot allocate " << bytes << " bytes (" << bytes_str(bytes) << ") for a "
                                                << dtype_name(dtype) << " tensor of shape " << shape_str(shape)
                                                << " on " << device.str() << ": out of memory");
  } catch (const Error& e) {
    JEBM_FAIL("Tensor::empty: a " << dtype_name(dtype) << " tensor of shape " << shape_str(shape) << " ("
                                  << bytes_str(bytes) << ") on " << device.str() << ": " << e.what());
  }
  return t;
}

Tensor Tensor::full(const Shape& shape, double value, DType dtype, Device device) {
  Tensor t = empty(shape, dtype, device);
  fill_(t, value);
  return t;
}

Tensor Tensor::zeros(const Shape& shape, DType dtype, Device device) { return full(shape, 0.0, dtype, device); }
Tensor Tensor::ones(const Shape& shape, DType dtype, Device device) { return full(shape, 1.0, dtype, device); }
Tensor Tensor::scalar(double value, DType dtype, Device device) { return full({}, value, dtype, device); }

Tensor Tensor::arange(int64_t n, DType dtype, Device device) {
  JEBM_CHECK(n >= 0, "Tensor::arange: length " << n << " is negative");
  std::vector<double> v(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) v[static_cast<size_t>(i)] = static_cast<double>(i);
  return from_vector(v, {n}, dtype, device);
}

namespace {
template <typename Src>
Tensor from_host(const Src* values, size_t count, const Shape& shape, DType dtype, Device device) {
  JEBM_CHECK(static_cast<int64_t>(count) == shape_numel(shape),
             "Tensor::from_vector: " << count << " values for shape " << shape_str(shape));
  Tensor host = Tensor::empty(shape, dtype, Device::cpu());
  switch (dtype) {
    case DType::Float32: { float* p = host.data<float>(); for (size_t i = 0; i < count; ++i) p[i] = static_cast<float>(values[i]); break; }
    case DType::Float64: { double* p = host.data<double>(); for (size_t i = 0; i < count; ++i) p[i] = static_cast<double>(values[i]); break; }
    case DType::Int64: { int64_t* p = host.data<int64_t>(); for (size_t i = 0; i < count; ++i) p[i] = static_cast<int64_t>(values[i]); break; }
  }
  return device.is_cpu() ? host : host.to(device);
}
}  // namespace

Tensor Tensor::from_vector(const std::vector<double>& values, const Shape& shape, DType dtype, Device device) {
  return from_host(values.data(), values.size(), shape, dtype, device);
}
Tensor Tensor::from_vector(const std::vector<float>& values, const Shape& shape, Device device) {
  return from_host(values.data(), values.size(), shape, DType::Float32, device);
}
Tensor Tensor::from_vector(const std::vector<int64_t>& values, const Shape& shape, Device device) {
  return from_host(values.data(), values.size(), shape, DType::Int64, device);
}

// --- metadata and views -----------------------------------------------------------------------------------

int64_t Tensor::size(int64_t d) const {
  const int64_t n = dim();
  const int64_t k = d < 0 ? d + n : d;
  JEBM_CHECK(k >= 0 && k < n, "Tensor::size: dimension " << d << " out of range for shape " << shape_str(shape_));
  return shape_[static_cast<size_t>(k)];
}

Device Tensor::device() const { return storage_ ? storage_->device : Device::cpu(); }

void* Tensor::raw_data() {
  JEBM_CHECK(defined(), "Tensor::data on an undefined tensor");
  return static_cast<char*>(storage_->data) + offset_ * static_cast<int64_t>(dtype_size(dtype_));
}
const void* Tensor::raw_data() const { return const_cast<Tensor*>(this)->raw_data(); }

Tensor Tensor::reshape(const Shape& shape) const {
  Shape s = shape;
  int64_t known = 1, infer = -1;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == -1) {
      JEBM_CHECK(infer < 0, "reshape: more than one -1 in " << shape_str(shape));
      infer = static_cast<int64_t>(i);
    } else {
      JEBM_CHECK(s[i] >= 0, "reshape: shape " << shape_str(shape) << " has a negative dimension other than -1");
      // Saturate instead of overflowing: any product above numel_ fails the check below anyway.
      if (__builtin_mul_overflow(known, s[i], &known)) known = INT64_MAX;
    }
  }
  if (infer >= 0) {
    JEBM_CHECK(known > 0 && numel_ % known == 0, "reshape: cannot view " << shape_str(shape_) << " as " << shape_str(shape));
    s[static_cast<size_t>(infer)] = numel_ / known;
    known *= s[static_cast<size_t>(infer)];  // == numel_, no overflow
  }
  JEBM_CHECK(known == numel_, "reshape: cannot view " << shape_str(shape_) << " (" << numel_
                                                                << " elements) as " << shape_str(shape));
  Tensor t = *this;
  t.shape_ = s;
  return t;
}

Tensor Tensor::rows(int64_t begin, int64_t end) const {
  JEBM_CHECK(dim() >= 1, "Tensor::rows on a 0-d tensor");
  JEBM_CHECK(0 <= begin && begin <= end && end <= shape_[0],
             "Tensor::rows: [" << begin << ", " << end << ") out of range for shape " << shape_str(shape_));
  Tensor t = *this;
  const int64_t row = shape_[0] ? numel_ / shape_[0] : 0;
  t.offset_ += begin * row;
  t.shape_[0] = end - begin;
  t.numel_ = (end - begin) * row;
  return t;
}

// --- copies -----------------------------------------------------------------------------------------------

Tensor Tensor::clone() const {
  Tensor t = empty(shape_, dtype_, device());
  copy_bytes(t.raw_data(), t.device(), raw_data(), device(), nbytes());
  return t;
}

Tensor Tensor::to(Device dev) const {
  if (dev == device()) return *this;
  Tensor t = empty(shape_, dtype_, dev);
  copy_bytes(t.raw_data(), dev, raw_data(), device(), nbytes());
  return t;
}

Tensor Tensor::copy_to(Device dev) const { return dev == device() ? clone() : to(dev); }

Tensor Tensor::to(DType dtype) const {
  if (dtype == dtype_) return *this;
  return cast(*this, dtype);
}

void Tensor::copy_(const Tensor& src) {
  JEBM_CHECK(src.shape_ == shape_, "Tensor::copy_: shape " << shape_str(src.shape_) << " into " << shape_str(shape_));
  Tensor s = src.to(device()).to(dtype_);
  copy_bytes(raw_data(), device(), s.raw_data(), device(), nbytes());
}

template <typename T>
std::vector<T> Tensor::host_vector() const {
  std::vector<T> out(static_cast<size_t>(numel_));
  if (numel_ == 0) return out;
  JEBM_CHECK(DTypeOf<T>::value == dtype_, "Tensor::host_vector: tensor is " << dtype_name(dtype_));
  copy_bytes(out.data(), Device::cpu(), raw_data(), device(), nbytes());
  return out;
}
template std::vector<float> Tensor::host_vector<float>() const;
template std::vector<double> Tensor::host_vector<double>() const;
template std::vector<int64_t> Tensor::host_vector<int64_t>() const;

std::vector<double> Tensor::to_vector() const {
  std::vector<double> out;
  switch (dtype_) {
    case DType::Float32: { auto v = host_vector<float>(); out.assign(v.begin(), v.end()); break; }
    case DType::Float64: out = host_vector<double>(); break;
    case DType::Int64: { auto v = host_vector<int64_t>(); out.assign(v.begin(), v.end()); break; }
  }
  return out;
}

double Tensor::item() const {
  JEBM_CHECK(numel_ == 1, "Tensor::item: tensor of shape " << shape_str(shape_) << " has " << numel_ << " elements");
  return to_vector()[0];
}

std::string Tensor::str(int64_t max_elements) const {
  std::ostringstream os;
  if (!defined()) return "Tensor(undefined)";
  os << "Tensor(" << shape_str(shape_) << ", " << dtype_name(dtype_) << ", " << device().str() << ") {";
  const auto v = to_vector();
  const int64_t n = std::min<int64_t>(numel_, max_elements);
  os << std::setprecision(6);
  for (int64_t i = 0; i < n; ++i) os << (i ? ", " : "") << v[static_cast<size_t>(i)];
  if (n < numel_) os << ", ... (" << numel_ - n << " more)";
  os << "}";
  return os.str();
}

std::ostream& operator<<(std::ostream& os, const Tensor& t) { return os << t.str(); }

}  // namespace jebm
