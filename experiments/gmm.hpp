// `jebm gmm` (DESIGN 3.1): the Gaussian-mixture experiment of the paper. GmmExperiment holds one algorithm's
// run on the closed-form fast path (one fused evaluation + one fused move per iteration), or through the
// generic Trainer/autograd path (--autograd). Also used by the `gmm` section of `jebm bench`.
// Tested by tests/test_gmm.cpp.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "models/gaussian_mixture.hpp"
#include "samplers/contrastive.hpp"
#include "samplers/resampling.hpp"
#include "samplers/ula_jarzynski.hpp"

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
  Device device = Device::cpu();  // cuda: the closed-form path on the GPU (experiments/gmm_cuda.cpp)
};

GmmParams gmm_teacher(const GmmConfig& c);
GmmParams gmm_student_init(const GmmConfig& c);
// Stratified teacher data [n, dim]: round(n w_j) exact samples of each mode (the last takes the remainder).
Tensor gmm_teacher_data(const GmmConfig& c, const GmmParams& teacher);

// Per logged iteration of one algorithm.
struct GmmRecord {
  int64_t iteration = 0;
  double exact_ce = 0.0, jarzynski_ce = 0.0, log_z_exact = 0.0, log_z_estimate = 0.0, ess = 0.0;
  std::vector<double> weights, mean_errors;
  int64_t resamplings = 0;
  bool resampled = false;
};

class GmmExperiment {
 public:
  GmmExperiment(const GmmConfig& c, Algorithm algo, const Tensor& data, const GmmParams& teacher);
  ~GmmExperiment();
  // One parameter update (Algorithm 1 of DESIGN 1.3). Returns the record of theta_k (before the update).
  GmmRecord iterate();
  // After the last update: completes the pending move at the final theta and returns its record.
  GmmRecord final_record();
  const GmmParams& params() const { return theta_; }
  const WalkerPopulation& walkers() const { return pop_; }
  int64_t iteration() const { return k_; }

 private:
  GmmRecord record(double data_u, const WeightStats* st) const;
  void update_params(const std::vector<double>& ga, const std::vector<double>& gz);
  GmmRecord iterate_fast();
  GmmRecord iterate_autograd();
  GmmRecord iterate_fast_cuda();   // experiments/gmm_cuda.cpp: walkers, data and kernels on the device
  GmmRecord final_record_cuda();

  GmmConfig c_;
  Algorithm algo_;
  Tensor data_;
  GmmParams teacher_, theta_;
  WalkerPopulation pop_;
  UlaConfig ula_;
  int64_t k_ = 0;
  Tensor u_, g_;  // walkers' U [N], grad_x U [N, D]: scratch for resampling and the final completion
  struct AutogradState;
  std::unique_ptr<AutogradState> ag_;
};

// `jebm bench` section "gmm": median wall times (ms) of (1) the generic fused ULA+Jarzynski kernel alone
// (U, grad_x U given) and (2) one full iteration of the paper's run (the `fused` workload of
// shared/bench/README.md: walker pass + data pass + update + log Z + resampling check), at d = 50, N = 10^4.
struct GmmBenchTiming {
  std::string name;
  double median_ms;
  double flops;  // 0: not meaningful
};
std::vector<GmmBenchTiming> bench_gmm_timings(int repeat);

}  // namespace jebm
