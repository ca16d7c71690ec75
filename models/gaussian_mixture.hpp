// GaussianMixtureEnergy: U(x) = -log sum_j exp(-|x - a_j|^2 / 2 - z_j) as a Module built from autograd ops, plus
// the closed forms of the Gaussian-mixture fast path (fused U / grad_x U / responsibilities, parameter gradients
// and their weighted variance, analytic log Z, exact sampling, exact cross-entropy, mode weights). The Tensor
// overloads work on either device (the models' kernel table, models/kernels.inc: models/cpu/ and models/cuda/
// gaussian_mixture); the raw-array ones are the CPU reference. Tested by tests/test_gmm.cpp (closed forms against autograd and finite differences, log Z,
// sampling moments, the variance against a direct sum) and tests/test_cuda_samplers.cpp (CUDA twins).
#pragma once
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <vector>

#include "models/module.hpp"
#include "runtime/tensor.hpp"

namespace jebm {

// Parameters of a K-mode, D-dimensional unit-covariance mixture: means a [K, D] and offsets z [K]
// (rho(x) proportional to sum_j exp(-|x - a_j|^2 / 2 - z_j); mode j has mass softmax(-z)_j).
struct GmmParams {
  int64_t k = 0, d = 0;
  std::vector<double> a;  // [K, D] row-major
  std::vector<double> z;  // [K]
  static GmmParams zeros(int64_t k, int64_t d);
  const double* mean(int64_t j) const { return a.data() + j * d; }
};

// One row: returns U(x) and writes r [K] (may be null) and g [D] = grad_x U (may be null). Always inlined, so that
// fused per-walker loops (samplers/gmm_step.cpp, data_chunk) compile it inside their AVX2 clones rather than call
// a baseline copy (GCC stops inlining it on its own past a size).
inline __attribute__((always_inline)) double gmm_eval_row(const GmmParams& p, const double* x, double* r, double* g) {
  const int64_t k = p.k, d = p.d;
  double e_small[16];
  std::vector<double> e_big;
  double* e = e_small;
  if (k > 16) {
    e_big.resize(static_cast<size_t>(k));
    e = e_big.data();
  }
  double m = -std::numeric_limits<double>::infinity();
  int64_t j0 = 0;
  // Two modes per sweep: each mode's four partial sums are exactly the ones below (lane l of s sums the terms
  // c = l mod 4, in order), but the two modes' add chains are independent, so they overlap (one chain's add
  // latency bound this loop). Written with 4-lane vectors because GCC vectorised the scalar form of this loop
  // across c with shuffles and in-order scalar sums; a baseline clone splits each into two SSE2 halves, same bits.
  for (; j0 + 2 <= k; j0 += 2) {
    typedef double V4 __attribute__((vector_size(32)));
    const double* a = p.a.data() + j0 * d;
    const double* b = a + d;
    V4 sv = {0.0, 0.0, 0.0, 0.0}, tv = {0.0, 0.0, 0.0, 0.0};
    int64_t c = 0;
    for (; c + 4 <= d; c += 4) {
      V4 xv, av, bv;
      std::memcpy(&xv, x + c, sizeof xv);
      std::memcpy(&av, a + c, sizeof av);
      std::memcpy(&bv, b + c, sizeof bv);
      const V4 u = xv - av, v = xv - bv;
      sv += u * u;
      tv += v * v;
    }
    double s0 = sv[0], s1 = sv[1], s2 = sv[2], s3 = sv[3], t0 = tv[0], t1 = tv[1], t2 = tv[2], t3 = tv[3];
    for (; c < d; ++c) {
      s0 += (x[c] - a[c]) * (x[c] - a[c]);
      t0 += (x[c] - b[c]) * (x[c] - b[c]);
    }
    e[j0] = -0.5 * ((s0 + s1) + (s2 + s3)) - p.z[static_cast<size_t>(j0)];
    m = e[j0] > m ? e[j0] : m;
    e[j0 + 1] = -0.5 * ((t0 + t1) + (t2 + t3)) - p.z[static_cast<size_t>(j0 + 1)];
    m = e[j0 + 1] > m ? e[j0 + 1] : m;
  }
  for (int64_t j = j0; j < k; ++j) {
    const double* a = p.a.data() + j * d;
    // Four partial sums: breaks the add-latency chain (the evaluation runs once per walker per iteration).
    double s0 = 0.0, s1 = 0.0, s2 = 0.0, s3 = 0.0;
    int64_t c = 0;
    for (; c + 4 <= d; c += 4) {
      const double t0 = x[c] - a[c], t1 = x[c + 1] - a[c + 1], t2 = x[c + 2] - a[c + 2], t3 = x[c + 3] - a[c + 3];
      s0 += t0 * t0;
      s1 += t1 * t1;
      s2 += t2 * t2;
      s3 += t3 * t3;
    }
    for (; c < d; ++c) s0 += (x[c] - a[c]) * (x[c] - a[c]);
    const double s = (s0 + s1) + (s2 + s3);
    e[j] = -0.5 * s - p.z[static_cast<size_t>(j)];
    m = e[j] > m ? e[j] : m;
  }
  double s = 0.0;
  for (int64_t j = 0; j < k; ++j) {
    // The largest term is exp(0) = 1 exactly: one exp call fewer per row (half of them with two modes).
    const double t = e[j] - m;
    e[j] = t == 0.0 ? 1.0 : std::exp(t);
    s += e[j];
  }
  const double inv = 1.0 / s;
  if (r)
    for (int64_t j = 0; j < k; ++j) r[j] = e[j] * inv;
  if (g) {
    // grad_x U = sum_j r_j (x - a_j) = x - sum_j r_j a_j, subtracted mode after mode. The first two modes in one
    // sweep (g = (x - r_0 a_0) - r_1 a_1: the same operations in the same order), so that the paper's K = 2 writes
    // g once instead of three times.
    const double r0 = e[0] * inv;
    const double* a0 = p.a.data();
    int64_t j = 1;
    if (k >= 2) {
      const double r1 = e[1] * inv;
      const double* a1 = p.a.data() + d;
      for (int64_t c = 0; c < d; ++c) g[c] = (x[c] - r0 * a0[c]) - r1 * a1[c];
      j = 2;
    } else {
      for (int64_t c = 0; c < d; ++c) g[c] = x[c] - r0 * a0[c];
    }
    for (; j < k; ++j) {
      const double rj = e[j] * inv;
      const double* a = p.a.data() + j * d;
      for (int64_t c = 0; c < d; ++c) g[c] -= rj * a[c];
    }
  }
  return -(m + std::log(s));
}

// Fused evaluation over x [n, D]: u [n] energies, g [n, D] = grad_x U (may be null), r [n, K] responsibilities
// softmax_j(-|x - a_j|^2 / 2 - z_j) (may be null). OpenMP over rows.
void gmm_eval(const GmmParams& p, const double* x, int64_t n, double* u, double* g, double* r);

// Weighted parameter gradient sum_i c_i grad_theta U(x_i) from stored responsibilities r [n, K]:
// dU/da_j = r_j (a_j - x), dU/dz_j = r_j. c null means c_i = 1/n. grad_a [K*D], grad_z [K] are overwritten.
// Deterministic: fixed-size row chunks combined in order, whatever the thread count.
void gmm_param_grad(const GmmParams& p, const double* x, const double* r, const double* c, int64_t n,
                    double* grad_a, double* grad_z);

// One pass over a data set: returns mean_b U(x_b) and, when grad_a/grad_z are non-null, mean_b grad_theta U(x_b)
// (responsibilities recomputed, not stored). Deterministic as above.
double gmm_data_term(const GmmParams& p, const double* x, int64_t n, double* grad_a, double* grad_z);
// gmm_data_term in two halves, for data sharded over ranks in whole chunks of kGmmRowChunk rows: the partial sums
// of each chunk of x [n, D] (gmm_data_partials: [chunks, 1 + K*D + K], or [chunks, 1] without the gradient), then
// the chunks of the whole data set added in chunk order and divided by its size n_total (gmm_data_finish).
// gmm_data_term(x, n) is gmm_data_finish(gmm_data_partials(x, n), n), bit for bit.
constexpr int64_t kGmmRowChunk = 256;
std::vector<double> gmm_data_partials(const GmmParams& p, const double* x, int64_t n, bool with_grad);
double gmm_data_finish(const GmmParams& p, const std::vector<double>& partials, int64_t n_total, double* grad_a,
                       double* grad_z);

// The self-normalised importance-sampling variance of the weighted parameter gradient g_hat = sum_i c_i f_i,
// f_i = grad_theta U(x_i), with normalised weights c (sum 1; null: 1/n):
//   var_p = sum_i c_i^2 (f_ip - g_hat_p)^2            (the delta-method variance of a ratio estimate)
// var_a [K*D], var_z [K] are overwritten. docs/method.md says why `jebm gmm` needs it.
void gmm_param_grad_variance(const GmmParams& p, const double* x, const double* r, const double* c, int64_t n,
                             double* var_a, double* var_z);

// --- the same closed forms on Tensors, on the device of x (CPU: the functions above; CUDA: the twins; the CUDA
// twins handle at most 32 modes) ---------------------------------------------------------------------------
// x [n, D] float64; u [n] is written; g [n, D] and r [n, K] when non-null, all on x's device.
void gmm_eval(const GmmParams& p, const Tensor& x, Tensor& u, Tensor* g, Tensor* r);
// r [n, K] from gmm_eval; c [n] normalised weights on x's device, or undefined for c_i = 1/n. Host outputs.
void gmm_param_grad(const GmmParams& p, const Tensor& x, const Tensor& r, const Tensor& c, double* grad_a,
                    double* grad_z);
void gmm_param_grad_variance(const GmmParams& p, const Tensor& x, const Tensor& r, const Tensor& c, double* var_a,
                             double* var_z);
double gmm_data_term(const GmmParams& p, const Tensor& x, double* grad_a, double* grad_z);

// log Z = (D/2) log(2 pi) + log sum_j exp(-z_j).
double gmm_log_z(const GmmParams& p);
// Mode masses softmax(-z).
std::vector<double> gmm_mode_weights(const GmmParams& p);
// Exact cross-entropy of the model relative to data x [n, D]: mean U + log Z.
double gmm_cross_entropy(const GmmParams& p, const double* x, int64_t n);
// n exact samples into x [n, D]: sample i draws its mode from Philox (seed, stream = i*(P+1) + P, offset)
// and its noise from streams i*(P+1) + 0..P-1, P = ceil(D/2).
void gmm_sample(const GmmParams& p, int64_t n, uint64_t seed, uint64_t offset, double* x);

// The same energy as a Module: parameters "means" [K, D] and "z" [K], forward x [N, D] -> U [N] from autograd
// ops, so one backward gives grad_x U and grad_theta U (the generic Trainer's path).
class GaussianMixtureEnergy : public Module {
 public:
  explicit GaussianMixtureEnergy(const GmmParams& p, DType dtype = DType::Float64);
  ag::Var forward(const ag::Var& x) override;
  GmmParams params() const;            // host float64 copy of the current parameters
  void set_params(const GmmParams& p);  // in place (optimizers keep their Vars)
  ag::Var& means() { return means_; }
  ag::Var& z() { return z_; }

 private:
  int64_t k_, d_;
  ag::Var means_, z_;
};

}  // namespace jebm
