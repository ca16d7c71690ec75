// The Gaussian-mixture experiment's setup (docs/experiments.md): its configuration, the teacher, the student's initial
// parameters and the stratified teacher data, all pure functions of the config and its seed.
// Tested by tests/test_gmm.cpp (gmm_config_file_sets_the_teacher and every training test).
#pragma once
#include <cstdint>
#include <vector>

#include "models/gaussian_mixture.hpp"
#include "samplers/resampling.hpp"

namespace jebm {

struct GmmConfig {
  int64_t dim = 50;
  std::vector<std::vector<double>> teacher_means = {{-10.0}, {6.0}};  // padded with zeros to dim
  std::vector<double> teacher_weights = {0.25, 0.75};
  int64_t student_modes = 2;
  double init_spread = 0.1;   // student means start at -spread e1 ... +spread e1
  double init_noise = 0.01;   // plus N(0, init_noise^2) per coordinate
  int64_t data = 10000;
  int64_t walkers = 10000;
  double h = 0.1;
  double sigma = 0.0;         // <= 0: sqrt(2h)
  double drift_clip = 0.0;
  double lr_means = 0.2 / 8;  // multiplied by h
  double lr_z = 1.0 / 8;      // multiplied by h
  double cd_lr_factor = 10.0;
  int64_t cd_k = 4;
  int64_t iterations = 8000;
  bool resample = true;
  ResampleRule resample_rule = {ResampleScheme::Systematic, 0.0, 1.0};
  uint64_t seed = 1;
  int64_t log_every = 10;
  bool autograd = false;
  // The lag-covariance sums of the corrected Jarzynski CE estimate (docs/method.md): with them off, jarzynski_ce
  // and log_z_correction are NaN (the raw and variance-corrected estimates remain) and training is unchanged.
  bool ce_correction = true;
  // Held-out walkers (docs/method.md): holdout_walkers in holdout_blocks independent populations that move
  // and are weighted like the training walkers under the same theta_k but never enter the gradient. 0 = off.
  int64_t holdout_walkers = 0;
  int64_t holdout_blocks = 10;
  Device device = Device::cpu();  // cuda: the closed-form path on the GPU (samplers/gmm_step.cpp: walker_pass_unfused)
};

GmmParams gmm_teacher(const GmmConfig& c);
GmmParams gmm_student_init(const GmmConfig& c);
// Stratified teacher data [n, dim]: round(n w_j) exact samples of each mode (the last takes the remainder).
Tensor gmm_teacher_data(const GmmConfig& c, const GmmParams& teacher);

// Philox keys of the setup's draws (XORed into the seed), shared with the training loop.
constexpr uint64_t kGmmDataKey = 0x64617461ULL, kGmmInitKey = 0x696e6974ULL, kGmmRestartKey = 0x72657374ULL;

}  // namespace jebm
