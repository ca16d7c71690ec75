// The Gaussian-mixture experiment's setup (samplers/gmm_setup.hpp). Tested by tests/test_gmm.cpp.
#include "samplers/gmm_setup.hpp"

#include <algorithm>
#include <cmath>

#include "runtime/philox.hpp"
#include "runtime/user_error.hpp"

namespace jebm {

GmmParams gmm_teacher(const GmmConfig& c) {
  const int64_t k = static_cast<int64_t>(c.teacher_means.size());
  JEBM_USER_CHECK(k >= 1 && static_cast<int64_t>(c.teacher_weights.size()) == k,
             "--teacher-weights has " << c.teacher_weights.size() << " weight(s) but the teacher has " << k
                                      << " mode(s), one per --teacher-mean (default: the paper's two, -10 and 6): "
                                         "give one weight per mode");
  GmmParams t = GmmParams::zeros(k, c.dim);
  for (double w : c.teacher_weights) JEBM_USER_CHECK(w > 0.0, "--teacher-weights: weight " << w << " must be positive");
  for (int64_t j = 0; j < k; ++j) {
    const auto& m = c.teacher_means[static_cast<size_t>(j)];
    JEBM_USER_CHECK(static_cast<int64_t>(m.size()) <= c.dim, "--teacher-mean " << j << " has " << m.size()
                                                                          << " coordinates for --dim " << c.dim);
    for (size_t q = 0; q < m.size(); ++q) t.a[static_cast<size_t>(j * c.dim) + q] = m[q];
    // mass_j = exp(-z_j) / sum exp(-z): z_j = -log(w_j / w_0) fixes z_0 = 0 (the paper's (0, -log 3)).
    t.z[static_cast<size_t>(j)] = -std::log(c.teacher_weights[static_cast<size_t>(j)] / c.teacher_weights[0]);
  }
  return t;
}

GmmParams gmm_student_init(const GmmConfig& c) {
  JEBM_USER_CHECK(c.student_modes >= 1, "--student-modes " << c.student_modes << " must be at least 1");
  GmmParams s = GmmParams::zeros(c.student_modes, c.dim);
  const double nz = c.init_noise;
  for (int64_t j = 0; j < s.k; ++j) {
    for (int64_t q = 0; q < c.dim; ++q) {
      double z0, z1;
      philox_normal2(c.seed ^ kGmmInitKey, static_cast<uint64_t>(j * c.dim + q), 0, &z0, &z1);
      s.a[static_cast<size_t>(j * c.dim + q)] = nz * z0;
    }
    // -spread e1 ... +spread e1 (paper: -0.1 e1 and +0.1 e1 for two modes)
    s.a[static_cast<size_t>(j * c.dim)] =
        s.k == 1 ? 0.0 : -c.init_spread + 2.0 * c.init_spread * static_cast<double>(j) / static_cast<double>(s.k - 1);
  }
  return s;
}

Tensor gmm_teacher_data(const GmmConfig& c, const GmmParams& teacher) {
  Tensor x = Tensor::empty({c.data, c.dim}, DType::Float64);
  const std::vector<double> w = gmm_mode_weights(teacher);
  int64_t row = 0;
  for (int64_t j = 0; j < teacher.k; ++j) {
    const int64_t cnt = j + 1 == teacher.k ? c.data - row
                                           : std::llround(static_cast<double>(c.data) * w[static_cast<size_t>(j)]);
    GmmParams one = GmmParams::zeros(1, c.dim);
    std::copy(teacher.mean(j), teacher.mean(j) + c.dim, one.a.begin());
    gmm_sample(one, cnt, c.seed ^ kGmmDataKey, static_cast<uint64_t>(j), x.data<double>() + row * c.dim);
    row += cnt;
  }
  return x;
}

}  // namespace jebm
