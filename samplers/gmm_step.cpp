// One fused pass over the Gaussian-mixture walkers and the device dispatch of the GMM loop's sampler calls (see
// samplers/gmm_step.hpp). Tested by tests/test_gmm.cpp.
#include "samplers/gmm_step.hpp"

#include <algorithm>
#include <cmath>
#include <limits>

#include "samplers/contrastive.hpp"
#include "samplers/gmm_lag.hpp"

namespace jebm {

namespace {

constexpr int64_t kPassChunk = kGmmWalkerChunk;  // walkers per chunk: fixed, so results do not depend on the thread count

// Per chunk, all sums scaled by the chunk's running max m of the completed log-weights A (e = e^{A-m}). The sums
// go to the chunk's row of the pass's table [m, s1, s2 | acc | acc2 | acc3] (zeroed by the caller) at the end
// (write_chunk); meanwhile they live in `blk`, a 32-byte aligned block with one stride-dp row per sum and mode
// (dp = D rounded up to 4): the table's rows start 3 doubles in and every mode's at j D, so most AVX2 accesses
// to them crossed a cache line. The same operations in the same order on the same +0.0 start: the same bits.
struct ChunkAcc {
  double m = -std::numeric_limits<double>::infinity();
  double s1 = 0.0, s2 = 0.0;  // sum e, sum e^2
  double* acc = nullptr;      // [K*D | K]: sum e r_j x, sum e r_j (the gradient)
  double* acc2 = nullptr;     // [W | W], W = K*D + K: sum e^2 f^2, sum e^2 f with f = dU/dtheta (the variance)
  double* acc3 = nullptr;     // [W | W]: sum e t f, sum e t with t = w_prev (f_prev - g_prev) (the lag covariance)
  // blk, mode j: rows kO, kT1, kT2, kL1, kL0 of dp each at j * kSums * dp; then the K dU/dz_j sums, kSums each.
  double* blk = nullptr;
};

enum : int64_t { kO, kT1, kT2, kL1, kL0, kSums };  // blk's rows: e r_j x; e^2 f; e^2 f^2; e t f; e t

inline int64_t padded_dim(int64_t d) { return (d + 3) / 4 * 4; }

// A thread's scratch for its chunks (allocated once per pass, not per chunk): two walkers' g, r and lag term t
// (lag_term_row's layout), used in turn (pass_range).
struct PassScratch {
  std::vector<double> g, r, t, noise, blk;
};

// v rounded up to a 32-byte boundary (v has 4 doubles to spare).
inline double* align32(std::vector<double>& v) {
  return v.data() + ((32 - reinterpret_cast<uintptr_t>(v.data()) % 32) % 32) / sizeof(double);
}

struct PassArgs {
  const GmmParams* theta;
  double *x, *x_prev, *log_w, *partial;
  int64_t* pending;
  const UlaConfig* cfg;
  double sigma;
  uint64_t seed, offset, first;  // first: the global index of walker 0 (the noise is keyed by global index)
  bool with_grad, with_var;
  GmmGradientLag* lag;  // non-null: read the previous pass's terms (when lag_cov) and store this pass's r
  bool lag_cov;
};

// The lag term t = w (dU/dtheta(x) - centre) of one walker, with dU/da_j = r_j (a_j - x) and dU/dz_j = r_j, into the
// pass's layout: mode j's row at out + j dp (32-byte aligned when out is), dU/dz_j at out[K dp + j]. restrict, and one
// mode's row per loop, so that it vectorises without run-time overlap checks.
JEBM_HD_ALWAYS_INLINE void lag_term_row(const GmmParams& p, const double* __restrict__ x, const double* __restrict__ r,
                                        const double* __restrict__ centre, double scale, int64_t dp,
                                        double* __restrict__ out) {
  const int64_t k = p.k, d = p.d;
  for (int64_t j = 0; j < k; ++j) {
    const double* __restrict__ aj = p.a.data() + j * d;
    const double* __restrict__ cj = centre + j * d;
    double* __restrict__ oj = out + j * dp;
    const double rj = r[j];
    for (int64_t q = 0; q < d; ++q) oj[q] = scale * (rj * (aj[q] - x[q]) - cj[q]);
    out[k * dp + j] = scale * (rj - centre[k * d + j]);
  }
}

// One mode's block of walker i's sums, f = r_j (a_j - x) (dU/da_j) formed on the fly:
// o += e r_j x; with kVar t1 += e^2 f, t2 += e^2 f f; with kLag also l1 += e t f, l0 += e t. One sweep instead
// of one per sum; restrict lets the compiler vectorise it without run-time overlap checks.
template <bool kVar, bool kLag>
JEBM_HD_ALWAYS_INLINE void add_block(int64_t d, double e, double e2, double rj, const double* __restrict__ aj,
                                     const double* __restrict__ x, const double* __restrict__ tj,
                                     double* __restrict__ o, double* __restrict__ t1, double* __restrict__ t2,
                                     double* __restrict__ l1, double* __restrict__ l0) {
  const double er = e * rj;
  for (int64_t q = 0; q < d; ++q) {
    const double xq = x[q];
    o[q] += er * xq;
    if (kVar) {
      const double fq = rj * (aj[q] - xq), pq = e2 * fq;
      t1[q] += pq;
      t2[q] += pq * fq;
      if (kLag) {
        const double tq = e * tj[q];
        l1[q] += tq * fq;
        l0[q] += tq;
      }
    }
  }
}

// Adds walker i (its weight e, responsibilities r, position x = X_k; t: its lag term with kLag, lag_term_row's
// layout) to the chunk's sums.
template <bool kVar, bool kLag>
JEBM_HD_ALWAYS_INLINE void add_walker(const GmmParams& p, ChunkAcc& c, double e, const double* r, const double* x,
                                      const double* t) {
  const int64_t k = p.k, d = p.d, dp = padded_dim(d);
  const double e2 = e * e;
  for (int64_t j = 0; j < k; ++j) {
    double* b = c.blk + j * kSums * dp;
    add_block<kVar, kLag>(d, e, e2, r[j], p.a.data() + j * d, x, kLag ? t + j * dp : nullptr, b + kO * dp,
                          b + kT1 * dp, b + kT2 * dp, b + kL1 * dp, b + kL0 * dp);
  }
  double* zs = c.blk + k * kSums * dp;
  for (int64_t j = 0; j < k; ++j) {  // dU/dz_j = r_j
    const double rj = r[j];
    double* z = zs + j * kSums;
    z[kO] += e * rj;
    if (!kVar) continue;
    const double pz = e2 * rj;
    z[kT1] += pz;
    z[kT2] += pz * rj;
    if (!kLag) continue;
    const double tz = e * t[k * dp + j];
    z[kL1] += tz * rj;
    z[kL0] += tz;
  }
}

// Always inlined, so that pass_range's AVX2 clone compiles them for AVX2 too.
JEBM_HD_ALWAYS_INLINE void accumulate_walker(const PassArgs& a, ChunkAcc& c, double e, const double* r,
                                             const double* x, const double* t) {
  if (a.lag_cov) add_walker<true, true>(*a.theta, c, e, r, x, t);
  else if (a.with_var) add_walker<true, false>(*a.theta, c, e, r, x, t);
  else add_walker<false, false>(*a.theta, c, e, r, x, t);
}

// A new running maximum: what was accumulated so far times sc (the e-weighted sums) or sc^2 (the e^2 ones).
JEBM_HD_ALWAYS_INLINE void rescale_chunk(int64_t k, int64_t dp, double sc, ChunkAcc& c) {
  c.s1 *= sc;
  c.s2 *= sc * sc;
  for (int64_t j = 0; j < k; ++j) {
    double* b = c.blk + j * kSums * dp;
    double* z = c.blk + k * kSums * dp + j * kSums;
    for (int64_t s = 0; s < kSums; ++s) {
      const double f = s == kT1 || s == kT2 ? sc * sc : sc;
      for (int64_t q = 0; q < dp; ++q) b[s * dp + q] *= f;
      z[s] *= f;
    }
  }
}

// The chunk's sums from blk into its table row (which pass_range's caller zeroed), in the table's layout.
void write_chunk(const GmmParams& p, const PassArgs& a, const ChunkAcc& c) {
  const int64_t k = p.k, d = p.d, dp = padded_dim(d), kd = k * d, w = kd + k;
  for (int64_t j = 0; j < k; ++j) {
    const double* b = c.blk + j * kSums * dp;
    const double* z = c.blk + k * kSums * dp + j * kSums;
    if (a.with_grad) {
      std::copy_n(b + kO * dp, d, c.acc + j * d);
      c.acc[kd + j] = z[kO];
    }
    if (a.with_var) {
      std::copy_n(b + kT2 * dp, d, c.acc2 + j * d);
      std::copy_n(b + kT1 * dp, d, c.acc2 + w + j * d);
      c.acc2[kd + j] = z[kT2];
      c.acc2[w + kd + j] = z[kT1];
    }
    if (a.lag_cov) {
      std::copy_n(b + kL1 * dp, d, c.acc3 + j * d);
      std::copy_n(b + kL0 * dp, d, c.acc3 + w + j * d);
      c.acc3[kd + j] = z[kL1];
      c.acc3[w + kd + j] = z[kL0];
    }
  }
}

// Walker i's lag term (with lag_cov: into t, before the evaluation replaces the previous r) and its closed-form
// evaluation: U is returned, grad_x U goes to g, r to the lag state's row i (*ri points there) or to r_local.
JEBM_HD_ALWAYS_INLINE double prepare_walker(const PassArgs& a, int64_t i, int64_t dp, double* r_local, double* g,
                                            double* t, double** ri) {
  const GmmParams& p = *a.theta;
  const int64_t k = p.k, d = p.d;
  *ri = r_local;
  if (a.lag) {
    *ri = a.lag->r.data() + i * k;  // this pass's r is stored for the next one in place (no per-walker memmove)
    // t = w_prev (dU/dtheta_prev(X_prev) - g_prev), read before the move overwrites x_prev.
    if (a.lag_cov)
      lag_term_row(a.lag->theta, a.x_prev + i * d, *ri, a.lag->grad.data(), a.lag->w[static_cast<size_t>(i)], dp, t);
  }
  return gmm_eval_row(p, a.x + i * d, *ri, g);
}

// Walkers [b0, b1): closed-form evaluation, then the shared per-walker kernel, then the online softmax update.
// Walker i + 1 is evaluated before walker i's sums (two slots of scratch, used in turn): a walker's steps form one
// long dependency chain (the distance sums, exp and log, the move's sums, the weight's exp), and the next walker's
// independent evaluation fills the core meanwhile. Each walker's operations are unchanged: the same bits.
// Cloned for AVX2 like the generic kernel (no FMA: both clones give the same bits).
__attribute__((target_clones("avx2", "default"))) void pass_range(const PassArgs& a, int64_t b0, int64_t b1,
                                                                   ChunkAcc& c, PassScratch& s) {
  const GmmParams& p = *a.theta;
  const int64_t k = p.k, d = p.d, dp = padded_dim(d), ts = k * dp + padded_dim(k);  // ts: a slot of t
  s.g.resize(static_cast<size_t>(2 * d));
  s.r.resize(static_cast<size_t>(2 * k));
  s.t.resize(a.lag_cov ? static_cast<size_t>(2 * ts + 4) : 0);
  s.blk.resize(static_cast<size_t>(k * kSums * (dp + 1) + 4));
  double *g = s.g.data(), *r = s.r.data(), *t = a.lag_cov ? align32(s.t) : nullptr;
  c.blk = align32(s.blk);
  std::fill_n(c.blk, k * kSums * (dp + 1), 0.0);
  const UlaConfig& cfg = *a.cfg;
  // The chunk's noise in one draw where that is faster (samplers/ula_jarzynski.hpp, ula_walkers_noise).
  const int64_t nz = 2 * ((d + 1) / 2);
  std::vector<double>& noise = s.noise;
  const bool drawn = ula_walkers_noise(a.seed, a.first + static_cast<uint64_t>(b0), b1 - b0, d, a.offset, noise);
  double* r_next = nullptr;
  double u_next = b0 < b1 ? prepare_walker(a, b0, dp, r, g, t, &r_next) : 0.0;
  for (int64_t i = b0; i < b1; ++i) {
    const int64_t slot = (i - b0) % 2, other = 1 - slot;
    double *xi = a.x + i * d, *gi = g + slot * d, *ti = t ? t + slot * ts : nullptr, *ri = r_next;
    const double u = u_next;
    // X_next goes into the x_prev buffer (the caller swaps), so xi keeps X_k for the gradient below.
    ula_jarzynski_walker<double>(d, a.x_prev + i * d, xi, gi, u, a.log_w + i, a.partial + i, a.pending + i,
                                 true, true, cfg.weighted, cfg.h, a.sigma, cfg.drift_clip, a.seed,
                                 a.first + static_cast<uint64_t>(i), a.offset, a.x_prev + i * d,
                                 /*partial_coef, back_den, energy_coef: the defaults*/ 0.5, 0.0, 1.0,
                                 drawn ? noise.data() + (i - b0) * nz : nullptr);
    if (i + 1 < b1)
      u_next = prepare_walker(a, i + 1, dp, r + other * k, g + other * d, t ? t + other * ts : nullptr, &r_next);
    const double ai = a.log_w[i];
    if (ai > c.m) {  // a new maximum: rescale what was accumulated so far
      rescale_chunk(k, dp, std::isfinite(c.m) ? std::exp(c.m - ai) : 0.0, c);
      c.m = ai;
    }
    const double e = std::exp(ai - c.m);
    c.s1 += e;
    c.s2 += e * e;
    if (a.with_grad) accumulate_walker(a, c, e, ri, xi, ti);
  }
  write_chunk(p, a, c);
}

// The variance (from T = [sum e^2 f^2 | sum e^2 f]) and, when tot3 is not empty, the lag covariance (from
// L = [sum e t f | sum e t]) of the pass's gradient estimate out.grad_a/grad_z; s1 = sum e, s2 = sum e^2.
void second_moments(const GmmParams& theta, const std::vector<double>& tot2, const std::vector<double>& tot3,
                    double s1, double s2, GmmWalkerPass& out) {
  const int64_t kd = theta.k * theta.d, w = kd + theta.k;
  std::vector<double> g = out.grad_a;
  g.insert(g.end(), out.grad_z.begin(), out.grad_z.end());
  // sum_i w_i^2 (f_i - g)^2 = (T2 - 2 g T1 + g^2 s2) / s1^2. The raw moments cancel to about |g|^2 / |f - g|^2 of
  // their size: harmless for these gradients in float64.
  std::vector<double> var(static_cast<size_t>(w));
  for (size_t q = 0; q < var.size(); ++q)
    var[q] = std::max((tot2[q] - 2.0 * g[q] * tot2[static_cast<size_t>(w) + q] + g[q] * g[q] * s2) / (s1 * s1), 0.0);
  out.var_a.assign(var.begin(), var.begin() + kd);
  out.var_z.assign(var.begin() + kd, var.end());
  if (tot3.empty()) return;
  // sum_i w_prev,i w_i (f_prev,i - g_prev)(f_i - g) = (L1 - g L0) / s1.
  out.lag_cov.resize(static_cast<size_t>(w));
  for (size_t q = 0; q < out.lag_cov.size(); ++q) out.lag_cov[q] = (tot3[q] - g[q] * tot3[static_cast<size_t>(w) + q]) / s1;
}

// What the next pass needs (its responsibilities were stored walker by walker during this one). The weights are
// exp(A - m) / s1 with the pass's global max m and sum s1 (the normalisation of samplers/walkers.hpp, not
// exp(A - log_sum), which loses the sum at huge log-weights), so that a shard's are those of the whole.
void store_lag(const GmmParams& theta, const WalkerPopulation& pop, const GmmWalkerPass& out, double m, double s1,
               GmmGradientLag& lag) {
  lag.theta = theta;
  lag.grad = out.grad_a;
  lag.grad.insert(lag.grad.end(), out.grad_z.begin(), out.grad_z.end());
  lag.w.resize(static_cast<size_t>(pop.size()));
  const double* a = pop.log_w.data<double>();
  for (size_t i = 0; i < lag.w.size(); ++i) lag.w[i] = std::exp(a[i] - m) / s1;
  lag.valid = true;
}

// The pass as the unfused sequence evaluate -> fused move -> weight statistics -> weighted gradient and variance,
// through the device-transparent closed forms and sampler calls: the path of walkers on a CUDA device (the fused
// one-pass loop above is CPU code). Per iteration the parameters go up and the gradients, variances, four weight
// statistics and, with `lag`, the [K*D + K] lag covariance come back: the lag state (weights, responsibilities)
// stays on the device (samplers/gmm_lag.hpp). tests/test_cuda_gmm.cpp compares it with the CPU pass.
GmmWalkerPass walker_pass_unfused(const GmmParams& theta, WalkerPopulation& pop, const UlaConfig& cfg, bool with_gradient,
                                  GmmGradientLag* lag) {
  const int64_t n = pop.size();
  const Device dev = pop.x.device();
  if (!with_gradient || !cfg.weighted) lag = nullptr;  // the lag covariance is of weighted gradient estimates only
  if (lag && lag->valid && !lag->w_dev.defined()) {
    // A state restored from a checkpoint is on the host: it goes to the walkers' device once.
    lag->w_dev = Tensor::from_vector(lag->w, {static_cast<int64_t>(lag->w.size())}, DType::Float64, dev);
    lag->r_dev = Tensor::from_vector(lag->r, {static_cast<int64_t>(lag->w.size()), theta.k}, DType::Float64, dev);
    lag->w.clear();
    lag->r.clear();
  }
  if (lag && lag->valid && (lag->w_dev.numel() != n || lag->theta.k != theta.k || lag->theta.d != theta.d))
    *lag = GmmGradientLag{};
  // The previous pass's centred gradient rows at X_{k-1}, where it took its gradient (resampling gathered X_{k-1}
  // into x_prev along with lag->w_dev and lag->r_dev). Taken before the move below overwrites x_prev.
  const Tensor prev_rows = lag && lag->valid
                               ? gmm_centred_grad_rows(lag->theta, lag->grad, pop.x_prev, lag->r_dev, lag->w_dev)
                               : Tensor();
  Tensor u = Tensor::empty({n}, DType::Float64, dev), g = Tensor::empty({n, theta.d}, DType::Float64, dev);
  Tensor r = Tensor::empty({n, theta.k}, DType::Float64, dev);
  // U, G, r at (theta_k, X_k); complete move k-1 and make move k (X_k is in x_prev afterwards).
  gmm_eval(theta, pop.x, u, &g, &r);
  ula_jarzynski_step(pop, u, g, cfg, MoveKind::CompleteAndMove);
  GmmWalkerPass out;
  out.stats = pop.stats();
  if (!with_gradient) return out;
  const Tensor w = cfg.weighted ? normalized_weights(pop.log_w) : Tensor();  // undefined: uniform 1/N
  out.grad_a.resize(static_cast<size_t>(theta.k * theta.d));
  out.grad_z.resize(static_cast<size_t>(theta.k));
  gmm_param_grad(theta, pop.x_prev, r, w, out.grad_a.data(), out.grad_z.data());
  if (cfg.weighted) {
    out.var_a.resize(out.grad_a.size());
    out.var_z.resize(out.grad_z.size());
    gmm_param_grad_variance(theta, pop.x_prev, r, w, out.var_a.data(), out.var_z.data());
  }
  if (!lag) return out;
  std::vector<double> gvec = out.grad_a;
  gvec.insert(gvec.end(), out.grad_z.begin(), out.grad_z.end());
  if (lag->valid) out.lag_cov = gmm_lag_covariance(prev_rows, gmm_centred_grad_rows(theta, gvec, pop.x_prev, r, w));
  lag->theta = theta;
  lag->grad = std::move(gvec);
  lag->w_dev = w;
  lag->r_dev = r;
  lag->valid = true;
  return out;
}

}  // namespace

namespace {

// sum_i w_i grad_theta U(X_i) from the chunks' sums tot (weights not normalised: their sum is s1). dU/da_j =
// r_j (a_j - x): sum_i w_i dU/da_j = (sum w r_j) a_j - sum w r_j x; dU/dz_j = r_j.
void weighted_gradient(const GmmParams& theta, const std::vector<double>& tot, double s1, GmmWalkerPass& out) {
  const int64_t k = theta.k, d = theta.d;
  out.grad_a.resize(static_cast<size_t>(k * d));
  out.grad_z.resize(static_cast<size_t>(k));
  for (int64_t j = 0; j < k; ++j) {
    const double sr = tot[static_cast<size_t>(k * d + j)] / s1;
    out.grad_z[static_cast<size_t>(j)] = sr;
    for (int64_t q = 0; q < d; ++q)
      out.grad_a[static_cast<size_t>(j * d + q)] =
          sr * theta.a[static_cast<size_t>(j * d + q)] - tot[static_cast<size_t>(j * d + q)] / s1;
  }
}

// Every log-weight is -inf or one is +inf/NaN: the run diverged. NaN statistics and gradient, not an internal
// error, so that the caller's NaN guard stops the run with its own message (experiments/gmm.cpp).
GmmWalkerPass diverged_pass(int64_t k, int64_t d, bool with_gradient, bool with_var) {
  GmmWalkerPass out;
  const double nan = std::numeric_limits<double>::quiet_NaN();
  out.stats = {nan, nan, nan, nan};
  if (with_gradient) {
    out.grad_a.assign(static_cast<size_t>(k * d), nan);
    out.grad_z.assign(static_cast<size_t>(k), nan);
  }
  if (with_var) {
    out.var_a = out.grad_a;
    out.var_z = out.grad_z;
  }
  return out;
}

}  // namespace

GmmWalkerPass gmm_walker_pass(const GmmParams& theta, WalkerPopulation& pop, const UlaConfig& cfg, bool with_gradient,
                              GmmGradientLag* lag, const WalkerShards* shards) {
  JEBM_CHECK(pop.x.defined() && pop.x.dtype() == DType::Float64 && pop.walker_numel() == theta.d,
             "gmm_walker_pass: walkers " << (pop.x.defined() ? shape_str(pop.x.shape()) : std::string("undefined"))
                                         << " " << (pop.x.defined() ? dtype_name(pop.x.dtype()) : "")
                                         << " for a mixture in dimension " << theta.d << " (float64 needed)");
  JEBM_CHECK(cfg.h > 0.0, "gmm_walker_pass: step size h = " << cfg.h << " must be positive");
  // The fused pass writes the consistent kernel's increments (its coefficients are fixed in pass_range).
  JEBM_CHECK(cfg.weight_kernel == WeightKernel::Consistent,
             "gmm_walker_pass: weight kernel '" << weight_kernel_name(cfg.weight_kernel)
                                                << "' given; the mixture's fused pass computes the consistent "
                                                   "kernel ('sigma') only (the others run through Trainer)");
  if (pop.x.device().is_cuda()) {
    JEBM_CHECK(!shards || shards->comm->size() == 1, "gmm_walker_pass: walkers on CUDA sharded over "
                                                        << shards->comm->size() << " ranks (CPU walkers only)");
    return walker_pass_unfused(theta, pop, cfg, with_gradient, lag);
  }
  JEBM_CHECK(!shards || (pop.size() == shards->layout.count() && pop.first_index == shards->layout.offset() &&
                         pop.first_index % kPassChunk == 0),
             "gmm_walker_pass: this rank holds walkers [" << pop.first_index << ", " << pop.first_index + pop.size()
                                                          << "), not a shard in whole blocks of " << kPassChunk);
  const int64_t n = pop.size(), d = pop.walker_numel(), k = theta.k, w = k * d + k;
  const int64_t n_total = shards ? shards->layout.total : n;
  const bool with_var = with_gradient && cfg.weighted;
  if (!with_var) lag = nullptr;  // the lag covariance is of weighted gradient estimates only
  if (lag && (static_cast<int64_t>(lag->r.size()) != n * k || lag->theta.k != k || lag->theta.d != d)) {
    *lag = GmmGradientLag{};
    lag->r.assign(static_cast<size_t>(n * k), 0.0);
  }
  const bool lag_cov = lag && lag->valid;
  const int64_t chunks = (n + kPassChunk - 1) / kPassChunk;
  // Every chunk's sums as one row [m, s1, s2 | acc | acc2 | acc3] (widths wg, wv, wl), in chunk order.
  const size_t wg = with_gradient ? static_cast<size_t>(w) : 0, wv = with_var ? static_cast<size_t>(2 * w) : 0,
               wl = lag_cov ? static_cast<size_t>(2 * w) : 0, row = 3 + wg + wv + wl;
  std::vector<double> rows(static_cast<size_t>(chunks) * row, 0.0);
  const PassArgs a{&theta, pop.x.data<double>(), pop.x_prev.data<double>(), pop.log_w.data<double>(),
                   pop.partial.data<double>(), pop.pending.data<int64_t>(), &cfg, cfg.noise_scale(), pop.seed,
                   pop.moves, static_cast<uint64_t>(pop.first_index), with_gradient, with_var, lag, lag_cov};
#pragma omp parallel if (n * d > 4096)
  {
    PassScratch scratch;
    // Chunks handed out one at a time: on a shared machine a descheduled thread no longer holds up a fixed half of
    // them (each chunk writes its own row, so who computes it does not change the bits).
#pragma omp for schedule(dynamic)
    for (int64_t c = 0; c < chunks; ++c) {
      double* o = rows.data() + static_cast<size_t>(c) * row;
      ChunkAcc acc{-std::numeric_limits<double>::infinity(), 0.0, 0.0, o + 3, o + 3 + wg, o + 3 + wg + wv, nullptr};
      pass_range(a, c * kPassChunk, std::min(n, (c + 1) * kPassChunk), acc, scratch);
      o[0] = acc.m;
      o[1] = acc.s1;
      o[2] = acc.s2;
    }
  }
  ++pop.moves;
  std::swap(pop.x, pop.x_prev);  // x = X_{k+1}; x_prev = X_k

  // Sharded, the rows of all ranks' chunks in global chunk order: the combination below is then the one-process
  // arithmetic, whatever the rank count. One rank already holds them all (the gather would only copy them).
  if (shards && shards->comm->size() > 1)
    rows = gather_chunk_rows(*shards->comm, shards->layout, kPassChunk, rows, static_cast<int64_t>(row));
  const size_t all_chunks = rows.size() / row;

  // Combine the chunks in order: shift every chunk to the global max (log-sum-exp).
  double m = -std::numeric_limits<double>::infinity();
  for (size_t c = 0; c < all_chunks; ++c) m = std::max(m, rows[c * row]);
  if (!std::isfinite(m)) {
    if (lag) *lag = GmmGradientLag{};
    return diverged_pass(k, d, with_gradient, with_var);
  }
  GmmWalkerPass out;
  double s1 = 0.0, s2 = 0.0;
  std::vector<double> tot(wg, 0.0), tot2(wv, 0.0), tot3(wl, 0.0);
  for (size_t c = 0; c < all_chunks; ++c) {
    const double* r = rows.data() + c * row;
    const double sc = std::exp(r[0] - m);
    s1 += sc * r[1];
    s2 += sc * sc * r[2];
    for (size_t q = 0; q < wg; ++q) tot[q] += sc * r[3 + q];
    for (size_t q = 0; q < wv; ++q) tot2[q] += sc * sc * r[3 + wg + q];
    for (size_t q = 0; q < wl; ++q) tot3[q] += sc * r[3 + wg + wv + q];
  }
  out.stats.log_sum = m + std::log(s1);
  out.stats.log_mean = out.stats.log_sum - std::log(static_cast<double>(n_total));
  out.stats.ess = s1 * s1 / s2;
  out.stats.cv2 = static_cast<double>(n_total) * s2 / (s1 * s1) - 1.0;
  if (!with_gradient) return out;
  weighted_gradient(theta, tot, s1, out);
  if (!with_var) return out;
  second_moments(theta, tot2, tot3, s1, s2, out);
  if (lag) store_lag(theta, pop, out, m, s1, *lag);
  return out;
}

namespace {

// gmm_resample_and_redo for a sharded population (CPU): the global plan, then each new walker's pre-move row
// [X_k | U | grad_x U | lag weight | lag responsibilities] travels from its ancestor's rank, and the move is redone
// from the copies.
void resample_and_redo_sharded(const GmmParams& theta, WalkerPopulation& pop, ResampleScheme scheme,
                               const UlaConfig& cfg, const Tensor& u, const Tensor& g, GmmGradientLag* lag,
                               const WalkerShards& shards) {
  double log_mean = 0.0;
  const ResamplePlan plan = plan_population_resampling(*shards.comm, shards.layout, pop, scheme, &log_mean);
  const int64_t n = pop.size(), d = theta.d, k = theta.k;
  const bool with_lag = lag && lag->valid;
  const size_t row = static_cast<size_t>(2 * d + 1 + (with_lag ? 1 + k : 0));
  std::vector<double> mine(static_cast<size_t>(n) * row), got(static_cast<size_t>(n) * row);
  const double *xp = pop.x_prev.data<double>(), *up = u.data<double>(), *gp = g.data<double>();
  for (int64_t i = 0; i < n; ++i) {
    double* o = mine.data() + static_cast<size_t>(i) * row;
    o = std::copy_n(xp + i * d, d, o);
    *o++ = up[i];
    o = std::copy_n(gp + i * d, d, o);
    if (!with_lag) continue;
    *o++ = lag->w[static_cast<size_t>(i)];
    std::copy_n(lag->r.begin() + i * k, k, o);
  }
  exchange_rows(*shards.comm, plan, mine.data(), row * sizeof(double), got.data());
  Tensor x_anc = Tensor::empty({n, d}, DType::Float64), u_anc = Tensor::empty({n}, DType::Float64),
         g_anc = Tensor::empty({n, d}, DType::Float64);
  double *xa = x_anc.data<double>(), *ua = u_anc.data<double>(), *ga = g_anc.data<double>();
  for (int64_t i = 0; i < n; ++i) {
    const double* o = got.data() + static_cast<size_t>(i) * row;
    std::copy_n(o, d, xa + i * d);
    ua[i] = o[d];
    std::copy_n(o + d + 1, d, ga + i * d);
    if (!with_lag) continue;
    // A copy of walker j carries j's previous weight and responsibilities: its X_k is j's (docs/method.md).
    lag->w[static_cast<size_t>(i)] = o[2 * d + 1];
    std::copy_n(o + 2 * d + 2, k, lag->r.begin() + i * k);
  }
  redo_move_from(pop, x_anc, u_anc, g_anc, log_mean, cfg);
}

}  // namespace

void gmm_resample_and_redo(const GmmParams& theta, WalkerPopulation& pop, ResampleScheme scheme,
                           const UlaConfig& cfg, Tensor& u, Tensor& g, GmmGradientLag* lag,
                           const WalkerShards* shards) {
  // The pass kept no G, so it is recomputed at X_k (resampling iterations only).
  gmm_eval(theta, pop.x_prev, u, &g, nullptr);
  if (shards) {
    JEBM_CHECK(pop.x.device().is_cpu(), "gmm_resample_and_redo: sharded walkers must be on the CPU");
    resample_and_redo_sharded(theta, pop, scheme, cfg, u, g, lag, *shards);
    return;
  }
  // Ancestors on the host on either device: the lag state lives there (N int64 per resampling, not per move).
  const std::vector<int64_t> anc = draw_population_ancestors(pop, scheme);
  resample_and_redo_move(pop, anc, u, g, cfg);
  if (!lag || !lag->valid) return;
  // A copy of walker j carries j's previous weight and responsibilities: its X_k is j's (docs/method.md).
  if (lag->w_dev.defined()) {  // walkers on a device: so is the lag state
    lag->w_dev = gather_rows(lag->w_dev, anc);
    lag->r_dev = gather_rows(lag->r_dev, anc);
    return;
  }
  const int64_t n = pop.size(), k = theta.k;
  std::vector<double> w(static_cast<size_t>(n)), r(static_cast<size_t>(n * k));
  for (int64_t i = 0; i < n; ++i) {
    const int64_t j = anc[static_cast<size_t>(i)];
    w[static_cast<size_t>(i)] = lag->w[static_cast<size_t>(j)];
    std::copy_n(lag->r.begin() + j * k, k, r.begin() + i * k);
  }
  lag->w = std::move(w);
  lag->r = std::move(r);
}

void gmm_complete_pending(const GmmParams& theta, WalkerPopulation& pop, const UlaConfig& cfg, Tensor& u,
                          Tensor& g) {
  // Completing a walker with nothing pending only clears its flag: no need to look at the flags first.
  gmm_eval(theta, pop.x, u, &g, nullptr);
  ula_jarzynski_step(pop, u, g, cfg, MoveKind::CompleteOnly);
}

}  // namespace jebm
