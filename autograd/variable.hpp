// Var: a Tensor value plus what reverse-mode autodiff needs (accumulated gradient, the node that made it).
// Leaves with requires_grad (parameters AND inputs such as walker positions) receive gradients in .grad();
// one backward pass from an energy gives grad_x U and grad_theta U together. Tested by tests/test_autograd.cpp.
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "runtime/tensor.hpp"

namespace jebm::ag {

struct Node;

struct VarImpl {
  Tensor value;
  Tensor grad;  // accumulated by backward() into leaves; undefined until then
  bool requires_grad = false;
  std::shared_ptr<Node> grad_fn;  // null for leaves
};

class Var {
 public:
  Var() = default;
  explicit Var(Tensor value, bool requires_grad = false);

  bool defined() const { return impl_ != nullptr; }
  const Tensor& value() const;
  Tensor& value();  // for in-place updates of leaves outside any graph (optimizers, samplers)
  const Tensor& grad() const;  // undefined when no gradient has reached this leaf
  Tensor& grad();
  void zero_grad();  // drops the accumulated gradient
  bool requires_grad() const;
  void set_requires_grad(bool on);
  bool is_leaf() const;
  const std::shared_ptr<Node>& grad_fn() const;
  Var detach() const;  // same value (shared), no graph, no grad

  const Shape& shape() const { return value().shape(); }
  int64_t dim() const { return value().dim(); }
  int64_t size(int64_t d) const { return value().size(d); }
  DType dtype() const { return value().dtype(); }
  Device device() const { return value().device(); }

  // For the autograd internals: ops create their results with this.
  static Var from_op(Tensor value, std::shared_ptr<Node> fn);
  const std::shared_ptr<VarImpl>& impl() const { return impl_; }

 private:
  std::shared_ptr<VarImpl> impl_;
};

// A differentiable op's record: its Var inputs (all of them, in order; their values are what backward reads, so
// do not edit an input's value in place between forward and backward) and a backward that maps the output's
// gradient to one gradient per input (undefined Tensor where needs_input_grad(i) is false). The engine never reads
// grad_output after backward returns: when grad_output.sole_owner(), backward may write a result into it.
// Subclasses live in autograd/ops_*.cpp, each right below its forward.
struct Node {
  virtual ~Node() = default;
  virtual std::vector<Tensor> backward(const Tensor& grad_output) = 0;
  virtual const char* name() const = 0;
  std::vector<Var> inputs;  // same order as backward()'s result

  // Set by the engine before backward(): which inputs this sweep wants a gradient for (empty: every input that
  // requires one). grad(U, {x}) thereby skips e.g. the weight gradients a Langevin move does not need.
  std::vector<bool> wanted;
  bool needs_input_grad(size_t i) const {
    return i < inputs.size() && inputs[i].requires_grad() && (wanted.empty() || wanted[i]);
  }
  // Drops the inputs and whatever the subclass saved, so the graph's memory is freed after one backward;
  // subclasses that save tensors override it and call Node::release().
  virtual void release() {
    inputs.clear();
    wanted.clear();
    released = true;
  }
  bool released = false;
};

// --- grad mode ------------------------------------------------------------------------------------------
bool grad_enabled();
class NoGradGuard {
 public:
  NoGradGuard();
  ~NoGradGuard();
  NoGradGuard(const NoGradGuard&) = delete;
  NoGradGuard& operator=(const NoGradGuard&) = delete;

 private:
  bool previous_;
};

// Should an op on these inputs record a node? (grad mode on and any input requires a gradient)
bool needs_graph(const std::vector<const Var*>& inputs);

}  // namespace jebm::ag
