// Differentiable shape and indexing ops: reshape/flatten (views; backward reshapes back), gather_rows (backward
// scatter_add_rows) and concat (backward slices the gradient). Tested by tests/test_autograd.cpp.
#include "autograd/ops.hpp"

namespace jebm::ag {

// --- reshape, flatten --------------------------------------------------------------------------------------

struct ReshapeNode : Node {
  const char* name() const override { return "reshape"; }
  std::vector<Tensor> backward(const Tensor& g) override { return {g.reshape(inputs[0].shape())}; }
};

Var reshape(const Var& x, const Shape& shape) {
  Tensor y = x.value().reshape(shape);  // a view sharing x's storage
  if (!needs_graph({&x})) return Var(y);
  auto n = std::make_shared<ReshapeNode>();
  n->inputs = {x};
  return Var::from_op(y, n);
}

Var flatten(const Var& x) {
  JEBM_CHECK(x.dim() >= 1, "flatten: needs at least one dimension, got " << shape_str(x.shape()));
  int64_t inner = 1;
  for (int64_t d = 1; d < x.dim(); ++d) inner *= x.size(d);
  return reshape(x, {x.size(0), inner});  // explicit, not -1: a batch of 0 rows must still work
}

// --- gather_rows -------------------------------------------------------------------------------------------

struct GatherRowsNode : Node {
  Tensor idx;  // Int64 [M]
  const char* name() const override { return "gather_rows"; }
  void release() override {
    idx = Tensor();
    Node::release();
  }
  // Rows gathered several times receive the sum of their gradients.
  std::vector<Tensor> backward(const Tensor& g) override {
    return {scatter_add_rows(g, idx, inputs[0].size(0))};
  }
};

Var gather_rows(const Var& x, const Tensor& idx) {
  Tensor y = jebm::gather_rows(x.value(), idx);
  if (!needs_graph({&x})) return Var(y);
  auto n = std::make_shared<GatherRowsNode>();
  n->idx = idx;
  n->inputs = {x};
  return Var::from_op(y, n);
}

// --- concat ------------------------------------------------------------------------------------------------
// The backward cuts the gradient back into the inputs' pieces. Viewed as [outer, total, inner] (total = the
// concatenated axis), input j is the block of columns [off_j, off_j + n_j) of every outer slice. With outer == 1
// that block is a row range, hence a view; otherwise its rows of the [outer * total, inner] view are gathered
// (no slicing kernel needed).

struct ConcatNode : Node {
  int64_t axis;  // normalized
  const char* name() const override { return "concat"; }
  std::vector<Tensor> backward(const Tensor& g) override {
    const Shape& gs = g.shape();
    int64_t outer = 1, inner = 1;
    for (int64_t d = 0; d < axis; ++d) outer *= gs[static_cast<size_t>(d)];
    for (int64_t d = axis + 1; d < g.dim(); ++d) inner *= gs[static_cast<size_t>(d)];
    const int64_t total = gs[static_cast<size_t>(axis)];
    std::vector<Tensor> out(inputs.size());
    int64_t off = 0;
    for (size_t j = 0; j < inputs.size(); ++j) {
      const int64_t nj = inputs[j].size(axis);
      if (needs_input_grad(j)) {
        if (outer == 1) {
          out[j] = g.reshape({total, inner}).rows(off, off + nj).reshape(inputs[j].shape());
        } else {
          std::vector<int64_t> rows;
          rows.reserve(static_cast<size_t>(outer * nj));
          for (int64_t o = 0; o < outer; ++o)
            for (int64_t c = off; c < off + nj; ++c) rows.push_back(o * total + c);
          const Tensor idx = Tensor::from_vector(rows, {outer * nj}, g.device());
          out[j] = jebm::gather_rows(g.reshape({outer * total, inner}), idx).reshape(inputs[j].shape());
        }
      }
      off += nj;
    }
    return out;
  }
};

Var concat(const std::vector<Var>& xs, int64_t axis) {
  JEBM_CHECK(!xs.empty(), "concat: no inputs");
  const int64_t dim = xs[0].dim();
  const int64_t a = axis < 0 ? axis + dim : axis;
  JEBM_CHECK(a >= 0 && a < dim, "concat: axis " << axis << " out of range for " << shape_str(xs[0].shape()));
  std::vector<Tensor> values;
  std::vector<const Var*> ptrs;
  for (const Var& x : xs) {
    values.push_back(x.value());
    ptrs.push_back(&x);
  }
  Tensor y = jebm::concat(values, a);
  if (!needs_graph(ptrs)) return Var(y);
  auto n = std::make_shared<ConcatNode>();
  n->axis = a;
  n->inputs = xs;
  return Var::from_op(y, n);
}

}  // namespace jebm::ag
