// Tests for the device path of samplers/trainer.cpp and `jebm mnist --device cuda` (experiments/image_ebm_run.cpp):
// a few Trainer steps on CUDA against the same steps on the CPU (the reference), same seeds, float64, for moving
// subsets, all walkers moving, gradient walkers = the walkers just moved, PCD, and MnistEnergyCNN; a tiny
// `jebm mnist --device cuda` run on synthetic IDX files writes its outputs, and its checkpoint resumes on either
// device. All CUDA cases are precondition-guarded ("skipped: no CUDA device"); `--device cuda` without a device
// or CUDA build is checked to be a clear error wherever CUDA is missing.
#include <cmath>
#include <cstdint>
#include <fstream>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "experiments/image_ebm.hpp"
#include "models/checkpoint.hpp"
#include "models/energy_nets.hpp"
#include "models/layers.hpp"
#include "models/optim.hpp"
#include "runtime/ops.hpp"
#include "samplers/trainer.hpp"
#include "tests/helpers.hpp"
#include "tests/run_helpers.hpp"

namespace jebm {
int run_mnist(const std::vector<std::string>& args);
}

namespace fs = std::filesystem;
namespace utf = boost::unit_test;
using jebm::Device;
using jebm::DType;
using jebm::Tensor;
using jebm::test::all_close;
using jebm::test::TempDir;

namespace {

// Synthetic MNIST as in tests/test_image_ebm.cpp: bars and squares standing in for 2, 3, 6 (and 7, skipped).
void write_mnist(const fs::path& dir, int per_digit) {
  jebm::test::write_mnist_split(dir, "train", per_digit, 7, {7, 2, 3, 6}, 2, 40);
}

// 7 images (4 twos, 2 threes, 1 six), batch 2 -> 3 updates per epoch, 3 epochs; hot sampler so resampling fires.
std::vector<std::string> tiny_mnist_args(const fs::path& data, const fs::path& out, const std::string& device) {
  return {"--data", data.string(), "--out", out.string(), "--counts", "4,2,1", "--walkers", "8", "--burn-in", "3",
          "--moving-subsets", "2", "--moving-batch", "3", "--moves-per-update", "2", "--gradient-batch", "4",
          "--data-batch", "2", "--epochs", "3", "--h", "0.01", "--noise", "0.05", "--lr", "0.01",
          "--resample-after-epoch", "0", "--resample-cv", "0.01", "--data-noise", "0.03", "--grid-every", "1",
          "--grid-count", "6", "--no-progress", "--threads", "1", "--device", device};
}

bool mentions(const jebm::Error& e, const std::string& what) {
  return std::string(e.what()).find(what) != std::string::npos;
}

// The opposite of jebm::test::CudaDevicePresent: the refusal below can only be observed without a device.
struct NoCudaDevice {
  boost::test_tools::assertion_result operator()(utf::test_unit_id) const {
    if (!jebm::cuda_api::available()) return true;
    boost::test_tools::assertion_result r(false);
    r.message() << "skipped: a CUDA device is present, so there is no refusal to check";
    return r;
  }
};

}  // namespace

// Without a usable CUDA device (or CUDA build) `--device cuda` is refused up front, naming the option.
BOOST_AUTO_TEST_CASE(device_cuda_without_a_gpu_is_a_clear_error, *utf::precondition(NoCudaDevice())) {
  TempDir data, out;
  write_mnist(data.path, 3);
  BOOST_CHECK_EXCEPTION(jebm::run_mnist(tiny_mnist_args(data.path, out.path / "run", "cuda")), jebm::Error,
                        [](const jebm::Error& e) { return mentions(e, "--device cuda"); });
  BOOST_CHECK_EXCEPTION(jebm::run_mnist(tiny_mnist_args(data.path, out.path / "run", "gpu")), jebm::Error,
                        [](const jebm::Error& e) { return mentions(e, "--device gpu"); });
  BOOST_TEST(!fs::exists(out.path / "run"), "a refused start must not create the run directory");
}

namespace {

const Device kCuda = Device::cuda(0);

int64_t csv_data_rows(const fs::path& path) {
  std::ifstream in(path);
  std::string line;
  int64_t n = -1;  // the header
  while (std::getline(in, line))
    if (!line.empty()) ++n;
  return n;
}

// U(x) = MLP(flatten(x)): float64, smooth (SiLU), so CPU and CUDA differ by rounding only.
class TinyMlpEnergy : public jebm::Module {
 public:
  TinyMlpEnergy(jebm::Generator& gen, int64_t dims) {
    net_ = register_module("net", std::make_shared<jebm::Sequential>());
    net_->emplace<jebm::Flatten>();
    net_->emplace<jebm::Linear>(dims, 16, gen, true, DType::Float64);
    net_->emplace<jebm::SiLU>();
    net_->emplace<jebm::Linear>(16, 1, gen, true, DType::Float64);
  }
  jebm::ag::Var forward(const jebm::ag::Var& x) override { return jebm::ag::reshape((*net_)(x), {x.size(0)}); }

 private:
  std::shared_ptr<jebm::Sequential> net_;
};

struct TrainerCase {
  std::string name;
  jebm::Shape walker_shape;  // [N, ...]
  int64_t data_batch = 5;
  int64_t steps = 5;
  jebm::TrainerOptions opt;
  std::function<std::shared_ptr<jebm::Module>(jebm::Generator&)> make_energy;
};

// Everything a run leaves behind, on the host.
struct TrainerResult {
  std::vector<jebm::TrainerStepInfo> infos;
  Tensor x, x_prev, log_w, partial, pending, u_cache;
  std::vector<Tensor> params;
  double log_z_offset = 0.0;
  uint64_t moves = 0;
  int64_t resamplings = 0;
  bool u_cache_on_host = false;
};

TrainerResult run_trainer(const TrainerCase& tc, Device dev) {
  jebm::Generator gen{11, 0};
  std::shared_ptr<jebm::Module> energy = tc.make_energy(gen);
  energy->to(dev);
  jebm::Generator wgen{12, 0};
  jebm::WalkerPopulation pop =
      jebm::WalkerPopulation::create(jebm::rand_uniform(tc.walker_shape, -1.0, 1.0, wgen, DType::Float64), 13);
  if (dev.is_cuda()) pop = jebm::walkers_to(pop, dev);
  jebm::SGD sgd(energy->parameters(), 0.05);
  jebm::Trainer tr(*energy, pop, tc.opt);
  jebm::Shape data_shape = tc.walker_shape;
  data_shape[0] = tc.data_batch;
  // Data made on the host (the same on both devices), moved to the walkers' device.
  tr.data_batch = [&](int64_t it) {
    jebm::Generator dg{14, static_cast<uint64_t>(it)};
    return jebm::rand_uniform(data_shape, -0.5, 0.5, dg, DType::Float64).to(dev);
  };
  tr.optimizer_step = [&](int64_t) { sgd.step(); };
  TrainerResult r;
  for (int64_t k = 0; k < tc.steps; ++k) r.infos.push_back(tr.step());
  tr.bring_up_to_date();  // the last moves completed: the weights of the final parameters
  r.x = pop.x.to(Device::cpu());
  r.x_prev = pop.x_prev.to(Device::cpu());
  r.log_w = pop.log_w.to(Device::cpu());
  r.partial = pop.partial.to(Device::cpu());
  r.pending = pop.pending.to(Device::cpu());
  const jebm::Trainer::State st = tr.state();
  r.u_cache = st.walkers.u_cache;
  r.u_cache_on_host = st.walkers.u_cache.defined() && st.walkers.u_cache.device().is_cpu();
  for (const jebm::ag::Var& p : energy->parameters()) r.params.push_back(p.value().to(Device::cpu()));
  r.log_z_offset = pop.log_z_offset;
  r.moves = pop.moves;
  r.resamplings = pop.resamplings;
  return r;
}

// Tolerances, float64. The two devices run the same arithmetic except for (a) summation order in GEMM/conv
// (cuBLAS/cuDNN vs OpenBLAS/im2col), in the per-walker sums of the fused kernel (warp tree vs sequential) and in
// the weight reductions (block tree vs sequential), and (b) FMA contraction on the device, including in the
// sampler's polynomial log/sincos: each is a relative error of a few ulps (~1e-15). Five updates of a handful of
// moves carry them through smooth maps with O(1..10) Lipschitz constants and the 1/(2 sigma^2) = 25 factor of
// the weights, so the states agree to ~1e-12 relative; 1e-9 leaves three orders of margin for cancellation in
// the log-weights (differences of O(1) energies) while an indexing or weighting bug shows up at 1e-3 or more.
constexpr double kAtol = 1e-9, kRtol = 1e-9;

void compare_runs(const TrainerCase& tc) {
  BOOST_TEST_CONTEXT(tc.name) {
    const TrainerResult cpu = run_trainer(tc, Device::cpu());
    const TrainerResult gpu = run_trainer(tc, kCuda);
    BOOST_REQUIRE_EQUAL(gpu.infos.size(), cpu.infos.size());
    for (size_t k = 0; k < cpu.infos.size(); ++k) {
      const jebm::TrainerStepInfo &a = gpu.infos[k], &b = cpu.infos[k];
      const std::string at = tc.name + " step " + std::to_string(k);
      BOOST_TEST(a.resampled == b.resampled, at << ": resampled " << a.resampled << " vs " << b.resampled);
      BOOST_TEST(all_close({a.ess, a.cv2, a.batch_ess, a.log_z, a.data_energy, a.loss},
                           {b.ess, b.cv2, b.batch_ess, b.log_z, b.data_energy, b.loss}, kAtol, kRtol,
                           at + " ess, cv2, batch_ess, log_z, data_energy, loss"));
    }
    if (tc.opt.algorithm == jebm::Algorithm::Jarzynski)
      BOOST_TEST(cpu.resamplings > 0, "resampling never fired: the device path of resampling is not covered");
    BOOST_TEST(gpu.moves == cpu.moves);
    BOOST_TEST(gpu.resamplings == cpu.resamplings);
    BOOST_TEST(std::fabs(gpu.log_z_offset - cpu.log_z_offset) <= kAtol + kRtol * std::fabs(cpu.log_z_offset));
    BOOST_TEST(all_close(gpu.x, cpu.x, kAtol, kRtol, tc.name + " walkers"));
    BOOST_TEST(all_close(gpu.x_prev, cpu.x_prev, kAtol, kRtol, tc.name + " x_prev"));
    BOOST_TEST(all_close(gpu.log_w, cpu.log_w, kAtol, kRtol, tc.name + " log-weights"));
    BOOST_TEST(all_close(gpu.partial, cpu.partial, kAtol, kRtol, tc.name + " partial terms"));
    BOOST_TEST(gpu.pending.host_vector<int64_t>() == cpu.pending.host_vector<int64_t>());
    BOOST_TEST(gpu.u_cache_on_host, "Trainer::State::walkers.u_cache must be a host tensor");
    BOOST_TEST(all_close(gpu.u_cache, cpu.u_cache, kAtol, kRtol, tc.name + " cached energies"));
    BOOST_REQUIRE_EQUAL(gpu.params.size(), cpu.params.size());
    for (size_t i = 0; i < cpu.params.size(); ++i)
      BOOST_TEST(all_close(gpu.params[i], cpu.params[i], kAtol, kRtol, tc.name + " parameter " + std::to_string(i)));
  }
}

TrainerCase mlp_case(const std::string& name) {
  TrainerCase tc;
  tc.name = name;
  tc.walker_shape = {24, 2, 4, 4};
  tc.make_energy = [](jebm::Generator& gen) { return std::make_shared<TinyMlpEnergy>(gen, 32); };
  tc.opt.algorithm = jebm::Algorithm::Jarzynski;
  tc.opt.ula.h = 0.01;  // sigma = sqrt(2h)
  tc.opt.moves_per_update = 3;
  tc.opt.alpha = 0.1;
  tc.opt.resample = true;
  // ESS < 2N always holds: resampling fires on every step past the first, on both devices alike (a trigger
  // near its threshold could fire on one device only).
  tc.opt.resample_rule.ess_fraction = 2.0;
  tc.opt.resample_rule.scheme = jebm::ResampleScheme::Multinomial;
  tc.opt.eval_chunk = 5;  // several chunks per forward/backward
  return tc;
}

}  // namespace

BOOST_AUTO_TEST_CASE(trainer_on_cuda_matches_cpu, *utf::precondition(jebm::test::CudaDevicePresent())) {
  {  // random moving subsets (overlapping, two per update) and random gradient walkers
    TrainerCase tc = mlp_case("subsets");
    tc.opt.moving_batch = 7;
    tc.opt.moving_subsets = 2;
    tc.opt.gradient_batch = 9;
    compare_runs(tc);
  }
  {  // every walker moves (the first move reuses part 1's gradients), all walkers in the loss, clipped drift
    TrainerCase tc = mlp_case("all walkers");
    tc.opt.moving_batch = 0;
    tc.opt.gradient_batch = 0;
    tc.opt.ula.drift_clip = 0.5;
    tc.opt.resample_rule.scheme = jebm::ResampleScheme::Systematic;
    compare_runs(tc);
  }
  {  // CIFAR-10's variant: the loss on the walkers just moved, resampling on their batch ESS (always below)
    TrainerCase tc = mlp_case("moved gradient walkers");
    tc.opt.moving_batch = 6;
    tc.opt.gradient_batch = 6;
    tc.opt.gradient_walkers_moved = true;
    tc.opt.resample_batch_ess = 1e9;
    compare_runs(tc);
  }
  {  // PCD: equal weights, nothing pending, no resampling
    TrainerCase tc = mlp_case("pcd");
    tc.opt.algorithm = jebm::Algorithm::Pcd;
    tc.opt.moving_batch = 10;
    tc.opt.gradient_batch = 8;
    compare_runs(tc);
  }
}

BOOST_AUTO_TEST_CASE(trainer_on_cuda_matches_cpu_mnist_cnn, *utf::precondition(jebm::test::CudaDevicePresent())) {
  // The MNIST energy (convolutions: cuDNN vs im2col) in float64 on 4 walkers of 1x28x28.
  TrainerCase tc;
  tc.name = "MnistEnergyCNN";
  tc.walker_shape = {4, 1, 28, 28};
  tc.data_batch = 3;
  tc.steps = 3;
  tc.make_energy = [](jebm::Generator& gen) { return std::make_shared<jebm::MnistEnergyCNN>(gen, DType::Float64); };
  tc.opt.algorithm = jebm::Algorithm::Jarzynski;
  tc.opt.ula.h = 1e-3;
  tc.opt.moves_per_update = 2;
  tc.opt.moving_batch = 2;
  tc.opt.gradient_batch = 3;
  tc.opt.alpha = 0.01;
  tc.opt.resample_rule.ess_fraction = 2.0;
  compare_runs(tc);
}

BOOST_AUTO_TEST_CASE(mnist_device_cuda_run_writes_outputs_and_resumes,
                     *utf::precondition(jebm::test::CudaDevicePresent())) {
  TempDir data, out;
  write_mnist(data.path, 5);
  const fs::path run = out.path / "cuda";
  BOOST_REQUIRE_EQUAL(jebm::run_mnist(tiny_mnist_args(data.path, run, "cuda")), 0);
  BOOST_TEST(csv_data_rows(run / "metrics.csv") == 9);
  for (const char* f : {"data.png", "samples_burnin.png", "samples_epoch1.png", "samples_final.png", "options.txt",
                        "checkpoint.safetensors"})
    BOOST_TEST(fs::exists(run / f), f);
  const jebm::SafeTensors st = jebm::load_safetensors(jebm::image_ebm_checkpoint_path(run.string()));
  BOOST_TEST(st.metadata.at("iteration") == "9");
  BOOST_TEST(std::stoll(st.metadata.at("walkers.resamplings")) > 0, "resampling never fired on the device");
  BOOST_TEST(jebm::get(st, "walkers.x").shape() == (jebm::Shape{8, 1, 28, 28}));
  BOOST_TEST(jebm::get(st, "trainer.u_cache").shape() == (jebm::Shape{8}));

  // Ctrl-C on the device after update 4, resumed on the device; and a CPU run interrupted, resumed on CUDA.
  for (const auto& [first, second] : std::vector<std::pair<std::string, std::string>>{{"cuda", "cuda"},
                                                                                       {"cpu", "cuda"},
                                                                                       {"cuda", "cpu"}}) {
    BOOST_TEST_CONTEXT(first << " then " << second) {
      const fs::path cut = out.path / (first + "_" + second);
      std::vector<std::string> a = tiny_mnist_args(data.path, cut, first);
      a.insert(a.end(), {"--interrupt-at", "4"});
      BOOST_REQUIRE_EQUAL(jebm::run_mnist(a), 130);
      const jebm::SafeTensors mid = jebm::load_safetensors(jebm::image_ebm_checkpoint_path(cut.string()));
      BOOST_TEST(mid.metadata.at("iteration") == "5");
      BOOST_REQUIRE_EQUAL(jebm::run_mnist({"--resume", cut.string(), "--device", second, "--no-progress"}), 0);
      BOOST_TEST(csv_data_rows(cut / "metrics.csv") == 9);
      const jebm::SafeTensors end = jebm::load_safetensors(jebm::image_ebm_checkpoint_path(cut.string()));
      BOOST_TEST(end.metadata.at("iteration") == "9");
      const std::vector<double> lw = jebm::get(end, "walkers.log_w").to_vector();
      for (double v : lw) BOOST_TEST(std::isfinite(v));
    }
  }
}

