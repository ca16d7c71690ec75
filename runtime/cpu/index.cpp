// CPU row indexing: gather_rows, scatter_add_rows, index_copy_rows (indices bounds-checked, the bad one named),
// and concat along any axis. Rows are copied as bytes, so every dtype works. Tested by tests/test_ops.cpp.
#include <cstdint>
#include <cstring>

#include "runtime/backend.hpp"
#include "runtime/cpu/parallel.hpp"

namespace jebm::cpu {
namespace {

// Validates every index before any work starts (no throwing from inside an OpenMP region).
void check_rows(const char* op, const Tensor& idx, int64_t rows) {
  const int64_t* ip = idx.data<int64_t>();
  for (int64_t i = 0; i < idx.numel(); ++i)
    JEBM_CHECK(ip[i] >= 0 && ip[i] < rows,
               op << ": index " << ip[i] << " at position " << i << " is out of range for " << rows << " rows");
}

int64_t row_bytes(const Tensor& t) {
  return t.size(0) ? static_cast<int64_t>(t.nbytes()) / t.size(0) : 0;
}

}  // namespace

void gather_rows(const Tensor& x, const Tensor& idx, Tensor& y) {
  // x: [R, ...], idx: [M], y: [M, ...]
  check_rows("gather_rows", idx, x.size(0));
  const int64_t* ip = idx.data<int64_t>();
  const char* xp = static_cast<const char*>(x.raw_data());
  char* yp = static_cast<char*>(y.raw_data());
  const int64_t rb = static_cast<int64_t>(dtype_size(x.dtype())) * (x.size(0) ? x.numel() / x.size(0) : 0);
  const int64_t m = idx.numel();
  if (rb == 0) return;
  if (y.numel() >= kParallelMin) {
#pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < m; ++i) std::memcpy(yp + i * rb, xp + ip[i] * rb, static_cast<size_t>(rb));
  } else {
    for (int64_t i = 0; i < m; ++i) std::memcpy(yp + i * rb, xp + ip[i] * rb, static_cast<size_t>(rb));
  }
}

void scatter_add_rows(const Tensor& src, const Tensor& idx, Tensor& y) {
  // src: [M, ...], idx: [M], y: [rows, ...] zeroed. Serial over i, so repeated indices add in a fixed order.
  check_rows("scatter_add_rows", idx, y.size(0));
  JEBM_DISPATCH_FLOAT(y.dtype(), "scatter_add_rows", [&] {
    const int64_t* ip = idx.data<int64_t>();
    const scalar_t* sp = src.data<scalar_t>();
    scalar_t* yp = y.data<scalar_t>();
    const int64_t d = src.size(0) ? src.numel() / src.size(0) : 0;
    for (int64_t i = 0; i < idx.numel(); ++i) {
      const scalar_t* s = sp + i * d;
      scalar_t* o = yp + ip[i] * d;
      for (int64_t k = 0; k < d; ++k) o[k] += s[k];
    }
  });
}

void index_copy_rows(const Tensor& src, const Tensor& idx, Tensor& dst) {
  // src: [M, ...], dst: [R, ...]; dst[idx[i]] = src[i]. Serial, so with repeated indices the last one wins.
  check_rows("index_copy_rows", idx, dst.size(0));
  const int64_t* ip = idx.data<int64_t>();
  const char* sp = static_cast<const char*>(src.raw_data());
  char* dp = static_cast<char*>(dst.raw_data());
  const int64_t rb = row_bytes(dst);
  for (int64_t i = 0; i < idx.numel(); ++i) std::memcpy(dp + ip[i] * rb, sp + i * rb, static_cast<size_t>(rb));
}

void concat(const std::vector<Tensor>& xs, int64_t axis, Tensor& y) {
  // Each input is viewed as [outer, len_i * inner]; y as [outer, total * inner].
  int64_t outer = 1;
  for (int64_t k = 0; k < axis; ++k) outer *= y.size(k);
  const int64_t y_row = outer ? static_cast<int64_t>(y.nbytes()) / outer : 0;
  char* yp = static_cast<char*>(y.raw_data());
  int64_t col = 0;  // byte offset of the current input within a y row
  for (const Tensor& x : xs) {
    const int64_t x_row = outer ? static_cast<int64_t>(x.nbytes()) / outer : 0;
    const char* xp = static_cast<const char*>(x.raw_data());
    if (x_row > 0) {
      if (static_cast<int64_t>(x.nbytes()) >= kParallelMin * 4 && outer > 1) {
#pragma omp parallel for schedule(static)
        for (int64_t o = 0; o < outer; ++o) std::memcpy(yp + o * y_row + col, xp + o * x_row, static_cast<size_t>(x_row));
      } else {
        for (int64_t o = 0; o < outer; ++o) std::memcpy(yp + o * y_row + col, xp + o * x_row, static_cast<size_t>(x_row));
      }
    }
    col += x_row;
  }
}

}  // namespace jebm::cpu
