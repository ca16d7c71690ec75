// Module: named parameters (recursive, "0.weight"), a train/eval flag and zero_grad, as in PyTorch. Layers,
// Sequential and the energies derive from it. An *energy* is a Module whose forward maps x [N, ...] to one
// energy per sample, shape [N]. Tested by tests/test_models.cpp.
#pragma once
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "autograd/ops.hpp"

namespace jebm {

class Module {
 public:
  virtual ~Module() = default;
  virtual ag::Var forward(const ag::Var& x) = 0;
  ag::Var operator()(const ag::Var& x) { return forward(x); }
  // Whether forward may run on several threads at once, on different inputs, with the same parameters: then the
  // Trainer evaluates pieces of walkers in parallel on the CPU (samplers/row_evaluator.hpp). False unless a module
  // says so. jebm's layers do, and a Sequential does when all its layers do (a subclass that overrides forward
  // answers for its own forward too); a module whose forward changes its own state (a counter, a cache, a random
  // generator) must not.
  virtual bool concurrent_forward() const { return false; }

  // Parameters of this module and its children, in registration order, with dotted names.
  std::vector<std::pair<std::string, ag::Var>> named_parameters() const;
  std::vector<ag::Var> parameters() const;
  int64_t parameter_count() const;
  void zero_grad();
  void train(bool on = true);
  void eval() { train(false); }
  bool is_training() const { return training_; }
  // Moves/casts every parameter in place (the Vars keep their identity, so optimizers stay valid).
  void to(Device device);
  void to(DType dtype);

 protected:
  ag::Var& register_parameter(const std::string& name, Tensor value);
  template <typename M> std::shared_ptr<M> register_module(const std::string& name, std::shared_ptr<M> m) {
    children_.emplace_back(name, m);
    return m;
  }

 private:
  std::vector<std::pair<std::string, ag::Var>> params_;
  std::vector<std::pair<std::string, std::shared_ptr<Module>>> children_;
  bool training_ = true;
};

}  // namespace jebm
