// The lag covariance of consecutive gradient estimates (docs/method.md) in device-transparent tensor ops, for
// Gaussian-mixture walkers on a CUDA device: the state a pass leaves for the next one stays on the walkers' device,
// and only the [K*D + K] result comes to the host. (CPU walkers take the same sums inside the fused pass of
// samplers/gmm_step.cpp.) Tested by tests/test_gmm_training.cpp against direct sums on the CPU, and through the
// CUDA GMM run by tests/test_cuda_gmm.cpp where a device is present.
#pragma once
#include <vector>

#include "models/gaussian_mixture.hpp"
#include "runtime/tensor.hpp"

namespace jebm {

// The rows w_i (dU/dtheta(x_i) - g) of N walkers, [N, K*D | K] with dU/da_j = r_ij (a_j - x_i) and dU/dz_j = r_ij:
// x [N, D], responsibilities r [N, K] and weights w [N] at theta, g [K*D + K]; float64, on x's device.
Tensor gmm_centred_grad_rows(const GmmParams& theta, const std::vector<double>& g, const Tensor& x, const Tensor& r,
                             const Tensor& w);

// sum_i prev_i * rows_i, column by column ([K*D + K] on the host): with the previous pass's centred rows at the
// same walkers, the covariance of the two passes' gradient estimates.
std::vector<double> gmm_lag_covariance(const Tensor& prev_rows, const Tensor& rows);

}  // namespace jebm
