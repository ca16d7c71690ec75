// Frechet distance, cyclic Jacobi eigen-solver, weighted moments and class histograms (see metrics.hpp).
// Tested by tests/test_metrics.cpp.
#include "experiments/metrics.hpp"

#include <algorithm>
#include <cmath>
#include <numeric>

namespace jebm {
namespace {

Matrix matmul_sq(const Matrix& x, const Matrix& y) {
  const int64_t n = x.n;
  Matrix z(n);
  for (int64_t i = 0; i < n; ++i)
    for (int64_t k = 0; k < n; ++k) {
      const double xik = x(i, k);
      if (xik == 0.0) continue;
      for (int64_t j = 0; j < n; ++j) z(i, j) += xik * y(k, j);
    }
  return z;
}

void symmetrize(Matrix& m) {
  for (int64_t i = 0; i < m.n; ++i)
    for (int64_t j = i + 1; j < m.n; ++j) m(i, j) = m(j, i) = 0.5 * (m(i, j) + m(j, i));
}

double trace(const Matrix& m) {
  double t = 0.0;
  for (int64_t i = 0; i < m.n; ++i) t += m(i, i);
  return t;
}

void check_square(const Matrix& m, const char* what) {
  JEBM_CHECK(m.n >= 0 && m.a.size() == static_cast<size_t>(m.n * m.n),
             what << ": matrix n = " << m.n << " holds " << m.a.size() << " values, want n*n");
}

}  // namespace

SymmetricEigen symmetric_eigen(const Matrix& m) {
  check_square(m, "symmetric_eigen");
  const int64_t n = m.n;
  double frob2 = 0.0;
  for (double v : m.a) frob2 += v * v;
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = i + 1; j < n; ++j)
      JEBM_CHECK(std::fabs(m(i, j) - m(j, i)) <= 1e-9 * std::sqrt(frob2) + 1e-300,
                 "symmetric_eigen: matrix is not symmetric: a(" << i << "," << j << ") = " << m(i, j) << " but a("
                                                               << j << "," << i << ") = " << m(j, i));
  Matrix a = m;
  symmetrize(a);
  Matrix vt(n);  // V^T: eigenvectors as rows, so that each rotation touches two contiguous rows
  for (int64_t i = 0; i < n; ++i) vt(i, i) = 1.0;

  // Cyclic Jacobi (Golub & Van Loan 8.5): rotate each (p, q) in turn so that a(p, q) becomes 0; a = J^T a J,
  // V = V J. Off-diagonal mass falls quadratically once small, so a handful of sweeps suffice. By symmetry only
  // rows p and q are computed (contiguous memory) and then mirrored into columns p and q.
  const double tol2 = 1e-28 * frob2;
  for (int sweep = 0; sweep < 100; ++sweep) {
    double off2 = 0.0;
    for (int64_t p = 0; p < n; ++p)
      for (int64_t q = p + 1; q < n; ++q) off2 += 2.0 * a(p, q) * a(p, q);
    if (off2 <= tol2) break;
    for (int64_t p = 0; p < n; ++p) {
      for (int64_t q = p + 1; q < n; ++q) {
        const double apq = a(p, q);
        if (apq == 0.0) continue;
        const double app = a(p, p), aqq = a(q, q);
        // theta = cot(2 phi); t = tan(phi), the smaller root, keeps the rotation angle <= pi/4 (stability).
        const double theta = (aqq - app) / (2.0 * apq);
        const double t = (theta >= 0 ? 1.0 : -1.0) / (std::fabs(theta) + std::sqrt(theta * theta + 1.0));
        const double c = 1.0 / std::sqrt(t * t + 1.0), s = t * c;
        double* rp = &a(p, 0);
        double* rq = &a(q, 0);
        for (int64_t k = 0; k < n; ++k) {  // rows p, q of J^T a; equal to those of J^T a J off the p,q block
          const double apk = rp[k], aqk = rq[k];
          rp[k] = c * apk - s * aqk;
          rq[k] = s * apk + c * aqk;
        }
        // The p,q block in closed form (the annihilated entry exactly 0), then mirror rows into columns.
        rp[p] = app - t * apq;
        rq[q] = aqq + t * apq;
        rp[q] = rq[p] = 0.0;
        for (int64_t k = 0; k < n; ++k) {
          a(k, p) = rp[k];
          a(k, q) = rq[k];
        }
        double* vp = &vt(p, 0);
        double* vq = &vt(q, 0);
        for (int64_t k = 0; k < n; ++k) {  // rows p, q of V^T = columns p, q of V J
          const double x = vp[k], y = vq[k];
          vp[k] = c * x - s * y;
          vq[k] = s * x + c * y;
        }
      }
    }
  }

  // Sort ascending, permuting the eigenvector columns alongside.
  std::vector<int64_t> order(static_cast<size_t>(n));
  std::iota(order.begin(), order.end(), 0);
  std::sort(order.begin(), order.end(), [&](int64_t x, int64_t y) { return a(x, x) < a(y, y); });
  SymmetricEigen out;
  out.values.resize(static_cast<size_t>(n));
  out.vectors = Matrix(n);
  for (int64_t j = 0; j < n; ++j) {
    const int64_t src = order[static_cast<size_t>(j)];
    out.values[static_cast<size_t>(j)] = a(src, src);
    for (int64_t k = 0; k < n; ++k) out.vectors(k, j) = vt(src, k);
  }
  return out;
}

Matrix sqrtm_psd(const Matrix& m) {
  const SymmetricEigen e = symmetric_eigen(m);
  const int64_t n = m.n;
  Matrix r(n);
  for (int64_t j = 0; j < n; ++j) {
    const double s = std::sqrt(std::max(e.values[static_cast<size_t>(j)], 0.0));
    if (s == 0.0) continue;
    for (int64_t i = 0; i < n; ++i) {
      const double vis = e.vectors(i, j) * s;
      for (int64_t k = 0; k < n; ++k) r(i, k) += vis * e.vectors(k, j);
    }
  }
  symmetrize(r);
  return r;
}

double frechet_distance(const std::vector<double>& mu1, const Matrix& cov1, const std::vector<double>& mu2,
                        const Matrix& cov2) {
  check_square(cov1, "frechet_distance: cov1");
  check_square(cov2, "frechet_distance: cov2");
  const int64_t n = static_cast<int64_t>(mu1.size());
  JEBM_CHECK(static_cast<int64_t>(mu2.size()) == n && cov1.n == n && cov2.n == n,
             "frechet_distance: dimensions disagree: mu1 " << mu1.size() << ", mu2 " << mu2.size() << ", cov1 "
                                                          << cov1.n << "x" << cov1.n << ", cov2 " << cov2.n << "x"
                                                          << cov2.n);
  double d2 = 0.0;
  for (int64_t i = 0; i < n; ++i) {
    const double d = mu1[static_cast<size_t>(i)] - mu2[static_cast<size_t>(i)];
    d2 += d * d;
  }
  const Matrix s1 = sqrtm_psd(cov1);
  Matrix inner = matmul_sq(matmul_sq(s1, cov2), s1);  // C1^{1/2} C2 C1^{1/2}: symmetric PSD
  symmetrize(inner);
  double tr_sqrt = 0.0;
  for (double lambda : symmetric_eigen(inner).values) tr_sqrt += std::sqrt(std::max(lambda, 0.0));
  return std::max(0.0, d2 + trace(cov1) + trace(cov2) - 2.0 * tr_sqrt);
}

MeanCov weighted_mean_cov(const Tensor& features, const std::vector<double>& weights) {
  JEBM_CHECK(features.dim() == 2 && features.size(0) >= 2,
             "weighted_mean_cov: features " << shape_str(features.shape()) << ", want [N >= 2, F]");
  const int64_t n = features.size(0), f = features.size(1);
  const std::vector<double> x = features.to_vector();  // host, double
  std::vector<double> w = weights;
  if (w.empty()) w.assign(static_cast<size_t>(n), 1.0 / static_cast<double>(n));
  JEBM_CHECK(static_cast<int64_t>(w.size()) == n,
             "weighted_mean_cov: " << w.size() << " weights for features " << shape_str(features.shape()));
  double wsum = 0.0, w2sum = 0.0;
  for (size_t i = 0; i < w.size(); ++i) {
    JEBM_CHECK(std::isfinite(w[i]) && w[i] >= 0.0, "weighted_mean_cov: weight " << i << " is " << w[i]);
    wsum += w[i];
    w2sum += w[i] * w[i];
  }
  JEBM_CHECK(std::fabs(wsum - 1.0) <= 1e-6, "weighted_mean_cov: weights sum to " << wsum << ", want 1");

  MeanCov out;
  out.mean.assign(static_cast<size_t>(f), 0.0);
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = 0; j < f; ++j) out.mean[static_cast<size_t>(j)] += w[static_cast<size_t>(i)] * x[static_cast<size_t>(i * f + j)];
  out.cov = Matrix(f);
  std::vector<double> d(static_cast<size_t>(f));
  for (int64_t i = 0; i < n; ++i) {
    const double wi = w[static_cast<size_t>(i)];
    if (wi == 0.0) continue;
    for (int64_t j = 0; j < f; ++j) d[static_cast<size_t>(j)] = x[static_cast<size_t>(i * f + j)] - out.mean[static_cast<size_t>(j)];
    for (int64_t j = 0; j < f; ++j) {
      const double wdj = wi * d[static_cast<size_t>(j)];
      for (int64_t k = j; k < f; ++k) out.cov(j, k) += wdj * d[static_cast<size_t>(k)];
    }
  }
  // Unbiased ("reliability weights") correction; when all the weight sits on one sample (1 - sum w^2 = 0) the
  // covariance is zero and stays so.
  const double denom = 1.0 - w2sum;
  const double scale = denom > 0.0 ? 1.0 / denom : 1.0;
  for (int64_t j = 0; j < f; ++j)
    for (int64_t k = j; k < f; ++k) out.cov(k, j) = out.cov(j, k) = out.cov(j, k) * scale;
  return out;
}

double frechet_distance(const MeanCov& a, const MeanCov& b) {
  return frechet_distance(a.mean, a.cov, b.mean, b.cov);
}

std::vector<double> class_histogram(const std::vector<int64_t>& labels, const std::vector<double>& weights,
                                    int64_t num_classes) {
  JEBM_CHECK(num_classes >= 1, "class_histogram: num_classes " << num_classes << " must be >= 1");
  JEBM_CHECK(!labels.empty(), "class_histogram: no labels");
  JEBM_CHECK(weights.empty() || weights.size() == labels.size(),
             "class_histogram: " << weights.size() << " weights for " << labels.size() << " labels");
  std::vector<double> h(static_cast<size_t>(num_classes), 0.0);
  double total = 0.0;
  for (size_t i = 0; i < labels.size(); ++i) {
    const int64_t c = labels[i];
    JEBM_CHECK(c >= 0 && c < num_classes,
               "class_histogram: label " << c << " at " << i << " outside [0, " << num_classes << ")");
    const double wi = weights.empty() ? 1.0 : weights[i];
    JEBM_CHECK(std::isfinite(wi) && wi >= 0.0, "class_histogram: weight " << i << " is " << wi);
    h[static_cast<size_t>(c)] += wi;
    total += wi;
  }
  JEBM_CHECK(total > 0.0, "class_histogram: weights sum to 0");
  for (double& v : h) v /= total;
  return h;
}

double total_variation(const std::vector<double>& a, const std::vector<double>& b) {
  JEBM_CHECK(a.size() == b.size(), "total_variation: " << a.size() << " and " << b.size() << " classes");
  double s = 0.0;
  for (size_t c = 0; c < a.size(); ++c) s += std::fabs(a[c] - b[c]);
  return 0.5 * s;
}

double fraction_above(const std::vector<double>& values, double threshold) {
  if (values.empty()) return 0.0;
  const auto n = std::count_if(values.begin(), values.end(), [&](double v) { return v > threshold; });
  return static_cast<double>(n) / static_cast<double>(values.size());
}

}  // namespace jebm
