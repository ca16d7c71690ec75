// Differentiable reductions: sum/mean/max/logsumexp along one axis (keepdim or not) and over everything.
// Each node's backward sits below its forward. Tested by tests/test_autograd.cpp.
#include "autograd/ops.hpp"

namespace jebm::ag {

namespace {

// g broadcast to `shape` (the runtime has no expand; adding to zeros broadcasts it).
Tensor expand_to(const Tensor& g, const Shape& shape) {
  return g.shape() == shape ? g : jebm::add(Tensor::zeros(shape, g.dtype(), g.device()), g);
}

int64_t normalize_axis(int64_t axis, int64_t dim, const char* op) {
  const int64_t a = axis < 0 ? axis + dim : axis;
  JEBM_CHECK(a >= 0 && a < dim, op << ": axis " << axis << " out of range for a " << dim << "-d tensor");
  return a;
}

}  // namespace

// max: the gradient goes to the maximal element; ties along the axis share it evenly.
// logsumexp: d LSE / dx = softmax(x) along the axis, recomputed from x and the saved output.
struct ReduceNode : Node {
  ReduceOp op;
  int64_t axis;     // normalized
  Tensor y_keep;    // the output with the reduced axis kept as 1 (max, logsumexp only)
  const char* name() const override { return reduce_op_name(op); }
  void release() override {
    y_keep = Tensor();
    Node::release();
  }
  std::vector<Tensor> backward(const Tensor& g) override {
    const Tensor& x = inputs[0].value();
    Shape keep = x.shape();
    keep[static_cast<size_t>(axis)] = 1;
    const Tensor g_keep = g.reshape(keep);  // x: [.., n, ..], g_keep: [.., 1, ..]
    switch (op) {
      case ReduceOp::Sum: return {expand_to(g_keep, x.shape())};
      case ReduceOp::Mean:
        return {expand_to(mul_scalar(g_keep, 1.0 / static_cast<double>(x.size(axis))), x.shape())};
      case ReduceOp::LogSumExp: return {jebm::mul(jebm::exp(jebm::sub(x, y_keep)), g_keep)};
      case ReduceOp::Max:
      default: {
        // d = x - max <= 0; 1 + sign(d) is exactly 1 at the maxima and 0 elsewhere (see sign_times in
        // ops_elementwise.cpp for why this holds whatever the runtime's Relu derivative at 0 is).
        const Tensor d = jebm::sub(x, y_keep);
        const Tensor ones = Tensor::ones(x.shape(), x.dtype(), x.device());
        const Tensor sign = jebm::sub(unary_backward(UnaryOp::Relu, d, ones),
                                      unary_backward(UnaryOp::Relu, jebm::neg(d), ones));
        const Tensor is_max = add_scalar(sign, 1.0);
        const Tensor count = jebm::sum(is_max, axis, true);
        return {jebm::mul(is_max, jebm::div(g_keep, count))};
      }
    }
  }
};

Var reduce(ReduceOp op, const Var& x, int64_t axis, bool keepdim) {
  const int64_t a = normalize_axis(axis, x.dim(), reduce_op_name(op));
  Tensor y = jebm::reduce(op, x.value(), a, keepdim);
  if (!needs_graph({&x})) return Var(y);
  auto n = std::make_shared<ReduceNode>();
  n->op = op;
  n->axis = a;
  if (op == ReduceOp::Max || op == ReduceOp::LogSumExp) {
    Shape keep = x.shape();
    keep[static_cast<size_t>(a)] = 1;
    n->y_keep = y.reshape(keep);
  }
  n->inputs = {x};
  return Var::from_op(y, n);
}

Var sum(const Var& x, int64_t axis, bool keepdim) { return reduce(ReduceOp::Sum, x, axis, keepdim); }
Var mean(const Var& x, int64_t axis, bool keepdim) { return reduce(ReduceOp::Mean, x, axis, keepdim); }
Var max(const Var& x, int64_t axis, bool keepdim) { return reduce(ReduceOp::Max, x, axis, keepdim); }
Var logsumexp(const Var& x, int64_t axis, bool keepdim) { return reduce(ReduceOp::LogSumExp, x, axis, keepdim); }

// --- over all elements -> shape {} -----------------------------------------------------------------------

struct ReduceAllNode : Node {
  bool is_mean;
  explicit ReduceAllNode(bool m) : is_mean(m) {}
  const char* name() const override { return is_mean ? "mean_all" : "sum_all"; }
  std::vector<Tensor> backward(const Tensor& g) override {
    const Tensor& x = inputs[0].value();
    const Tensor gs = is_mean ? mul_scalar(g, 1.0 / static_cast<double>(x.numel())) : g;
    return {expand_to(gs, x.shape())};
  }
};

namespace {
Var reduce_all_var(const Var& x, bool is_mean) {
  Tensor y = reduce_all(is_mean ? ReduceOp::Mean : ReduceOp::Sum, x.value());
  if (!needs_graph({&x})) return Var(y);
  auto n = std::make_shared<ReduceAllNode>(is_mean);
  n->inputs = {x};
  return Var::from_op(y, n);
}
}  // namespace

Var sum_all(const Var& x) { return reduce_all_var(x, false); }
Var mean_all(const Var& x) { return reduce_all_var(x, true); }

}  // namespace jebm::ag
