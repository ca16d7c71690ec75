// Gaussian-mixture energy: closed forms on raw float64 arrays (the `jebm gmm` fast path), their Tensor dispatch
// (models/kernels.inc: models/cpu/ and models/cuda/gaussian_mixture) and the autograd Module. Tested by tests/test_gmm.cpp.
#include "models/gaussian_mixture.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>

#include "models/backend.hpp"
#include "runtime/philox.hpp"

namespace jebm {

namespace {

constexpr int64_t kRowChunk = kGmmRowChunk;  // fixed reduction chunk: results independent of the thread count

void check_params(const GmmParams& p, const char* what) {
  JEBM_CHECK(p.k > 0 && p.d > 0 && static_cast<int64_t>(p.a.size()) == p.k * p.d &&
                 static_cast<int64_t>(p.z.size()) == p.k,
             what << ": parameters of K = " << p.k << ", D = " << p.d << " have " << p.a.size() << " means and "
                  << p.z.size() << " offsets");
}

// Sums per-chunk partial vectors (width w) in chunk order into out.
template <typename Fn>
void chunked_sum(int64_t n, int64_t w, double* out, Fn&& fn) {
  const int64_t chunks = (n + kRowChunk - 1) / kRowChunk;
  std::vector<double> part(static_cast<size_t>(chunks * w), 0.0);
#pragma omp parallel for schedule(static) if (n * w > 8192)
  for (int64_t c = 0; c < chunks; ++c)
    fn(c * kRowChunk, std::min(n, (c + 1) * kRowChunk), part.data() + c * w);
  std::fill_n(out, w, 0.0);
  for (int64_t c = 0; c < chunks; ++c)
    for (int64_t q = 0; q < w; ++q) out[q] += part[static_cast<size_t>(c * w + q)];
}

}  // namespace

GmmParams GmmParams::zeros(int64_t k, int64_t d) {
  GmmParams p;
  p.k = k;
  p.d = d;
  p.a.assign(static_cast<size_t>(k * d), 0.0);
  p.z.assign(static_cast<size_t>(k), 0.0);
  return p;
}

void gmm_eval(const GmmParams& p, const double* x, int64_t n, double* u, double* g, double* r) {
  check_params(p, "gmm_eval");
  const int64_t d = p.d, k = p.k;
#pragma omp parallel for schedule(static) if (n * d * k > 16384)
  for (int64_t i = 0; i < n; ++i)
    u[i] = gmm_eval_row(p, x + i * d, r ? r + i * k : nullptr, g ? g + i * d : nullptr);
}

void gmm_param_grad(const GmmParams& p, const double* x, const double* r, const double* c, int64_t n,
                    double* grad_a, double* grad_z) {
  check_params(p, "gmm_param_grad");
  const int64_t k = p.k, d = p.d, w = k * d + k;
  // acc = [sum c r_j x (K*D) | sum c r_j (K)]; then dU/da_j = (sum c r_j) a_j - sum c r_j x.
  std::vector<double> acc(static_cast<size_t>(w));
  const double cu = 1.0 / static_cast<double>(n);
  chunked_sum(n, w, acc.data(), [&](int64_t b, int64_t e, double* out) {
    for (int64_t i = b; i < e; ++i) {
      const double ci = c ? c[i] : cu;
      for (int64_t j = 0; j < k; ++j) {
        const double cr = ci * r[i * k + j];
        out[k * d + j] += cr;
        const double* xi = x + i * d;
        double* o = out + j * d;
        for (int64_t q = 0; q < d; ++q) o[q] += cr * xi[q];
      }
    }
  });
  for (int64_t j = 0; j < k; ++j) {
    const double s = acc[static_cast<size_t>(k * d + j)];
    grad_z[j] = s;
    for (int64_t q = 0; q < d; ++q) grad_a[j * d + q] = s * p.a[static_cast<size_t>(j * d + q)] - acc[static_cast<size_t>(j * d + q)];
  }
}

void gmm_param_grad_variance(const GmmParams& p, const double* x, const double* r, const double* c, int64_t n,
                             double* var_a, double* var_z) {
  check_params(p, "gmm_param_grad_variance");
  const int64_t k = p.k, d = p.d, w = k * d + k;
  // Two passes (the mean, then the centred squares): this is the reference; the fused walker pass
  // (samplers/gmm_step.cpp) gets the same sums from raw moments in its single pass.
  std::vector<double> ga(static_cast<size_t>(k * d)), gz(static_cast<size_t>(k));
  gmm_param_grad(p, x, r, c, n, ga.data(), gz.data());
  std::vector<double> acc(static_cast<size_t>(w));
  const double cu = 1.0 / static_cast<double>(n);
  chunked_sum(n, w, acc.data(), [&](int64_t b, int64_t e, double* out) {
    for (int64_t i = b; i < e; ++i) {
      const double ci = c ? c[i] : cu;
      const double* xi = x + i * d;
      for (int64_t j = 0; j < k; ++j) {
        const double rj = r[i * k + j];
        const double* a = p.mean(j);
        double* o = out + j * d;
        for (int64_t q = 0; q < d; ++q) {
          const double dev = ci * (rj * (a[q] - xi[q]) - ga[static_cast<size_t>(j * d + q)]);  // dU/da_j = r_j (a_j - x)
          o[q] += dev * dev;
        }
        const double dz = ci * (rj - gz[static_cast<size_t>(j)]);
        out[k * d + j] += dz * dz;
      }
    }
  });
  std::copy(acc.begin(), acc.begin() + k * d, var_a);
  std::copy(acc.begin() + k * d, acc.end(), var_z);
}

namespace {

// o += s v (restrict: x rows and the sums never overlap, so no run-time overlap checks per mode).
inline __attribute__((always_inline)) void add_scaled(int64_t d, double s, const double* __restrict__ v,
                                                      double* __restrict__ o) {
  for (int64_t q = 0; q < d; ++q) o[q] += s * v[q];
}

// gmm_data_partials' chunk: rows [b0, b1) of x into out [1 + K*D + K] (or [1]). Cloned for AVX2 like the walker
// pass (no FMA, and the sums keep their order: every clone gives the same bits; tests/test_gmm.cpp). An AVX-512
// clone measured slower at d = 50.
__attribute__((target_clones("avx2", "default"))) void data_chunk(const GmmParams& p, const double* x, int64_t b0,
                                                                  int64_t b1, bool with_grad, double* out) {
  const int64_t k = p.k, d = p.d;
  double r[64];
  std::vector<double> rbig(static_cast<size_t>(k > 64 ? k : 0));
  double* rr = k > 64 ? rbig.data() : r;
  if (!with_grad) {
    for (int64_t i = b0; i < b1; ++i) out[0] += gmm_eval_row(p, x + i * d, nullptr, nullptr);
    return;
  }
  // The row sums in a local buffer whose mode blocks start on 32-byte boundaries (stride dp = D rounded up to 4,
  // then the K sums of r): out + 1 + j D is misaligned for every j, and half the AVX2 accesses then crossed a cache
  // line. out (zeroed by the caller) gets them at the end: 0 + s = s, the same bits.
  const int64_t dp = (d + 3) / 4 * 4;
  std::vector<double> buf(static_cast<size_t>(k * dp + k + 4), 0.0);
  double* acc = buf.data() + ((32 - reinterpret_cast<uintptr_t>(buf.data()) % 32) % 32) / sizeof(double);
  double* rsum = acc + k * dp;
  double u = out[0];
  for (int64_t i = b0; i < b1; ++i) {
    const double* xi = x + i * d;
    u += gmm_eval_row(p, xi, rr, nullptr);
    for (int64_t j = 0; j < k; ++j) {
      rsum[j] += rr[j];
      add_scaled(d, rr[j], xi, acc + j * dp);
    }
  }
  out[0] = u;
  for (int64_t j = 0; j < k; ++j) {
    out[1 + k * d + j] += rsum[j];
    for (int64_t q = 0; q < d; ++q) out[1 + j * d + q] += acc[j * dp + q];
  }
}

}  // namespace

std::vector<double> gmm_data_partials(const GmmParams& p, const double* x, int64_t n, bool with_grad) {
  check_params(p, "gmm_data_partials");
  const int64_t k = p.k, d = p.d, w = 1 + (with_grad ? k * d + k : 0);
  const int64_t chunks = (n + kRowChunk - 1) / kRowChunk;
  std::vector<double> part(static_cast<size_t>(chunks * w), 0.0);
  // Dynamic, like the walker pass (samplers/gmm_step.cpp): a chunk's partial sums do not depend on its thread.
#pragma omp parallel for schedule(dynamic) if (n * w > 8192)
  for (int64_t c = 0; c < chunks; ++c)
    data_chunk(p, x, c * kRowChunk, std::min(n, (c + 1) * kRowChunk), with_grad, part.data() + c * w);
  return part;
}

double gmm_data_finish(const GmmParams& p, const std::vector<double>& partials, int64_t n_total, double* grad_a,
                       double* grad_z) {
  check_params(p, "gmm_data_finish");
  const int64_t k = p.k, d = p.d;
  const bool want_grad = grad_a && grad_z;
  const int64_t w = 1 + (want_grad ? k * d + k : 0);
  const int64_t chunks = (n_total + kRowChunk - 1) / kRowChunk;
  JEBM_CHECK(static_cast<int64_t>(partials.size()) == chunks * w,
             "gmm_data_finish: " << partials.size() << " partial sums for " << n_total << " rows in chunks of "
                                 << kRowChunk << " (" << chunks << " x " << w << " expected)");
  std::vector<double> acc(static_cast<size_t>(w), 0.0);
  for (int64_t c = 0; c < chunks; ++c)
    for (int64_t q = 0; q < w; ++q) acc[static_cast<size_t>(q)] += partials[static_cast<size_t>(c * w + q)];
  const double inv = 1.0 / static_cast<double>(n_total);
  if (want_grad) {
    for (int64_t j = 0; j < k; ++j) {
      const double s = acc[static_cast<size_t>(1 + k * d + j)] * inv;
      grad_z[j] = s;
      for (int64_t q = 0; q < d; ++q)
        grad_a[j * d + q] = s * p.a[static_cast<size_t>(j * d + q)] - acc[static_cast<size_t>(1 + j * d + q)] * inv;
    }
  }
  return acc[0] * inv;
}

double gmm_data_term(const GmmParams& p, const double* x, int64_t n, double* grad_a, double* grad_z) {
  return gmm_data_finish(p, gmm_data_partials(p, x, n, grad_a && grad_z), n, grad_a, grad_z);
}

// --- Tensor dispatch: validation, then the models' kernel table (models/kernels.inc) of x's device ----------

namespace {

void check_rows(const GmmParams& p, const Tensor& x, const char* what) {
  check_params(p, what);
  JEBM_CHECK(x.defined() && x.dtype() == DType::Float64 && x.dim() == 2 && x.size(1) == p.d,
             what << ": x must be an [n, " << p.d << "] float64 tensor, got "
                  << (x.defined() ? shape_str(x.shape()) + " " + dtype_name(x.dtype()) : std::string("undefined")));
}

// t (when non-null) is a float64 tensor of numel elements on x's device.
void check_like(const Tensor* t, const Tensor& x, int64_t numel, const char* what, const char* name) {
  JEBM_CHECK(!t || (t->defined() && t->device() == x.device() && t->dtype() == DType::Float64 && t->numel() == numel),
             what << ": " << name << " must be a float64 tensor of " << numel << " elements on " << x.device().str());
}

}  // namespace

void gmm_eval(const GmmParams& p, const Tensor& x, Tensor& u, Tensor* g, Tensor* r) {
  check_rows(p, x, "gmm_eval");
  const int64_t n = x.size(0);
  check_like(&u, x, n, "gmm_eval", "u");
  check_like(g, x, n * p.d, "gmm_eval", "g");
  check_like(r, x, n * p.k, "gmm_eval", "r");
  JEBM_DISPATCH(x.device(), gmm_eval, p, x, u, g, r);
}

void gmm_param_grad(const GmmParams& p, const Tensor& x, const Tensor& r, const Tensor& c, double* grad_a,
                    double* grad_z) {
  check_rows(p, x, "gmm_param_grad");
  const int64_t n = x.size(0);
  check_like(&r, x, n * p.k, "gmm_param_grad", "r");
  if (c.defined()) check_like(&c, x, n, "gmm_param_grad", "c");
  JEBM_DISPATCH(x.device(), gmm_param_grad, p, x, r, c, grad_a, grad_z);
}

void gmm_param_grad_variance(const GmmParams& p, const Tensor& x, const Tensor& r, const Tensor& c, double* var_a,
                             double* var_z) {
  check_rows(p, x, "gmm_param_grad_variance");
  const int64_t n = x.size(0);
  check_like(&r, x, n * p.k, "gmm_param_grad_variance", "r");
  if (c.defined()) check_like(&c, x, n, "gmm_param_grad_variance", "c");
  JEBM_DISPATCH(x.device(), gmm_param_grad_variance, p, x, r, c, var_a, var_z);
}

double gmm_data_term(const GmmParams& p, const Tensor& x, double* grad_a, double* grad_z) {
  check_rows(p, x, "gmm_data_term");
  return JEBM_DISPATCH(x.device(), gmm_data_term, p, x, grad_a, grad_z);
}

double gmm_log_z(const GmmParams& p) {
  check_params(p, "gmm_log_z");
  double m = -std::numeric_limits<double>::infinity();
  for (double zj : p.z) m = std::max(m, -zj);
  double s = 0.0;
  for (double zj : p.z) s += std::exp(-zj - m);
  return 0.5 * static_cast<double>(p.d) * std::log(2.0 * M_PI) + m + std::log(s);
}

std::vector<double> gmm_mode_weights(const GmmParams& p) {
  const double lz = gmm_log_z(p) - 0.5 * static_cast<double>(p.d) * std::log(2.0 * M_PI);
  std::vector<double> w(p.z.size());
  for (size_t j = 0; j < w.size(); ++j) w[j] = std::exp(-p.z[j] - lz);
  return w;
}

double gmm_cross_entropy(const GmmParams& p, const double* x, int64_t n) {
  return gmm_data_term(p, x, n, nullptr, nullptr) + gmm_log_z(p);
}

void gmm_sample(const GmmParams& p, int64_t n, uint64_t seed, uint64_t offset, double* x) {
  check_params(p, "gmm_sample");
  const std::vector<double> w = gmm_mode_weights(p);
  std::vector<double> cum(w.size());
  double s = 0.0;
  for (size_t j = 0; j < w.size(); ++j) cum[j] = (s += w[j]);
  cum.back() = 1.0;
  const int64_t d = p.d;
  const uint64_t pairs = static_cast<uint64_t>((d + 1) / 2);
#pragma omp parallel for schedule(static) if (n * d > 16384)
  for (int64_t i = 0; i < n; ++i) {
    const uint64_t base = static_cast<uint64_t>(i) * (pairs + 1);
    double u0, u1;
    philox_uniform2(seed, base + pairs, offset, &u0, &u1);
    const int64_t j = std::min<int64_t>(static_cast<int64_t>(std::upper_bound(cum.begin(), cum.end(), u0) - cum.begin()),
                                        p.k - 1);
    const double* a = p.mean(j);
    for (int64_t q = 0; q < d; q += 2) {
      double z0, z1;
      philox_normal2(seed, base + static_cast<uint64_t>(q / 2), offset, &z0, &z1);
      x[i * d + q] = a[q] + z0;
      if (q + 1 < d) x[i * d + q + 1] = a[q + 1] + z1;
    }
  }
}

// --- the Module ------------------------------------------------------------------------------------------

GaussianMixtureEnergy::GaussianMixtureEnergy(const GmmParams& p, DType dtype) : k_(p.k), d_(p.d) {
  check_params(p, "GaussianMixtureEnergy");
  means_ = register_parameter("means", Tensor::from_vector(p.a, {p.k, p.d}, dtype));
  z_ = register_parameter("z", Tensor::from_vector(p.z, {p.k}, dtype));
}

ag::Var GaussianMixtureEnergy::forward(const ag::Var& x) {
  JEBM_CHECK(x.dim() == 2 && x.size(1) == d_, "GaussianMixtureEnergy: input " << shape_str(x.shape())
                                                                              << ", expected [N, " << d_ << "]");
  const int64_t n = x.size(0);
  // [N, 1, D] - [1, K, D] -> squared distances [N, K]; exponents -d2/2 - z; U = -logsumexp over modes.
  const ag::Var diff = ag::sub(ag::reshape(x, {n, 1, d_}), ag::reshape(means_, {1, k_, d_}));
  const ag::Var d2 = ag::sum(ag::square(diff), 2);
  const ag::Var e = ag::sub(ag::mul_scalar(d2, -0.5), ag::reshape(z_, {1, k_}));
  return ag::neg(ag::logsumexp(e, 1));
}

GmmParams GaussianMixtureEnergy::params() const {
  GmmParams p;
  p.k = k_;
  p.d = d_;
  p.a = means_.value().to_vector();
  p.z = z_.value().to_vector();
  return p;
}

void GaussianMixtureEnergy::set_params(const GmmParams& p) {
  JEBM_CHECK(p.k == k_ && p.d == d_, "GaussianMixtureEnergy::set_params: K, D = " << p.k << ", " << p.d
                                                                                  << " vs " << k_ << ", " << d_);
  means_.value().copy_(Tensor::from_vector(p.a, {k_, d_}, means_.dtype()));
  z_.value().copy_(Tensor::from_vector(p.z, {k_}, z_.dtype()));
}

}  // namespace jebm
