// What the rest of jebm may ask of CUDA without including CUDA headers. Always declared; in a build without the
// CUDA backend (runtime/cuda_stub.cpp) built() is false and the rest report "no CUDA build" clearly.
#pragma once
#include <cstddef>
#include <string>

namespace jebm::cuda_api {

bool built();            // was the CUDA backend compiled in?
int device_count();      // 0 when not built or no device/driver
bool available();        // built() && device_count() > 0
std::string device_name(int index = 0);
void synchronize();      // waits for jebm's stream
// Throws a jebm::Error saying why CUDA cannot be used (no CUDA build, or no device) unless available().
void require(const char* what);
// Raw copies; kind inferred from the flags.
void memcpy(void* dst, bool dst_on_device, const void* src, bool src_on_device, size_t bytes);

}  // namespace jebm::cuda_api
