// WalkerPopulation, walkers_to, and the dispatch point of the log-domain weight statistics (ESS, CV^2, log mean
// exp) and normalised weights to samplers/{cpu,cuda}/weights. Tested by tests/test_samplers.cpp (formulas
// against direct computation, log Z estimate against the analytic value) and tests/test_cuda_samplers.cpp.
#include "samplers/walkers.hpp"

#include <algorithm>
#include <cmath>
#include <limits>

#include "runtime/ops.hpp"
#include "samplers/backend.hpp"
#include "samplers/cpu/weights.hpp"

namespace jebm {

namespace {

// WeightStats from the kernels' totals {max, s1, s2, log_sum} (samplers/kernels.inc).
WeightStats stats_from_sums(const double* h, int64_t n) {
  JEBM_CHECK(std::isfinite(h[0]), "weight_stats: the largest log-weight is " << h[0]);
  WeightStats s;
  s.log_sum = h[3];
  s.log_mean = s.log_sum - std::log(static_cast<double>(n));
  s.ess = h[1] * h[1] / h[2];
  s.cv2 = static_cast<double>(n) * h[2] / (h[1] * h[1]) - 1.0;
  return s;
}

void check_log_weights(const Tensor& log_w, const char* what) {
  JEBM_CHECK(log_w.defined() && log_w.dtype() == DType::Float64 && log_w.dim() == 1 && log_w.numel() > 0,
             what << ": log-weights must be a non-empty [N] float64 tensor, got "
                  << (log_w.defined() ? shape_str(log_w.shape()) + " " + dtype_name(log_w.dtype()) : "undefined"));
}

// The totals of log_w on its device, and a host copy of them.
Tensor log_weight_sums(const Tensor& log_w, std::vector<double>& host) {
  Tensor sums = Tensor::empty({4}, DType::Float64, log_w.device());
  JEBM_DISPATCH(log_w.device(), log_weight_sums, log_w, sums);
  host = sums.host_vector<double>();
  return sums;
}

}  // namespace

WeightStats weight_stats(const double* log_w, int64_t n) {
  JEBM_CHECK(n > 0, "weight_stats: empty population");
  double h[4];
  cpu::log_weight_sums(log_w, n, h);
  return stats_from_sums(h, n);
}

WeightStats weight_stats(const Tensor& log_w) {
  check_log_weights(log_w, "weight_stats");
  std::vector<double> h;
  log_weight_sums(log_w, h);
  return stats_from_sums(h.data(), log_w.numel());
}

void normalized_weights(const double* log_w, int64_t n, double* w) {
  JEBM_CHECK(n > 0, "normalized_weights: empty population");
  double h[4];
  cpu::log_weight_sums(log_w, n, h);
  stats_from_sums(h, n);  // the same check of the largest log-weight as weight_stats
  for (int64_t i = 0; i < n; ++i) w[i] = std::exp(log_w[i] - h[0]) / h[1];  // not exp(A - log_sum): cpu/weights.cpp
}

std::vector<double> normalized_weights(const std::vector<double>& log_w) {
  std::vector<double> w(log_w.size());
  normalized_weights(log_w.data(), static_cast<int64_t>(log_w.size()), w.data());
  return w;
}

Tensor normalized_weights(const Tensor& log_w, double* ess) {
  check_log_weights(log_w, "normalized_weights");
  std::vector<double> h;
  const Tensor sums = log_weight_sums(log_w, h);
  stats_from_sums(h.data(), log_w.numel());  // the same check of the largest log-weight as weight_stats
  Tensor w = Tensor::empty({log_w.numel()}, DType::Float64, log_w.device());
  JEBM_DISPATCH(log_w.device(), normalized_weights, log_w, sums, w);
  if (ess) *ess = 1.0 / JEBM_DISPATCH(w.device(), sum_of_squares, w);
  return w;
}

WalkerPopulation walkers_to(const WalkerPopulation& pop, Device device) {
  WalkerPopulation p = pop;
  p.x = pop.x.copy_to(device);
  p.x_prev = pop.x_prev.copy_to(device);
  p.log_w = pop.log_w.copy_to(device);
  p.partial = pop.partial.copy_to(device);
  p.pending = pop.pending.copy_to(device);
  return p;
}

WalkerPopulation WalkerPopulation::create(const Tensor& x0, uint64_t seed, double log_z0) {
  JEBM_CHECK(x0.dim() >= 2 && x0.size(0) > 0, "WalkerPopulation::create: positions must be [N, ...], got "
                                                  << shape_str(x0.shape()));
  JEBM_CHECK(x0.dtype() == DType::Float32 || x0.dtype() == DType::Float64,
             "WalkerPopulation::create: positions must be float32 or float64, got " << dtype_name(x0.dtype()));
  WalkerPopulation p;
  p.seed = seed;
  p.log_z_offset = log_z0;
  p.reset_positions(x0);
  return p;
}

void WalkerPopulation::reset_positions(const Tensor& x_new) {
  const int64_t n = x_new.size(0);
  const Device dev = x_new.device();
  x = x_new.clone();
  x_prev = x_new.clone();
  log_w = Tensor::zeros({n}, DType::Float64, dev);
  partial = Tensor::zeros({n}, DType::Float64, dev);
  pending = Tensor::zeros({n}, DType::Int64, dev);
}

std::vector<double> WalkerPopulation::weights() const { return normalized_weights(log_w).host_vector<double>(); }

bool WalkerPopulation::any_pending() const {
  const std::vector<int64_t> p = pending.host_vector<int64_t>();
  return std::any_of(p.begin(), p.end(), [](int64_t v) { return v != 0; });
}

void WalkerPopulation::fold_weights_into_offset() {
  log_z_offset += stats().log_mean;
  fill_(log_w, 0.0);
}

}  // namespace jebm
