// CUDA row indexing: gather_rows, scatter_add_rows, index_copy_rows, and concat along any axis. Rows move in
// whole elements of the dtype's size, so every dtype works. Indices are checked in the kernel (the CPU twin,
// runtime/cpu/index.cpp, checks on the host): a bad one is skipped and reported at the next synchronisation
// (DeviceError in runtime/cuda/context.hpp), which keeps index work free of host round trips.
// Differences from the CPU: scatter_add_rows adds repeated indices with atomics in no fixed order (float sums
// may differ in the last bits); index_copy_rows with repeated indices keeps an arbitrary one of them.
// Tested by tests/test_cuda_ops.cpp.
#include <cstdint>
#include <vector>

#include "runtime/backend.hpp"
#include "runtime/cuda/context.hpp"

namespace jebm::cuda {
namespace {

#define JEBM_GRID_STRIDE(i, n) \
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < (n); i += int64_t(blockDim.x) * gridDim.x)

// x: [R, d], idx: [M], y: [M, d]; an out-of-range row of y is zero-filled.
template <typename U>
__global__ void gather_kernel(const U* __restrict__ x, const int64_t* __restrict__ idx, U* __restrict__ y,
                              int64_t m, int64_t d, int64_t rows, DeviceError* err) {
  JEBM_GRID_STRIDE(i, m * d) {
    const int64_t r = i / d, src = idx[r];
    if (src >= 0 && src < rows) {
      y[i] = x[src * d + (i - r * d)];
    } else {
      y[i] = U(0);
      if (i == r * d) report_device_error(err, DeviceErrorKind::GatherRows, r, src, rows);
    }
  }
}

// src: [M, d], idx: [M], y: [R, d]; y[idx[i]] += src[i]
template <typename T>
__global__ void scatter_add_kernel(const T* __restrict__ src, const int64_t* __restrict__ idx, T* __restrict__ y,
                                   int64_t m, int64_t d, int64_t rows, DeviceError* err) {
  JEBM_GRID_STRIDE(i, m * d) {
    const int64_t r = i / d, dst = idx[r];
    if (dst >= 0 && dst < rows) atomicAdd(&y[dst * d + (i - r * d)], src[i]);
    else if (i == r * d) report_device_error(err, DeviceErrorKind::ScatterAddRows, r, dst, rows);
  }
}

// src: [M, d], idx: [M], dst: [R, d]; dst[idx[i]] = src[i]
template <typename U>
__global__ void index_copy_kernel(const U* __restrict__ src, const int64_t* __restrict__ idx, U* __restrict__ dst,
                                  int64_t m, int64_t d, int64_t rows, DeviceError* err) {
  JEBM_GRID_STRIDE(i, m * d) {
    const int64_t r = i / d, to = idx[r];
    if (to >= 0 && to < rows) dst[to * d + (i - r * d)] = src[i];
    else if (i == r * d) report_device_error(err, DeviceErrorKind::IndexCopyRows, r, to, rows);
  }
}

int64_t row_elems(const Tensor& t) { return t.size(0) ? t.numel() / t.size(0) : 0; }

// Runs body<U>() with U an unsigned type of the dtype's size: row copies never look at the values.
template <typename F>
void dispatch_bits(DType t, F body) {
  if (dtype_size(t) == 4) body(uint32_t{});
  else body(uint64_t{});
}

}  // namespace

void gather_rows(const Tensor& x, const Tensor& idx, Tensor& y) {
  const int64_t m = idx.numel(), d = row_elems(x);
  if (m * d == 0) return;
  Context& ctx = context(x);
  DeviceError* err = device_error(ctx);
  dispatch_bits(x.dtype(), [&](auto u) {
    using U = decltype(u);
    gather_kernel<<<grid_for(m * d), kBlock, 0, ctx.stream>>>(static_cast<const U*>(x.raw_data()),
                                                               idx.device_data<int64_t>(), static_cast<U*>(y.raw_data()),
                                                               m, d, x.size(0), err);
  });
  CUDA_CHECK_LAUNCH("gather_kernel");
}

void scatter_add_rows(const Tensor& src, const Tensor& idx, Tensor& y) {
  const int64_t m = idx.numel(), d = row_elems(src);
  if (m * d == 0) return;
  Context& ctx = context(y);
  DeviceError* err = device_error(ctx);
  JEBM_DISPATCH_FLOAT(y.dtype(), "scatter_add_rows (cuda)", [&] {
    scatter_add_kernel<<<grid_for(m * d), kBlock, 0, ctx.stream>>>(src.device_data<scalar_t>(), idx.device_data<int64_t>(),
                                                                    y.device_data<scalar_t>(), m, d, y.size(0), err);
  });
  CUDA_CHECK_LAUNCH("scatter_add_kernel");
}

void index_copy_rows(const Tensor& src, const Tensor& idx, Tensor& dst) {
  const int64_t m = idx.numel(), d = row_elems(dst);
  if (m * d == 0) return;
  Context& ctx = context(dst);
  DeviceError* err = device_error(ctx);
  dispatch_bits(dst.dtype(), [&](auto u) {
    using U = decltype(u);
    index_copy_kernel<<<grid_for(m * d), kBlock, 0, ctx.stream>>>(static_cast<const U*>(src.raw_data()),
                                                                   idx.device_data<int64_t>(),
                                                                   static_cast<U*>(dst.raw_data()), m, d,
                                                                   dst.size(0), err);
  });
  CUDA_CHECK_LAUNCH("index_copy_kernel");
}

void concat(const std::vector<Tensor>& xs, int64_t axis, Tensor& y) {
  // Each input is viewed as [outer, len_i * inner] bytes; y as [outer, total * inner]: one strided 2-D copy each.
  int64_t outer = 1;
  for (int64_t k = 0; k < axis; ++k) outer *= y.size(k);
  if (outer == 0 || y.numel() == 0) return;
  const size_t y_row = y.nbytes() / static_cast<size_t>(outer);
  char* yp = static_cast<char*>(y.raw_data());
  cudaStream_t s = stream(y);
  size_t col = 0;  // byte offset of the current input within a y row
  for (const Tensor& x : xs) {
    const size_t x_row = x.nbytes() / static_cast<size_t>(outer);
    if (x_row > 0) {
      const char* xp = static_cast<const char*>(x.raw_data());
      if (outer == 1) {
        CUDA_CHECK(cudaMemcpyAsync(yp + col, xp, x_row, cudaMemcpyDeviceToDevice, s));
      } else if (y_row < (size_t{1} << 31)) {  // cudaMemcpy2D's pitch limit
        CUDA_CHECK(cudaMemcpy2DAsync(yp + col, y_row, xp, x_row, x_row, static_cast<size_t>(outer),
                                     cudaMemcpyDeviceToDevice, s));
      } else {
        for (int64_t o = 0; o < outer; ++o)
          CUDA_CHECK(cudaMemcpyAsync(yp + static_cast<size_t>(o) * y_row + col, xp + static_cast<size_t>(o) * x_row,
                                     x_row, cudaMemcpyDeviceToDevice, s));
      }
    }
    col += x_row;
  }
}

}  // namespace jebm::cuda
