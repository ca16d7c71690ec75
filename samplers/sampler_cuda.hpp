// The device side of the samplers (DESIGN 1.4), callable without CUDA headers: the fused ULA + Jarzynski move
// (samplers/ula_jarzynski.cu, twin of samplers/ula_jarzynski.cpp), log-weight statistics, normalised weights and
// systematic/multinomial resampling on the device (samplers/resampling.cu, twins of walkers.cpp/resampling.cpp).
// Defined only in CUDA builds (JEBM_WITH_CUDA), except walkers_to (samplers/sampler_cuda.cpp).
// Tested by tests/test_cuda_samplers.cpp against the CPU versions.
//
// Contract: every Tensor argument lives on the CUDA device of pop.x. Nothing here copies walker data to the
// host; the only device->host copies are weight_stats_cuda's four scalars (one synchronisation).
#pragma once
#include <cstdint>
#include <vector>

#include "samplers/resampling.hpp"
#include "samplers/ula_jarzynski.hpp"
#include "samplers/walkers.hpp"

namespace jebm {

// A copy of the population with every tensor on `device` (counters, seed and log Z offset carried over).
WalkerPopulation walkers_to(const WalkerPopulation& pop, Device device);

// --- samplers/ula_jarzynski.cu ---------------------------------------------------------------------------
// The fused move of ula_jarzynski_step with its arguments already resolved (ula_jarzynski_step dispatches here
// when pop.x is on CUDA). idx: walkers of the batch (host, distinct, checked in range here; empty = all);
// offset: the Philox offset of this move. Differences from the CPU: MoveOnly over a still-pending walker is not
// diagnosed (it would cost a synchronisation), and summation order within a walker (warp tree vs sequential).
void ula_jarzynski_step_cuda(WalkerPopulation& pop, const Tensor& u, const Tensor& g, const UlaConfig& cfg,
                             bool complete, bool move, const std::vector<int64_t>& idx, uint64_t offset);
// The sampler's noise drawn on the device by the kernel's code path: [n, dims] float64, the device twin of
// ula_noise_reference (for the tests: CPU and GPU draw the same normals up to libm/FMA rounding).
Tensor ula_noise_cuda(int64_t n, int64_t dims, uint64_t seed, uint64_t offset, Device device);

// --- samplers/resampling.cu ------------------------------------------------------------------------------
// The statistics of weight_stats for log_w [N] float64 on the device. Also leaves {max, s1, s2, log_sum} in
// the device buffer `scratch` (4 doubles, may be undefined) so later kernels can use log_sum without a sync.
WeightStats weight_stats_cuda(const Tensor& log_w, Tensor* scratch = nullptr);
// w_i = exp(A_i - log sum exp A) on the device ([N] float64): normalized_weights' twin.
Tensor normalized_weights_cuda(const Tensor& log_w);
// Inclusive prefix sums of w [N] (float64, device), normalised by the total, the last forced to 1: the twin of
// resampling.cpp's cumulative(). One block, chunked sequential sums then a block scan: deterministic.
Tensor cumulative_weights_cuda(const Tensor& w);
// Ancestor indices [N] int64 on the device; the same draws as systematic_ancestors / multinomial_ancestors.
Tensor systematic_ancestors_cuda(const Tensor& w, double u);
Tensor multinomial_ancestors_cuda(const Tensor& w, uint64_t seed, uint64_t offset);
// draw_population_ancestors' twin: same key (pop.seed ^ kResampleKey), same offset (pop.resamplings).
Tensor draw_population_ancestors_cuda(const WalkerPopulation& pop, ResampleScheme scheme);
// resample_population's twin (no walker may be pending; not checked on the device).
void resample_population_cuda(WalkerPopulation& pop, const Tensor& ancestors);
// resample_and_redo_move's twin: every walker just made a fused complete+move (not checked on the device).
void resample_and_redo_move_cuda(WalkerPopulation& pop, const Tensor& ancestors, const Tensor& u, const Tensor& g,
                                 const UlaConfig& cfg);

}  // namespace jebm
