// WalkerPopulation: the Langevin walkers of docs/method.md (positions, float64 log-weights A, running log Z offset,
// counters) plus the fused ULA+Jarzynski kernel's per-walker state (previous positions, pending partial term),
// and the log-domain weight statistics. Everything here works on a population on either device (the dispatch to
// samplers/{cpu,cuda}/weights is in samplers/walkers.cpp). Tested by tests/test_samplers.cpp and, on a GPU,
// tests/test_cuda_samplers.cpp.
#pragma once
#include <cstdint>
#include <vector>

#include "runtime/tensor.hpp"

namespace jebm {

// Statistics of the log-weights A, all from one max-shifted pass (never exp of a raw log-weight).
struct WeightStats {
  double log_sum = 0.0;   // log sum_i exp(A_i)
  double log_mean = 0.0;  // log mean_i exp(A_i): the log Z increment since the last resampling
  double ess = 0.0;       // 1 / sum_i w_i^2, in [1, N]
  double cv2 = 0.0;       // N / ESS - 1 = E[e^A^2]/E[e^A]^2 - 1 (GMM.py's `varian`)
};
WeightStats weight_stats(const double* log_w, int64_t n);  // host array
// log_w: [N] float64 on any device; from CUDA only the four totals come back (one synchronisation).
WeightStats weight_stats(const Tensor& log_w);
// w_i = exp(A_i) / sum_j exp(A_j), via the max shift. `w` has n entries.
void normalized_weights(const double* log_w, int64_t n, double* w);
std::vector<double> normalized_weights(const std::vector<double>& log_w);
// The same on log_w's device ([N] float64); with ess, also 1 / sum_i w_i^2 (one scalar comes back).
Tensor normalized_weights(const Tensor& log_w, double* ess = nullptr);

struct WalkerPopulation {
  Tensor x;        // [N, ...] positions, float32 or float64
  Tensor log_w;    // [N] float64: the Jarzynski log-weights A
  Tensor x_prev;   // [N, ...] same dtype as x: positions before each walker's pending move
  Tensor partial;  // [N] float64: P = U(X_prev) + |xi|^2/2 of the pending move (the fused pass)
  Tensor pending;  // [N] int64: 1 when the walker moved and awaits completion of its weight increment
  double log_z_offset = 0.0;  // log Z_theta_0 (or 0) plus the log mean exp(A) carried over resamplings
  uint64_t seed = 0;          // Philox key of every move's noise (samplers/ula_jarzynski.hpp)
  uint64_t moves = 0;         // move-kernel calls so far: the Philox offset of the next move
  int64_t resamplings = 0;
  // Global index of walker 0 when this population is one rank's shard of a larger one (samplers/distributed.hpp);
  // 0 otherwise. Each walker's noise is keyed by its global index, so a shard draws what the whole would.
  int64_t first_index = 0;

  // Takes a copy of x0 [N, ...] (float32/float64, any device) as the positions; A = 0, nothing pending.
  static WalkerPopulation create(const Tensor& x0, uint64_t seed, double log_z0 = 0.0);

  int64_t size() const { return x.defined() ? x.size(0) : 0; }
  int64_t walker_numel() const { return size() ? x.numel() / size() : 0; }  // D: coordinates per walker
  // The accessors below work on either device; on CUDA each copies what it returns to the host.
  WeightStats stats() const { return weight_stats(log_w); }
  std::vector<double> weights() const;  // normalised, on the host
  // The Jarzynski estimate of log Z_theta (relative to log Z_theta_0 unless created with log_z0).
  double log_z_estimate() const { return log_z_offset + stats().log_mean; }
  bool any_pending() const;
  // Sets A = 0 after adding log mean exp(A) to the offset (what resampling does to the weights).
  void fold_weights_into_offset();
  // Replaces the positions (e.g. CD restarts from data): A = 0, nothing pending, the log Z offset is kept.
  void reset_positions(const Tensor& x_new);
};

// A copy of the population with every tensor on `device` (counters, seed and log Z offset carried over); the copy
// never shares storage with pop, even on the same device.
WalkerPopulation walkers_to(const WalkerPopulation& pop, Device device);

}  // namespace jebm
