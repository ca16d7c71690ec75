// Tests for experiments/metrics.{hpp,cpp}: the Jacobi eigen-solver reconstructs its matrix and finds known
// spectra, the Frechet distance matches the closed forms for Gaussians (diagonal, identical, rotated), weighted
// moments match a direct computation, and class histograms are weighted fractions summing to 1.
#include <cmath>
#include <random>

#include "experiments/metrics.hpp"
#include "tests/helpers.hpp"

using jebm::Matrix;
using jebm::test::all_close;

namespace {

Matrix mul(const Matrix& x, const Matrix& y, bool trans_y = false) {
  Matrix z(x.n);
  for (int64_t i = 0; i < x.n; ++i)
    for (int64_t j = 0; j < x.n; ++j)
      for (int64_t k = 0; k < x.n; ++k) z(i, j) += x(i, k) * (trans_y ? y(j, k) : y(k, j));
  return z;
}

Matrix transpose(const Matrix& x) {
  Matrix t(x.n);
  for (int64_t i = 0; i < x.n; ++i)
    for (int64_t j = 0; j < x.n; ++j) t(i, j) = x(j, i);
  return t;
}

// A random orthogonal matrix: Gram-Schmidt on Gaussian columns.
Matrix random_orthogonal(int64_t n, std::mt19937_64& rng) {
  std::normal_distribution<double> normal;
  Matrix q(n);
  for (double& v : q.a) v = normal(rng);
  for (int64_t j = 0; j < n; ++j) {
    for (int64_t p = 0; p < j; ++p) {
      double dot = 0.0;
      for (int64_t i = 0; i < n; ++i) dot += q(i, j) * q(i, p);
      for (int64_t i = 0; i < n; ++i) q(i, j) -= dot * q(i, p);
    }
    double norm = 0.0;
    for (int64_t i = 0; i < n; ++i) norm += q(i, j) * q(i, j);
    for (int64_t i = 0; i < n; ++i) q(i, j) /= std::sqrt(norm);
  }
  return q;
}

// Q diag(d) Q^T.
Matrix with_spectrum(const Matrix& q, const std::vector<double>& d) {
  Matrix qd = q;
  for (int64_t i = 0; i < q.n; ++i)
    for (int64_t j = 0; j < q.n; ++j) qd(i, j) *= d[static_cast<size_t>(j)];
  return mul(qd, q, /*trans_y=*/true);
}

Matrix diag(const std::vector<double>& d) {
  Matrix m(static_cast<int64_t>(d.size()));
  for (size_t i = 0; i < d.size(); ++i) m(static_cast<int64_t>(i), static_cast<int64_t>(i)) = d[i];
  return m;
}

std::vector<double> rotate(const Matrix& r, const std::vector<double>& x) {
  std::vector<double> y(x.size(), 0.0);
  for (int64_t i = 0; i < r.n; ++i)
    for (int64_t j = 0; j < r.n; ++j) y[static_cast<size_t>(i)] += r(i, j) * x[static_cast<size_t>(j)];
  return y;
}

Matrix identity(int64_t n) { return diag(std::vector<double>(static_cast<size_t>(n), 1.0)); }

}  // namespace

BOOST_AUTO_TEST_CASE(eigen_reconstructs_random_symmetric_matrix) {
  std::mt19937_64 rng(1);
  std::normal_distribution<double> normal;
  for (int64_t n : {1, 2, 5, 40}) {
    Matrix a(n);
    for (int64_t i = 0; i < n; ++i)
      for (int64_t j = 0; j <= i; ++j) a(i, j) = a(j, i) = normal(rng);
    const jebm::SymmetricEigen e = jebm::symmetric_eigen(a);
    BOOST_TEST(std::is_sorted(e.values.begin(), e.values.end()));
    // V^T V = I and V diag(lambda) V^T = A.
    BOOST_TEST(all_close(mul(transpose(e.vectors), e.vectors).a, identity(n).a, 1e-12, 0, "V^T V"));
    BOOST_TEST(all_close(with_spectrum(e.vectors, e.values).a, a.a, 1e-11, 0, "V L V^T"));
  }
}

BOOST_AUTO_TEST_CASE(eigen_finds_known_spectrum_including_repeated_and_tiny_values) {
  std::mt19937_64 rng(2);
  const std::vector<double> spectrum = {-3.0, 1e-10, 1e-10, 0.5, 2.0, 2.0, 2.0, 7.0};  // ascending
  const Matrix q = random_orthogonal(8, rng);
  const jebm::SymmetricEigen e = jebm::symmetric_eigen(with_spectrum(q, spectrum));
  BOOST_TEST(all_close(e.values, spectrum, 1e-13, 1e-12, "eigenvalues"));
}

BOOST_AUTO_TEST_CASE(eigen_rejects_non_symmetric_matrix) {
  Matrix a(2);
  a(0, 1) = 1.0;
  BOOST_CHECK_THROW(jebm::symmetric_eigen(a), jebm::Error);
}

BOOST_AUTO_TEST_CASE(sqrtm_squares_back) {
  std::mt19937_64 rng(3);
  const Matrix c = with_spectrum(random_orthogonal(6, rng), {0.0, 0.01, 0.3, 1.0, 4.0, 9.0});
  const Matrix s = jebm::sqrtm_psd(c);
  BOOST_TEST(all_close(mul(s, s).a, c.a, 1e-12, 0, "sqrt^2"));
}

BOOST_AUTO_TEST_CASE(frechet_matches_closed_form_for_diagonal_covariances) {
  // Commuting (diagonal) covariances: d = sum (mu1 - mu2)^2 + sum (sqrt(s1) - sqrt(s2))^2.
  const std::vector<double> mu1 = {0.0, 1.0, -2.0, 3.5}, mu2 = {1.0, 1.0, 0.5, -1.0};
  const std::vector<double> s1 = {1.0, 4.0, 0.25, 2.0}, s2 = {9.0, 1.0, 0.25, 0.0};
  double want = 0.0;
  for (size_t i = 0; i < mu1.size(); ++i)
    want += (mu1[i] - mu2[i]) * (mu1[i] - mu2[i]) + std::pow(std::sqrt(s1[i]) - std::sqrt(s2[i]), 2);
  const double got = jebm::frechet_distance(mu1, diag(s1), mu2, diag(s2));
  BOOST_TEST(got == want, boost::test_tools::tolerance(1e-12));
  // And it is symmetric in its arguments.
  BOOST_TEST(jebm::frechet_distance(mu2, diag(s2), mu1, diag(s1)) == want, boost::test_tools::tolerance(1e-12));
}

BOOST_AUTO_TEST_CASE(frechet_of_identical_gaussians_is_zero) {
  std::mt19937_64 rng(4);
  const Matrix c = with_spectrum(random_orthogonal(12, rng), {0.1, 0.2, 0.3, 0.5, 1, 1, 2, 3, 5, 8, 13, 21});
  const std::vector<double> mu(12, 0.7);
  BOOST_TEST(std::fabs(jebm::frechet_distance(mu, c, mu, c)) < 1e-10);
}

BOOST_AUTO_TEST_CASE(frechet_is_invariant_under_rotation_non_diagonal_case) {
  // Rotating both Gaussians by the same R keeps the distance; the rotated covariances are non-diagonal and do
  // not commute once the two spectra are mixed by different rotations below.
  std::mt19937_64 rng(5);
  const int64_t n = 10;
  std::vector<double> mu1(n), mu2(n), s1(n), s2(n);
  std::uniform_real_distribution<double> u(0.05, 3.0), m(-2.0, 2.0);
  for (int64_t i = 0; i < n; ++i) {
    mu1[static_cast<size_t>(i)] = m(rng);
    mu2[static_cast<size_t>(i)] = m(rng);
    s1[static_cast<size_t>(i)] = u(rng);
    s2[static_cast<size_t>(i)] = u(rng);
  }
  double want = 0.0;
  for (int64_t i = 0; i < n; ++i) {
    const size_t k = static_cast<size_t>(i);
    want += (mu1[k] - mu2[k]) * (mu1[k] - mu2[k]) + std::pow(std::sqrt(s1[k]) - std::sqrt(s2[k]), 2);
  }
  const Matrix r = random_orthogonal(n, rng);
  const double got = jebm::frechet_distance(rotate(r, mu1), with_spectrum(r, s1), rotate(r, mu2), with_spectrum(r, s2));
  BOOST_TEST(got == want, boost::test_tools::tolerance(1e-10));

  // Non-commuting pair: C1 = R1 D1 R1^T, C2 = R2 D2 R2^T. Invariance under a further common rotation R.
  const Matrix r1 = random_orthogonal(n, rng), r2 = random_orthogonal(n, rng);
  const Matrix c1 = with_spectrum(r1, s1), c2 = with_spectrum(r2, s2);
  const double base = jebm::frechet_distance(mu1, c1, mu2, c2);
  const Matrix rc1 = mul(mul(r, c1), r, true), rc2 = mul(mul(r, c2), r, true);
  BOOST_TEST(jebm::frechet_distance(rotate(r, mu1), rc1, rotate(r, mu2), rc2) == base,
             boost::test_tools::tolerance(1e-10));
  // Bounds that hold for any pair: |mu1-mu2|^2 <= d <= |mu1-mu2|^2 + tr C1 + tr C2.
  double dmu = 0.0, tr = 0.0;
  for (int64_t i = 0; i < n; ++i) {
    dmu += std::pow(mu1[static_cast<size_t>(i)] - mu2[static_cast<size_t>(i)], 2);
    tr += s1[static_cast<size_t>(i)] + s2[static_cast<size_t>(i)];
  }
  BOOST_TEST(base > dmu);
  BOOST_TEST(base < dmu + tr);
}

BOOST_AUTO_TEST_CASE(frechet_two_dimensional_hand_case) {
  // C1 = I, C2 = [[2, 1], [1, 2]] (eigenvalues 1 and 3): tr(C1^{1/2} C2 C1^{1/2})^{1/2} = 1 + sqrt(3);
  // d = 0 + 2 + 4 - 2 (1 + sqrt 3) = 4 - 2 sqrt 3.
  Matrix c2(2);
  c2(0, 0) = c2(1, 1) = 2.0;
  c2(0, 1) = c2(1, 0) = 1.0;
  const double got = jebm::frechet_distance({0, 0}, identity(2), {0, 0}, c2);
  BOOST_TEST(got == 4.0 - 2.0 * std::sqrt(3.0), boost::test_tools::tolerance(1e-12));
}

BOOST_AUTO_TEST_CASE(frechet_rejects_mismatched_dimensions) {
  BOOST_CHECK_THROW(jebm::frechet_distance({0, 0}, identity(2), {0, 0, 0}, identity(3)), jebm::Error);
}

BOOST_AUTO_TEST_CASE(weighted_mean_cov_matches_direct_computation) {
  std::mt19937_64 rng(6);
  std::normal_distribution<double> normal;
  const int64_t n = 50, f = 4;
  std::vector<double> x(static_cast<size_t>(n * f)), w(static_cast<size_t>(n));
  for (double& v : x) v = normal(rng);
  double wsum = 0.0;
  for (double& v : w) wsum += (v = std::exp(normal(rng)));
  for (double& v : w) v /= wsum;
  const jebm::Tensor t = jebm::Tensor::from_vector(x, {n, f}, jebm::DType::Float64);

  for (bool uniform : {true, false}) {
    std::vector<double> ww = uniform ? std::vector<double>(static_cast<size_t>(n), 1.0 / n) : w;
    std::vector<double> mean(f, 0.0), cov(static_cast<size_t>(f * f), 0.0);
    double w2 = 0.0;
    for (int64_t i = 0; i < n; ++i) {
      w2 += ww[static_cast<size_t>(i)] * ww[static_cast<size_t>(i)];
      for (int64_t j = 0; j < f; ++j) mean[static_cast<size_t>(j)] += ww[static_cast<size_t>(i)] * x[static_cast<size_t>(i * f + j)];
    }
    for (int64_t i = 0; i < n; ++i)
      for (int64_t j = 0; j < f; ++j)
        for (int64_t k = 0; k < f; ++k)
          cov[static_cast<size_t>(j * f + k)] += ww[static_cast<size_t>(i)] *
                                                  (x[static_cast<size_t>(i * f + j)] - mean[static_cast<size_t>(j)]) *
                                                  (x[static_cast<size_t>(i * f + k)] - mean[static_cast<size_t>(k)]);
    for (double& v : cov) v /= (1.0 - w2);  // uniform: divides by (N-1)/N, i.e. np.cov(ddof=1)
    const jebm::MeanCov got = uniform ? jebm::weighted_mean_cov(t) : jebm::weighted_mean_cov(t, w);
    BOOST_TEST(all_close(got.mean, mean, 1e-13, 1e-12, "mean"));
    BOOST_TEST(all_close(got.cov.a, cov, 1e-13, 1e-12, "cov"));
  }
  // Uniform case against the textbook unbiased estimator with 1/(N-1), on a float32 tensor.
  const jebm::MeanCov g = jebm::weighted_mean_cov(jebm::Tensor::from_vector(std::vector<double>{1, 2, 3, 5, 5, 2}, {3, 2}));
  BOOST_TEST(all_close(g.mean, {3.0, 3.0}, 1e-6, 0, "mean"));
  // x0 = {1,3,5}: var 4; x1 = {2,5,2}: var 3; cov = ((-2)(-1) + 0*2 + 2*(-1)) / 2 = 0.
  BOOST_TEST(all_close(g.cov.a, {4.0, 0.0, 0.0, 3.0}, 1e-5, 0, "cov"));
}

BOOST_AUTO_TEST_CASE(weighted_mean_cov_rejects_bad_weights) {
  const jebm::Tensor t = jebm::Tensor::zeros({3, 2});
  BOOST_CHECK_THROW(jebm::weighted_mean_cov(t, {0.5, 0.5, 0.5}), jebm::Error);  // sums to 1.5
  BOOST_CHECK_THROW(jebm::weighted_mean_cov(t, {0.5, 0.5}), jebm::Error);       // wrong count
  BOOST_CHECK_THROW(jebm::weighted_mean_cov(t, {1.5, -0.5, 0.0}), jebm::Error);  // negative
}

BOOST_AUTO_TEST_CASE(class_histogram_weighted_fractions_sum_to_one) {
  const std::vector<int64_t> labels = {0, 2, 2, 1, 0, 2};
  const std::vector<double> h = jebm::class_histogram(labels, {}, 3);
  BOOST_TEST(all_close(h, {2.0 / 6, 1.0 / 6, 3.0 / 6}, 1e-15, 0, "uniform"));
  const std::vector<double> hw = jebm::class_histogram(labels, {0.1, 0.2, 0.3, 0.15, 0.05, 0.2}, 4);
  BOOST_TEST(all_close(hw, {0.15, 0.15, 0.7, 0.0}, 1e-15, 0, "weighted"));
  double s = 0.0;
  for (double v : hw) s += v;
  BOOST_TEST(s == 1.0, boost::test_tools::tolerance(1e-15));
  BOOST_CHECK_THROW(jebm::class_histogram({0, 3}, {}, 3), jebm::Error);  // label out of range
}

BOOST_AUTO_TEST_CASE(total_variation_and_fraction_above) {
  // 0.5 (|0.6 - 4/7| + |0.3 - 2/7| + |0.1 - 1/7|) = 0.5 (0.2/7 + 0.1/7 + 0.3/7) = 0.3/7.
  BOOST_TEST(jebm::total_variation({0.6, 0.3, 0.1}, {4.0 / 7, 2.0 / 7, 1.0 / 7}) == 0.3 / 7,
             boost::test_tools::tolerance(1e-14));
  BOOST_TEST(jebm::total_variation({1.0, 0.0}, {0.0, 1.0}) == 1.0);  // disjoint: the largest distance
  BOOST_TEST(jebm::total_variation({0.2, 0.8}, {0.2, 0.8}) == 0.0);
  BOOST_CHECK_THROW(jebm::total_variation({0.5, 0.5}, {1.0}), jebm::Error);
  BOOST_TEST(jebm::fraction_above({0.95, 0.9, 0.3, 0.91}, 0.9) == 0.5);  // strictly above: 0.9 does not count
  BOOST_TEST(jebm::fraction_above({}, 0.9) == 0.0);
}
