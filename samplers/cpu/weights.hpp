// The CPU weight kernels on raw host arrays: the bodies of samplers/cpu/weights.cpp's table entries, also behind
// the host-array API (weight_stats(const double*, n), systematic_ancestors(std::vector), ...). Tested by
// tests/test_samplers.cpp.
#pragma once
#include <cstdint>

namespace jebm::cpu {

// out[4] = {m = max a, s1 = sum e^{a-m}, s2 = sum e^{2(a-m)}, m + log s1}; n > 0.
void log_weight_sums(const double* a, int64_t n, double* out);
// c_i = prefix sums of w / total, c[n-1] = 1; checks w_i >= 0 finite and the total within 1e-8 of 1.
void cumulative_weights(const double* w, int64_t n, double* c);
void systematic_ancestors(const double* c, int64_t n, double u, int64_t* anc);
void multinomial_ancestors(const double* c, int64_t n, uint64_t seed, uint64_t offset, int64_t* anc);

}  // namespace jebm::cpu
