// The dispatch point of the fused ULA + Jarzynski move, its noise, the parameter-change increment and
// resample-then-redo (validation here, kernels in samplers/{cpu,cuda}/ula_jarzynski), the weight-kernel option,
// and the unfused references. Tested by tests/test_samplers.cpp, tests/test_gmm.cpp and, on a GPU,
// tests/test_cuda_samplers.cpp.
#include "samplers/ula_jarzynski.hpp"

#include <algorithm>
#include <cmath>

#include "runtime/ops.hpp"
#include "samplers/backend.hpp"

namespace jebm {

WeightKernel weight_kernel_from_name(const std::string& name) {
  if (name == "sigma") return WeightKernel::Consistent;
  if (name == "2h") return WeightKernel::Paper2h;
  if (name == "tempered") return WeightKernel::Tempered;
  JEBM_FAIL("unknown weight kernel '" << name << "' (expected sigma, 2h or tempered)");
}

const char* weight_kernel_name(WeightKernel k) {
  switch (k) {
    case WeightKernel::Consistent: return "sigma";
    case WeightKernel::Paper2h: return "2h";
    case WeightKernel::Tempered: return "tempered";
  }
  return "?";
}

double UlaConfig::noise_scale() const { return sigma > 0.0 ? sigma : std::sqrt(2.0 * h); }

double UlaConfig::partial_coef() const {
  if (weight_kernel != WeightKernel::Paper2h) return 0.5;  // sigma^2 |xi|^2 / (2 sigma^2)
  const double s = noise_scale();
  return s * s / (4.0 * h);
}

double UlaConfig::back_denominator() const {
  if (weight_kernel != WeightKernel::Paper2h) {
    const double s = noise_scale();
    return 2.0 * s * s;
  }
  return 4.0 * h;
}

double UlaConfig::temperature() const {
  const double s = noise_scale();
  return s * s / (2.0 * h);
}

double UlaConfig::energy_coef() const { return weight_kernel == WeightKernel::Tempered ? 1.0 / temperature() : 1.0; }

namespace {

void check_inputs(const WalkerPopulation& pop, const Tensor& u, const Tensor& g, int64_t b, const char* what) {
  const int64_t dims = pop.walker_numel();
  JEBM_CHECK(u.defined() && u.dtype() == DType::Float64 && u.numel() == b,
             what << ": u must be float64 with " << b << " entries, got "
                  << (u.defined() ? std::string(dtype_name(u.dtype())) + " " + shape_str(u.shape()) : "undefined"));
  JEBM_CHECK(g.defined() && g.dtype() == pop.x.dtype() && g.numel() == b * dims,
             what << ": g must be " << dtype_name(pop.x.dtype()) << " with " << b << " x " << dims << " entries, got "
                  << (g.defined() ? std::string(dtype_name(g.dtype())) + " " + shape_str(g.shape()) : "undefined"));
  const Device dev = pop.x.device();
  const std::pair<const Tensor*, const char*> state[] = {{&pop.x_prev, "x_prev"}, {&pop.log_w, "log_w"},
                                                         {&pop.partial, "partial"}, {&pop.pending, "pending"},
                                                         {&u, "u"}, {&g, "g"}};
  for (const auto& [t, name] : state)
    JEBM_CHECK(t->device() == dev, what << ": " << name << " is on " << t->device().str() << ", the walkers on "
                                        << dev.str());
}

void check_indices(const std::vector<int64_t>& idx, int64_t n, const char* what) {
  for (int64_t i : idx) JEBM_CHECK(i >= 0 && i < n, what << ": walker index " << i << " out of [0, " << n << ")");
}

}  // namespace

void ula_jarzynski_step(WalkerPopulation& pop, const Tensor& u, const Tensor& g, const UlaConfig& cfg,
                        MoveKind kind, const std::vector<int64_t>& idx, bool redo) {
  const int64_t n = pop.size();
  const int64_t b = idx.empty() ? n : static_cast<int64_t>(idx.size());
  check_inputs(pop, u, g, b, "ula_jarzynski_step");
  JEBM_CHECK(cfg.h > 0.0, "ula_jarzynski_step: step size h = " << cfg.h << " must be positive");
  check_indices(idx, n, "ula_jarzynski_step");
  const bool complete = kind != MoveKind::MoveOnly, move = kind != MoveKind::CompleteOnly;
  // A move over a pending one would silently drop that move's weight increment. Checked where pending is on
  // the host; on CUDA it would cost a synchronisation per move.
  if (!complete && cfg.weighted && pop.pending.device().is_cpu()) {
    const int64_t* pend = pop.pending.data<int64_t>();
    for (int64_t j = 0; j < b; ++j) {
      const int64_t i = idx.empty() ? j : idx[static_cast<size_t>(j)];
      JEBM_CHECK(!pend[i], "ula_jarzynski_step: MoveOnly on walker " << i << " whose previous move is still pending");
    }
  }
  JEBM_CHECK(!redo || (move && pop.moves > 0), "ula_jarzynski_step: redo needs a previous move");
  UlaMove m;
  m.complete = complete;
  m.move = move;
  m.weighted = cfg.weighted;
  m.h = cfg.h;
  m.sigma = cfg.noise_scale();
  m.clip = cfg.drift_clip;
  m.partial_coef = cfg.partial_coef();
  m.back_den = cfg.back_denominator();
  m.energy_coef = cfg.energy_coef();
  m.offset = redo ? pop.moves - 1 : pop.moves;
  m.first_walker = static_cast<uint64_t>(pop.first_index);
  JEBM_DISPATCH(pop.x.device(), ula_jarzynski_move, pop, u, g, m, idx);
  if (move && !redo) ++pop.moves;
}

Tensor ula_noise(int64_t n, int64_t dims, uint64_t seed, uint64_t offset, Device device) {
  JEBM_CHECK(n >= 0 && dims >= 1, "ula_noise: n = " << n << ", dims = " << dims);
  Tensor xi = Tensor::empty({n, dims}, DType::Float64, device);
  JEBM_DISPATCH(device, ula_noise, xi, seed, offset);
  return xi;
}

Tensor philox_words(int64_t n, uint64_t seed, uint64_t first_stream, uint64_t offset, Device device) {
  JEBM_CHECK(n >= 0, "philox_words: n = " << n);
  Tensor w = Tensor::empty({n, 4}, DType::Int64, device);
  JEBM_DISPATCH(device, philox_words, w, seed, first_stream, offset);
  return w;
}

Tensor ula_noise_reference(int64_t n, int64_t dims, uint64_t seed, uint64_t offset) {
  return ula_noise(n, dims, seed, offset, Device::cpu());
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
  const double s = cfg.noise_scale(), h = cfg.h, c = cfg.drift_clip;
  const double v = cfg.weight_kernel == WeightKernel::Paper2h ? 2.0 * h : s * s;  // the kernels' variance
  const double e = cfg.weight_kernel == WeightKernel::Tempered ? 2.0 * h / (s * s) : 1.0;  // 1 / T on energies
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
    a[i] += e * (u_k.data<double>()[i] - u_k1.data<double>()[i]) + (fwd - bwd) / (2.0 * v);
  }
}

void jarzynski_parameter_change(WalkerPopulation& pop, const Tensor& u_old, const Tensor& u_new,
                                const std::vector<int64_t>& idx, double energy_coef) {
  JEBM_CHECK(std::isfinite(energy_coef) && energy_coef > 0.0,
             "jarzynski_parameter_change: energy coefficient " << energy_coef << " must be finite and positive");
  const int64_t b = idx.empty() ? pop.size() : static_cast<int64_t>(idx.size());
  const Device dev = pop.log_w.device();
  JEBM_CHECK(u_old.defined() && u_new.defined() && u_old.numel() == b && u_new.numel() == b &&
                 u_old.dtype() == DType::Float64 && u_new.dtype() == DType::Float64 && u_old.device() == dev &&
                 u_new.device() == dev,
             "jarzynski_parameter_change: u_old " << (u_old.defined() ? shape_str(u_old.shape()) : "undefined")
                                                 << ", u_new " << (u_new.defined() ? shape_str(u_new.shape()) : "undefined")
                                                 << " for " << b << " walkers (float64 on " << dev.str() << ")");
  check_indices(idx, pop.size(), "jarzynski_parameter_change");
  if (dev.is_cpu()) {  // a pending move gets the parameter change through its completion (backward kernel at theta')
    const int64_t* pend = pop.pending.data<int64_t>();
    for (int64_t j = 0; j < b; ++j) {
      const int64_t i = idx.empty() ? j : idx[static_cast<size_t>(j)];
      JEBM_CHECK(!pend[i], "jarzynski_parameter_change: walker " << i << " has a pending move");
    }
  }
  const Tensor idx_t = idx.empty() ? Tensor() : Tensor::from_vector(idx, {b}, dev);
  JEBM_DISPATCH(dev, parameter_change, pop.log_w, idx_t, u_old, u_new, energy_coef);
}

void resample_and_redo_move(WalkerPopulation& pop, const Tensor& ancestors, const Tensor& u, const Tensor& g,
                            const UlaConfig& cfg) {
  const int64_t n = pop.size();
  JEBM_CHECK(ancestors.defined() && ancestors.dtype() == DType::Int64 && ancestors.numel() == n &&
                 ancestors.device() == pop.x.device(),
             "resample_and_redo_move: ancestors must be " << n << " int64 on " << pop.x.device().str() << ", got "
                                                          << (ancestors.defined() ? shape_str(ancestors.shape()) + " " +
                                                                                        dtype_name(ancestors.dtype()) +
                                                                                        " on " + ancestors.device().str()
                                                                                  : std::string("undefined")));
  JEBM_CHECK(pop.moves > 0, "resample_and_redo_move: no move to redo");
  if (pop.pending.device().is_cpu()) {
    const int64_t* pend = pop.pending.data<int64_t>();
    for (int64_t i = 0; i < n; ++i) JEBM_CHECK(pend[i], "resample_and_redo_move: walker " << i << " did not just move");
  }
  // The pre-move positions of the ancestors, their energies and gradients.
  redo_move_from(pop, gather_rows(pop.x_prev, ancestors), gather_rows(u, ancestors), gather_rows(g, ancestors),
                 pop.stats().log_mean, cfg);
}

void redo_move_from(WalkerPopulation& pop, const Tensor& x_anc, const Tensor& u_anc, const Tensor& g_anc,
                    double log_mean, const UlaConfig& cfg) {
  JEBM_CHECK(pop.moves > 0, "redo_move_from: no move to redo");
  JEBM_CHECK(x_anc.defined() && x_anc.shape() == pop.x.shape() && x_anc.dtype() == pop.x.dtype() &&
                 x_anc.device() == pop.x.device(),
             "redo_move_from: ancestor positions " << (x_anc.defined() ? shape_str(x_anc.shape()) : "undefined")
                                                   << " for walkers " << shape_str(pop.x.shape()));
  pop.log_z_offset += log_mean;
  fill_(pop.log_w, 0.0);
  pop.x = x_anc;
  fill_(pop.pending, 0.0);
  ula_jarzynski_step(pop, u_anc, g_anc, cfg, MoveKind::MoveOnly, {}, /*redo=*/true);
  ++pop.resamplings;
}

void resample_and_redo_move(WalkerPopulation& pop, const std::vector<int64_t>& ancestors, const Tensor& u,
                            const Tensor& g, const UlaConfig& cfg) {
  resample_and_redo_move(pop, Tensor::from_vector(ancestors, {static_cast<int64_t>(ancestors.size())}, pop.x.device()),
                         u, g, cfg);
}

}  // namespace jebm
