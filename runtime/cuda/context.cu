// Per-device CUDA contexts (stream, cuBLAS, cuDNN), the caching allocator, and the cuda_api functions the rest
// of jebm uses without CUDA headers (runtime/cuda_api.hpp; runtime/cuda_stub.cpp is the no-CUDA twin).
// Tested by tests/test_cuda_ops.cpp (allocator reuse, transfers) and, where no GPU exists, by its skips.
#include "runtime/cuda/context.hpp"

#include <cstdlib>
#include <cstring>
#include <iostream>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "runtime/allocator.hpp"
#include "runtime/cuda_api.hpp"
#include "runtime/user_error.hpp"

namespace jebm::cuda {

const char* cublas_status_string(cublasStatus_t s) { return cublasGetStatusString(s); }

bool allow_tf32() {
  static const bool on = [] {
    const char* e = std::getenv("JEBM_ALLOW_TF32");
    return e && std::string(e) == "1";
  }();
  return on;
}

// --- contexts ---------------------------------------------------------------------------------------------
namespace {

// Leaked on purpose: destroying handles from a static destructor can run after the driver has shut down.
struct Contexts {
  std::mutex mu;
  std::vector<std::unique_ptr<Context>> per_device;
};
Contexts& contexts() {
  static Contexts* c = new Contexts;
  return *c;
}

}  // namespace

Context& context(int device) {
  int current = -1;
  CUDA_CHECK(cudaGetDevice(&current));
  if (current != device) CUDA_CHECK(cudaSetDevice(device));
  Contexts& cs = contexts();
  std::lock_guard<std::mutex> lock(cs.mu);
  if (cs.per_device.size() <= static_cast<size_t>(device)) cs.per_device.resize(static_cast<size_t>(device) + 1);
  auto& slot = cs.per_device[static_cast<size_t>(device)];
  if (!slot) {
    auto ctx = std::make_unique<Context>();
    ctx->device = device;
    // A blocking stream (not cudaStreamNonBlocking): code that still uses the legacy default stream, such as
    // a plain cudaMemcpy in a test, stays ordered with jebm's work.
    CUDA_CHECK(cudaStreamCreate(&ctx->stream));
    slot = std::move(ctx);
  }
  return *slot;
}

Context& current_context() {
  int current = 0;
  CUDA_CHECK(cudaGetDevice(&current));
  return context(current);
}

cublasHandle_t cublas_handle(Context& ctx) {
  std::lock_guard<std::mutex> lock(contexts().mu);
  if (!ctx.cublas_) {
    CUBLAS_CHECK(cublasCreate(&ctx.cublas_));
    CUBLAS_CHECK(cublasSetStream(ctx.cublas_, ctx.stream));
    // Plain FP32 unless TF32 was asked for: results must match the CPU reference to float rounding.
    CUBLAS_CHECK(cublasSetMathMode(ctx.cublas_, allow_tf32() ? CUBLAS_TF32_TENSOR_OP_MATH : CUBLAS_DEFAULT_MATH));
  }
  return ctx.cublas_;
}

cudnnHandle_t cudnn_handle(Context& ctx) {
  std::lock_guard<std::mutex> lock(contexts().mu);
  if (!ctx.cudnn_) {
    CUDNN_CHECK(cudnnCreate(&ctx.cudnn_));
    CUDNN_CHECK(cudnnSetStream(ctx.cudnn_, ctx.stream));
  }
  return ctx.cudnn_;
}

DeviceError* device_error(Context& ctx) {
  std::lock_guard<std::mutex> lock(contexts().mu);
  if (!ctx.error_) {
    void* p = nullptr;
    CUDA_CHECK(cudaHostAlloc(&p, sizeof(DeviceError), cudaHostAllocMapped));
    std::memset(p, 0, sizeof(DeviceError));
    ctx.error_ = static_cast<DeviceError*>(p);
  }
  // With unified addressing (every 64-bit platform CUDA supports) the host pointer is valid on the device.
  return ctx.error_;
}

void throw_device_error(Context& ctx) {
  if (!ctx.error_) return;
  volatile DeviceError* e = ctx.error_;
  const auto kind = static_cast<DeviceErrorKind>(e->kind);
  if (kind == DeviceErrorKind::None) return;
  const int64_t pos = e->position, value = e->value, limit = e->limit;
  e->kind = 0;
  const char* op = kind == DeviceErrorKind::GatherRows       ? "gather_rows"
                   : kind == DeviceErrorKind::ScatterAddRows ? "scatter_add_rows"
                                                             : "index_copy_rows";
  JEBM_FAIL(op << " (cuda): index " << value << " at position " << pos << " is out of range for " << limit
               << " rows (found by the kernel, reported at the next synchronisation; that row was skipped)");
}

// --- caching allocator ------------------------------------------------------------------------------------
namespace {

// Buckets: 512-byte multiples below 4 KiB, then 8 steps per power of two (at most 12.5% rounding waste, and
// few enough distinct sizes that a training loop's shapes all land on warm buckets).
size_t round_size(size_t bytes) {
  if (bytes <= 4096) return (bytes + 511) / 512 * 512;
  size_t pow2 = 1;
  while (pow2 * 2 <= bytes) pow2 *= 2;
  const size_t step = pow2 / 8;
  return (bytes + step - 1) / step * step;
}

struct LiveBlock {
  int device;
  size_t size;  // rounded
};

struct CachingState {
  std::mutex mu;
  std::unordered_map<void*, LiveBlock> live;
  // free[device][rounded size] -> blocks
  std::vector<std::unordered_map<size_t, std::vector<void*>>> free;
  AllocatorStats stats;
};
CachingState& caching() {
  static CachingState* s = new CachingState;  // leaked: see Contexts
  return *s;
}

// Caller holds the lock. Frees every cached block on every device; restores the current device.
void release_cached_locked(CachingState& s) {
  int current = 0;
  if (cudaGetDevice(&current) != cudaSuccess) return;
  for (size_t d = 0; d < s.free.size(); ++d) {
    if (s.free[d].empty()) continue;
    if (cudaSetDevice(static_cast<int>(d)) != cudaSuccess) continue;
    cudaDeviceSynchronize();  // a cached block may still be read by queued work
    for (auto& [size, blocks] : s.free[d]) {
      for (void* p : blocks) {
        cudaFree(p);
        s.stats.bytes_cached -= size;
        ++s.stats.free_calls;
      }
    }
    s.free[d].clear();
  }
  cudaSetDevice(current);
}

struct CachingAllocator final : Allocator {
  void* allocate(size_t bytes) override { return device_alloc(bytes); }
  void deallocate(void* ptr, size_t bytes) override { device_free(ptr, bytes); }
};

}  // namespace

void* device_alloc(size_t bytes) {
  if (bytes == 0) return nullptr;
  int device = 0;
  CUDA_CHECK(cudaGetDevice(&device));
  const size_t size = round_size(bytes);
  CachingState& s = caching();
  std::lock_guard<std::mutex> lock(s.mu);
  if (s.free.size() <= static_cast<size_t>(device)) s.free.resize(static_cast<size_t>(device) + 1);
  auto& bucket = s.free[static_cast<size_t>(device)][size];
  void* p = nullptr;
  if (!bucket.empty()) {
    p = bucket.back();
    bucket.pop_back();
    s.stats.bytes_cached -= size;
  } else {
    cudaError_t err = cudaMalloc(&p, size);
    ++s.stats.malloc_calls;
    if (err == cudaErrorMemoryAllocation) {
      cudaGetLastError();  // clear it, give the cache back to the driver and retry once
      release_cached_locked(s);
      err = cudaMalloc(&p, size);
      ++s.stats.malloc_calls;
    }
    if (err != cudaSuccess) {
      cudaGetLastError();
      JEBM_FAIL("cudaMalloc(" << size << " bytes) on cuda:" << device << " failed: " << cudaGetErrorName(err)
                              << ": " << cudaGetErrorString(err) << " (in use " << s.stats.bytes_in_use
                              << " bytes)");
    }
  }
  s.live[p] = LiveBlock{device, size};
  s.stats.bytes_in_use += size;
  return p;
}

void device_free(void* ptr, size_t) {
  if (!ptr) return;
  CachingState& s = caching();
  std::lock_guard<std::mutex> lock(s.mu);
  auto it = s.live.find(ptr);
  if (it == s.live.end()) {
    std::cerr << "jebm: device_free of a pointer the CUDA caching allocator does not own (" << ptr << ")\n";
    return;
  }
  const LiveBlock b = it->second;
  s.live.erase(it);
  if (s.free.size() <= static_cast<size_t>(b.device)) s.free.resize(static_cast<size_t>(b.device) + 1);
  s.free[static_cast<size_t>(b.device)][b.size].push_back(ptr);
  s.stats.bytes_in_use -= b.size;
  s.stats.bytes_cached += b.size;
}

AllocatorStats allocator_stats() {
  CachingState& s = caching();
  std::lock_guard<std::mutex> lock(s.mu);
  return s.stats;
}

void release_cached_blocks() {
  CachingState& s = caching();
  std::lock_guard<std::mutex> lock(s.mu);
  release_cached_locked(s);
}

void register_cuda_allocator() {
  static CachingAllocator* a = [] {
    auto* p = new CachingAllocator;  // leaked: Storage destructors may run during static destruction
    register_allocator(DeviceType::CUDA, p);
    return p;
  }();
  (void)a;
}

}  // namespace jebm::cuda

// --- cuda_api ---------------------------------------------------------------------------------------------
namespace jebm::cuda_api {
namespace {

struct Probe {
  int count = 0;
  std::string why;  // why count is 0
};
const Probe& probe() {
  static const Probe p = [] {
    Probe r;
    const cudaError_t err = cudaGetDeviceCount(&r.count);
    if (err != cudaSuccess) {
      cudaGetLastError();  // not sticky, but leave no trace for later checks
      r.count = 0;
      r.why = std::string(cudaGetErrorName(err)) + ": " + cudaGetErrorString(err);
    } else if (r.count == 0) {
      r.why = "cudaGetDeviceCount returned 0";
    }
    return r;
  }();
  return p;
}

}  // namespace

bool built() { return true; }
int device_count() { return probe().count; }
bool available() { return device_count() > 0; }

std::string device_name(int index) {
  if (index < 0 || index >= device_count()) return "none";
  cudaDeviceProp prop;
  CUDA_CHECK(cudaGetDeviceProperties(&prop, index));
  return prop.name;
}

void synchronize() {
  if (!available()) return;
  cuda::Context& ctx = cuda::current_context();
  CUDA_CHECK(cudaStreamSynchronize(ctx.stream));
  cuda::throw_device_error(ctx);
}

void require(const char* what) {
  if (!available())
    JEBM_USER_FAIL(what << ": no CUDA device (" << probe().why
                   << "); this jebm has the CUDA backend but the machine has no usable GPU or driver");
  cuda::register_cuda_allocator();
}

void memcpy(void* dst, bool dst_on_device, const void* src, bool src_on_device, size_t bytes) {
  if (bytes == 0) return;
  if (!dst_on_device && !src_on_device) {
    std::memcpy(dst, src, bytes);
    return;
  }
  require("cuda_api::memcpy");
  const cudaMemcpyKind kind = dst_on_device ? (src_on_device ? cudaMemcpyDeviceToDevice : cudaMemcpyHostToDevice)
                                            : cudaMemcpyDeviceToHost;
  cuda::Context& ctx = cuda::current_context();
  cudaStream_t s = ctx.stream;
  // On jebm's stream so the copy is ordered after the kernels that produced src. A host->device copy from
  // pageable memory has consumed the host buffer when the call returns, so the caller may free it at once;
  // a device->host copy must be waited for before the caller reads dst.
  CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, kind, s));
  if (kind == cudaMemcpyDeviceToHost) {
    CUDA_CHECK(cudaStreamSynchronize(s));
    cuda::throw_device_error(ctx);
  }
}

}  // namespace jebm::cuda_api
