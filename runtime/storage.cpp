// Storage: allocation through the device's allocator, released when the last Tensor lets go.
#include "runtime/storage.hpp"

namespace jebm {

Storage::Storage(size_t nbytes, Device dev) : bytes(nbytes), device(dev), allocator(allocator_for(dev)) {
  data = allocator->allocate(nbytes);
}

Storage::~Storage() {
  if (data) allocator->deallocate(data, bytes);
}

}  // namespace jebm
