// The two backends' kernel tables, with identical signatures (runtime/kernels.inc). Only runtime/ops.cpp and the
// cross-backend tests call these directly; everything else uses runtime/ops.hpp.
#pragma once
#include <vector>

#include "runtime/ops.hpp"

namespace jebm {
namespace cpu {
#include "runtime/kernels.inc"
}  // namespace cpu
#ifdef JEBM_WITH_CUDA
namespace cuda {
#include "runtime/kernels.inc"
}  // namespace cuda
#endif
}  // namespace jebm
