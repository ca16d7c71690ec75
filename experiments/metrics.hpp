// Sample-quality metrics for the image experiments: the Frechet distance between two Gaussians (FID's formula,
// here on jebm's own classifier features), weighted feature moments for Jarzynski-weighted walkers, and the
// weighted class histogram of the MNIST metric; plus the symmetric eigen-solver they need. All in double.
// Tested by tests/test_metrics.cpp.
#pragma once
#include <cstdint>
#include <vector>

#include "runtime/tensor.hpp"

namespace jebm {

// A dense square matrix in double, row-major (small: feature dimensions of a few hundred at most).
struct Matrix {
  int64_t n = 0;
  std::vector<double> a;  // [n, n]
  Matrix() = default;
  explicit Matrix(int64_t size) : n(size), a(static_cast<size_t>(size * size), 0.0) {}
  double& operator()(int64_t i, int64_t j) { return a[static_cast<size_t>(i * n + j)]; }
  double operator()(int64_t i, int64_t j) const { return a[static_cast<size_t>(i * n + j)]; }
};

// A = V diag(values) V^T with V orthogonal; eigenvectors are V's columns, values ascending.
struct SymmetricEigen {
  std::vector<double> values;
  Matrix vectors;
};

// Cyclic Jacobi rotations until the off-diagonal mass is below ~1e-14 of the Frobenius norm (or 100 sweeps).
// Cost: each sweep is n(n-1)/2 rotations of O(n) work each, ~6 n^3 flops per sweep, typically 6-10 sweeps.
// Measured on the 2 shared cores of the dev machine (under load): n = 64: 2 ms, n = 128 (the CIFAR-10
// features): 0.13 s, n = 256: 1.3 s; frechet_distance costs about two of these. Accurate to ~1e-14 relative
// even for tiny eigenvalues, which matters for the square roots below. `m` must be symmetric (checked to 1e-9
// relative).
SymmetricEigen symmetric_eigen(const Matrix& m);

// sqrt of a symmetric positive semi-definite matrix: V diag(sqrt(max(lambda, 0))) V^T. Negative eigenvalues
// from round-off (a rank-deficient covariance) are clamped to zero.
Matrix sqrtm_psd(const Matrix& m);

// Frechet distance between N(mu1, C1) and N(mu2, C2):
//   |mu1 - mu2|^2 + tr(C1 + C2 - 2 (C1^{1/2} C2 C1^{1/2})^{1/2}).
// The symmetric form avoids the non-symmetric sqrtm(C1 C2) of the FID reference code (same trace, no complex
// round-off). Returns >= 0 up to round-off (clamped at 0).
double frechet_distance(const std::vector<double>& mu1, const Matrix& cov1, const std::vector<double>& mu2,
                        const Matrix& cov2);

struct MeanCov {
  std::vector<double> mean;  // [F]
  Matrix cov;                // [F, F]
};

// Weighted moments of features [N, F] (any float dtype, any device): mean = sum_i w_i x_i and
// cov = sum_i w_i (x_i - mean)(x_i - mean)^T / (1 - sum_i w_i^2), the unbiased weighted estimator (for uniform
// weights 1/N it is numpy's np.cov with ddof=1, what FID uses). `weights` (N values) must be non-negative and
// sum to 1 (checked to 1e-6); empty means uniform.
MeanCov weighted_mean_cov(const Tensor& features, const std::vector<double>& weights = {});

// frechet_distance(a.mean, a.cov, b.mean, b.cov).
double frechet_distance(const MeanCov& a, const MeanCov& b);

// Weighted fraction of samples per class: h[c] = sum_{i: labels[i] = c} w_i / sum_i w_i. Empty weights mean
// uniform. Labels must be in [0, num_classes). The result sums to 1.
// Total-variation distance 0.5 sum_c |a_c - b_c| of two distributions over the same classes (same length).
double total_variation(const std::vector<double>& a, const std::vector<double>& b);

// Fraction of the values strictly above `threshold` (0 for an empty list).
double fraction_above(const std::vector<double>& values, double threshold);

std::vector<double> class_histogram(const std::vector<int64_t>& labels, const std::vector<double>& weights,
                                    int64_t num_classes);

}  // namespace jebm
