// The samplers' two kernel tables (samplers/kernels.inc) and the one dispatch macro that picks a table by the
// population's device. Only the samplers' dispatch points (samplers/walkers.cpp, resampling.cpp, ula_jarzynski.cpp)
// and the cross-backend tests use these. Tested by tests/test_samplers.cpp and tests/test_cuda_samplers.cpp.
#pragma once
#include <cstdint>
#include <vector>

#include "runtime/cuda_api.hpp"
#include "samplers/ula_jarzynski.hpp"
#include "samplers/walkers.hpp"

namespace jebm {
namespace cpu {
#include "samplers/kernels.inc"
}  // namespace cpu
#ifdef JEBM_WITH_CUDA
namespace cuda {
#include "samplers/kernels.inc"
}  // namespace cuda
#endif
}  // namespace jebm

// An expression: cuda::FN(...) for a CUDA device when that backend is built, else cuda_api::require's clear
// "built without CUDA" / "no CUDA device" error; cpu::FN(...) for the CPU.
#ifdef JEBM_WITH_CUDA
#define JEBM_SAMPLER_DISPATCH(device, FN, ...) \
  ((device).is_cuda() ? (::jebm::cuda_api::require(#FN), ::jebm::cuda::FN(__VA_ARGS__)) : ::jebm::cpu::FN(__VA_ARGS__))
#else
#define JEBM_SAMPLER_DISPATCH(device, FN, ...) \
  (((device).is_cuda() ? ::jebm::cuda_api::require(#FN) : (void)0), ::jebm::cpu::FN(__VA_ARGS__))
#endif
