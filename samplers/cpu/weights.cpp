// CPU kernels of the log-weight statistics, normalised and cumulative weights, systematic/multinomial ancestors
// and the parameter-change increment (samplers/kernels.inc): the reference for samplers/cuda/weights.cu.
// Tested by tests/test_samplers.cpp (formulas against direct computation, systematic counts within 1 of N w_i,
// multinomial unbiased over repeats).
#include "samplers/cpu/weights.hpp"

#include <algorithm>
#include <cmath>
#include <limits>

#include "runtime/philox.hpp"
#include "samplers/backend.hpp"

namespace jebm::cpu {

void log_weight_sums(const double* a, int64_t n, double* out) {
  double m = -std::numeric_limits<double>::infinity();
  for (int64_t i = 0; i < n; ++i) m = std::max(m, a[i]);
  // s1 = sum e^{A-m} >= 1 and s2 = sum e^{2(A-m)} >= 1: no underflow of the totals, whatever the spread of A.
  double s1 = 0.0, s2 = 0.0;
  for (int64_t i = 0; i < n; ++i) {
    const double e = std::exp(a[i] - m);
    s1 += e;
    s2 += e * e;
  }
  out[0] = m;
  out[1] = s1;
  out[2] = s2;
  out[3] = m + std::log(s1);
}

void cumulative_weights(const double* w, int64_t n, double* c) {
  double s = 0.0;
  for (int64_t i = 0; i < n; ++i) {
    JEBM_CHECK(w[i] >= 0.0 && std::isfinite(w[i]), "resampling: weight " << i << " is " << w[i]);
    s += w[i];
    c[i] = s;
  }
  JEBM_CHECK(std::fabs(s - 1.0) < 1e-8, "resampling: weights sum to " << s << ", expected 1");
  for (int64_t i = 0; i < n; ++i) c[i] /= s;
  c[n - 1] = 1.0;
}

void systematic_ancestors(const double* c, int64_t n, double u, int64_t* anc) {
  int64_t j = 0;
  for (int64_t i = 0; i < n; ++i) {
    const double p = (static_cast<double>(i) + u) / static_cast<double>(n);
    while (j + 1 < n && c[j] <= p) ++j;  // first j with c[j] > p; points increase, so j only moves forward
    anc[i] = j;
  }
}

void multinomial_ancestors(const double* c, int64_t n, uint64_t seed, uint64_t offset, int64_t* anc) {
  for (int64_t i = 0; i < n; ++i) {
    double u0, u1;
    philox_uniform2(seed, static_cast<uint64_t>(i), offset, &u0, &u1);
    const int64_t j = std::upper_bound(c, c + n, u0) - c;
    anc[i] = std::min(j, n - 1);
  }
}

void log_weight_sums(const Tensor& log_w, Tensor& sums) {
  log_weight_sums(log_w.data<double>(), log_w.numel(), sums.data<double>());
}

void normalized_weights(const Tensor& log_w, const Tensor& sums, Tensor& w) {
  // exp(A - m) / s1, not exp(A - log_sum): with |m| ~ 1e17 the ulp of m exceeds log s1, m + log s1 rounds to m,
  // and the weights summed to s1 (resampling then stopped with "weights sum to 37").
  const double m = sums.data<double>()[0], s1 = sums.data<double>()[1];
  const double* a = log_w.data<double>();
  double* o = w.data<double>();
  for (int64_t i = 0; i < log_w.numel(); ++i) o[i] = std::exp(a[i] - m) / s1;
}

double sum_of_squares(const Tensor& w) {
  const double* p = w.data<double>();
  double s = 0.0;
  for (int64_t i = 0; i < w.numel(); ++i) s += p[i] * p[i];
  return s;
}

void cumulative_weights(const Tensor& w, Tensor& c) { cumulative_weights(w.data<double>(), w.numel(), c.data<double>()); }

void systematic_ancestors(const Tensor& c, double u, Tensor& anc) {
  systematic_ancestors(c.data<double>(), c.numel(), u, anc.data<int64_t>());
}

void multinomial_ancestors(const Tensor& c, uint64_t seed, uint64_t offset, Tensor& anc) {
  multinomial_ancestors(c.data<double>(), c.numel(), seed, offset, anc.data<int64_t>());
}

void parameter_change(Tensor& log_w, const Tensor& idx, const Tensor& u_old, const Tensor& u_new, double s) {
  double* a = log_w.data<double>();
  const double* uo = u_old.data<double>();
  const double* un = u_new.data<double>();
  const int64_t* ix = idx.defined() ? idx.data<int64_t>() : nullptr;
  for (int64_t j = 0; j < u_old.numel(); ++j) a[ix ? ix[j] : j] += s * (uo[j] - un[j]);
}

}  // namespace jebm::cpu
