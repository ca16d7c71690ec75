// Differentiable elementwise ops: unary (backward by the runtime's unary_backward, or from the derivative the forward
// saved), binary with NumPy broadcasting (gradients summed back to each input's shape with sum_to), scalar ops.
// Each node's backward sits below its forward.
// Tested by tests/test_autograd.cpp (finite-difference gradient checks, broadcasting cases, tie rules).
#include "autograd/ops.hpp"

namespace jebm::ag {

namespace {

Tensor reduce_to(const Tensor& g, const Shape& shape) { return g.shape() == shape ? g : sum_to(g, shape); }

// sign(d) * g, exact at d == 0 (gives 0) whatever convention the runtime's Relu derivative uses at 0: both terms
// below agree there, and elsewhere exactly one of them is g.
Tensor sign_times(const Tensor& d, const Tensor& g) {
  return sub(unary_backward(UnaryOp::Relu, d, g), unary_backward(UnaryOp::Relu, jebm::neg(d), g));
}

}  // namespace

// --- unary ----------------------------------------------------------------------------------------------

// The logistic ops and tanh keep dy/dx from their forward (unary_with_derivative: one exp or tanh for both, and
// the bits of unary_backward), so their backward is one multiply, in place where the engine allows it, instead of a
// second pass through the exp. The others recompute it from x, which costs less than storing it.
namespace {
bool saves_derivative(UnaryOp op) { return op == UnaryOp::Sigmoid || op == UnaryOp::Silu || op == UnaryOp::Tanh; }
}  // namespace

struct UnaryNode : Node {
  UnaryOp op;
  double alpha;
  Tensor dydx;  // the forward's dy/dx where saves_derivative(op), else undefined
  UnaryNode(UnaryOp o, double a) : op(o), alpha(a) {}
  const char* name() const override { return unary_op_name(op); }
  void release() override {
    dydx = Tensor();
    Node::release();
  }
  std::vector<Tensor> backward(const Tensor& g) override {
    if (!dydx.defined()) return {unary_backward(op, inputs[0].value(), g, alpha)};
    if (!g.sole_owner()) return {jebm::mul(dydx, g)};
    // The sweep's own gradient, which nothing else holds: multiplied in place, so no new buffer is written (the
    // pass is bound by memory traffic, not by the multiply).
    Tensor gx = g;
    mul_(gx, dydx);
    return {gx};
  }
};

Var unary(UnaryOp op, const Var& x, double alpha) {
  if (!needs_graph({&x})) return Var(jebm::unary(op, x.value(), alpha));
  auto n = std::make_shared<UnaryNode>(op, alpha);
  n->inputs = {x};
  Tensor y = saves_derivative(op) ? unary_with_derivative(op, x.value(), n->dydx, alpha)
                                  : jebm::unary(op, x.value(), alpha);
  return Var::from_op(y, n);
}

Var neg(const Var& x) { return unary(UnaryOp::Neg, x); }
Var exp(const Var& x) { return unary(UnaryOp::Exp, x); }
Var log(const Var& x) { return unary(UnaryOp::Log, x); }
Var sqrt(const Var& x) { return unary(UnaryOp::Sqrt, x); }
Var square(const Var& x) { return unary(UnaryOp::Square, x); }
Var abs(const Var& x) { return unary(UnaryOp::Abs, x); }
Var tanh(const Var& x) { return unary(UnaryOp::Tanh, x); }
Var sigmoid(const Var& x) { return unary(UnaryOp::Sigmoid, x); }
Var softplus(const Var& x) { return unary(UnaryOp::Softplus, x); }
Var relu(const Var& x) { return unary(UnaryOp::Relu, x); }
Var silu(const Var& x) { return unary(UnaryOp::Silu, x); }
Var leaky_relu(const Var& x, double slope) { return unary(UnaryOp::LeakyRelu, x, slope); }

// --- binary (broadcasting) --------------------------------------------------------------------------------
// maximum/minimum: the gradient goes to the larger (smaller) input; on an exact tie it is split evenly, half to
// each, which is a valid subgradient and keeps the rule symmetric in a and b.

struct BinaryNode : Node {
  BinaryOp op;
  explicit BinaryNode(BinaryOp o) : op(o) {}
  const char* name() const override { return binary_op_name(op); }
  std::vector<Tensor> backward(const Tensor& g) override {
    const Tensor& a = inputs[0].value();
    const Tensor& b = inputs[1].value();
    const bool need_a = needs_input_grad(0), need_b = needs_input_grad(1);
    Tensor ga, gb;  // in the broadcast shape (g's), reduced below
    switch (op) {
      case BinaryOp::Add:
        ga = g;
        gb = g;
        break;
      case BinaryOp::Sub:
        ga = g;
        if (need_b) gb = jebm::neg(reduce_to(g, b.shape()));  // negate after reducing: fewer elements
        break;
      case BinaryOp::Mul:
        if (need_a) ga = jebm::mul(g, b);
        if (need_b) gb = jebm::mul(g, a);
        break;
      case BinaryOp::Div: {
        const Tensor g_over_b = jebm::div(g, b);  // d(a/b)/da = 1/b, d(a/b)/db = -a/b^2
        ga = g_over_b;
        if (need_b) gb = jebm::neg(reduce_to(jebm::div(jebm::mul(g_over_b, a), b), b.shape()));
        break;
      }
      case BinaryOp::Max:
      case BinaryOp::Min: {
        // s = sign(a - b) * g: the larger input gets (g + s)/2 -> g, the smaller (g - s)/2 -> 0, a tie g/2 each.
        const Tensor s = sign_times(jebm::sub(a, b), g);
        const Tensor to_larger = mul_scalar(jebm::add(g, s), 0.5);
        const Tensor to_smaller = mul_scalar(jebm::sub(g, s), 0.5);
        ga = op == BinaryOp::Max ? to_larger : to_smaller;
        gb = op == BinaryOp::Max ? to_smaller : to_larger;
        break;
      }
    }
    std::vector<Tensor> out(2);
    if (need_a) out[0] = reduce_to(ga, a.shape());
    if (need_b) out[1] = reduce_to(gb, b.shape());  // a no-op where the case reduced already (Sub, Div)
    return out;
  }
};

Var binary(BinaryOp op, const Var& a, const Var& b) {
  Tensor y = jebm::binary(op, a.value(), b.value());
  if (!needs_graph({&a, &b})) return Var(y);
  auto n = std::make_shared<BinaryNode>(op);
  n->inputs = {a, b};
  return Var::from_op(y, n);
}

Var add(const Var& a, const Var& b) { return binary(BinaryOp::Add, a, b); }
Var sub(const Var& a, const Var& b) { return binary(BinaryOp::Sub, a, b); }
Var mul(const Var& a, const Var& b) { return binary(BinaryOp::Mul, a, b); }
Var div(const Var& a, const Var& b) { return binary(BinaryOp::Div, a, b); }
Var maximum(const Var& a, const Var& b) { return binary(BinaryOp::Max, a, b); }
Var minimum(const Var& a, const Var& b) { return binary(BinaryOp::Min, a, b); }

// --- scalar ops -----------------------------------------------------------------------------------------

struct ScalarNode : Node {
  ScalarOp op;
  double s;
  ScalarNode(ScalarOp o, double v) : op(o), s(v) {}
  const char* name() const override {
    return op == ScalarOp::Add ? "add_scalar" : op == ScalarOp::Mul ? "mul_scalar" : "pow_scalar";
  }
  std::vector<Tensor> backward(const Tensor& g) override {
    if (op == ScalarOp::Add) return {g};
    if (op == ScalarOp::Mul) return {mul_scalar(g, s)};
    // Pow (the only other op recorded): d x^p / dx = p x^(p-1)
    return {jebm::mul(g, mul_scalar(pow_scalar(inputs[0].value(), s - 1.0), s))};
  }
};

namespace {
Var scalar_var_op(ScalarOp op, const Var& x, double s) {
  Tensor y = scalar_op(op, x.value(), s);
  if (!needs_graph({&x})) return Var(y);
  auto n = std::make_shared<ScalarNode>(op, s);
  n->inputs = {x};
  return Var::from_op(y, n);
}
}  // namespace

Var add_scalar(const Var& x, double s) { return scalar_var_op(ScalarOp::Add, x, s); }
Var mul_scalar(const Var& x, double s) { return scalar_var_op(ScalarOp::Mul, x, s); }
Var pow_scalar(const Var& x, double p) { return scalar_var_op(ScalarOp::Pow, x, p); }

}  // namespace jebm::ag
