// The CPU entries of the models' kernel table (models/kernels.inc) for the Gaussian mixture: the raw-array closed
// forms of models/gaussian_mixture.cpp on host tensors. The reference for models/cuda/gaussian_mixture.cu.
// Tested by tests/test_gmm.cpp.
#include "models/backend.hpp"

namespace jebm::cpu {

namespace {
const double* maybe(const Tensor& t) { return t.defined() ? t.data<double>() : nullptr; }
}  // namespace

void gmm_eval(const GmmParams& p, const Tensor& x, Tensor& u, Tensor* g, Tensor* r) {
  jebm::gmm_eval(p, x.data<double>(), x.size(0), u.data<double>(), g ? g->data<double>() : nullptr,
                 r ? r->data<double>() : nullptr);
}

void gmm_param_grad(const GmmParams& p, const Tensor& x, const Tensor& r, const Tensor& c, double* grad_a,
                    double* grad_z) {
  jebm::gmm_param_grad(p, x.data<double>(), r.data<double>(), maybe(c), x.size(0), grad_a, grad_z);
}

void gmm_param_grad_variance(const GmmParams& p, const Tensor& x, const Tensor& r, const Tensor& c, double* var_a,
                             double* var_z) {
  jebm::gmm_param_grad_variance(p, x.data<double>(), r.data<double>(), maybe(c), x.size(0), var_a, var_z);
}

double gmm_data_term(const GmmParams& p, const Tensor& x, double* grad_a, double* grad_z) {
  return jebm::gmm_data_term(p, x.data<double>(), x.size(0), grad_a, grad_z);
}

}  // namespace jebm::cpu
