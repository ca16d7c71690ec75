// The reverse sweep: topological order of the nodes below the root, each node's backward once, gradients routed
// to their targets (leaves' .grad() for backward(), returned tensors for grad()), then the graph released.
// Tested by tests/test_autograd.cpp.
#include "autograd/engine.hpp"

#include <functional>
#include <unordered_map>
#include <unordered_set>
#include <utility>

#include "runtime/ops.hpp"

namespace jebm::ag {

namespace {

// Post-order (a node after every node feeding it) of the nodes reachable from root. Iterative, so a deep graph
// (long chains of small ops) cannot overflow the call stack.
std::vector<Node*> topo_order(Node* root) {
  std::vector<Node*> order;
  std::unordered_set<Node*> seen{root};
  std::vector<std::pair<Node*, size_t>> stack{{root, 0}};
  while (!stack.empty()) {
    Node* n = stack.back().first;
    JEBM_CHECK(!n->released, "backward: the graph through " << n->name()
                                 << " was already released by an earlier backward; run the forward again");
    const size_t i = stack.back().second++;
    if (i < n->inputs.size()) {
      Node* fn = n->inputs[i].grad_fn().get();
      if (fn && seen.insert(fn).second) stack.emplace_back(fn, 0);
    } else {
      order.push_back(n);
      stack.pop_back();
    }
  }
  return order;
}

// A gradient for the caller to keep: the tensor itself when nothing else holds it (a fresh backward result such as
// the input gradient of the first conv), else a copy, since it may alias another target's gradient, grad_root or a
// gradient still routed to a node, and optimizers edit .grad() in place.
Tensor owned(const Tensor& g) { return g.sole_owner() ? g : g.clone(); }

using IsTarget = std::function<bool(const Var&)>;
using Deliver = std::function<void(const Var&, const Tensor&)>;

// The one sweep behind backward() and grad(): every gradient reaching a target Var is handed to deliver();
// gradients of intermediate nodes live in a temporary map only until their node has run.
void sweep(const Var& root, const Tensor& grad_root_in, const IsTarget& is_target, const Deliver& deliver,
           const char* who) {
  JEBM_CHECK(root.defined(), who << ": undefined root");
  JEBM_CHECK(root.requires_grad(), who << ": the root " << shape_str(root.shape())
                                       << " does not require a gradient (no input of its graph requires one, or "
                                          "it was computed under NoGradGuard)");
  Tensor grad_root = grad_root_in;
  if (!grad_root.defined()) {
    JEBM_CHECK(root.value().numel() == 1, who << ": the root has shape " << shape_str(root.shape())
                                              << "; a non-scalar root needs grad_root");
    grad_root = Tensor::ones(root.shape(), root.dtype(), root.device());
  }
  JEBM_CHECK(grad_root.shape() == root.shape(), who << ": grad_root " << shape_str(grad_root.shape())
                                                    << " vs root " << shape_str(root.shape()));

  Node* root_fn = root.grad_fn().get();
  if (!root_fn) {
    if (is_target(root)) deliver(root, grad_root);
    return;
  }
  const std::vector<Node*> order = topo_order(root_fn);

  // A node runs only when some gradient it produces reaches a target (grad(U, {x}) skips weight-only branches).
  // Post-order visits a node's producers first, so one forward pass fills the table.
  std::unordered_map<Node*, bool> needed;
  std::unordered_map<Node*, std::vector<bool>> wanted;
  for (Node* n : order) {
    std::vector<bool> w(n->inputs.size(), false);
    bool any = false;
    for (size_t i = 0; i < n->inputs.size(); ++i) {
      const Var& in = n->inputs[i];
      if (!in.requires_grad()) continue;
      Node* fn = in.grad_fn().get();
      w[i] = is_target(in) || (fn && needed[fn]);
      any = any || w[i];
    }
    needed[n] = any;
    wanted[n] = std::move(w);
  }

  std::unordered_map<Node*, Tensor> grads{{root_fn, grad_root}};
  if (is_target(root)) deliver(root, grad_root);  // after the table holds grad_root, so owned() copies it
  for (auto it = order.rbegin(); it != order.rend(); ++it) {
    Node* n = *it;
    auto g = grads.find(n);
    if (!needed[n] || g == grads.end()) continue;
    const Tensor grad_out = std::move(g->second);  // read by nothing after n->backward, which may write into it
    grads.erase(g);
    n->wanted = wanted[n];
    std::vector<Tensor> gin = n->backward(grad_out);
    JEBM_CHECK(gin.size() == n->inputs.size(), who << ": " << n->name() << " returned " << gin.size()
                                                   << " gradients for " << n->inputs.size() << " inputs");
    for (size_t i = 0; i < gin.size(); ++i) {
      if (!n->wanted[i] || !gin[i].defined()) continue;
      const Var& in = n->inputs[i];
      JEBM_CHECK(gin[i].shape() == in.shape() && gin[i].dtype() == in.dtype(),
                 who << ": " << n->name() << " gave input " << i << " a gradient " << shape_str(gin[i].shape())
                     << " " << dtype_name(gin[i].dtype()) << " for a value " << shape_str(in.shape()) << " "
                     << dtype_name(in.dtype()));
      Node* fn = in.grad_fn().get();
      if (fn && needed[fn]) {
        auto slot = grads.find(fn);
        // Not in place: a backward may hand the same tensor (or a view of it) to several inputs.
        if (slot == grads.end()) grads.emplace(fn, gin[i]);
        else slot->second = add(slot->second, gin[i]);
      }
      // After the routing above, so that owned() sees the reference the table keeps.
      if (is_target(in)) deliver(in, gin[i]);
    }
  }
  for (Node* n : order) n->release();
}

}  // namespace

void backward(const Var& root, const Tensor& grad_root) {
  auto is_target = [](const Var& v) { return v.is_leaf() && v.requires_grad(); };
  auto deliver = [](const Var& v, const Tensor& g) {
    Tensor& acc = v.impl()->grad;
    if (!acc.defined()) acc = owned(g);
    else add_(acc, g);
  };
  sweep(root, grad_root, is_target, deliver, "backward");
}

std::vector<Tensor> grad(const Var& root, const std::vector<Var>& inputs, const Tensor& grad_root) {
  std::unordered_map<const VarImpl*, size_t> slot;
  for (size_t i = 0; i < inputs.size(); ++i) {
    JEBM_CHECK(inputs[i].defined(), "grad: input " << i << " is undefined");
    slot.emplace(inputs[i].impl().get(), i);  // a Var listed twice gets its gradient in the first slot
  }
  std::vector<Tensor> out(inputs.size());
  auto is_target = [&](const Var& v) { return slot.count(v.impl().get()) > 0; };
  auto deliver = [&](const Var& v, const Tensor& g) {
    Tensor& acc = out[slot.at(v.impl().get())];
    if (!acc.defined()) acc = owned(g);  // the caller's, never shared with an internal gradient
    else add_(acc, g);
  };
  sweep(root, grad_root, is_target, deliver, "grad");
  // Inputs the root does not depend on get zeros, so callers (Langevin drifts) need no special case.
  for (size_t i = 0; i < inputs.size(); ++i) {
    const size_t first = slot.at(inputs[i].impl().get());
    if (first != i) out[i] = out[first].defined() ? out[first].clone() : Tensor();
    if (!out[i].defined()) out[i] = Tensor::zeros(inputs[i].shape(), inputs[i].dtype(), inputs[i].device());
  }
  return out;
}

}  // namespace jebm::ag
