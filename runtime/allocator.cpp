// The per-device allocator registry and the CPU allocator (64-byte aligned, for SIMD and cache lines; a block
// larger than physical memory is refused with a jebm::Error). Tested by tests/test_tensor_sizes.cpp.
#include "runtime/allocator.hpp"

#include <malloc.h>
#include <unistd.h>

#include <cstdlib>
#include <new>

#include "runtime/check.hpp"
#include "runtime/cuda_api.hpp"

namespace jebm {
namespace {

struct CpuAllocator final : Allocator {
  // glibc hands blocks over 128 KiB out as fresh mmaps and unmaps them on free, so every activation tensor of a
  // training step page-faults anew (measured: 0.7-2 ms per MNIST conv layer call). Keeping such blocks in the heap
  // instead lets the same few sizes be reused step after step.
  CpuAllocator() {
    mallopt(M_MMAP_THRESHOLD, 256 << 20);
    mallopt(M_TRIM_THRESHOLD, 1 << 30);
  }
  void* allocate(size_t bytes) override {
    if (bytes == 0) return nullptr;
    // A block larger than the machine's memory can never be used; refusing it here gives a clear error where
    // malloc might succeed lazily (overcommit) and the run be killed later, and where a sanitizer would abort.
    static const size_t physical = physical_memory_bytes();
    JEBM_CHECK(physical == 0 || bytes <= physical, "cannot allocate " << bytes << " bytes: more than this machine's "
                                                                      << physical << " bytes of memory");
    const size_t rounded = (bytes + 63) / 64 * 64;
    void* p = std::aligned_alloc(64, rounded);
    if (!p) throw std::bad_alloc();
    return p;
  }
  static size_t physical_memory_bytes() {
    const long pages = ::sysconf(_SC_PHYS_PAGES), page = ::sysconf(_SC_PAGESIZE);
    return pages > 0 && page > 0 ? static_cast<size_t>(pages) * static_cast<size_t>(page) : 0;  // 0: unknown
  }
  void deallocate(void* ptr, size_t) override { std::free(ptr); }
};

Allocator*& cuda_slot() {
  static Allocator* a = nullptr;
  return a;
}

}  // namespace

void register_allocator(DeviceType type, Allocator* allocator) {
  JEBM_CHECK(type == DeviceType::CUDA, "register_allocator: only the CUDA allocator can be registered");
  cuda_slot() = allocator;
}

Allocator* allocator_for(Device device) {
  static CpuAllocator cpu;
  if (device.is_cpu()) return &cpu;
  cuda_api::require("allocating a CUDA tensor");
  JEBM_CHECK(cuda_slot() != nullptr, "allocator_for(" << device.str() << "): the CUDA allocator is not registered");
  return cuda_slot();
}

}  // namespace jebm
