// One fused pass over the Gaussian-mixture walkers (see samplers/gmm_step.hpp). Tested by tests/test_gmm.cpp.
#include "samplers/gmm_step.hpp"

#include <algorithm>
#include <cmath>
#include <limits>

namespace jebm {

namespace {

constexpr int64_t kPassChunk = 64;  // walkers per chunk: fixed, so results do not depend on the thread count

struct ChunkAcc {
  double m = -std::numeric_limits<double>::infinity();  // running max of A in the chunk
  double s1 = 0.0, s2 = 0.0;                             // sum e^{A-m}, sum e^{2(A-m)}
  std::vector<double> acc;                               // [K*D | K]: sum e^{A-m} r_j x, sum e^{A-m} r_j
};

struct PassArgs {
  const GmmParams* theta;
  double *x, *x_prev, *log_w, *partial;
  int64_t* pending;
  const UlaConfig* cfg;
  double sigma;
  uint64_t seed, offset;
};

// Walkers [b0, b1): closed-form evaluation, then the shared per-walker kernel, then the online softmax update.
// Cloned for AVX2 like the generic kernel (no FMA: both clones give the same bits).
__attribute__((target_clones("avx2", "default"))) void pass_range(const PassArgs& a, int64_t b0, int64_t b1,
                                                                   ChunkAcc& c) {
  const GmmParams& p = *a.theta;
  const int64_t k = p.k, d = p.d;
  double g[256], r[16];
  std::vector<double> gbig, rbig;
  double* gp = g;
  double* rp = r;
  if (d > 256) {
    gbig.resize(static_cast<size_t>(d));
    gp = gbig.data();
  }
  if (k > 16) {
    rbig.resize(static_cast<size_t>(k));
    rp = rbig.data();
  }
  const UlaConfig& cfg = *a.cfg;
  for (int64_t i = b0; i < b1; ++i) {
    double* xi = a.x + i * d;
    const double u = gmm_eval_row(p, xi, rp, gp);
    // X_next goes into the x_prev buffer (the caller swaps), so xi keeps X_k for the gradient below.
    ula_jarzynski_walker<double>(d, a.x_prev + i * d, xi, gp, u, a.log_w + i, a.partial + i, a.pending + i, true,
                                 true, cfg.weighted, cfg.h, a.sigma, cfg.drift_clip, a.seed, static_cast<uint64_t>(i),
                                 a.offset, a.x_prev + i * d);
    const double ai = a.log_w[i];
    if (ai > c.m) {  // a new maximum: rescale what was accumulated so far
      const double sc = std::isfinite(c.m) ? std::exp(c.m - ai) : 0.0;
      c.s1 *= sc;
      c.s2 *= sc * sc;
      for (double& v : c.acc) v *= sc;
      c.m = ai;
    }
    const double e = std::exp(ai - c.m);
    c.s1 += e;
    c.s2 += e * e;
    for (int64_t j = 0; j < k; ++j) {
      const double er = e * rp[j];
      double* o = c.acc.data() + j * d;
      for (int64_t q = 0; q < d; ++q) o[q] += er * xi[q];
      c.acc[static_cast<size_t>(k * d + j)] += er;
    }
  }
}

}  // namespace

GmmWalkerPass gmm_walker_pass(const GmmParams& theta, WalkerPopulation& pop, const UlaConfig& cfg) {
  const int64_t n = pop.size(), d = pop.walker_numel(), k = theta.k;
  JEBM_CHECK(pop.x.dtype() == DType::Float64 && d == theta.d,
             "gmm_walker_pass: walkers " << shape_str(pop.x.shape()) << " " << dtype_name(pop.x.dtype())
                                         << " for a mixture in dimension " << theta.d << " (float64 needed)");
  JEBM_CHECK(cfg.h > 0.0, "gmm_walker_pass: step size h = " << cfg.h << " must be positive");
  const int64_t chunks = (n + kPassChunk - 1) / kPassChunk;
  std::vector<ChunkAcc> acc(static_cast<size_t>(chunks));
  for (auto& c : acc) c.acc.assign(static_cast<size_t>(k * d + k), 0.0);
  const PassArgs a{&theta, pop.x.data<double>(), pop.x_prev.data<double>(), pop.log_w.data<double>(),
                   pop.partial.data<double>(), pop.pending.data<int64_t>(), &cfg, cfg.noise_scale(), pop.seed,
                   pop.moves};
#pragma omp parallel for schedule(static) if (n * d > 4096)
  for (int64_t c = 0; c < chunks; ++c)
    pass_range(a, c * kPassChunk, std::min(n, (c + 1) * kPassChunk), acc[static_cast<size_t>(c)]);
  ++pop.moves;
  std::swap(pop.x, pop.x_prev);  // x = X_{k+1}; x_prev = X_k

  // Combine the chunks in order: shift every chunk to the global max (log-sum-exp).
  double m = -std::numeric_limits<double>::infinity();
  for (const auto& c : acc) m = std::max(m, c.m);
  JEBM_CHECK(std::isfinite(m), "gmm_walker_pass: the largest log-weight is " << m);
  double s1 = 0.0, s2 = 0.0;
  std::vector<double> tot(static_cast<size_t>(k * d + k), 0.0);
  for (const auto& c : acc) {
    const double sc = std::exp(c.m - m);
    s1 += sc * c.s1;
    s2 += sc * sc * c.s2;
    for (size_t q = 0; q < tot.size(); ++q) tot[q] += sc * c.acc[q];
  }
  GmmWalkerPass out;
  out.stats.log_sum = m + std::log(s1);
  out.stats.log_mean = out.stats.log_sum - std::log(static_cast<double>(n));
  out.stats.ess = s1 * s1 / s2;
  out.stats.cv2 = static_cast<double>(n) * s2 / (s1 * s1) - 1.0;
  // dU/da_j = r_j (a_j - x): sum_i w_i dU/da_j = (sum w r_j) a_j - sum w r_j x; dU/dz_j = r_j.
  out.grad_a.resize(static_cast<size_t>(k * d));
  out.grad_z.resize(static_cast<size_t>(k));
  for (int64_t j = 0; j < k; ++j) {
    const double sr = tot[static_cast<size_t>(k * d + j)] / s1;
    out.grad_z[static_cast<size_t>(j)] = sr;
    for (int64_t q = 0; q < d; ++q)
      out.grad_a[static_cast<size_t>(j * d + q)] =
          sr * theta.a[static_cast<size_t>(j * d + q)] - tot[static_cast<size_t>(j * d + q)] / s1;
  }
  return out;
}

}  // namespace jebm
