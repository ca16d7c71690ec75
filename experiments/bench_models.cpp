// The "energy_cnn" benchmark section: forward+backward of MnistEnergyCNN and CifarEnergyCNN, median of a few reps.
// Registered in experiments/bench.cpp's section table.
#include "experiments/bench_models.hpp"

#include <algorithm>
#include <chrono>

#include "autograd/engine.hpp"
#include "models/energy_nets.hpp"
#include "runtime/cuda_api.hpp"

namespace jebm {

namespace {

// One pass as a Langevin move needs it: U(x), then grad_x U and grad_theta U from a single backward.
double time_one_pass(Module& net, const Tensor& x0, Device device) {
  net.zero_grad();
  ag::Var x(x0, /*requires_grad=*/true);
  const auto t0 = std::chrono::steady_clock::now();
  ag::backward(ag::sum_all(net(x)));
  if (device.is_cuda()) cuda_api::synchronize();  // kernels are asynchronous; time their completion
  const auto t1 = std::chrono::steady_clock::now();
  JEBM_CHECK(x.grad().defined() && x.grad().shape() == x0.shape(),
             "bench energy_cnn: no input gradient of shape " << shape_str(x0.shape()));
  return std::chrono::duration<double, std::milli>(t1 - t0).count();
}

// Multiply-adds of the Conv2d/Linear layers of a Sequential for input shape x (activations are negligible).
double sequential_macs(const Sequential& net, Shape x) {
  double macs = 0.0;
  for (size_t i = 0; i < net.size(); ++i) {
    if (const auto* c = dynamic_cast<const Conv2d*>(net[i].get())) {
      x = conv2d_output_shape(x, c->weight.shape(), c->params);
      macs += static_cast<double>(shape_numel(x)) * static_cast<double>(c->in_channels * c->kernel * c->kernel);
    } else if (const auto* l = dynamic_cast<const Linear*>(net[i].get())) {
      macs += static_cast<double>(x[0] * l->in_features * l->out_features);
      x = {x[0], l->out_features};
    } else if (dynamic_cast<const Flatten*>(net[i].get())) {
      x = {x[0], shape_numel(x) / x[0]};
    }
  }
  return macs;
}

EnergyCnnTiming time_model(const std::string& name, Sequential& net, const Shape& x_shape, int repeat,
                           Device device, Generator& gen) {
  net.to(device);
  const Tensor x0 = rand_uniform(x_shape, -1.0, 1.0, gen, DType::Float32, device);
  time_one_pass(net, x0, device);  // warm-up: first-touch allocation, BLAS/cuDNN workspaces
  std::vector<double> ms;
  for (int r = 0; r < repeat; ++r) ms.push_back(time_one_pass(net, x0, device));
  std::sort(ms.begin(), ms.end());
  return {name, x_shape[0], ms[ms.size() / 2], 2.0 * 3.0 * sequential_macs(net, x_shape)};
}

}  // namespace

std::vector<EnergyCnnTiming> bench_energy_cnn(int64_t batch, int repeat, Device device, uint64_t seed) {
  JEBM_CHECK(batch > 0 && repeat > 0,
             "bench energy_cnn: batch " << batch << " and repeat " << repeat << " must be positive");
  Generator gen{seed, 0};
  std::vector<EnergyCnnTiming> result;
  {
    MnistEnergyCNN net(gen);
    result.push_back(time_model("mnist_energy_cnn", net, {batch, 1, 28, 28}, repeat, device, gen));
  }
  {
    CifarEnergyCNN net(gen);
    result.push_back(time_model("cifar_energy_cnn", net, {batch, 3, 32, 32}, repeat, device, gen));
  }
  return result;
}

}  // namespace jebm
