// Layers built on Module: Linear, Conv2d (PyTorch's default initialisation, drawn from a Generator), the
// parameter-free Flatten/SiLU/ReLU/LeakyReLU, and Sequential (children named "0", "1", ...).
// Tested by tests/test_models.cpp (init bounds and spread, names, shapes, finite-difference gradients).
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "models/module.hpp"

namespace jebm {

// y = x w^T + b.  x: [N, in], w: [out, in], b: [out].
// Init as PyTorch's nn.Linear: w, b ~ U(-1/sqrt(in), 1/sqrt(in)) (kaiming_uniform_ with a = sqrt(5) gives that
// bound for w). The weight is drawn before the bias, each draw one Generator offset.
class Linear : public Module {
 public:
  Linear(int64_t in_features, int64_t out_features, Generator& gen, bool bias = true,
         DType dtype = DType::Float32);
  ag::Var forward(const ag::Var& x) override;
  bool concurrent_forward() const override { return true; }

  int64_t in_features, out_features;
  ag::Var weight;  // [out, in]
  ag::Var bias;    // [out], undefined without bias
};

// x: [N, in, H, W], weight: [out, in, k, k], bias: [out] -> [N, out, OH, OW].
// Init as PyTorch's nn.Conv2d: w, b ~ U(-1/sqrt(fan_in), 1/sqrt(fan_in)), fan_in = in * k * k.
class Conv2d : public Module {
 public:
  Conv2d(int64_t in_channels, int64_t out_channels, int64_t kernel, int64_t stride, int64_t padding,
         Generator& gen, bool bias = true, DType dtype = DType::Float32);
  ag::Var forward(const ag::Var& x) override;
  bool concurrent_forward() const override { return true; }

  int64_t in_channels, out_channels, kernel;
  Conv2dParams params;
  ag::Var weight;  // [out, in, k, k]
  ag::Var bias;    // [out], undefined without bias
};

// [N, ...] -> [N, prod(...)]
class Flatten : public Module {
 public:
  ag::Var forward(const ag::Var& x) override;
  bool concurrent_forward() const override { return true; }
};

class SiLU : public Module {
 public:
  ag::Var forward(const ag::Var& x) override;
  bool concurrent_forward() const override { return true; }
};

class ReLU : public Module {
 public:
  ag::Var forward(const ag::Var& x) override;
  bool concurrent_forward() const override { return true; }
};

class LeakyReLU : public Module {
 public:
  explicit LeakyReLU(double slope = 0.01) : slope(slope) {}
  ag::Var forward(const ag::Var& x) override;
  bool concurrent_forward() const override { return true; }
  double slope;
};

// Runs its children in order. Children are named by position, so parameters read "0.weight", "2.bias", ...
class Sequential : public Module {
 public:
  template <typename M> std::shared_ptr<M> add(std::shared_ptr<M> m) {
    JEBM_CHECK(m != nullptr, "Sequential::add: null module at position " << layers_.size());
    layers_.push_back(m);
    return register_module(std::to_string(layers_.size() - 1), std::move(m));
  }
  // Constructs M in place: seq.emplace<Linear>(256, 64, gen).
  template <typename M, typename... Args> std::shared_ptr<M> emplace(Args&&... args) {
    return add(std::make_shared<M>(std::forward<Args>(args)...));
  }
  ag::Var forward(const ag::Var& x) override;
  bool concurrent_forward() const override;  // when every layer's is
  size_t size() const { return layers_.size(); }
  const std::shared_ptr<Module>& operator[](size_t i) const;

 private:
  std::vector<std::shared_ptr<Module>> layers_;
};

// U(-bound, bound) with bound = 1/sqrt(fan_in): PyTorch's default for both weights and biases of Linear/Conv2d.
double default_init_bound(int64_t fan_in);

}  // namespace jebm
