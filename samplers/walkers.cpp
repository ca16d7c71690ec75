// WalkerPopulation and the log-domain weight statistics (ESS, CV^2, log mean exp). Tested by
// tests/test_samplers.cpp (formulas against direct computation, log Z estimate against the analytic value).
#include "samplers/walkers.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>

namespace jebm {

WeightStats weight_stats(const double* log_w, int64_t n) {
  JEBM_CHECK(n > 0, "weight_stats: empty population");
  double m = -std::numeric_limits<double>::infinity();
  for (int64_t i = 0; i < n; ++i) m = std::max(m, log_w[i]);
  JEBM_CHECK(std::isfinite(m), "weight_stats: the largest log-weight is " << m);
  // s1 = sum e^{A-m} >= 1 and s2 = sum e^{2(A-m)} >= 1: no underflow of the totals, whatever the spread of A.
  double s1 = 0.0, s2 = 0.0;
  for (int64_t i = 0; i < n; ++i) {
    const double e = std::exp(log_w[i] - m);
    s1 += e;
    s2 += e * e;
  }
  WeightStats s;
  s.log_sum = m + std::log(s1);
  s.log_mean = s.log_sum - std::log(static_cast<double>(n));
  s.ess = s1 * s1 / s2;
  s.cv2 = static_cast<double>(n) * s2 / (s1 * s1) - 1.0;
  return s;
}

void normalized_weights(const double* log_w, int64_t n, double* w) {
  const double ls = weight_stats(log_w, n).log_sum;
  for (int64_t i = 0; i < n; ++i) w[i] = std::exp(log_w[i] - ls);
}

std::vector<double> normalized_weights(const std::vector<double>& log_w) {
  std::vector<double> w(log_w.size());
  normalized_weights(log_w.data(), static_cast<int64_t>(log_w.size()), w.data());
  return w;
}

Tensor copy_tensor(const Tensor& src) {
  JEBM_CHECK(src.device().is_cpu(), "copy_tensor: CPU tensors only");
  Tensor t = Tensor::empty(src.shape(), src.dtype());
  if (src.nbytes()) std::memcpy(t.raw_data(), src.raw_data(), src.nbytes());
  return t;
}

void gather_rows_into(Tensor& dst, const Tensor& src, const std::vector<int64_t>& idx) {
  JEBM_CHECK(src.dim() >= 1 && dst.dim() >= 1 && dst.dtype() == src.dtype() &&
                 dst.size(0) == static_cast<int64_t>(idx.size()) &&
                 dst.numel() * src.size(0) == src.numel() * dst.size(0),
             "gather_rows_into: dst " << shape_str(dst.shape()) << " src " << shape_str(src.shape()) << " with "
                                      << idx.size() << " indices");
  JEBM_CHECK(!dst.same_storage(src), "gather_rows_into: dst and src share storage");
  const size_t row = src.size(0) ? src.nbytes() / static_cast<size_t>(src.size(0)) : 0;
  const char* s = static_cast<const char*>(src.raw_data());
  char* d = static_cast<char*>(dst.raw_data());
  for (size_t i = 0; i < idx.size(); ++i) {
    JEBM_CHECK(idx[i] >= 0 && idx[i] < src.size(0), "gather_rows_into: index " << idx[i] << " out of [0, "
                                                                              << src.size(0) << ")");
    std::memcpy(d + i * row, s + static_cast<size_t>(idx[i]) * row, row);
  }
}

Tensor gather_rows_copy(const Tensor& src, const std::vector<int64_t>& idx) {
  Shape shape = src.shape();
  shape[0] = static_cast<int64_t>(idx.size());
  Tensor t = Tensor::empty(shape, src.dtype());
  gather_rows_into(t, src, idx);
  return t;
}

WalkerPopulation WalkerPopulation::create(const Tensor& x0, uint64_t seed, double log_z0) {
  JEBM_CHECK(x0.dim() >= 2 && x0.size(0) > 0, "WalkerPopulation::create: positions must be [N, ...], got "
                                                  << shape_str(x0.shape()));
  JEBM_CHECK(x0.dtype() == DType::Float32 || x0.dtype() == DType::Float64,
             "WalkerPopulation::create: positions must be float32 or float64, got " << dtype_name(x0.dtype()));
  WalkerPopulation p;
  p.seed = seed;
  p.log_z_offset = log_z0;
  p.reset_positions(x0);
  return p;
}

void WalkerPopulation::reset_positions(const Tensor& x_new) {
  const int64_t n = x_new.size(0);
  x = copy_tensor(x_new);
  x_prev = copy_tensor(x_new);
  log_w = Tensor::empty({n}, DType::Float64);
  partial = Tensor::empty({n}, DType::Float64);
  pending = Tensor::empty({n}, DType::Int64);
  std::fill_n(log_w.data<double>(), n, 0.0);
  std::fill_n(partial.data<double>(), n, 0.0);
  std::fill_n(pending.data<int64_t>(), n, int64_t{0});
}

std::vector<double> WalkerPopulation::weights() const {
  std::vector<double> w(static_cast<size_t>(size()));
  normalized_weights(log_w.data<double>(), size(), w.data());
  return w;
}

bool WalkerPopulation::any_pending() const {
  const int64_t* p = pending.data<int64_t>();
  return std::any_of(p, p + size(), [](int64_t v) { return v != 0; });
}

void WalkerPopulation::fold_weights_into_offset() {
  log_z_offset += stats().log_mean;
  std::fill_n(log_w.data<double>(), size(), 0.0);
}

}  // namespace jebm
