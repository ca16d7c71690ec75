// The "gmm" (device) and "ula_cnn" sections of `jebm bench` (see experiments/bench/bench_samplers.hpp). The
// ula_cnn rows run the product's own Trainer::step and sampler calls; the same workloads written the fastest way
// in PyTorch are in experiments/bench/torch_reference.py (scripts/device-check.sh runs both on the GPU).
#include "experiments/bench/bench_samplers.hpp"

#include <algorithm>
#include <iomanip>
#include <limits>
#include <memory>
#include <sstream>

#include "experiments/bench/bench_models.hpp"
#include "experiments/bench/timing.hpp"
#include "experiments/image_ebm.hpp"
#include "models/energy_nets.hpp"
#include "models/gaussian_mixture.hpp"
#include "models/optim.hpp"
#include "runtime/ops.hpp"
#include "samplers/trainer.hpp"
#include "samplers/ula_jarzynski.hpp"
#include "samplers/walkers.hpp"

namespace jebm {

namespace {

// The energy, counting the floating-point work of every pass the Trainer makes through it: a forward is 2 FLOPs
// per multiply-add of its Conv2d/Linear layers; an input gradient (Trainer::energy_and_grad) adds 2 more;
// parameter gradients (the surrogate loss) add 2 for the filters and 2 for the inner layers' data gradients (an
// upper bound: the first layer needs none).
class CountingEnergy : public Module {
 public:
  CountingEnergy(std::shared_ptr<Sequential> net, const Shape& image)
      : net_(register_module("net", std::move(net))) {
    Shape one = image;
    one.insert(one.begin(), 1);
    macs_per_image_ = sequential_macs(*net_, one);
  }
  ag::Var forward(const ag::Var& x) override {
    double per_mac = 2.0;
    if (x.requires_grad()) per_mac += 2.0;
    else if (ag::grad_enabled()) per_mac += 4.0;
    const double work = per_mac * macs_per_image_ * static_cast<double>(x.size(0));
#pragma omp atomic
    flops += work;
    return (*net_)(x);
  }
  // As the net's: the count is the only state, added atomically, so the Trainer's pieces run in parallel here as
  // they do with the bare net in `jebm mnist`.
  bool concurrent_forward() const override { return net_->concurrent_forward(); }
  double macs_per_image() const { return macs_per_image_; }
  double flops = 0.0;

 private:
  std::shared_ptr<Sequential> net_;
  double macs_per_image_ = 0.0;
};

// One move of `batch` walkers as Trainer::step makes it (samplers/trainer.cpp make_moves): the subset's rows,
// U and grad_x U there (completing their previous move), the fused kernel on the subset. Median ms. The walkers
// are left pending outside the Trainer's books: the caller starts any Trainer step on fresh walkers.
double time_ula_move(Trainer& tr, WalkerPopulation& pop, const ImageEbmConfig& c, int64_t batch, int repeat,
                     Device device) {
  std::vector<int64_t> subset(static_cast<size_t>(batch));
  for (int64_t i = 0; i < batch; ++i) subset[static_cast<size_t>(i)] = i * (c.walkers / batch);
  const Tensor idx = Tensor::from_vector(subset, {batch}, device);
  UlaConfig ula = image_ebm_trainer_options(c).ula;
  ula.weighted = true;
  {
    Tensor u, g;
    tr.energy_and_grad(gather_rows(pop.x, idx), u, g);
    ula_jarzynski_step(pop, u, g, ula, MoveKind::MoveOnly, subset);
  }
  return median_ms(
      [&] {
        Tensor u, g;
        tr.energy_and_grad(gather_rows(pop.x, idx), u, g);
        ula_jarzynski_step(pop, u, g, ula, MoveKind::CompleteAndMove, subset);
      },
      repeat);
}

void bench_image(const std::string& name, std::shared_ptr<Sequential> net, ImageEbmConfig c, int64_t batch,
                 int64_t moves, int repeat, Device device, std::vector<SamplerTiming>& out) {
  c.moving_batch = batch;
  c.gradient_batch = batch;
  if (moves > 0) {
    c.moving_subsets = 1;
    c.moves_per_update = moves;
  }
  const Shape image = {c.command == "mnist" ? 1 : 3, c.command == "mnist" ? 28 : 32, c.command == "mnist" ? 28 : 32};
  CountingEnergy energy(std::move(net), image);
  energy.to(device);
  Generator gen{17, 0};
  Shape ws = image, ds = image;
  ws.insert(ws.begin(), c.walkers);
  ds.insert(ds.begin(), c.data_batch);
  WalkerPopulation pop = walkers_to(WalkerPopulation::create(rand_uniform(ws, -1, 1, gen, DType::Float32), 5), device);
  const Tensor data = rand_uniform(ds, -1, 1, gen, DType::Float32, device);
  const std::vector<ag::Var> params = energy.parameters();
  Adam adam(params, c.lr, {c.beta1, c.beta2});
  Trainer tr(energy, pop, image_ebm_trainer_options(c));
  tr.data_batch = [&](int64_t) { return data; };
  tr.optimizer_step = [&](int64_t) {  // what `jebm mnist` does: clip the global norm, then Adam
    clip_grad_norm(params, c.grad_clip > 0 ? c.grad_clip : std::numeric_limits<double>::infinity());
    adam.step();
  };
  out.push_back({name + " ula move @" + std::to_string(batch), time_ula_move(tr, pop, c, batch, repeat, device),
                 4.0 * energy.macs_per_image() * static_cast<double>(batch), 0.0});
  // The move above left its walkers pending outside the Trainer's books: start the Trainer on fresh walkers.
  pop = walkers_to(WalkerPopulation::create(rand_uniform(ws, -1, 1, gen, DType::Float32), 6), device);
  Trainer fresh(energy, pop, image_ebm_trainer_options(c));
  fresh.data_batch = tr.data_batch;
  fresh.optimizer_step = tr.optimizer_step;
  double step_flops = 0.0;
  const double ms = median_ms(
      [&] {
        const double before = energy.flops;
        fresh.step();
        step_flops = energy.flops - before;  // the same for every step after the first (which evaluates all)
      },
      std::min(repeat, 3));
  std::ostringstream it;
  it << name << " Trainer::step N=" << c.walkers << " (" << c.moving_subsets << "x" << c.moves_per_update << " moves @"
     << batch << ")";
  out.push_back({it.str(), ms, step_flops, 0.0});
}

}  // namespace

std::vector<SamplerTiming> bench_ula_scaling(int repeat, Device device) {
  JEBM_CHECK(repeat > 0, "bench ula_scaling: repeat " << repeat);
  std::vector<SamplerTiming> out;
  Generator gen{3, 0};
  const ImageEbmConfig c = mnist_defaults();
  const Shape image = {1, 28, 28};
  CountingEnergy energy(std::make_shared<MnistEnergyCNN>(gen), image);
  energy.to(device);
  Shape ws = image;
  ws.insert(ws.begin(), c.walkers);
  for (int64_t batch = 32; batch <= c.walkers; batch *= 2) {
    WalkerPopulation pop =
        walkers_to(WalkerPopulation::create(rand_uniform(ws, -1, 1, gen, DType::Float32), 5), device);
    Trainer tr(energy, pop, image_ebm_trainer_options(c));
    const double ms = time_ula_move(tr, pop, c, batch, repeat, device);
    std::ostringstream name;
    name << "mnist ula move @" << batch << " (" << std::fixed << std::setprecision(0) << 1e3 * ms / static_cast<double>(batch)
         << " us/walker)";
    out.push_back({name.str(), ms, 4.0 * energy.macs_per_image() * static_cast<double>(batch), 0.0});
  }
  return out;
}

std::vector<SamplerTiming> bench_ula_cnn(int64_t batch, int repeat, Device device, int64_t moves,
                                         const std::string& net) {
  JEBM_CHECK(batch > 0 && repeat > 0, "bench ula_cnn: batch " << batch << ", repeat " << repeat);
  std::vector<SamplerTiming> out;
  Generator gen{3, 0};
  const ImageEbmConfig mnist = mnist_defaults(), cifar = cifar10_defaults();
  JEBM_CHECK(batch <= mnist.walkers && batch <= cifar.walkers,
             "bench ula_cnn: --batch " << batch << " exceeds the walkers of the runs (" << mnist.walkers << ", "
                                       << cifar.walkers << ")");
  if (net != "cifar10")
    bench_image("mnist", std::make_shared<MnistEnergyCNN>(gen), mnist, batch, moves, repeat, device, out);
  if (net != "mnist")
    bench_image("cifar10", std::make_shared<CifarEnergyCNN>(gen), cifar, batch, moves, repeat, device, out);
  return out;
}

}  // namespace jebm
