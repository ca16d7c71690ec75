// Differentiable ops on Vars, mirroring runtime/ops.hpp. Each op's forward calls the runtime op and, when a
// graph is needed, records a Node whose backward sits right below the forward in autograd/ops_<family>.cpp:
//   ops_elementwise.cpp (unary, binary, scalar), ops_reduce.cpp, ops_linalg.cpp (matmul, linear),
//   ops_conv.cpp, ops_shape.cpp (reshape, gather_rows, concat).
// Every op has a float64 finite-difference gradient check in tests/test_autograd.cpp.
#pragma once
#include <vector>

#include "autograd/variable.hpp"
#include "runtime/ops.hpp"

namespace jebm::ag {

// elementwise (broadcasting as in runtime/ops.hpp)
Var unary(UnaryOp op, const Var& x, double alpha = 0.0);
Var binary(BinaryOp op, const Var& a, const Var& b);
Var add(const Var& a, const Var& b);
Var sub(const Var& a, const Var& b);
Var mul(const Var& a, const Var& b);
Var div(const Var& a, const Var& b);
Var maximum(const Var& a, const Var& b);
Var minimum(const Var& a, const Var& b);
Var neg(const Var& x);
Var exp(const Var& x);
Var log(const Var& x);
Var sqrt(const Var& x);
Var square(const Var& x);
Var abs(const Var& x);
Var tanh(const Var& x);
Var sigmoid(const Var& x);
Var softplus(const Var& x);
Var relu(const Var& x);
Var silu(const Var& x);
Var leaky_relu(const Var& x, double slope);
Var add_scalar(const Var& x, double s);
Var mul_scalar(const Var& x, double s);
Var pow_scalar(const Var& x, double p);
inline Var operator+(const Var& a, const Var& b) { return add(a, b); }
inline Var operator-(const Var& a, const Var& b) { return sub(a, b); }
inline Var operator*(const Var& a, const Var& b) { return mul(a, b); }
inline Var operator/(const Var& a, const Var& b) { return div(a, b); }
inline Var operator-(const Var& x) { return neg(x); }

// reductions
Var reduce(ReduceOp op, const Var& x, int64_t axis, bool keepdim = false);
Var sum(const Var& x, int64_t axis, bool keepdim = false);
Var mean(const Var& x, int64_t axis, bool keepdim = false);
Var max(const Var& x, int64_t axis, bool keepdim = false);
Var logsumexp(const Var& x, int64_t axis, bool keepdim = false);
Var sum_all(const Var& x);
Var mean_all(const Var& x);

// linear algebra
Var matmul(const Var& a, const Var& b, bool trans_a = false, bool trans_b = false);
Var linear(const Var& x, const Var& w, const Var& b);  // x [N, in], w [out, in], b [out] or undefined

// convolution
Var conv2d(const Var& x, const Var& w, const Var& b, const Conv2dParams& p);  // b may be undefined

// shape and indexing
Var reshape(const Var& x, const Shape& shape);
Var flatten(const Var& x);  // [N, ...] -> [N, prod(...)]
Var gather_rows(const Var& x, const Tensor& idx);
Var concat(const std::vector<Var>& xs, int64_t axis);

}  // namespace jebm::ag
