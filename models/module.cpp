// Module: parameter registration, recursive dotted names, train/eval and in-place device/dtype moves.
// Tested by tests/test_models.cpp (names and order, counts, to(DType) keeping Var identity, train/eval).
#include "models/module.hpp"

namespace jebm {

ag::Var& Module::register_parameter(const std::string& name, Tensor value) {
  JEBM_CHECK(value.defined(), "Module::register_parameter: '" << name << "' is an undefined tensor");
  for (const auto& [n, p] : params_) JEBM_CHECK(n != name, "Module::register_parameter: '" << name << "' twice");
  params_.emplace_back(name, ag::Var(std::move(value), /*requires_grad=*/true));
  return params_.back().second;
}

// Own parameters first, then each child's under "<child>.", as PyTorch's named_parameters() orders them.
std::vector<std::pair<std::string, ag::Var>> Module::named_parameters() const {
  std::vector<std::pair<std::string, ag::Var>> out(params_.begin(), params_.end());
  for (const auto& [child_name, child] : children_) {
    for (auto& [n, p] : child->named_parameters()) out.emplace_back(child_name + "." + n, p);
  }
  return out;
}

std::vector<ag::Var> Module::parameters() const {
  std::vector<ag::Var> out;
  for (auto& [n, p] : named_parameters()) out.push_back(p);
  return out;
}

int64_t Module::parameter_count() const {
  int64_t n = 0;
  for (const auto& p : parameters()) n += p.value().numel();
  return n;
}

void Module::zero_grad() {
  for (auto& p : parameters()) p.zero_grad();
}

void Module::train(bool on) {
  training_ = on;
  for (auto& [n, child] : children_) child->train(on);
}

// The Var's impl is shared with every optimizer holding it, so replacing value() in place moves them too.
// An accumulated gradient follows its parameter (it would otherwise no longer match value()'s dtype/device).
void Module::to(Device device) {
  for (auto& p : parameters()) {
    p.value() = p.value().to(device);
    if (p.grad().defined()) p.grad() = p.grad().to(device);
  }
}

void Module::to(DType dtype) {
  for (auto& p : parameters()) {
    p.value() = p.value().to(dtype);
    if (p.grad().defined()) p.grad() = p.grad().to(dtype);
  }
}

}  // namespace jebm
