// The Gaussian-mixture closed forms on the device (models/gaussian_mixture.cu, twins of gmm_eval, gmm_param_grad,
// gmm_param_grad_variance and gmm_data_term in models/gaussian_mixture.cpp), so `jebm gmm --device cuda` keeps
// walkers and data on the GPU. Callers use the Tensor overloads of models/gaussian_mixture.hpp, which dispatch
// here. Declared without CUDA headers; defined only in CUDA builds. Tested by tests/test_cuda_samplers.cpp and
// tests/test_cuda_gmm.cpp.
#pragma once
#include <cstdint>

#include "models/gaussian_mixture.hpp"
#include "runtime/tensor.hpp"

namespace jebm {

// The device kernels keep a row's K exponents in registers/local memory: K is limited to this many modes.
constexpr int64_t kGmmCudaMaxModes = 32;

// gmm_eval on the device: x [n, D] float64 CUDA; u [n] is written; g [n, D] and r [n, K] when non-null.
// The parameters (K*D + K doubles) are uploaded on each call; the walkers never leave the device.
void gmm_eval_cuda(const GmmParams& p, const Tensor& x, Tensor& u, Tensor* g, Tensor* r);
// gmm_param_grad on the device: sum_i c_i grad_theta U(x_i) from responsibilities r [n, K]; c [n] float64 on the
// device, or undefined for c_i = 1/n. Writes the K*D + K results to the host arrays (one small copy).
void gmm_param_grad_cuda(const GmmParams& p, const Tensor& x, const Tensor& r, const Tensor& c, double* grad_a,
                         double* grad_z);
// gmm_param_grad_variance on the device (c as above); the K*D + K variances go to the host arrays.
void gmm_param_grad_variance_cuda(const GmmParams& p, const Tensor& x, const Tensor& r, const Tensor& c,
                                  double* var_a, double* var_z);
// gmm_data_term on the device: mean_b U(x_b) and, when grad_a/grad_z are non-null, mean_b grad_theta U(x_b).
double gmm_data_term_cuda(const GmmParams& p, const Tensor& x, double* grad_a, double* grad_z);

}  // namespace jebm
