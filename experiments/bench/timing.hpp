// The one timer of `jebm bench`: the median wall time of a few calls, with device work included.
// Tested through `jebm bench` itself (tests/test_sample.cpp runs a bench section).
#pragma once
#include <functional>

namespace jebm {

// Median over `repeat` (>= 1) timed calls of f, after one untimed warm-up call (first-touch allocation, BLAS and
// cuDNN setup). When a GPU is present its stream is waited for after each call, so asynchronous kernels count.
double median_ms(const std::function<void()>& f, int repeat);

}  // namespace jebm
