// The image-experiment loop shared by `jebm mnist` and `jebm cifar10` (see image_ebm.hpp): options, burn-in,
// epochs of Trainer steps, metrics, grids, exact checkpoints, Ctrl-C and the divergence guard.
// Tested by tests/test_image_ebm.cpp.
#include "experiments/image_ebm.hpp"

#include <omp.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <csignal>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iomanip>
#include <iostream>
#include <limits>
#include <map>
#include <sstream>

#include "experiments/output.hpp"
#include "experiments/png.hpp"
#include "models/checkpoint.hpp"
#include "models/optim.hpp"
#include "runtime/cuda_api.hpp"
#include "runtime/ops.hpp"
#include "runtime/philox.hpp"
#include "samplers/sampler_cuda.hpp"
#include "samplers/trainer.hpp"
#include "samplers/ula_jarzynski.hpp"

namespace jebm {

namespace po = boost::program_options;
namespace fs = std::filesystem;

namespace {

// Philox keys of the loop's own draws (the walkers' noise and subsets are keyed inside samplers/).
constexpr uint64_t kWalkerInitKey = 0x77616c6b696e6974ULL, kNoiseSeedKey = 0x6e6f697365736564ULL,
                   kShuffleKey = 0x73687566666c6521ULL, kDataNoiseKey = 0x646e6f6973652121ULL;
constexpr const char* kCheckpointFormat = "jebm-image-ebm-checkpoint-1";
constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

// Shortest round-tripping text for --help ("5e-05", not "5.0000000000000002e-05").
std::string short_double(double v) {
  for (int prec = 6; prec <= 17; ++prec) {
    std::ostringstream os;
    os << std::setprecision(prec) << v;
    if (std::stod(os.str()) == v) return os.str();
  }
  return std::to_string(v);
}

std::string fmt_double(double v) {
  std::ostringstream os;
  os << std::setprecision(17) << v;
  return os.str();
}

// --- Ctrl-C: the handler only sets a flag; the loop saves a checkpoint at the next update boundary ----------
volatile std::sig_atomic_t g_sigint = 0;
extern "C" void on_sigint(int) { g_sigint = 1; }

// Installs the handler for the duration of a run. SA_RESETHAND: a second Ctrl-C kills at once (no save).
struct SigintGuard {
  struct sigaction old_action {};
  SigintGuard() {
    g_sigint = 0;
    struct sigaction sa {};
    sa.sa_handler = on_sigint;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESETHAND;
    sigaction(SIGINT, &sa, &old_action);
  }
  ~SigintGuard() {
    sigaction(SIGINT, &old_action, nullptr);
    g_sigint = 0;
  }
};

// --- data order: a Philox Fisher-Yates permutation per epoch, so batch b of epoch e is a pure function ------
std::vector<int64_t> epoch_permutation(int64_t m, uint64_t seed, int64_t epoch) {
  std::vector<int64_t> p(static_cast<size_t>(m));
  for (int64_t i = 0; i < m; ++i) p[static_cast<size_t>(i)] = i;
  for (int64_t i = m - 1; i > 0; --i) {
    double u0, u1;
    philox_uniform2(seed ^ kShuffleKey, static_cast<uint64_t>(i), static_cast<uint64_t>(epoch), &u0, &u1);
    const int64_t j = std::min(i, static_cast<int64_t>(u0 * static_cast<double>(i + 1)));
    std::swap(p[static_cast<size_t>(i)], p[static_cast<size_t>(j)]);
  }
  return p;
}

// The official code's box: coordinates that left [-1, 1] go back to where they were before the move.
template <typename T>
void box_revert_rows(WalkerPopulation& pop, const std::vector<int64_t>& idx) {
  const int64_t n = pop.size(), d = pop.walker_numel();
  T* x = pop.x.data<T>();
  const T* xp = pop.x_prev.data<T>();
  const int64_t rows = idx.empty() ? n : static_cast<int64_t>(idx.size());
#pragma omp parallel for schedule(static)
  for (int64_t r = 0; r < rows; ++r) {
    const int64_t i = idx.empty() ? r : idx[static_cast<size_t>(r)];
    for (int64_t k = i * d; k < (i + 1) * d; ++k)
      if (x[k] < T(-1) || x[k] > T(1)) x[k] = xp[k];
  }
}
void box_revert(WalkerPopulation& pop, const std::vector<int64_t>& idx) {
  if (pop.x.dtype() == DType::Float32)
    box_revert_rows<float>(pop, idx);
  else
    box_revert_rows<double>(pop, idx);
}

// Index of the first non-finite value, or -1; *value gets that value. A device tensor is tested through one
// scalar (sum(t * 0) is exactly 0 when every entry is finite, NaN otherwise) and comes to the host only when it
// fails, so the divergence guard copies no walker data in a healthy run.
int64_t first_non_finite(const Tensor& t, double* value = nullptr) {
  if (!t.device().is_cpu()) {
    if (sum_all(mul_scalar(t, 0.0)).item() == 0.0) return -1;
    return first_non_finite(t.to(Device::cpu()), value);
  }
  const int64_t n = t.numel();
  if (t.dtype() == DType::Float32) {
    const float* p = t.data<float>();
    for (int64_t i = 0; i < n; ++i)
      if (!std::isfinite(p[i])) {
        if (value) *value = p[i];
        return i;
      }
  } else {
    const double* p = t.data<double>();
    for (int64_t i = 0; i < n; ++i)
      if (!std::isfinite(p[i])) {
        if (value) *value = p[i];
        return i;
      }
  }
  return -1;
}

// --- checkpoints ------------------------------------------------------------------------------------------
struct LoopState {
  bool burned_in = false;
  int64_t burnin_done = 0;
  double elapsed_s = 0.0;  // wall time of earlier runs (for time_s only; not part of the exact state)
};

void save_checkpoint(const std::string& path, const ImageEbmConfig& c, Module& energy, const Optimizer& opt,
                     const WalkerPopulation& pop, const Trainer& tr, const LoopState& ls, int64_t per_epoch) {
  std::vector<std::pair<std::string, Tensor>> t;
  for (const auto& [name, v] : energy.named_parameters()) t.emplace_back("model." + name, v.value());
  for (const auto& [name, v] : opt.state_tensors()) t.emplace_back("optim." + name, v);
  t.emplace_back("walkers.x", pop.x);
  t.emplace_back("walkers.log_w", pop.log_w);
  t.emplace_back("walkers.x_prev", pop.x_prev);
  t.emplace_back("walkers.partial", pop.partial);
  t.emplace_back("walkers.pending", pop.pending);
  t.emplace_back("walkers.log_z_offset", Tensor::from_vector(std::vector<double>{pop.log_z_offset}, {1}, DType::Float64));
  const Trainer::State ts = tr.state();
  if (ts.u_cache.defined()) t.emplace_back("trainer.u_cache", ts.u_cache);
  if (!ts.last_moved.empty())
    t.emplace_back("trainer.last_moved",
                   Tensor::from_vector(ts.last_moved, {static_cast<int64_t>(ts.last_moved.size())}));
  std::map<std::string, std::string> md = {
      {"format", kCheckpointFormat},
      {"command", c.command},
      {"algo", algorithm_name(c.algo)},
      {"seed", std::to_string(c.seed)},
      {"walkers", std::to_string(pop.size())},
      {"burned_in", ls.burned_in ? "1" : "0"},
      {"burnin_done", std::to_string(ls.burnin_done)},
      {"iteration", std::to_string(ts.iteration)},
      {"epoch", std::to_string(ts.iteration / per_epoch)},  // for people; the iteration is what resume uses
      {"elapsed_s", fmt_double(ls.elapsed_s)},
      {"walkers.seed", std::to_string(pop.seed)},
      {"walkers.moves", std::to_string(pop.moves)},
      {"walkers.resamplings", std::to_string(pop.resamplings)},
      {"trainer.initialised", ts.initialised ? "1" : "0"},
      {"trainer.params_changed", ts.params_changed ? "1" : "0"},
      {"trainer.all_moved", ts.all_moved ? "1" : "0"},
      {"trainer.subset_counter", std::to_string(ts.subset_counter)},
      {"trainer.last_moved_count", std::to_string(ts.last_moved.size())},
  };
  save_safetensors(path, t, md);
}

const std::string& meta(const SafeTensors& st, const std::string& key) {
  const auto it = st.metadata.find(key);
  JEBM_CHECK(it != st.metadata.end(), st.path << ": checkpoint metadata has no \"" << key << "\"");
  return it->second;
}
uint64_t meta_u64(const SafeTensors& st, const std::string& key) {
  const std::string& s = meta(st, key);
  size_t pos = 0;
  unsigned long long v = 0;
  bool ok = !s.empty() && s[0] >= '0' && s[0] <= '9';
  try {
    if (ok) v = std::stoull(s, &pos);
  } catch (const std::exception&) {
    ok = false;
  }
  JEBM_CHECK(ok && pos == s.size(),
             st.path << ": checkpoint metadata \"" << key << "\" = \"" << s << "\" is not an unsigned integer");
  return static_cast<uint64_t>(v);
}

void copy_into(Tensor& dst, const Tensor& src, const SafeTensors& st, const std::string& name) {
  JEBM_CHECK(src.shape() == dst.shape() && src.dtype() == dst.dtype(),
             st.path << ": tensor \"" << name << "\" is " << shape_str(src.shape()) << " " << dtype_name(src.dtype())
                     << ", this run expects " << shape_str(dst.shape()) << " " << dtype_name(dst.dtype())
                     << " (were the options changed since the run started?)");
  dst.copy_(src);
}

void load_checkpoint(const std::string& path, const ImageEbmConfig& c, Module& energy, Optimizer& opt,
                     WalkerPopulation& pop, Trainer& tr, LoopState& ls) {
  const SafeTensors st = load_safetensors(path);
  JEBM_CHECK(meta(st, "format") == kCheckpointFormat,
             path << ": format \"" << meta(st, "format") << "\", expected \"" << kCheckpointFormat << "\"");
  JEBM_CHECK(meta(st, "algo") == algorithm_name(c.algo),
             path << ": the run was made with --algo " << meta(st, "algo") << ", the options say --algo "
                  << algorithm_name(c.algo));
  JEBM_CHECK(meta_u64(st, "seed") == c.seed, path << ": the run was made with --seed " << meta(st, "seed")
                                                  << ", the options say --seed " << c.seed);
  JEBM_CHECK(static_cast<int64_t>(meta_u64(st, "walkers")) == c.walkers,
             path << ": the run has " << meta(st, "walkers") << " walkers, --walkers is " << c.walkers);
  for (auto& [name, v] : energy.named_parameters()) copy_into(v.value(), get(st, "model." + name), st, "model." + name);
  NamedTensors os;
  for (const auto& [name, v] : st.tensors)
    if (name.rfind("optim.", 0) == 0) os.emplace_back(name.substr(6), v);
  opt.load_state(os);
  copy_into(pop.x, get(st, "walkers.x"), st, "walkers.x");
  copy_into(pop.log_w, get(st, "walkers.log_w"), st, "walkers.log_w");
  copy_into(pop.x_prev, get(st, "walkers.x_prev"), st, "walkers.x_prev");
  copy_into(pop.partial, get(st, "walkers.partial"), st, "walkers.partial");
  copy_into(pop.pending, get(st, "walkers.pending"), st, "walkers.pending");
  pop.log_z_offset = get(st, "walkers.log_z_offset", Shape{1}, DType::Float64).data<double>()[0];
  pop.seed = meta_u64(st, "walkers.seed");
  pop.moves = meta_u64(st, "walkers.moves");
  pop.resamplings = static_cast<int64_t>(meta_u64(st, "walkers.resamplings"));
  Trainer::State ts;
  ts.iteration = static_cast<int64_t>(meta_u64(st, "iteration"));
  ts.initialised = meta_u64(st, "trainer.initialised") != 0;
  ts.params_changed = meta_u64(st, "trainer.params_changed") != 0;
  ts.all_moved = meta_u64(st, "trainer.all_moved") != 0;
  ts.subset_counter = meta_u64(st, "trainer.subset_counter");
  if (st.tensors.count("trainer.u_cache")) ts.u_cache = copy_tensor(get(st, "trainer.u_cache", Shape{c.walkers}, DType::Float64));
  const int64_t lm = static_cast<int64_t>(meta_u64(st, "trainer.last_moved_count"));
  if (lm > 0) ts.last_moved = get(st, "trainer.last_moved", Shape{lm}, DType::Int64).host_vector<int64_t>();
  tr.restore(ts);
  ls.burned_in = meta_u64(st, "burned_in") != 0;
  ls.burnin_done = static_cast<int64_t>(meta_u64(st, "burnin_done"));
  ls.elapsed_s = std::stod(meta(st, "elapsed_s"));
}

// Drops the metrics rows at or after `iteration` (written after the checkpoint by the run that stopped), so
// the resumed run's rows follow on without duplicates. Atomic: temp file + rename.
void truncate_metrics(const fs::path& path, int64_t iteration) {
  if (!fs::exists(path)) return;
  std::ifstream in(path);
  JEBM_CHECK(in, "cannot read " << path.string());
  std::ostringstream keep;
  std::string line;
  bool header = true;
  while (std::getline(in, line)) {
    if (header) {
      keep << line << "\n";
      header = false;
      continue;
    }
    if (line.empty()) continue;
    const double it = std::strtod(line.c_str(), nullptr);
    if (it < static_cast<double>(iteration)) keep << line << "\n";
  }
  const fs::path tmp = path.string() + ".tmp";
  {
    std::ofstream out(tmp, std::ios::trunc);
    JEBM_CHECK(out, "cannot write " << tmp.string());
    out << keep.str();
  }
  fs::rename(tmp, path);
}

void write_grid(const fs::path& path, const Tensor& x, int64_t count) {
  const int64_t n = std::min(count, x.size(0));
  const int64_t cols = std::max<int64_t>(1, static_cast<int64_t>(std::ceil(std::sqrt(static_cast<double>(n)))));
  write_image_grid(path.string(), x.rows(0, n), cols);
}

// metrics.svg from metrics.csv (read back from disk, so a resumed run plots its whole history): the CE / log Z
// estimate and the data energy, the ESS, and the per-class weights or the Frechet distance when present.
void write_metrics_plot(const fs::path& out, const std::string& algo) {
  std::ifstream in(out / "metrics.csv");
  std::string line;
  if (!std::getline(in, line)) return;
  std::vector<std::string> cols;
  {
    std::stringstream ss(line);
    std::string c;
    while (std::getline(ss, c, ',')) cols.push_back(c);
  }
  std::vector<std::vector<double>> data(cols.size());
  while (std::getline(in, line)) {
    std::stringstream ss(line);
    std::string c;
    for (size_t k = 0; k < cols.size() && std::getline(ss, c, ','); ++k) data[k].push_back(std::strtod(c.c_str(), nullptr));
  }
  const auto col = [&](const std::string& name) -> const std::vector<double>* {
    for (size_t k = 0; k < cols.size(); ++k)
      if (cols[k] == name) return &data[k];
    return nullptr;
  };
  const std::vector<double>* it = col("iteration");
  if (!it || it->empty()) return;
  // Drops the rows where y is NaN (metrics computed only every few updates).
  const auto series = [&](const std::string& name, const std::vector<double>& y, bool dashed = false) {
    SvgSeries s;
    s.name = name;
    s.dashed = dashed;
    for (size_t i = 0; i < y.size() && i < it->size(); ++i)
      if (std::isfinite(y[i])) {
        s.x.push_back((*it)[i]);
        s.y.push_back(y[i]);
      }
    return s;
  };
  std::vector<SvgPanel> panels;
  SvgPanel energy{"energies (" + algo + ")", "parameter update", "nats", {}};
  if (const auto* d = col("data_energy")) energy.series.push_back(series("mean U(data)", *d));
  if (const auto* ce = col("ce_estimate"); ce && algo == "jarzynski")
    energy.series.push_back(series("CE estimate (up to log Z_0)", *ce, true));
  panels.push_back(energy);
  SvgPanel ess{"effective sample size", "parameter update", "ESS", {}};
  if (const auto* e = col("ess")) ess.series.push_back(series("ESS (all walkers)", *e));
  if (const auto* b = col("batch_ess")) ess.series.push_back(series("ESS (moved batch)", *b, true));
  panels.push_back(ess);
  SvgPanel classes{"walkers per predicted class (" + std::string(algo == "jarzynski" ? "weighted" : "unweighted") + ")",
                   "parameter update", "fraction", {}};
  for (size_t k = 0; k < cols.size(); ++k)
    if (cols[k].rfind("weight_", 0) == 0 || cols[k].rfind("class_", 0) == 0)
      classes.series.push_back(series(cols[k], data[k]));
  if (!classes.series.empty()) panels.push_back(classes);
  if (const auto* f = col("frechet_clf"))
    panels.push_back(SvgPanel{"Frechet distance on jebm's classifier (not FID)", "parameter update", "distance",
                              {series("walkers vs test images", *f)}});
  write_svg_plot(out / "metrics.svg", panels);
}

}  // namespace

std::string image_ebm_timing(const ImageEbmConfig& c, const ImageEbmResult& r) {
  auto g4 = [](double v) {  // 4 significant digits
    std::ostringstream o;
    o << std::setprecision(4) << v;
    return o.str();
  };
  std::ostringstream os;
  os << "  timing (" << c.device.str() << "):";
  if (r.burn_in_steps_run > 0)
    os << " burn-in " << r.burn_in_steps_run << " steps in " << g4(r.burn_in_s) << " s ("
       << g4(1e3 * r.burn_in_s / static_cast<double>(r.burn_in_steps_run)) << " ms/step);";
  if (r.updates_run == 0) return os.str() + " no updates in this run\n";
  // Steady state: without the first update (allocator growth, cuDNN algorithm choice).
  const int64_t rest = r.updates_run - 1;
  const double per_update = rest > 0 ? (r.train_s - r.first_update_s) / static_cast<double>(rest) : r.train_s;
  os << " " << r.updates_run << " updates in " << g4(r.train_s) << " s, " << g4(1e3 * per_update) << " ms/update"
     << (rest > 0 ? " (first " + g4(1e3 * r.first_update_s) + " ms)" : "") << "; " << r.updates_per_epoch
     << " updates/epoch -> " << g4(per_update * static_cast<double>(r.updates_per_epoch)) << " s/epoch";
  if (r.last_epoch_s > 0) os << " (last whole epoch, with grids and checkpoints: " << g4(r.last_epoch_s) << " s)";
  os << "; " << c.epochs << " epochs at this rate: "
     << g4(per_update * static_cast<double>(r.updates_per_epoch * c.epochs) / 3600.0) << " h\n";
  return os.str();
}

std::string image_ebm_checkpoint_path(const std::string& out) { return (fs::path(out) / "checkpoint.safetensors").string(); }

// --- options ----------------------------------------------------------------------------------------------

void register_image_ebm_options(po::options_description& d, ImageEbmConfig& c, ImageEbmOptionStrings& s,
                                const std::string& src) {
  s.algo = algorithm_name(c.algo);
  s.resample = c.resample ? resample_scheme_name(c.resample_scheme) : "none";
  s.gradient_walkers = c.gradient_walkers_moved ? "moved" : "random";
  const std::string from = " (default: " + src + ")";
  // clang-format off
  d.add_options()
      ("algo", po::value(&s.algo)->default_value(s.algo),
       "jarzynski (weighted walkers, DESIGN 1.3) | pcd (the same loop with equal weights and no resampling)")
      ("walkers", po::value(&c.walkers)->default_value(c.walkers), ("Langevin walkers N" + from).c_str())
      ("burn-in", po::value(&c.burn_in)->default_value(c.burn_in),
       ("unweighted ULA steps of all walkers at theta_0, starting uniform on [-1,1]" + from).c_str())
      ("h", po::value(&c.h)->default_value(c.h, short_double(c.h)), ("ULA step size" + from).c_str())
      ("noise", po::value(&c.sigma)->default_value(c.sigma, short_double(c.sigma)),
       ("ULA noise std sigma; 0 = sqrt(2h). The official code moves with this sigma but weighs with the 1/(4h) "
        "factor of sigma = sqrt(2h) (it runs cold); jebm's weights use the consistent 1/(2 sigma^2) with this "
        "sigma (DESIGN 1.1)" + from).c_str())
      ("drift-clip", po::value(&c.drift_clip)->default_value(c.drift_clip, short_double(c.drift_clip)),
       ("clip each coordinate of grad_x U to +-c, used consistently in the weights; 0 = off" + from).c_str())
      ("box", po::bool_switch(&c.box_revert),
       "revert coordinates that leave [-1,1] after each move, as the official code does. WARNING: this alters "
       "the moves after the fact, so the Jarzynski weights no longer follow DESIGN 1.1's formula (off by default)")
      ("moving-subsets", po::value(&c.moving_subsets)->default_value(c.moving_subsets),
       ("fresh random walker subsets moved per parameter update, one after the other" + from).c_str())
      ("moving-batch", po::value(&c.moving_batch)->default_value(c.moving_batch),
       ("walkers per moving subset; 0 = all walkers" + from).c_str())
      ("moves-per-update", po::value(&c.moves_per_update)->default_value(c.moves_per_update),
       ("ULA moves of each moving subset per parameter update" + from).c_str())
      ("gradient-batch", po::value(&c.gradient_batch)->default_value(c.gradient_batch),
       ("walkers in the loss, a fresh random subset, weights renormalised within it; 0 = all" + from).c_str())
      ("gradient-walkers", po::value(&s.gradient_walkers)->default_value(s.gradient_walkers),
       ("random: --gradient-batch fresh random walkers per update | moved: the walkers of the last update's moving "
        "subset(s), weights renormalised within them (--gradient-batch only on the first update)" + from).c_str())
      ("alpha", po::value(&c.alpha)->default_value(c.alpha, short_double(c.alpha)),
       ("weight of the squared-energy regulariser of the surrogate loss (DESIGN 1.2)" + from).c_str())
      ("lr", po::value(&c.lr)->default_value(c.lr, short_double(c.lr)), ("Adam learning rate" + from).c_str())
      ("beta1", po::value(&c.beta1)->default_value(c.beta1, short_double(c.beta1)), ("Adam beta1" + from).c_str())
      ("beta2", po::value(&c.beta2)->default_value(c.beta2, short_double(c.beta2)), ("Adam beta2" + from).c_str())
      ("grad-clip", po::value(&c.grad_clip)->default_value(c.grad_clip, short_double(c.grad_clip)),
       ("clip the global gradient norm to this; 0 = off" + from).c_str())
      ("lr-decay-epochs", po::value(&c.lr_decay_epochs)->default_value(c.lr_decay_epochs),
       ("lr factor max(1 - epoch / this, --lr-floor), set once per epoch" + from).c_str())
      ("lr-floor", po::value(&c.lr_floor)->default_value(c.lr_floor, short_double(c.lr_floor)), ("smallest lr factor" + from).c_str())
      ("epochs", po::value(&c.epochs)->default_value(c.epochs), ("passes over the training images" + from).c_str())
      ("resample", po::value(&s.resample)->default_value(s.resample),
       ("multinomial | systematic | none; Jarzynski only" + from).c_str())
      ("resample-cv", po::value(&c.resample_cv)->default_value(c.resample_cv, short_double(c.resample_cv)),
       ("resample when std(w / mean w) over all walkers exceeds this; 0 = use --resample-ess" + from).c_str())
      ("resample-ess", po::value(&c.resample_ess)->default_value(c.resample_ess, short_double(c.resample_ess)),
       ("with --resample-cv 0: resample when ESS < this fraction of N" + from).c_str())
      ("resample-after-epoch", po::value(&c.resample_after_epoch)->default_value(c.resample_after_epoch),
       ("resample only when the (0-based) epoch exceeds this" + from).c_str())
      ("resample-batch-ess", po::value(&c.resample_batch_ess)->default_value(c.resample_batch_ess, short_double(c.resample_batch_ess)),
       ("resample (all walkers) when the ESS of the gradient walkers' renormalised weights, a count, is below "
        "this; 0 = use --resample-cv / --resample-ess" + from).c_str())
      ("data-batch", po::value(&c.data_batch)->default_value(c.data_batch),
       ("data images per update, shuffled each epoch; the last partial batch is dropped" + from).c_str())
      ("data-noise", po::value(&c.data_noise)->default_value(c.data_noise, short_double(c.data_noise)),
       ("std of Gaussian noise added to every data batch (the paper's augmentation)" + from).c_str())
      ("device", po::value(&s.device)->default_value(s.device),
       "cpu | cuda (or cuda:N): where the energy, the walkers and the data batches live; cuda needs a CUDA build "
       "and a GPU. A checkpoint resumes on either device")
      ("seed", po::value(&c.seed)->default_value(c.seed),
       "seed of every draw: initial parameters and walkers, ULA noise, subsets, data order, resampling")
      ("threads", po::value(&c.threads)->default_value(c.threads), "OpenMP threads; 0 = OpenMP's default")
      ("eval-chunk", po::value(&c.eval_chunk)->default_value(c.eval_chunk),
       "walkers per forward/backward chunk (memory only; results do not depend on it)")
      ("log-every", po::value(&c.log_every)->default_value(c.log_every),
       "metrics.csv row (with the per-class weights) every this many updates")
      ("grid-every", po::value(&c.grid_every)->default_value(c.grid_every),
       "PNG grid of walkers every this many epochs; 0 = only after burn-in and at the end")
      ("grid-count", po::value(&c.grid_count)->default_value(c.grid_count), "walkers shown in a grid")
      ("checkpoint-every", po::value(&c.checkpoint_every)->default_value(c.checkpoint_every),
       "checkpoint every this many epochs (also after burn-in, at the end and on Ctrl-C)")
      ("out", po::value(&c.out), "run directory: options.txt, metrics.csv, samples_*.png, checkpoint.safetensors")
      ("force", po::bool_switch(&c.force), "overwrite a previous run in --out")
      ("resume", po::value(&s.resume),
       "continue the run in this directory exactly where its checkpoint left it (its options.txt gives the "
       "defaults; the command line wins, e.g. a larger --epochs)")
      ("interrupt-at", po::value(&c.interrupt_at)->default_value(c.interrupt_at),
       "testing: behave as if Ctrl-C arrived after this update (-1 = never)")
      ("interrupt-at-burn-in", po::value(&c.interrupt_at_burn_in)->default_value(c.interrupt_at_burn_in),
       "testing: behave as if Ctrl-C arrived after this many burn-in steps (-1 = never)")
      ("no-progress", "no progress line on stderr")
      ("config", po::value<std::string>(), "INI file with any of these options (key = value); the command line wins");
  // clang-format on
}

bool parse_image_ebm_args(const std::vector<std::string>& args, po::options_description& desc, const std::string& usage,
                          ImageEbmConfig& c, ImageEbmOptionStrings& s,
                          std::vector<std::pair<std::string, std::string>>& saved) {
  po::variables_map vm;
  try {
    po::store(po::command_line_parser(args).options(desc).run(), vm);
    if (vm.count("help")) {
      std::cout << usage << "\n" << desc << "\n";
      return false;
    }
    // po::store keeps the first value it sees: command line, then the resumed run's options, then --config.
    if (vm.count("resume")) {
      const fs::path dir = vm["resume"].as<std::string>();
      const fs::path opts = dir / "options.txt";
      JEBM_CHECK(fs::is_regular_file(opts), "--resume " << dir.string() << ": no options.txt there (not a jebm "
                                                        << c.command << " run directory)");
      std::ifstream f(opts);
      JEBM_CHECK(f, "--resume: cannot read " << opts.string());
      po::store(po::parse_config_file(f, desc), vm);
    }
    if (vm.count("config")) {
      const std::string cf = vm["config"].as<std::string>();
      std::ifstream f(cf);
      JEBM_CHECK(f, "--config " << cf << ": cannot read the file");
      po::store(po::parse_config_file(f, desc), vm);
    }
    po::notify(vm);
  } catch (const po::error& e) {
    JEBM_FAIL(e.what() << " (see jebm " << c.command << " --help)");
  }
  c.progress = !vm.count("no-progress");
  c.resume = vm.count("resume") > 0;
  if (c.resume) {
    JEBM_CHECK(!vm.count("out") || fs::path(c.out) == fs::path(s.resume),
               "--out " << c.out << " and --resume " << s.resume << " name different directories");
    c.out = s.resume;
    JEBM_CHECK(!c.force, "--force and --resume " << s.resume << " contradict each other");
  }
  JEBM_CHECK(!c.out.empty(), "--out DIR is required (the run directory; see jebm " << c.command << " --help)");
  c.algo = algorithm_from_name(s.algo);
  JEBM_CHECK(c.algo != Algorithm::Cd, "--algo " << s.algo << ": the image experiments offer jarzynski and pcd");
  c.resample = s.resample != "none";
  if (c.resample) c.resample_scheme = resample_scheme_from_name(s.resample);
  JEBM_CHECK(s.gradient_walkers == "random" || s.gradient_walkers == "moved",
             "--gradient-walkers " << s.gradient_walkers << ": expected random or moved");
  c.gradient_walkers_moved = s.gradient_walkers == "moved";
  JEBM_CHECK(s.device == "cpu" || s.device.rfind("cuda", 0) == 0, "--device " << s.device << ": expected cpu or cuda");
  c.device = device_from_name(s.device);
  if (c.device.is_cuda()) {
    cuda_api::require(("jebm " + c.command + " --device " + s.device).c_str());  // no CUDA build or no GPU: clear error
    JEBM_CHECK(!c.box_revert, "--box runs on the CPU only; drop it or use --device cpu");
  }

  JEBM_CHECK(c.walkers >= 1, "--walkers " << c.walkers << " must be at least 1");
  JEBM_CHECK(c.burn_in >= 0, "--burn-in " << c.burn_in << " must be >= 0");
  JEBM_CHECK(c.h > 0 && std::isfinite(c.h), "--h " << c.h << " must be > 0");
  JEBM_CHECK(c.sigma >= 0 && std::isfinite(c.sigma), "--noise " << c.sigma << " must be >= 0 (0 = sqrt(2h))");
  JEBM_CHECK(c.drift_clip >= 0, "--drift-clip " << c.drift_clip << " must be >= 0");
  JEBM_CHECK(c.moving_subsets >= 1, "--moving-subsets " << c.moving_subsets << " must be at least 1");
  JEBM_CHECK(c.moving_batch >= 0 && c.moving_batch <= c.walkers,
             "--moving-batch " << c.moving_batch << " must be in [0, --walkers " << c.walkers << "]");
  JEBM_CHECK(c.moves_per_update >= 1, "--moves-per-update " << c.moves_per_update << " must be at least 1");
  JEBM_CHECK(c.gradient_batch >= 0 && c.gradient_batch <= c.walkers,
             "--gradient-batch " << c.gradient_batch << " must be in [0, --walkers " << c.walkers << "]");
  JEBM_CHECK(c.alpha >= 0, "--alpha " << c.alpha << " must be >= 0");
  JEBM_CHECK(c.lr >= 0 && std::isfinite(c.lr), "--lr " << c.lr << " must be >= 0");
  JEBM_CHECK(c.beta1 >= 0 && c.beta1 < 1, "--beta1 " << c.beta1 << " must be in [0, 1)");
  JEBM_CHECK(c.beta2 >= 0 && c.beta2 < 1, "--beta2 " << c.beta2 << " must be in [0, 1)");
  JEBM_CHECK(c.grad_clip >= 0, "--grad-clip " << c.grad_clip << " must be >= 0");
  JEBM_CHECK(c.lr_decay_epochs >= 1, "--lr-decay-epochs " << c.lr_decay_epochs << " must be at least 1");
  JEBM_CHECK(c.lr_floor >= 0 && c.lr_floor <= 1, "--lr-floor " << c.lr_floor << " must be in [0, 1]");
  JEBM_CHECK(c.epochs >= 0, "--epochs " << c.epochs << " must be >= 0");
  JEBM_CHECK(c.resample_cv >= 0, "--resample-cv " << c.resample_cv << " must be >= 0");
  JEBM_CHECK(c.resample_ess >= 0 && c.resample_ess <= 1, "--resample-ess " << c.resample_ess << " must be in [0, 1]");
  JEBM_CHECK(c.resample_batch_ess >= 0 && std::isfinite(c.resample_batch_ess),
             "--resample-batch-ess " << c.resample_batch_ess << " must be >= 0");
  JEBM_CHECK(c.data_batch >= 1, "--data-batch " << c.data_batch << " must be at least 1");
  JEBM_CHECK(c.data_noise >= 0, "--data-noise " << c.data_noise << " must be >= 0");
  JEBM_CHECK(c.threads >= 0, "--threads " << c.threads << " must be >= 0");
  JEBM_CHECK(c.eval_chunk >= 0, "--eval-chunk " << c.eval_chunk << " must be >= 0");
  JEBM_CHECK(c.log_every >= 1, "--log-every " << c.log_every << " must be at least 1");
  JEBM_CHECK(c.grid_every >= 0, "--grid-every " << c.grid_every << " must be >= 0");
  JEBM_CHECK(c.grid_count >= 1, "--grid-count " << c.grid_count << " must be at least 1");
  JEBM_CHECK(c.checkpoint_every >= 1, "--checkpoint-every " << c.checkpoint_every << " must be at least 1");
  if (c.threads > 0) omp_set_num_threads(c.threads);

  // Everything that defines the run goes to options.txt (it is the defaults of a --resume).
  saved.clear();
  static const char* const kNotSaved[] = {"help", "out", "force", "resume", "config", "interrupt-at",
                                          "interrupt-at-burn-in", "no-progress"};
  for (const auto& [name, val] : vm) {
    if (std::find(std::begin(kNotSaved), std::end(kNotSaved), name) != std::end(kNotSaved)) continue;
    if (const auto text = option_value_string(val)) saved.emplace_back(name, *text);
  }
  return true;
}

// --- the loop ---------------------------------------------------------------------------------------------

ImageEbmResult run_image_ebm(const ImageEbmConfig& c, const ImageEbmProblem& p) {
  JEBM_CHECK(p.data.defined() && p.data.dim() == 4 && p.data.dtype() == DType::Float32,
             c.command << ": data must be float32 [M, C, H, W], got "
                       << (p.data.defined() ? shape_str(p.data.shape()) : std::string("nothing")));
  JEBM_CHECK(p.make_energy, c.command << ": no energy");
  const int64_t m = p.data.size(0);
  JEBM_CHECK(m >= c.data_batch, c.command << ": " << m << " training images, fewer than --data-batch " << c.data_batch);
  const int64_t per_epoch = m / c.data_batch, total = c.epochs * per_epoch;
  const fs::path out = c.out;
  const std::string ckpt = image_ebm_checkpoint_path(c.out);
  const auto t_start = std::chrono::steady_clock::now();
  const std::string label = c.command + " " + algorithm_name(c.algo);

  // theta_0 and the initial walkers depend on the seed only, so Jarzynski and PCD runs start identically.
  Generator gen{c.seed, 0};
  std::shared_ptr<Module> energy = p.make_energy(gen);
  Module& net = *energy;
  // --device cuda: built on the host (the same theta_0 as a CPU run), then the energy, the walkers and the data
  // move to the device; the Trainer keeps every per-walker operation there.
  if (c.device.is_cuda()) {
    cuda_api::require(("jebm " + c.command + " --device cuda").c_str());
    JEBM_CHECK(!c.box_revert, c.command << ": --box runs on the CPU only");
    net.to(c.device);
  }
  const std::vector<ag::Var> params = net.parameters();
  Adam adam(params, c.lr, {c.beta1, c.beta2});
  const LinearDecayLR schedule(c.lr, c.lr_decay_epochs, c.lr_floor);
  Shape wshape = p.data.shape();
  wshape[0] = c.walkers;
  Generator wgen{c.seed ^ kWalkerInitKey, 0};
  WalkerPopulation pop = WalkerPopulation::create(rand_uniform(wshape, -1.0, 1.0, wgen), c.seed ^ kNoiseSeedKey);
  if (c.device.is_cuda()) pop = walkers_to(pop, c.device);
  const Tensor data = c.device.is_cuda() ? p.data.to(c.device) : p.data;  // batches are gathered where they are used

  TrainerOptions to;
  to.algorithm = c.algo;
  to.ula.h = c.h;
  to.ula.sigma = c.sigma;
  to.ula.drift_clip = c.drift_clip;
  to.moves_per_update = c.moves_per_update;
  to.moving_batch = c.moving_batch;
  to.moving_subsets = c.moving_subsets;
  to.gradient_batch = c.gradient_batch;
  to.gradient_walkers_moved = c.gradient_walkers_moved;
  to.resample_batch_ess = c.resample_batch_ess;
  to.alpha = c.alpha;
  to.resample = false;  // switched on after --resample-after-epoch
  to.resample_rule.scheme = c.resample_scheme;
  to.resample_rule.cv2_max = c.resample_cv * c.resample_cv;  // std(w / mean w)^2 = CV^2 = N / ESS - 1
  to.resample_rule.ess_fraction = c.resample_cv > 0 ? 0.0 : c.resample_ess;
  to.eval_chunk = c.eval_chunk;
  Trainer tr(net, pop, to);

  LoopState ls;
  if (c.resume) {
    JEBM_CHECK(fs::is_regular_file(ckpt), "--resume " << c.out << ": no checkpoint.safetensors there");
    load_checkpoint(ckpt, c, net, adam, pop, tr, ls);
    std::cerr << label << ": resumed from " << ckpt << " at "
              << (ls.burned_in ? "update " + std::to_string(tr.iteration()) : "burn-in step " + std::to_string(ls.burnin_done))
              << "\n";
  } else {
    std::error_code ec;
    fs::remove(ckpt, ec);  // a --force run must never fall back on an older run's checkpoint
    write_grid(out / "data.png", p.data, c.grid_count);
  }

  ImageEbmResult res;
  int64_t last_ckpt_iteration = -1;
  std::string last_ckpt_what = "none";
  auto elapsed = [&] { return ls.elapsed_s + std::chrono::duration<double>(std::chrono::steady_clock::now() - t_start).count(); };
  auto checkpoint = [&](const std::string& what) {
    LoopState s = ls;
    s.elapsed_s = elapsed();
    save_checkpoint(ckpt, c, net, adam, pop, tr, s, per_epoch);
    last_ckpt_iteration = tr.iteration();
    last_ckpt_what = what;
  };
  auto stop_interrupted = [&](const std::string& where) {
    checkpoint(where);
    res.interrupted = true;
    res.iterations = tr.iteration();
    res.epochs_done = tr.iteration() / per_epoch;
    res.message = "interrupted at " + where + "; checkpoint saved to " + ckpt + "; continue with --resume " + c.out;
    return res;
  };
  auto stop_diverged = [&](const std::string& what) {
    res.diverged = true;
    res.iterations = tr.iteration();
    res.message = what + "; stopped without saving; the last good checkpoint is " +
                  (last_ckpt_what == "none" && !fs::exists(ckpt) ? std::string("(none yet)")
                                                                 : ckpt + " (" + last_ckpt_what + ")");
    return res;
  };
  if (c.resume) last_ckpt_what = ls.burned_in ? "update " + std::to_string(tr.iteration()) : "burn-in step " + std::to_string(ls.burnin_done);
  SigintGuard sigint;

  // --- burn-in: unweighted ULA of all walkers at theta_0 (the official code's 20000 steps) -----------------
  if (!ls.burned_in) {
    UlaConfig plain = to.ula;
    plain.weighted = false;
    Progress prog(label + " burn-in", c.burn_in - ls.burnin_done, c.progress);
    const int64_t start = ls.burnin_done;
    const auto t_burn = std::chrono::steady_clock::now();
    while (ls.burnin_done < c.burn_in) {
      if (g_sigint) return stop_interrupted("burn-in step " + std::to_string(ls.burnin_done));
      Tensor u, g;
      tr.energy_and_grad(pop.x, u, g);
      double bad = 0.0;
      if (const int64_t i = first_non_finite(u, &bad); i >= 0)
        return stop_diverged("diverged at burn-in step " + std::to_string(ls.burnin_done) + ": non-finite energy " +
                             fmt_double(bad) + " of walker " + std::to_string(i));
      ula_jarzynski_step(pop, u, g, plain, MoveKind::MoveOnly);
      if (c.box_revert) box_revert(pop, {});
      ++ls.burnin_done;
      prog.update(ls.burnin_done - start);
      if (ls.burnin_done == c.interrupt_at_burn_in) std::raise(SIGINT);
    }
    prog.finish();
    res.burn_in_steps_run = ls.burnin_done - start;
    res.burn_in_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t_burn).count();
    ls.burned_in = true;
    checkpoint("end of burn-in");
    write_grid(out / "samples_burnin.png", pop.x, c.grid_count);
  }

  // --- training ---------------------------------------------------------------------------------------------
  std::vector<std::string> cols = {"iteration", "epoch", "lr",  "loss",       "data_energy", "ess",     "cv2",
                                   "log_z",     "ce_estimate", "resampled", "resamplings", "grad_norm", "time_s"};
  // batch_ess: only in runs that resample on it (older runs' CSV headers stay valid for --resume).
  const bool log_batch_ess = c.resample_batch_ess > 0;
  if (log_batch_ess) cols.push_back("batch_ess");
  const bool has_metrics = p.metrics && !p.metric_names.empty();
  if (has_metrics) cols.insert(cols.end(), p.metric_names.begin(), p.metric_names.end());
  for (const auto& n : p.class_names) cols.push_back("weight_" + n);
  if (c.resume) truncate_metrics(out / "metrics.csv", tr.iteration());
  CsvWriter csv(out / "metrics.csv", cols, c.resume);

  int64_t perm_epoch = -1;
  std::vector<int64_t> perm;
  tr.data_batch = [&](int64_t it) {
    const int64_t e = it / per_epoch, b = it % per_epoch;
    if (e != perm_epoch) {
      perm = epoch_permutation(m, c.seed, e);
      perm_epoch = e;
    }
    const std::vector<int64_t> idx(perm.begin() + b * c.data_batch, perm.begin() + (b + 1) * c.data_batch);
    Tensor batch = data.device().is_cpu()
                       ? gather_rows_copy(data, idx)
                       : gather_rows(data, Tensor::from_vector(idx, {static_cast<int64_t>(idx.size())}, data.device()));
    if (c.data_noise > 0) {
      Generator ng{c.seed ^ kDataNoiseKey, static_cast<uint64_t>(it)};
      add_(batch, rand_normal(batch.shape(), 0.0, c.data_noise, ng, batch.dtype(), batch.device()));
    }
    return batch;
  };
  std::string diverged;
  double grad_norm = kNaN;
  tr.optimizer_step = [&](int64_t it) {
    grad_norm = clip_grad_norm(params, c.grad_clip > 0 ? c.grad_clip : std::numeric_limits<double>::infinity());
    if (!std::isfinite(grad_norm)) {
      // Not applied: the parameters keep their last finite values (nothing is saved after this anyway).
      if (diverged.empty()) diverged = "non-finite parameter gradient (norm " + fmt_double(grad_norm) + ")";
      return;
    }
    adam.step();
  };
  std::vector<double> class_w, metric_v;
  bool logged_weights = false, logged_metrics = false;
  tr.weights_ready = [&](const WalkerPopulation& w, const TrainerStepInfo& info) {
    logged_weights = false;
    logged_metrics = false;
    if (c.algo == Algorithm::Jarzynski) {
      double bad = 0.0;
      if (const int64_t i = first_non_finite(w.log_w, &bad); i >= 0) {
        if (diverged.empty()) diverged = "non-finite log-weight " + fmt_double(bad) + " of walker " + std::to_string(i);
        return;
      }
    }
    const bool last = info.iteration == total - 1;
    const bool want_w = p.class_weights && (info.iteration % c.log_every == 0 || last);
    const bool want_m = has_metrics && (last || (p.metrics_every > 0 && info.iteration % p.metrics_every == 0));
    if (!want_w && !want_m) return;
    // Host weights for the metric callbacks (N doubles, only on the updates that evaluate a metric).
    const std::vector<double> wn = c.algo == Algorithm::Jarzynski
                                       ? normalized_weights(w.log_w.host_vector<double>())
                                       : std::vector<double>(static_cast<size_t>(w.size()), 1.0 / static_cast<double>(w.size()));
    if (want_w) {
      class_w = p.class_weights(w.x, wn);
      logged_weights = true;
    }
    if (want_m) {
      metric_v = p.metrics(w.x, wn);
      JEBM_CHECK(metric_v.size() == p.metric_names.size(), c.command << ": the metrics gave " << metric_v.size()
                                                                     << " values for " << p.metric_names.size() << " names");
      logged_metrics = true;
    }
  };
  if (c.box_revert) tr.after_move = [](WalkerPopulation& w, const std::vector<int64_t>& idx) { box_revert(w, idx); };

  if (tr.iteration() >= total)
    std::cerr << label << ": the run already has " << tr.iteration() << " updates (" << c.epochs
              << " epochs); raise --epochs to continue it\n";
  {
    const WeightStats ws = population_weight_stats(pop);  // reported if no update runs below
    res.ess = ws.ess;
    res.log_z = c.algo == Algorithm::Jarzynski ? pop.log_z_offset + ws.log_mean : kNaN;
  }
  Progress prog(label, total - tr.iteration(), c.progress);
  const int64_t first = tr.iteration();
  res.updates_per_epoch = per_epoch;
  auto t_epoch = std::chrono::steady_clock::now();
  bool whole_epoch = first % per_epoch == 0;  // the epoch being timed started in this run
  TrainerStepInfo info;
  while (tr.iteration() < total) {
    if (g_sigint) return stop_interrupted("update " + std::to_string(tr.iteration()));
    const int64_t it = tr.iteration(), epoch = it / per_epoch;
    tr.set_resample(c.algo == Algorithm::Jarzynski && c.resample && epoch > c.resample_after_epoch);
    adam.set_lr(schedule.lr_at(epoch));
    diverged.clear();
    grad_norm = kNaN;
    const auto t_update = std::chrono::steady_clock::now();
    info = tr.step();
    // The divergence guard: energies, the parameter gradient, log-weights, walker positions.
    if (diverged.empty() && !(std::isfinite(info.data_energy) && std::isfinite(info.loss)))
      diverged = "non-finite energy (mean data energy " + fmt_double(info.data_energy) + ", surrogate loss " +
                 fmt_double(info.loss) + ")";
    double bad = 0.0;
    if (diverged.empty())
      if (const int64_t i = first_non_finite(pop.log_w, &bad); i >= 0)
        diverged = "non-finite log-weight " + fmt_double(bad) + " of walker " + std::to_string(i);
    if (diverged.empty())
      if (const int64_t i = first_non_finite(pop.x); i >= 0)
        diverged = "non-finite walker position (walker " + std::to_string(i / pop.walker_numel()) + ")";
    if (!diverged.empty()) {
      prog.finish();
      return stop_diverged("diverged at update " + std::to_string(it) + " (epoch " + std::to_string(epoch) + "): " + diverged);
    }
    // Update time: the step and its guard (each ends with scalars on the host, so device work is included).
    const double dt = std::chrono::duration<double>(std::chrono::steady_clock::now() - t_update).count();
    if (res.updates_run == 0) res.first_update_s = dt;
    ++res.updates_run;
    res.train_s += dt;
    const bool jz = c.algo == Algorithm::Jarzynski;
    res.log_z = jz ? info.log_z : kNaN;
    res.ess = info.ess;
    res.data_energy = info.data_energy;
    if (logged_metrics) res.metrics = metric_v;
    if (it % c.log_every == 0 || it == total - 1 || logged_metrics) {
      std::vector<double> row = {static_cast<double>(it),
                                 static_cast<double>(epoch),
                                 adam.lr(),
                                 info.loss,
                                 info.data_energy,
                                 info.ess,
                                 info.cv2,
                                 res.log_z,
                                 jz ? info.data_energy + info.log_z : kNaN,
                                 info.resampled ? 1.0 : 0.0,
                                 static_cast<double>(pop.resamplings),
                                 grad_norm,
                                 elapsed()};
      if (log_batch_ess) row.push_back(info.batch_ess);
      if (has_metrics) {
        if (logged_metrics) row.insert(row.end(), metric_v.begin(), metric_v.end());
        else row.insert(row.end(), p.metric_names.size(), kNaN);
      }
      if (!p.class_names.empty()) {
        if (logged_weights && class_w.size() == p.class_names.size()) {
          row.insert(row.end(), class_w.begin(), class_w.end());
          res.class_weights = class_w;
        } else {
          row.insert(row.end(), p.class_names.size(), kNaN);
        }
      }
      csv.row(row);
    }
    std::ostringstream extra;
    extra << "ep " << epoch << " ESS " << std::fixed << std::setprecision(0) << info.ess;
    if (log_batch_ess) extra << " bESS " << std::setprecision(0) << info.batch_ess;
    if (jz) extra << " logZ " << std::setprecision(3) << info.log_z;
    if (!res.metrics.empty()) extra << " " << p.metric_names[0] << " " << std::setprecision(2) << res.metrics[0];
    if (!res.class_weights.empty()) {
      extra << " w";
      for (double v : res.class_weights) extra << " " << std::setprecision(3) << v;
    }
    prog.update(tr.iteration() - first, extra.str());
    const int64_t done = tr.iteration();
    if (done % per_epoch == 0) {
      const int64_t ep = done / per_epoch;
      if (c.grid_every > 0 && ep % c.grid_every == 0)
        write_grid(out / ("samples_epoch" + std::to_string(ep) + ".png"), pop.x, c.grid_count);
      if (ep % c.checkpoint_every == 0 && done < total) checkpoint("end of epoch " + std::to_string(ep));
      const auto now = std::chrono::steady_clock::now();
      if (whole_epoch) res.last_epoch_s = std::chrono::duration<double>(now - t_epoch).count();
      t_epoch = now;
      whole_epoch = true;
    }
    if (c.interrupt_at >= 0 && it == c.interrupt_at) std::raise(SIGINT);
  }
  prog.finish();
  checkpoint("end of training");
  write_grid(out / "samples_final.png", pop.x, c.grid_count);
  res.iterations = tr.iteration();
  res.epochs_done = c.epochs;
  return res;
}

int run_image_ebm_command(const ImageEbmConfig& c, const ImageEbmProblem& p,
                          const std::vector<std::pair<std::string, std::string>>& saved_options) {
  prepare_run_dir(c.out, c.force, c.resume);
  write_options(c.out, saved_options);
  if (c.box_revert && c.algo == Algorithm::Jarzynski)
    std::cerr << "jebm " << c.command << ": warning: --box alters the moves after the fact; the Jarzynski weights "
                 "no longer follow DESIGN 1.1's formula\n";
  const ImageEbmResult r = run_image_ebm(c, p);
  if (r.diverged || r.interrupted) {
    std::cerr << "jebm " << c.command << ": " << r.message << "\n";
    return r.exit_code();
  }
  std::ostringstream os;
  os << "jebm " << c.command << " " << algorithm_name(c.algo) << ": " << r.iterations << " updates, " << r.epochs_done
     << " epochs; final ESS " << std::setprecision(4) << r.ess;
  if (c.algo == Algorithm::Jarzynski) os << ", log Z estimate " << r.log_z << ", CE estimate " << r.data_energy + r.log_z;
  os << "\n";
  if (!r.class_weights.empty()) {
    os << "  class weights (" << (c.algo == Algorithm::Jarzynski ? "Jarzynski-weighted" : "unweighted") << "):";
    for (size_t k = 0; k < r.class_weights.size(); ++k) {
      os << " " << p.class_names[k] << "=" << std::fixed << std::setprecision(4) << r.class_weights[k];
      if (k < p.class_targets.size()) os << " (target " << p.class_targets[k] << ")";
    }
    os << "\n";
  }
  if (!r.metrics.empty()) {
    os << "  metrics of the " << (c.algo == Algorithm::Jarzynski ? "Jarzynski-weighted" : "unweighted")
       << " walkers at the last update:";
    for (size_t k = 0; k < r.metrics.size() && k < p.metric_names.size(); ++k)
      os << " " << p.metric_names[k] << "=" << std::setprecision(5) << r.metrics[k];
    os << "\n";
  }
  write_metrics_plot(c.out, algorithm_name(c.algo));
  os << "  run directory: " << c.out << " (metrics.csv, metrics.svg, samples_final.png, checkpoint.safetensors)\n";
  os << image_ebm_timing(c, r);
  std::cout << os.str();
  return 0;
}

}  // namespace jebm
