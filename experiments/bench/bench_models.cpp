// The "energy_cnn" benchmark section: forward+backward of MnistEnergyCNN and CifarEnergyCNN, median of a few reps.
// Registered in experiments/bench/bench.cpp's section table.
#include "experiments/bench/bench_models.hpp"

#include "autograd/engine.hpp"
#include "experiments/bench/timing.hpp"
#include "models/energy_nets.hpp"

namespace jebm {

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

namespace {

// One pass as a Langevin move with learning needs it: U(x), then grad_x U and grad_theta U from one backward.
void one_pass(Module& net, const Tensor& x0) {
  net.zero_grad();
  ag::Var x(x0, /*requires_grad=*/true);
  ag::backward(ag::sum_all(net(x)));
  JEBM_CHECK(x.grad().defined() && x.grad().shape() == x0.shape(),
             "bench energy_cnn: no input gradient of shape " << shape_str(x0.shape()));
}

EnergyCnnTiming time_model(const std::string& name, Sequential& net, const Shape& x_shape, int repeat, Device device,
                           Generator& gen) {
  net.to(device);
  const Tensor x0 = rand_uniform(x_shape, -1.0, 1.0, gen, DType::Float32, device);
  const double ms = median_ms([&] { one_pass(net, x0); }, repeat);
  return {name, x_shape[0], ms, 2.0 * 3.0 * sequential_macs(net, x_shape)};
}

}  // namespace

std::vector<EnergyCnnTiming> bench_energy_cnn(int64_t batch, int repeat, Device device, const std::string& net,
                                              uint64_t seed) {
  JEBM_CHECK(batch > 0 && repeat > 0,
             "bench energy_cnn: batch " << batch << " and repeat " << repeat << " must be positive");
  Generator gen{seed, 0};
  std::vector<EnergyCnnTiming> result;
  if (net != "cifar10") {
    MnistEnergyCNN model(gen);
    result.push_back(time_model("mnist_energy_cnn", model, {batch, 1, 28, 28}, repeat, device, gen));
  }
  if (net != "mnist") {
    CifarEnergyCNN model(gen);
    result.push_back(time_model("cifar_energy_cnn", model, {batch, 3, 32, 32}, repeat, device, gen));
  }
  return result;
}

}  // namespace jebm
