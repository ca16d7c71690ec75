// The "gmm" (device) and "ula_cnn" sections of `jebm bench` (see experiments/bench_samplers.hpp). The same
// workloads, written the fastest way in PyTorch, are in experiments/bench/torch_reference.py, so both can be
// timed side by side on one machine (scripts/device-check.sh does that on the GPU).
#include "experiments/bench_samplers.hpp"

#include <algorithm>
#include <chrono>
#include <functional>
#include <iomanip>
#include <sstream>

#include "autograd/engine.hpp"
#include "autograd/ops.hpp"
#include "experiments/gmm.hpp"
#include "models/energy_nets.hpp"
#include "models/gaussian_mixture.hpp"
#include "models/optim.hpp"
#include "runtime/cuda_api.hpp"
#include "runtime/ops.hpp"
#include "samplers/sampler_cuda.hpp"
#include "samplers/ula_jarzynski.hpp"
#include "samplers/walkers.hpp"
#ifdef JEBM_WITH_CUDA
#include "models/gaussian_mixture_cuda.hpp"
#endif

namespace jebm {

namespace {

// Median of `repeat` timed calls after one warm-up; CUDA work is waited for inside the timed region.
double median_ms(int repeat, Device device, const std::function<void()>& f) {
  auto sync = [&] {
    if (device.is_cuda()) cuda_api::synchronize();
  };
  f();
  sync();
  std::vector<double> t;
  for (int r = 0; r < std::max(repeat, 1); ++r) {
    const auto a = std::chrono::steady_clock::now();
    f();
    sync();
    t.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - a).count());
  }
  std::sort(t.begin(), t.end());
  return t[t.size() / 2];
}

// U [B] float64 and grad_x U (like x) from one forward+backward (input gradient only: parameters frozen).
void energy_and_grad(Module& net, const Tensor& x, Tensor& u, Tensor& g) {
  ag::Var xv(x, /*requires_grad=*/true);
  const ag::Var uv = net(xv);
  g = ag::grad(ag::sum_all(uv), {xv})[0];
  u = uv.value().to(DType::Float64);
}

struct ImageSetup {
  const char* name;
  Shape walker_shape;  // [B, C, H, W]
  int64_t data_batch;  // images per parameter update (paper: MNIST 128, CIFAR-10 512)
  double h, sigma, clip, grad_clip;
  int64_t paper_moves;
};

void bench_image(Sequential& net, const ImageSetup& s, int repeat, Device device, int64_t moves,
                 std::vector<SamplerTiming>& out) {
  net.to(device);
  Generator gen{17, 0};
  const int64_t b = s.walker_shape[0];
  WalkerPopulation pop = walkers_to(
      WalkerPopulation::create(rand_uniform(s.walker_shape, -1, 1, gen, DType::Float32), 5), device);
  Shape ds = s.walker_shape;
  ds[0] = s.data_batch;
  const Tensor data = rand_uniform(ds, -1, 1, gen, DType::Float32, device);
  UlaConfig cfg;
  cfg.h = s.h;
  cfg.sigma = s.sigma;
  cfg.drift_clip = s.clip;
  Tensor u, g;
  energy_and_grad(net, pop.x, u, g);
  ula_jarzynski_step(pop, u, g, cfg, MoveKind::MoveOnly);
  auto move = [&] {
    energy_and_grad(net, pop.x, u, g);  // completes the last move and drives the next: one pass per move
    ula_jarzynski_step(pop, u, g, cfg, MoveKind::CompleteAndMove);
  };
  std::ostringstream nm;
  nm << s.name << " ula move @" << b;
  out.push_back({nm.str(), median_ms(repeat, device, move)});

  Adam adam(net.parameters(), 1e-4, {0.0, 0.999});
  const double alpha = 0.01;
  std::vector<int64_t> iv(static_cast<size_t>(s.data_batch + b));
  for (size_t i = 0; i < iv.size(); ++i) iv[i] = static_cast<int64_t>(i);
  const Tensor idx_data = Tensor::from_vector(std::vector<int64_t>(iv.begin(), iv.begin() + s.data_batch),
                                              {s.data_batch}, device);
  const Tensor idx_walkers = Tensor::from_vector(std::vector<int64_t>(iv.begin() + s.data_batch, iv.end()), {b}, device);
  auto update = [&] {
    const Tensor w = device.is_cuda() ?
#ifdef JEBM_WITH_CUDA
                                      normalized_weights_cuda(pop.log_w).to(DType::Float32)
#else
                                      Tensor()
#endif
                                      : Tensor::from_vector(normalized_weights(pop.log_w.to_vector()), {b},
                                                            DType::Float32);
    net.zero_grad();
    // One forward of the concatenated [data; walkers] batch, as torch_reference.py does.
    const ag::Var uall = net(ag::Var(concat({data, pop.x}, 0)));
    const ag::Var ud = ag::gather_rows(uall, idx_data), uw = ag::gather_rows(uall, idx_walkers);
    const ag::Var wv(w);
    ag::Var loss = ag::sub(ag::mean_all(ud), ag::sum_all(ag::mul(wv, uw)));
    loss = ag::add(loss, ag::mul_scalar(ag::add(ag::mean_all(ag::square(ud)), ag::sum_all(ag::mul(wv, ag::square(uw)))),
                                        alpha));
    ag::backward(loss);
    clip_grad_norm(net.parameters(), s.grad_clip);
    adam.step();
  };
  const int64_t k = moves > 0 ? moves : s.paper_moves;
  std::ostringstream it;
  it << s.name << " iteration @" << b << " (upd+" << k << " moves)";
  out.push_back({it.str(), median_ms(std::min(repeat, 3), device, [&] {
                   update();
                   for (int64_t m = 0; m < k; ++m) move();
                 })});
}

}  // namespace

std::vector<SamplerTiming> bench_gmm_timings_on(Device device, int repeat) {
  std::vector<SamplerTiming> out;
#ifdef JEBM_WITH_CUDA
  JEBM_CHECK(device.is_cuda(), "bench_gmm_timings_on: the CPU rows come from bench_gmm_timings");
  GmmConfig c;  // the paper's sizes: d = 50, N = 10^4 walkers, 10^4 data points
  c.device = device;
  const GmmParams teacher = gmm_teacher(c);
  const Tensor data = gmm_teacher_data(c, teacher);
  {
    GmmParams p = gmm_student_init(c);
    Tensor x0 = Tensor::empty({c.walkers, c.dim}, DType::Float64);
    gmm_sample(p, c.walkers, 1, 0, x0.data<double>());
    WalkerPopulation pop = walkers_to(WalkerPopulation::create(x0, 2), device);
    Tensor u = Tensor::empty({c.walkers}, DType::Float64, device);
    Tensor g = Tensor::empty({c.walkers, c.dim}, DType::Float64, device);
    gmm_eval_cuda(p, pop.x, u, &g, nullptr);
    UlaConfig cfg;
    const double ms = median_ms(repeat * 20, device, [&] { ula_jarzynski_step(pop, u, g, cfg); });
    std::ostringstream name;
    name << "fused step 1e4x50 (" << std::setprecision(3) << c.walkers / ms / 1e3 << " Mmoves/s)";
    out.push_back({name.str(), ms});
  }
  {
    GmmExperiment run(c, Algorithm::Jarzynski, data, teacher);
    out.push_back({"full iteration 1e4x50 (README fused)", median_ms(repeat * 20, device, [&] { run.iterate(); })});
  }
#else
  JEBM_FAIL("bench gmm --device cuda: this build has no CUDA backend (device " << device.str() << ", repeat "
                                                                                << repeat << ")");
#endif
  return out;
}

std::vector<SamplerTiming> bench_ula_cnn(int64_t batch, int repeat, Device device, int64_t moves) {
  JEBM_CHECK(batch > 0 && repeat > 0, "bench ula_cnn: batch " << batch << ", repeat " << repeat);
  std::vector<SamplerTiming> out;
  Generator gen{3, 0};
  {
    MnistEnergyCNN net(gen);
    bench_image(net, {"mnist", {batch, 1, 28, 28}, 128, 5e-5, 1e-4, 0.0, 1.0, 180}, repeat, device, moves, out);
  }
  {
    CifarEnergyCNN net(gen);
    bench_image(net, {"cifar10", {batch, 3, 32, 32}, 512, 1.0, 1e-2, 0.3, 1000.0, 60}, repeat, device, moves, out);
  }
  return out;
}

}  // namespace jebm
