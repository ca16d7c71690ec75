// Optimizers (SGD, Adam through the fused runtime adam_update_), global-norm gradient clipping and the
// learning-rate schedules of the image experiments. state_tensors()/load_state() let the trainer checkpoint an
// optimizer and resume bit-for-bit. Tested by tests/test_optim.cpp.
#pragma once
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "autograd/variable.hpp"
#include "runtime/ops.hpp"

namespace jebm {

using NamedTensors = std::vector<std::pair<std::string, Tensor>>;

// Holds the parameter Vars (shared with the Module, so Module::to() moves the optimizer's view too) and lr.
// Parameters whose grad() is undefined at step() are skipped, as PyTorch skips grad = None.
class Optimizer {
 public:
  Optimizer(std::vector<ag::Var> params, double lr);
  virtual ~Optimizer() = default;
  virtual void step() = 0;
  void zero_grad();
  double lr() const { return lr_; }
  void set_lr(double lr);
  const std::vector<ag::Var>& params() const { return params_; }
  // Everything besides the parameters that a resumed run needs to continue identically (lr is not included:
  // the schedule gives it). Names: "<kind>.<param index>" and scalars such as "step", stored as Float64 {}.
  virtual NamedTensors state_tensors() const = 0;
  virtual void load_state(const NamedTensors& state) = 0;

 protected:
  std::vector<ag::Var> params_;
  double lr_;
};

// PyTorch's SGD (dampening 0, no Nesterov): d = g + wd * p; buf = momentum * buf + d (buf = d on the first
// step); p -= lr * buf (p -= lr * d without momentum).
class SGD : public Optimizer {
 public:
  SGD(std::vector<ag::Var> params, double lr, double momentum = 0.0, double weight_decay = 0.0);
  void step() override;
  NamedTensors state_tensors() const override;  // "momentum.<i>" for the buffers that exist
  void load_state(const NamedTensors& state) override;

  double momentum, weight_decay;

 private:
  std::vector<Tensor> buf_;  // undefined until a parameter's first step with momentum
};

// PyTorch's Adam (L2 weight decay added to the gradient, bias-corrected moments), one fused pass per parameter.
// The step count is shared by all parameters (PyTorch keeps one per parameter; they agree unless some
// parameter had no gradient at some step).
class Adam : public Optimizer {
 public:
  Adam(std::vector<ag::Var> params, double lr = 1e-3, std::pair<double, double> betas = {0.9, 0.999},
       double eps = 1e-8, double weight_decay = 0.0);
  void step() override;
  // "step" (Float64 {}), "m.<i>" and "v.<i>" (the parameter's dtype/device) for the moments that exist.
  NamedTensors state_tensors() const override;
  void load_state(const NamedTensors& state) override;
  int64_t step_count() const { return step_; }
  // sum_p D_p c_p over the parameters (c: one tensor per parameter, in params() order; undefined entries and
  // parameters without moments are skipped), D_p = d(step of p)/d(g_p) at the last step() with v held fixed:
  // lr (1 - beta1) / (1 - beta1^t) / (sqrt(v_p / (1 - beta2^t)) + eps). For beta1 = 0 (the paper's image runs)
  // that is exactly lr_t / (sqrt(v_hat_p) + eps), the effective step the update applied to g_p. With beta1 > 0 it
  // is only the immediate response: the momentum carries the remaining beta1-weighted share of g_p into later
  // steps, which this does not count. Gradient clipping by a factor s < 1 before step() scales D by s: pass
  // it as clip_coef. For the first-order log Z correction (samplers/trainer.hpp, Trainer::step_scale_dot).
  double step_scale_dot(const std::vector<Tensor>& c, double clip_coef = 1.0) const;

  double beta1, beta2, eps, weight_decay;

 private:
  int64_t step_ = 0;
  std::vector<Tensor> m_, v_;  // undefined until the parameter's first step
};

// Scales all gradients together so that their global L2 norm is at most max_norm (coefficient
// max_norm / (norm + 1e-6), applied only when below 1, as torch.nn.utils.clip_grad_norm_). Returns the norm
// before clipping. Parameters without a gradient are ignored. The norm is accumulated on the device; one
// scalar comes back to the host.
double clip_grad_norm(const std::vector<ag::Var>& params, double max_norm);

// Learning-rate schedules: small structs, lr_at(epoch or step).
struct ConstantLR {
  double lr;
  double lr_at(int64_t /*epoch*/) const { return lr; }
};

// lr = start_lr * max(1 - t / total, floor_factor). The MNIST run uses total 500, floor 1e-10 (the official
// code's LambdaLR); the CIFAR-10 run decays to 0 over 600 epochs (floor 0).
struct LinearDecayLR {
  double start_lr;
  int64_t total;
  double floor_factor = 1e-10;
  LinearDecayLR(double start_lr, int64_t total, double floor_factor = 1e-10);
  double lr_at(int64_t t) const;
};

}  // namespace jebm
