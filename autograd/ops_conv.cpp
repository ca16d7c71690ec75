// Differentiable conv2d (NCHW). The backward calls the runtime's conv2d_backward_{data,filter,bias}, the same
// routines the CUDA backend maps to cuDNN. Tested by tests/test_autograd.cpp (stride 1/2, padding 0/1/2, a conv net).
#include "autograd/ops.hpp"

namespace jebm::ag {

// inputs: {x [N, C, H, W], w [F, C, KH, KW]} plus b [F] when the forward had a bias.
struct Conv2dNode : Node {
  Conv2dParams p;
  explicit Conv2dNode(const Conv2dParams& params) : p(params) {}
  const char* name() const override { return "conv2d"; }
  std::vector<Tensor> backward(const Tensor& g) override {  // g: [N, F, OH, OW]
    const Tensor& x = inputs[0].value();
    const Tensor& w = inputs[1].value();
    std::vector<Tensor> out(inputs.size());
    if (needs_input_grad(0)) out[0] = conv2d_backward_data(g, w, x.shape(), p);
    if (needs_input_grad(1)) out[1] = conv2d_backward_filter(g, x, w.shape(), p);
    if (inputs.size() > 2 && needs_input_grad(2)) out[2] = conv2d_backward_bias(g);
    return out;
  }
};

Var conv2d(const Var& x, const Var& w, const Var& b, const Conv2dParams& p) {
  Tensor y = jebm::conv2d(x.value(), w.value(), b.defined() ? b.value() : Tensor(), p);
  if (!needs_graph({&x, &w, &b})) return Var(y);
  auto n = std::make_shared<Conv2dNode>(p);
  n->inputs = {x, w};
  if (b.defined()) n->inputs.push_back(b);
  return Var::from_op(y, n);
}

}  // namespace jebm::ag
