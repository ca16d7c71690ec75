// Device-transparent lag covariance of the Gaussian mixture's gradient estimates (samplers/gmm_lag.hpp).
#include "samplers/gmm_lag.hpp"

#include "runtime/check.hpp"
#include "runtime/ops.hpp"

namespace jebm {

Tensor gmm_centred_grad_rows(const GmmParams& theta, const std::vector<double>& g, const Tensor& x, const Tensor& r,
                             const Tensor& w) {
  const int64_t k = theta.k, d = theta.d, kd = k * d;
  JEBM_CHECK(x.dim() == 2 && x.size(1) == d && x.dtype() == DType::Float64,
             "gmm_centred_grad_rows: walkers " << shape_str(x.shape()) << " " << dtype_name(x.dtype())
                                               << " for a mixture in dimension " << d << " (float64 needed)");
  const int64_t n = x.size(0);
  JEBM_CHECK(r.numel() == n * k && w.numel() == n && static_cast<int64_t>(g.size()) == kd + k,
             "gmm_centred_grad_rows: r " << shape_str(r.shape()) << ", w " << shape_str(w.shape()) << ", g of "
                                         << g.size() << " for " << n << " walkers and " << k << " modes");
  const Device dev = x.device();
  const Tensor a = Tensor::from_vector(theta.a, {1, k, d}, DType::Float64, dev);
  const Tensor ga = Tensor::from_vector(std::vector<double>(g.begin(), g.begin() + kd), {1, k, d}, DType::Float64, dev);
  const Tensor gz = Tensor::from_vector(std::vector<double>(g.begin() + kd, g.end()), {1, k}, DType::Float64, dev);
  // [N, K, D]: w_i (r_ij (a_j - x_i) - g_aj); [N, K]: w_i (r_ij - g_zj). The broadcasts spell the arithmetic of
  // lag_term_row (samplers/gmm_step.cpp) in the same order.
  const Tensor fa = mul(w.reshape({n, 1, 1}), sub(mul(r.reshape({n, k, 1}), sub(a, x.reshape({n, 1, d}))), ga));
  const Tensor fz = mul(w.reshape({n, 1}), sub(r.reshape({n, k}), gz));
  return concat({fa.reshape({n, kd}), fz}, 1);
}

std::vector<double> gmm_lag_covariance(const Tensor& prev_rows, const Tensor& rows) {
  JEBM_CHECK(prev_rows.shape() == rows.shape() && rows.dim() == 2,
             "gmm_lag_covariance: rows " << shape_str(prev_rows.shape()) << " and " << shape_str(rows.shape()));
  return sum(mul(prev_rows, rows), 0).to_vector();
}

}  // namespace jebm
