// CPU fused ULA + Jarzynski kernel (the reference for samplers/ula_jarzynski.cu), its unfused twin, the
// parameter-change increment and resample-then-redo. Tested by tests/test_samplers.cpp and tests/test_gmm.cpp.
#include "samplers/ula_jarzynski.hpp"
#include "samplers/sampler_cuda.hpp"

#include <algorithm>
#include <cmath>
#include <type_traits>

namespace jebm {

double UlaConfig::noise_scale() const { return sigma > 0.0 ? sigma : std::sqrt(2.0 * h); }

namespace {

void check_inputs(const WalkerPopulation& pop, const Tensor& u, const Tensor& g, int64_t b, const char* what) {
  const int64_t dims = pop.walker_numel();
  JEBM_CHECK(u.dtype() == DType::Float64 && u.numel() == b,
             what << ": u must be float64 with " << b << " entries, got " << dtype_name(u.dtype()) << " "
                  << shape_str(u.shape()));
  JEBM_CHECK(g.dtype() == pop.x.dtype() && g.numel() == b * dims,
             what << ": g must be " << dtype_name(pop.x.dtype()) << " with " << b << " x " << dims
                  << " entries, got " << dtype_name(g.dtype()) << " " << shape_str(g.shape()));
}

struct StepArgs {
  int64_t dims;
  const int64_t* idx;  // null: batch row j is walker j
  const double* u;
  double *log_w, *partial;
  int64_t* pending;
  bool complete, move, weighted;
  double h, sigma, clip;
  uint64_t seed, offset;
  bool swap;  // every walker moves: X_next goes into the x_prev buffer and the caller swaps the buffers
};

// Walkers [b0, b1) of the batch, serially. Compiled twice (AVX2 and baseline, picked at load time): the noise
// loops vectorise 4-wide with AVX2. No FMA is enabled, so both clones give bit-identical results.
template <typename T>
inline void walker_range(const StepArgs& a, T* x_prev, T* x, const T* g, int64_t b0, int64_t b1) {
  const int64_t d = a.dims;
  for (int64_t j = b0; j < b1; ++j) {
    const int64_t i = a.idx ? a.idx[j] : j;
    ula_jarzynski_walker<T>(d, x_prev + i * d, x + i * d, g + j * d, a.u[j], a.log_w + i, a.partial + i,
                            a.pending + i, a.complete, a.move, a.weighted, a.h, a.sigma, a.clip, a.seed,
                            static_cast<uint64_t>(i), a.offset, a.swap ? x_prev + i * d : nullptr);
  }
}

__attribute__((target_clones("avx2", "default"))) void walker_range_f64(const StepArgs& a, double* x_prev,
                                                                          double* x, const double* g, int64_t b0,
                                                                          int64_t b1) {
  walker_range<double>(a, x_prev, x, g, b0, b1);
}
__attribute__((target_clones("avx2", "default"))) void walker_range_f32(const StepArgs& a, float* x_prev, float* x,
                                                                          const float* g, int64_t b0, int64_t b1) {
  walker_range<float>(a, x_prev, x, g, b0, b1);
}

template <typename T>
void step_impl(WalkerPopulation& pop, const double* u, const T* g, const UlaConfig& cfg, bool complete, bool move,
               const std::vector<int64_t>& idx, uint64_t offset) {
  const int64_t n = pop.size(), dims = pop.walker_numel();
  const int64_t b = idx.empty() ? n : static_cast<int64_t>(idx.size());
  StepArgs a{dims, idx.empty() ? nullptr : idx.data(), u, pop.log_w.data<double>(), pop.partial.data<double>(),
             pop.pending.data<int64_t>(), complete, move, cfg.weighted, cfg.h, cfg.noise_scale(), cfg.drift_clip,
             pop.seed, offset, move && idx.empty()};
  T* x = pop.x.data<T>();
  T* xp = pop.x_prev.data<T>();
  // Each walker is independent and its noise is keyed by its index: any schedule gives the same result.
  constexpr int64_t kChunk = 64;
  const int64_t chunks = (b + kChunk - 1) / kChunk;
#pragma omp parallel for schedule(static) if (b * dims > 4096)
  for (int64_t c = 0; c < chunks; ++c) {
    const int64_t b0 = c * kChunk, b1 = std::min(b, b0 + kChunk);
    if constexpr (std::is_same_v<T, double>)
      walker_range_f64(a, xp, x, g, b0, b1);
    else
      walker_range_f32(a, xp, x, g, b0, b1);
  }
  if (a.swap) std::swap(pop.x, pop.x_prev);  // x = X_next, x_prev = the positions it moved from
}

}  // namespace

void ula_jarzynski_step(WalkerPopulation& pop, const Tensor& u, const Tensor& g, const UlaConfig& cfg,
                        MoveKind kind, const std::vector<int64_t>& idx, bool redo) {
  const int64_t n = pop.size();
  const int64_t b = idx.empty() ? n : static_cast<int64_t>(idx.size());
  check_inputs(pop, u, g, b, "ula_jarzynski_step");
  JEBM_CHECK(cfg.h > 0.0, "ula_jarzynski_step: step size h = " << cfg.h << " must be positive");
  const bool complete = kind != MoveKind::MoveOnly, move = kind != MoveKind::CompleteOnly;
#ifdef JEBM_WITH_CUDA
  if (pop.x.device().is_cuda()) {  // the device twin, samplers/ula_jarzynski.cu (same offsets and counters)
    JEBM_CHECK(!redo || (move && pop.moves > 0), "ula_jarzynski_step: redo needs a previous move");
    ula_jarzynski_step_cuda(pop, u, g, cfg, complete, move, idx, redo ? pop.moves - 1 : pop.moves);
    if (move && !redo) ++pop.moves;
    return;
  }
#endif
  const int64_t* pend = pop.pending.data<int64_t>();
  for (int64_t j = 0; j < b; ++j) {
    const int64_t i = idx.empty() ? j : idx[static_cast<size_t>(j)];
    JEBM_CHECK(i >= 0 && i < n, "ula_jarzynski_step: walker index " << i << " out of [0, " << n << ")");
    // A move over a pending one would silently drop that move's weight increment.
    JEBM_CHECK(complete || !pend[i] || !cfg.weighted,
               "ula_jarzynski_step: MoveOnly on walker " << i << " whose previous move is still pending");
  }
  JEBM_CHECK(!redo || (move && pop.moves > 0), "ula_jarzynski_step: redo needs a previous move");
  const uint64_t offset = redo ? pop.moves - 1 : pop.moves;
  if (pop.x.dtype() == DType::Float64)
    step_impl<double>(pop, u.data<double>(), g.data<double>(), cfg, complete, move, idx, offset);
  else
    step_impl<float>(pop, u.data<double>(), g.data<float>(), cfg, complete, move, idx, offset);
  if (move && !redo) ++pop.moves;
}

Tensor ula_noise_reference(int64_t n, int64_t dims, uint64_t seed, uint64_t offset) {
  Tensor xi = Tensor::empty({n, dims}, DType::Float64);
  double* p = xi.data<double>();
  const uint64_t pairs = static_cast<uint64_t>((dims + 1) / 2);
  for (int64_t i = 0; i < n; ++i)
    for (int64_t d = 0; d < dims; ++d) {
      double z0, z1;
      ula_normal2(seed, static_cast<uint64_t>(i) * pairs + static_cast<uint64_t>(d / 2), offset, &z0, &z1);
      p[i * dims + d] = d % 2 == 0 ? z0 : z1;
    }
  return xi;
}

namespace {
double clipped(double g, double c) { return c > 0.0 ? std::fmax(-c, std::fmin(c, g)) : g; }
}  // namespace

Tensor ula_move_reference(const Tensor& x, const Tensor& g, const Tensor& xi, const UlaConfig& cfg) {
  Tensor out = Tensor::empty(x.shape(), DType::Float64);
  const double* px = x.data<double>();
  const double* pg = g.data<double>();
  const double* pz = xi.data<double>();
  double* po = out.data<double>();
  const double sigma = cfg.noise_scale();
  for (int64_t k = 0; k < x.numel(); ++k) po[k] = px[k] - cfg.h * clipped(pg[k], cfg.drift_clip) + sigma * pz[k];
  return out;
}

void jarzynski_increment_reference(Tensor& log_w, const Tensor& x_k, const Tensor& u_k, const Tensor& g_k,
                                   const Tensor& x_k1, const Tensor& u_k1, const Tensor& g_k1,
                                   const UlaConfig& cfg) {
  const int64_t n = log_w.numel(), dims = x_k.numel() / n;
  const double s2 = cfg.noise_scale() * cfg.noise_scale(), h = cfg.h, c = cfg.drift_clip;
  double* a = log_w.data<double>();
  for (int64_t i = 0; i < n; ++i) {
    double fwd = 0.0, bwd = 0.0;
    for (int64_t d = 0; d < dims; ++d) {
      const int64_t k = i * dims + d;
      const double x0 = x_k.data<double>()[k], x1 = x_k1.data<double>()[k];
      const double f = x1 - x0 + h * clipped(g_k.data<double>()[k], c);
      const double r = x0 - x1 + h * clipped(g_k1.data<double>()[k], c);
      fwd += f * f;
      bwd += r * r;
    }
    a[i] += u_k.data<double>()[i] - u_k1.data<double>()[i] + (fwd - bwd) / (2.0 * s2);
  }
}

void jarzynski_parameter_change(WalkerPopulation& pop, const Tensor& u_old, const Tensor& u_new,
                                const std::vector<int64_t>& idx) {
  const int64_t b = idx.empty() ? pop.size() : static_cast<int64_t>(idx.size());
  JEBM_CHECK(u_old.numel() == b && u_new.numel() == b && u_old.dtype() == DType::Float64 &&
                 u_new.dtype() == DType::Float64,
             "jarzynski_parameter_change: u_old " << shape_str(u_old.shape()) << ", u_new "
                                                 << shape_str(u_new.shape()) << " for " << b << " walkers (float64)");
  double* a = pop.log_w.data<double>();
  const int64_t* pend = pop.pending.data<int64_t>();
  for (int64_t j = 0; j < b; ++j) {
    const int64_t i = idx.empty() ? j : idx[static_cast<size_t>(j)];
    // A pending move gets the parameter change through its completion (backward kernel at the new theta).
    JEBM_CHECK(!pend[i], "jarzynski_parameter_change: walker " << i << " has a pending move");
    a[i] += u_old.data<double>()[j] - u_new.data<double>()[j];
  }
}

void resample_and_redo_move(WalkerPopulation& pop, const std::vector<int64_t>& ancestors, const Tensor& u,
                            const Tensor& g, const UlaConfig& cfg) {
  const int64_t n = pop.size();
  JEBM_CHECK(static_cast<int64_t>(ancestors.size()) == n,
             "resample_and_redo_move: " << ancestors.size() << " ancestors for " << n << " walkers");
  const int64_t* pend = pop.pending.data<int64_t>();
  for (int64_t i = 0; i < n; ++i)
    JEBM_CHECK(pend[i], "resample_and_redo_move: walker " << i << " did not just move");
  pop.fold_weights_into_offset();
  gather_rows_into(pop.x, pop.x_prev, ancestors);  // the pre-move positions of the ancestors
  std::fill_n(pop.pending.data<int64_t>(), n, int64_t{0});
  const Tensor u_anc = gather_rows_copy(u, ancestors), g_anc = gather_rows_copy(g, ancestors);
  ula_jarzynski_step(pop, u_anc, g_anc, cfg, MoveKind::MoveOnly, {}, /*redo=*/true);
  ++pop.resamplings;
}

}  // namespace jebm
