// Allocators are looked up per device (as in PyTorch's c10). The CPU one hands out 64-byte aligned blocks;
// the CUDA backend registers a caching allocator so that training loops never call cudaMalloc/cudaFree.
#pragma once
#include <cstddef>
#include "runtime/dtype.hpp"

namespace jebm {

struct Allocator {
  virtual ~Allocator() = default;
  virtual void* allocate(size_t bytes) = 0;
  virtual void deallocate(void* ptr, size_t bytes) = 0;
};

Allocator* allocator_for(Device device);  // throws when no backend for the device is built/available
void register_allocator(DeviceType type, Allocator* allocator);

}  // namespace jebm
