// The samplers' two kernel tables (samplers/kernels.inc), picked by the population's device with JEBM_DISPATCH
// (runtime/backend.hpp). Only the samplers' dispatch points (samplers/walkers.cpp, resampling.cpp, ula_jarzynski.cpp)
// and the cross-backend tests use these. Tested by tests/test_samplers.cpp and tests/test_cuda_samplers.cpp.
#pragma once
#include <cstdint>
#include <vector>

#include "runtime/backend.hpp"
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
