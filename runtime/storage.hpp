// Storage = pointer + size + device + the allocator that owns it. Tensors share it through shared_ptr.
#pragma once
#include <cstddef>
#include <memory>
#include "runtime/allocator.hpp"

namespace jebm {

struct Storage {
  void* data = nullptr;
  size_t bytes = 0;
  Device device;
  Allocator* allocator = nullptr;

  Storage(size_t nbytes, Device dev);
  ~Storage();
  Storage(const Storage&) = delete;
  Storage& operator=(const Storage&) = delete;
};

}  // namespace jebm
