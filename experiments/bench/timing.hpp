// The one timer of `jebm bench`: the median wall time of a few calls, with device work included.
// Tested by tests/test_bench.cpp (the call count and the median; `jebm bench --only gemm`).
#pragma once
#include <functional>

namespace jebm {

// Median over `repeat` (>= 1) timed calls of f, after one untimed warm-up call (first-touch allocation, BLAS and
// cuDNN setup). When a GPU is present its stream is waited for after each call, so asynchronous kernels count.
double median_ms(const std::function<void()>& f, int repeat);

}  // namespace jebm
