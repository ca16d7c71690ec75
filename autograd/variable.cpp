// Var (a Tensor plus its gradient and the node that made it), the thread-local grad mode and needs_graph().
// Tested by tests/test_autograd.cpp.
#include "autograd/variable.hpp"

namespace jebm::ag {

Var::Var(Tensor value, bool requires_grad) : impl_(std::make_shared<VarImpl>()) {
  JEBM_CHECK(value.defined(), "Var: built from an undefined tensor");
  impl_->value = std::move(value);
  impl_->requires_grad = requires_grad;
}

const Tensor& Var::value() const {
  JEBM_CHECK(impl_, "Var::value: undefined Var");
  return impl_->value;
}

Tensor& Var::value() {
  JEBM_CHECK(impl_, "Var::value: undefined Var");
  return impl_->value;
}

const Tensor& Var::grad() const {
  JEBM_CHECK(impl_, "Var::grad: undefined Var");
  return impl_->grad;
}

Tensor& Var::grad() {
  JEBM_CHECK(impl_, "Var::grad: undefined Var");
  return impl_->grad;
}

void Var::zero_grad() {
  JEBM_CHECK(impl_, "Var::zero_grad: undefined Var");
  impl_->grad = Tensor();
}

// An undefined Var (e.g. a missing bias) simply takes no gradient, so ops and the engine can ask freely.
bool Var::requires_grad() const { return impl_ && impl_->requires_grad; }

void Var::set_requires_grad(bool on) {
  JEBM_CHECK(impl_, "Var::set_requires_grad: undefined Var");
  // An op result's flag says whether a graph runs through it; changing it would disconnect that graph silently.
  JEBM_CHECK(is_leaf(), "Var::set_requires_grad: only leaves can change it (this Var was made by "
                            << impl_->grad_fn->name() << "); use detach()");
  impl_->requires_grad = on;
}

bool Var::is_leaf() const { return !impl_ || impl_->grad_fn == nullptr; }

const std::shared_ptr<Node>& Var::grad_fn() const {
  static const std::shared_ptr<Node> kNone;
  return impl_ ? impl_->grad_fn : kNone;
}

Var Var::detach() const { return Var(value(), false); }

Var Var::from_op(Tensor value, std::shared_ptr<Node> fn) {
  Var v(std::move(value), fn != nullptr);
  v.impl_->grad_fn = std::move(fn);
  return v;
}

// --- grad mode ------------------------------------------------------------------------------------------
// Thread-local, so a sampler thread evaluating energies under NoGradGuard does not switch off a trainer's tape.
namespace {
thread_local bool g_grad_enabled = true;
}

bool grad_enabled() { return g_grad_enabled; }

NoGradGuard::NoGradGuard() : previous_(g_grad_enabled) { g_grad_enabled = false; }
NoGradGuard::~NoGradGuard() { g_grad_enabled = previous_; }

bool needs_graph(const std::vector<const Var*>& inputs) {
  if (!g_grad_enabled) return false;
  for (const Var* v : inputs)
    if (v && v->requires_grad()) return true;
  return false;
}

}  // namespace jebm::ag
