// `jebm gmm --device cuda`: GmmExperiment's closed-form iteration with walkers and data on the GPU (the CPU
// iteration, GmmExperiment::iterate_fast in experiments/gmm.cpp, is the reference). Per iteration only the
// parameters (K*D + K doubles) go up and the gradients plus four weight statistics come back; no walker data.
// Tested by tests/test_cuda_samplers.cpp (a few iterations on CUDA vs CPU agree).
#include "experiments/gmm.hpp"

#ifdef JEBM_WITH_CUDA
#include "models/gaussian_mixture_cuda.hpp"
#include "runtime/ops.hpp"
#include "samplers/sampler_cuda.hpp"
#endif

namespace jebm {

#ifdef JEBM_WITH_CUDA

namespace {
constexpr uint64_t kRestartKey = 0x72657374ULL;  // must equal experiments/gmm.cpp's (CD restarts draw the same rows)

// restart_from_data with the data already on the device: the rows are drawn on the host (a pure function of
// the key), the gather runs on the device.
void restart_from_device_data(WalkerPopulation& pop, const Tensor& data, uint64_t seed, uint64_t offset) {
  const std::vector<int64_t> rows = random_rows(pop.size(), data.size(0), seed, offset);
  const Tensor idx = Tensor::from_vector(rows, {pop.size()}, data.device());
  pop.x = gather_rows(data, idx);
  pop.x_prev = pop.x.clone();
  pop.log_w = Tensor::zeros({pop.size()}, DType::Float64, data.device());
  pop.partial = Tensor::zeros({pop.size()}, DType::Float64, data.device());
  pop.pending = Tensor::zeros({pop.size()}, DType::Int64, data.device());
}
}  // namespace

GmmRecord GmmExperiment::iterate_fast_cuda() {
  const int64_t n = pop_.size();
  if (algo_ == Algorithm::Cd && cd_should_restart(k_, c_.cd_k))
    restart_from_device_data(pop_, data_, pop_.seed ^ kRestartKey, static_cast<uint64_t>(k_));
  // U, G, r at (theta_k, X_k); complete move k-1 and make move k (X_k is in x_prev afterwards).
  Tensor r = Tensor::empty({n, theta_.k}, DType::Float64, pop_.x.device());
  gmm_eval_cuda(theta_, pop_.x, u_, &g_, &r);
  ula_jarzynski_step(pop_, u_, g_, ula_, MoveKind::CompleteAndMove);
  WeightStats st{};
  Tensor w;  // undefined: uniform weights 1/N (PCD, CD)
  if (algo_ == Algorithm::Jarzynski) {
    st = weight_stats_cuda(pop_.log_w);
    w = normalized_weights_cuda(pop_.log_w);
  }
  // grad CE(theta_k) = mean_data dU/dtheta - sum_i w_i dU/dtheta(X_k^i)
  std::vector<double> ga(theta_.a.size()), gz(theta_.z.size()), wa(ga.size()), wz(gz.size());
  gmm_param_grad_cuda(theta_, pop_.x_prev, r, w, wa.data(), wz.data());
  const double data_u = gmm_data_term_cuda(theta_, data_, ga.data(), gz.data());
  GmmRecord rec = record(data_u, algo_ == Algorithm::Jarzynski ? &st : nullptr);
  if (algo_ == Algorithm::Jarzynski && c_.resample && should_resample(st, n, c_.resample_rule)) {
    // u_, g_ still hold U, G at X_k: resample the pre-move state and redo the move, as on the CPU.
    resample_and_redo_move_cuda(pop_, draw_population_ancestors_cuda(pop_, c_.resample_rule.scheme), u_, g_, ula_);
    rec.resampled = true;
    rec.resamplings = pop_.resamplings;
  }
  for (size_t q = 0; q < ga.size(); ++q) ga[q] -= wa[q];
  for (size_t j = 0; j < gz.size(); ++j) gz[j] -= wz[j];
  update_params(ga, gz);
  ++k_;
  return rec;
}

GmmRecord GmmExperiment::final_record_cuda() {
  // Completing a walker with nothing pending only clears its flag, so no host-side pending check is needed.
  if (k_ > 0) {
    gmm_eval_cuda(theta_, pop_.x, u_, &g_, nullptr);
    ula_jarzynski_step(pop_, u_, g_, ula_, MoveKind::CompleteOnly);
  }
  const double data_u = gmm_data_term_cuda(theta_, data_, nullptr, nullptr);
  const WeightStats st = weight_stats_cuda(pop_.log_w);
  return record(data_u, algo_ == Algorithm::Jarzynski ? &st : nullptr);
}

#else  // no CUDA backend: the constructor's cuda_api::require already refused, these are never reached

GmmRecord GmmExperiment::iterate_fast_cuda() { JEBM_FAIL("jebm gmm --device cuda: this build has no CUDA backend"); }
GmmRecord GmmExperiment::final_record_cuda() { JEBM_FAIL("jebm gmm --device cuda: this build has no CUDA backend"); }

#endif

}  // namespace jebm
