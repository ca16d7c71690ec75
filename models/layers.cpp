// Linear, Conv2d, activations, Flatten and Sequential. Each forward is one autograd op (or a chain of them).
// Tested by tests/test_models.cpp.
#include "models/layers.hpp"

#include <algorithm>
#include <cmath>

namespace jebm {

double default_init_bound(int64_t fan_in) {
  JEBM_CHECK(fan_in > 0, "default_init_bound: fan_in " << fan_in << " must be positive");
  return 1.0 / std::sqrt(static_cast<double>(fan_in));
}

// --- Linear ---------------------------------------------------------------------------------------------

Linear::Linear(int64_t in, int64_t out, Generator& gen, bool with_bias, DType dtype)
    : in_features(in), out_features(out) {
  JEBM_CHECK(in > 0 && out > 0, "Linear: sizes in=" << in << " out=" << out << " must be positive");
  const double bound = default_init_bound(in);
  weight = register_parameter("weight", rand_uniform({out, in}, -bound, bound, gen, dtype));
  if (with_bias) bias = register_parameter("bias", rand_uniform({out}, -bound, bound, gen, dtype));
}

ag::Var Linear::forward(const ag::Var& x) {
  JEBM_CHECK(x.dim() == 2 && x.size(1) == in_features,
             "Linear: input " << shape_str(x.shape()) << " does not match weight " << shape_str(weight.shape())
                              << " (want [N, " << in_features << "])");
  return ag::linear(x, weight, bias);
}

// --- Conv2d ---------------------------------------------------------------------------------------------

Conv2d::Conv2d(int64_t in, int64_t out, int64_t k, int64_t stride, int64_t padding, Generator& gen,
               bool with_bias, DType dtype)
    : in_channels(in), out_channels(out), kernel(k), params{stride, padding} {
  JEBM_CHECK(in > 0 && out > 0 && k > 0 && stride > 0 && padding >= 0,
             "Conv2d: in=" << in << " out=" << out << " kernel=" << k << " stride=" << stride
                           << " padding=" << padding << " are not all valid");
  const double bound = default_init_bound(in * k * k);
  weight = register_parameter("weight", rand_uniform({out, in, k, k}, -bound, bound, gen, dtype));
  if (with_bias) bias = register_parameter("bias", rand_uniform({out}, -bound, bound, gen, dtype));
}

ag::Var Conv2d::forward(const ag::Var& x) {
  JEBM_CHECK(x.dim() == 4 && x.size(1) == in_channels,
             "Conv2d: input " << shape_str(x.shape()) << " does not match weight " << shape_str(weight.shape())
                              << " (want [N, " << in_channels << ", H, W])");
  return ag::conv2d(x, weight, bias, params);
}

// --- parameter-free layers ------------------------------------------------------------------------------

ag::Var Flatten::forward(const ag::Var& x) { return ag::flatten(x); }
ag::Var SiLU::forward(const ag::Var& x) { return ag::silu(x); }
ag::Var ReLU::forward(const ag::Var& x) { return ag::relu(x); }
ag::Var LeakyReLU::forward(const ag::Var& x) { return ag::leaky_relu(x, slope); }

// --- Sequential -----------------------------------------------------------------------------------------

ag::Var Sequential::forward(const ag::Var& x) {
  ag::Var h = x;
  for (auto& layer : layers_) h = layer->forward(h);
  return h;
}

bool Sequential::concurrent_forward() const {
  return std::all_of(layers_.begin(), layers_.end(), [](const auto& l) { return l->concurrent_forward(); });
}

const std::shared_ptr<Module>& Sequential::operator[](size_t i) const {
  JEBM_CHECK(i < layers_.size(), "Sequential: index " << i << " out of " << layers_.size() << " layers");
  return layers_[i];
}

}  // namespace jebm
