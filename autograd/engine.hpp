// The reverse sweep (micrograd-sized): topological order from the root, then each node's backward once,
// accumulating (+=) into leaves' .grad(). The graph below the root is released afterwards.
#pragma once
#include <vector>

#include "autograd/variable.hpp"

namespace jebm::ag {

// root must be a scalar unless grad_root (same shape as root) is given.
void backward(const Var& root, const Tensor& grad_root = Tensor());

// Gradients of root w.r.t. `inputs` (any Vars in the graph), returned instead of accumulated; leaves' .grad()
// is left untouched. The graph is released afterwards.
std::vector<Tensor> grad(const Var& root, const std::vector<Var>& inputs, const Tensor& grad_root = Tensor());

}  // namespace jebm::ag
