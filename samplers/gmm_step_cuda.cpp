// The GMM loop's device-specific calls (samplers/gmm_step_cuda.hpp): the walker pass as the unfused sequence
// evaluate -> fused move -> weight statistics -> weighted gradient and variance, with walkers and data on the GPU.
// The CPU pass (samplers/gmm_step.cpp) is the reference. Per iteration only the parameters (K*D + K doubles) go
// up and the gradients, variances and four weight statistics come back; no walker data.
// Tested by tests/test_cuda_gmm.cpp (a few iterations on CUDA vs CPU agree).
#include "samplers/gmm_step_cuda.hpp"

#ifdef JEBM_WITH_CUDA
#include "runtime/ops.hpp"
#include "samplers/contrastive.hpp"
#include "samplers/sampler_cuda.hpp"
#endif

namespace jebm::gmm_cuda {

#ifdef JEBM_WITH_CUDA

GmmWalkerPass walker_pass(const GmmParams& theta, WalkerPopulation& pop, const UlaConfig& cfg, bool with_gradient,
                          GmmGradientLag* lag) {
  // The lag covariance is not computed on the device yet: lag_cov stays empty, and the lag state is dropped so
  // that a later CPU pass does not read a stale one.
  if (lag) *lag = GmmGradientLag{};
  const int64_t n = pop.size();
  const Device dev = pop.x.device();
  Tensor u = Tensor::empty({n}, DType::Float64, dev), g = Tensor::empty({n, theta.d}, DType::Float64, dev);
  Tensor r = Tensor::empty({n, theta.k}, DType::Float64, dev);
  // U, G, r at (theta_k, X_k); complete move k-1 and make move k (X_k is in x_prev afterwards).
  gmm_eval(theta, pop.x, u, &g, &r);
  ula_jarzynski_step(pop, u, g, cfg, MoveKind::CompleteAndMove);
  GmmWalkerPass out;
  out.stats = weight_stats_cuda(pop.log_w);
  if (!with_gradient) return out;
  const Tensor w = cfg.weighted ? normalized_weights_cuda(pop.log_w) : Tensor();  // undefined: uniform 1/N
  out.grad_a.resize(static_cast<size_t>(theta.k * theta.d));
  out.grad_z.resize(static_cast<size_t>(theta.k));
  gmm_param_grad(theta, pop.x_prev, r, w, out.grad_a.data(), out.grad_z.data());
  if (cfg.weighted) {
    out.var_a.resize(out.grad_a.size());
    out.var_z.resize(out.grad_z.size());
    gmm_param_grad_variance(theta, pop.x_prev, r, w, out.var_a.data(), out.var_z.data());
  }
  return out;
}

void resample_and_redo(WalkerPopulation& pop, ResampleScheme scheme, const UlaConfig& cfg, const Tensor& u,
                       const Tensor& g) {
  resample_and_redo_move_cuda(pop, draw_population_ancestors_cuda(pop, scheme), u, g, cfg);
}

// restart_from_data with the data already on the device: the rows are drawn on the host (a pure function of
// the key, the same draw as the CPU's), the gather runs on the device.
void restart_from_data(WalkerPopulation& pop, const Tensor& data, uint64_t seed, uint64_t offset) {
  const std::vector<int64_t> rows = random_rows(pop.size(), data.size(0), seed, offset);
  const Tensor idx = Tensor::from_vector(rows, {pop.size()}, data.device());
  pop.x = gather_rows(data, idx);
  pop.x_prev = pop.x.clone();
  pop.log_w = Tensor::zeros({pop.size()}, DType::Float64, data.device());
  pop.partial = Tensor::zeros({pop.size()}, DType::Float64, data.device());
  pop.pending = Tensor::zeros({pop.size()}, DType::Int64, data.device());
}

WeightStats population_stats(const WalkerPopulation& pop) { return weight_stats_cuda(pop.log_w); }

#else  // no CUDA backend: populations cannot be on a CUDA device, so these are never reached

namespace {
[[noreturn]] void no_cuda(const char* what) {
  JEBM_FAIL(what << ": the walkers are on a CUDA device but this jebm was built without the CUDA backend");
}
}  // namespace

GmmWalkerPass walker_pass(const GmmParams&, WalkerPopulation&, const UlaConfig&, bool, GmmGradientLag*) {
  no_cuda("gmm_walker_pass");
}
void resample_and_redo(WalkerPopulation&, ResampleScheme, const UlaConfig&, const Tensor&, const Tensor&) {
  no_cuda("gmm_resample_and_redo");
}
void restart_from_data(WalkerPopulation&, const Tensor&, uint64_t, uint64_t) { no_cuda("gmm_restart_from_data"); }
WeightStats population_stats(const WalkerPopulation&) { no_cuda("gmm_population_stats"); }

#endif

}  // namespace jebm::gmm_cuda
