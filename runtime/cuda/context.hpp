// The CUDA backend's shared machinery: the check macros, the per-device context (one stream, a cuBLAS and a
// cuDNN handle bound to it, created on first use), the caching allocator and small launch helpers. Included by
// every runtime/cuda/*.cu file (and samplers/*.cu). Tested by tests/test_cuda_ops.cpp.
#pragma once
#include <cublas_v2.h>
#include <cuda_runtime.h>
#include <cudnn.h>

#include <cstddef>
#include <cstdint>

#include "runtime/check.hpp"
#include "runtime/tensor.hpp"

namespace jebm::cuda {

const char* cublas_status_string(cublasStatus_t s);

}  // namespace jebm::cuda

// Each macro throws jebm::Error naming the statement, file:line (added by JEBM_FAIL) and the library's message.
#define CUDA_CHECK(stmt)                                                                        \
  do {                                                                                          \
    const cudaError_t jebm_cuda_err_ = (stmt);                                                  \
    if (jebm_cuda_err_ != cudaSuccess)                                                          \
      JEBM_FAIL(#stmt << " failed: " << cudaGetErrorName(jebm_cuda_err_) << ": "                \
                      << cudaGetErrorString(jebm_cuda_err_));                                   \
  } while (0)
#define CUBLAS_CHECK(stmt)                                                                                   \
  do {                                                                                                       \
    const cublasStatus_t jebm_cublas_st_ = (stmt);                                                           \
    if (jebm_cublas_st_ != CUBLAS_STATUS_SUCCESS)                                                            \
      JEBM_FAIL(#stmt << " failed: " << ::jebm::cuda::cublas_status_string(jebm_cublas_st_));              \
  } while (0)
#define CUDNN_CHECK(stmt)                                                                                     \
  do {                                                                                                        \
    const cudnnStatus_t jebm_cudnn_st_ = (stmt);                                                              \
    if (jebm_cudnn_st_ != CUDNN_STATUS_SUCCESS)                                                               \
      JEBM_FAIL(#stmt << " failed: " << cudnnGetErrorString(jebm_cudnn_st_));                                \
  } while (0)
// After a <<<...>>> launch: catches bad configurations at the launch site instead of at the next sync.
#define CUDA_CHECK_LAUNCH(what)                                                                     \
  do {                                                                                              \
    const cudaError_t jebm_launch_err_ = cudaGetLastError();                                        \
    if (jebm_launch_err_ != cudaSuccess)                                                            \
      JEBM_FAIL("launching " << what << " failed: " << cudaGetErrorName(jebm_launch_err_) << ": "  \
                             << cudaGetErrorString(jebm_launch_err_));                              \
  } while (0)

namespace jebm::cuda {

// Everything jebm does on one device is ordered on this one stream, which is what makes reusing a freed block
// from the caching allocator safe without events (the same argument as PyTorch's per-stream caching).
// The library handles are created on first use (cuDNN's takes ~0.5 s to create, and many runs never convolve).
struct Context {
  int device = 0;
  cudaStream_t stream = nullptr;
  cublasHandle_t cublas_ = nullptr;
  cudnnHandle_t cudnn_ = nullptr;
  struct DeviceError* error_ = nullptr;  // mapped pinned memory, see DeviceError
};

// Makes `device` current and returns its context, creating the stream on first use.
Context& context(int device);
inline Context& context(const Tensor& t) { return context(t.device().index); }
Context& current_context();  // for the device that is current now
inline cudaStream_t stream(const Tensor& t) { return context(t).stream; }
cublasHandle_t cublas_handle(Context& ctx);  // bound to ctx.stream
cudnnHandle_t cudnn_handle(Context& ctx);    // bound to ctx.stream

// Errors kernels find in data (an index out of range) without a sync: the first one is written into mapped
// pinned memory, and the host throws it at the next synchronisation it does anyway (cuda_api::synchronize, a
// device->host copy). Index kernels skip the bad row, so nothing is written out of bounds.
enum class DeviceErrorKind : int { None = 0, GatherRows, ScatterAddRows, IndexCopyRows };
struct DeviceError {
  int kind;  // DeviceErrorKind; set first with atomicCAS so that only the first error is kept
  int pad;
  int64_t position;  // where in idx
  int64_t value;     // the bad index
  int64_t limit;     // the number of rows
};
DeviceError* device_error(Context& ctx);  // created on first use; device code writes it directly
// Throws (and clears) the recorded error, if any. Call only after the stream has been synchronised.
void throw_device_error(Context& ctx);

#ifdef __CUDACC__
__device__ __forceinline__ void report_device_error(DeviceError* e, DeviceErrorKind kind, int64_t position,
                                                    int64_t value, int64_t limit) {
  if (atomicCAS(&e->kind, 0, static_cast<int>(kind)) == 0) {
    e->position = position;
    e->value = value;
    e->limit = limit;
    __threadfence_system();
  }
}
#endif

// float32 convolutions (cuDNN math type, runtime/cuda/conv.cu) and GEMMs (cuBLAS math mode, cublas_handle) may use
// TF32 tensor cores only when JEBM_ALLOW_TF32=1 is set in the environment (read once); by default both are exact
// FP32 (FMA) so that the CPU reference and the GPU agree to float rounding.
bool allow_tf32();

// The caching allocator: size-bucketed free lists per device, cudaMalloc only on a miss, cudaFree only when a
// cudaMalloc fails (then every cached block is released and the malloc retried once).
struct AllocatorStats {
  size_t bytes_in_use = 0;   // handed out, bucket-rounded
  size_t bytes_cached = 0;   // in free lists
  size_t malloc_calls = 0;   // cudaMalloc calls so far
  size_t free_calls = 0;     // cudaFree calls so far (0 in steady state)
};
void* device_alloc(size_t bytes);           // on the current device; nullptr for 0 bytes
void device_free(void* ptr, size_t bytes);  // never throws
AllocatorStats allocator_stats();
void release_cached_blocks();  // cudaFree's everything in the free lists (tests, or before a big allocation)
void register_cuda_allocator();  // idempotent; called by cuda_api::require()

// Scratch memory from the caching allocator, returned when the scope ends (stream order makes this safe).
class Workspace {
 public:
  explicit Workspace(size_t bytes) : bytes_(bytes), ptr_(device_alloc(bytes)) {}
  ~Workspace() { device_free(ptr_, bytes_); }
  Workspace(const Workspace&) = delete;
  Workspace& operator=(const Workspace&) = delete;
  void* get() const { return ptr_; }
  size_t size() const { return bytes_; }

 private:
  size_t bytes_;
  void* ptr_;
};

// Grid-stride launches: enough blocks to fill the GPU, never more than the elements need.
constexpr int kBlock = 256;
inline unsigned grid_for(int64_t n, int block = kBlock) {
  const int64_t blocks = (n + block - 1) / block;
  const int64_t cap = 65536;  // with grid-stride loops, more blocks only add scheduling overhead
  return static_cast<unsigned>(blocks < 1 ? 1 : (blocks > cap ? cap : blocks));
}

}  // namespace jebm::cuda
