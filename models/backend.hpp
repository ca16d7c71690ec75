// The models' two kernel tables (models/kernels.inc), picked by the tensors' device with JEBM_DISPATCH
// (runtime/backend.hpp). Only the models' dispatch points and the cross-backend tests use these.
// Tested by tests/test_gmm.cpp and tests/test_cuda_samplers.cpp.
#pragma once
#include "models/gaussian_mixture.hpp"
#include "runtime/backend.hpp"

namespace jebm {
namespace cpu {
#include "models/kernels.inc"
}  // namespace cpu
#ifdef JEBM_WITH_CUDA
namespace cuda {
#include "models/kernels.inc"
}  // namespace cuda
#endif
}  // namespace jebm
