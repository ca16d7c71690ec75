// Differentiable matmul (with transpose flags) and linear = x w^T + b. The backward uses the runtime matmul's
// flags instead of materialising transposes. Tested by tests/test_autograd.cpp.
#include "autograd/ops.hpp"

namespace jebm::ag {

// C = op(A) op(B). With G = dL/dC, dL/dop(A) = G op(B)^T and dL/dop(B) = op(A)^T G; transposing back where the
// flag is set gives the four cases below, each a single GEMM.
struct MatmulNode : Node {
  bool trans_a, trans_b;
  MatmulNode(bool ta, bool tb) : trans_a(ta), trans_b(tb) {}
  const char* name() const override { return "matmul"; }
  std::vector<Tensor> backward(const Tensor& g) override {
    const Tensor& a = inputs[0].value();
    const Tensor& b = inputs[1].value();
    std::vector<Tensor> out(2);
    if (needs_input_grad(0)) {
      if (!trans_a) out[0] = trans_b ? jebm::matmul(g, b) : jebm::matmul(g, b, false, true);   // [M, K]
      else out[0] = trans_b ? jebm::matmul(b, g, true, true) : jebm::matmul(b, g, false, true);  // [K, M]
    }
    if (needs_input_grad(1)) {
      if (!trans_b) out[1] = trans_a ? jebm::matmul(a, g) : jebm::matmul(a, g, true, false);   // [K, N]
      else out[1] = trans_a ? jebm::matmul(g, a, true, true) : jebm::matmul(g, a, true, false);  // [N, K]
    }
    return out;
  }
};

Var matmul(const Var& a, const Var& b, bool trans_a, bool trans_b) {
  Tensor y = jebm::matmul(a.value(), b.value(), trans_a, trans_b);
  if (!needs_graph({&a, &b})) return Var(y);
  auto n = std::make_shared<MatmulNode>(trans_a, trans_b);
  n->inputs = {a, b};
  return Var::from_op(y, n);
}

// Composed from matmul and a broadcasting add: the add's backward already sums the bias gradient over rows.
Var linear(const Var& x, const Var& w, const Var& b) {
  JEBM_CHECK(x.dim() == 2 && w.dim() == 2 && x.size(1) == w.size(1),
             "linear: x " << shape_str(x.shape()) << " and w " << shape_str(w.shape())
                          << " must be [N, in] and [out, in]");
  JEBM_CHECK(!b.defined() || b.shape() == Shape{w.size(0)},
             "linear: bias " << shape_str(b.shape()) << " for w " << shape_str(w.shape()) << " must be [out]");
  Var y = matmul(x, w, false, true);  // [N, out]
  return b.defined() ? add(y, b) : y;
}

}  // namespace jebm::ag
