// The merged layout of a broadcasting binary op, shared by the CPU and CUDA elementwise kernels: each operand's
// element strides as seen from the output (right-aligned, 0 where it broadcasts), with size-1 output dims dropped
// and adjacent dims merged when both operands step through them as one run. E.g. [N, 2] + [N, 2] becomes one dim
// of 2N; [N, D] + [D] stays [N, D] with b's strides (0, 1). Tested through tests/test_ops.cpp and test_cuda_ops.cpp.
#pragma once
#include <cstdint>
#include <vector>

#include "runtime/tensor.hpp"

namespace jebm {

struct BroadcastLayout {
  std::vector<int64_t> shape, stride_a, stride_b;  // at least one dim (a 1-element output is {1}, strides {0})
};

BroadcastLayout broadcast_layout(const Shape& a, const Shape& b, const Shape& out);

}  // namespace jebm
