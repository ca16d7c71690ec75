// The two backends' kernel tables, with identical signatures (runtime/kernels.inc), and JEBM_DISPATCH, the one way
// every layer picks a table by device (the samplers' and the models' tables are built the same way: samplers/
// backend.hpp, models/backend.hpp). Only the dispatch points (runtime/ops.cpp, ...) and the cross-backend tests
// call the tables directly; everything else uses runtime/ops.hpp and the layers' device-transparent APIs.
#pragma once
#include <vector>

#include "runtime/cuda_api.hpp"
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

// An expression: jebm::cuda::FN(...) for a CUDA device when that backend is built, else cuda_api::require's one
// "built without the CUDA backend" / "no CUDA device" error; jebm::cpu::FN(...) for the CPU.
#ifdef JEBM_WITH_CUDA
#define JEBM_DISPATCH(device, FN, ...) \
  ((device).is_cuda() ? (::jebm::cuda_api::require(#FN), ::jebm::cuda::FN(__VA_ARGS__)) : ::jebm::cpu::FN(__VA_ARGS__))
#else
#define JEBM_DISPATCH(device, FN, ...) \
  (((device).is_cuda() ? ::jebm::cuda_api::require(#FN) : (void)0), ::jebm::cpu::FN(__VA_ARGS__))
#endif
