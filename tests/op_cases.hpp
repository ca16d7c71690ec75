// The op-case table (ggml's test-backend-ops, STYLE.md "One harness"): one row per op configuration, with its
// input shapes and range, how to run it through runtime/ops.hpp, a naive double-precision reference, its autograd
// form, and tolerances. Three harnesses read it: tests/test_ops.cpp (CPU values vs the reference, float32 and
// float64), tests/test_cuda_ops.cpp (CUDA vs CPU on identical inputs) and tests/test_autograd.cpp (float64
// gradients vs central finite differences). Adding an op = its kernels plus one row here (tests/op_cases.cpp).
#pragma once
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "autograd/variable.hpp"
#include "runtime/ops.hpp"

namespace jebm::test {

// A host array for the references, in double.
struct Host {
  Shape shape;
  std::vector<double> v;
};

struct Tol {
  double atol = 0.0, rtol = 0.0;
};

using RunFn = std::function<std::vector<Tensor>(const std::vector<Tensor>&)>;
using RefFn = std::function<std::vector<Host>(const std::vector<Host>&)>;
using GradFn = std::function<ag::Var(const std::vector<ag::Var>&)>;

struct OpCase {
  std::string family, name;
  std::vector<Shape> shapes;  // float inputs, drawn uniformly from [lo, hi]
  double lo, hi;
  double tol32, tol64;  // vs the reference; used as both atol and rtol
  RunFn run;            // through runtime/ops.hpp, so it runs on whatever device its inputs live on
  RefFn ref;
  bool avoid_kink = false;  // nudge inputs away from 0 (ReLU, |x|, ...)
  GradFn grad = nullptr;    // the same op through autograd/ops.hpp; empty: no gradient check (too big, no autograd op)
  Tol cuda32{}, cuda64{};   // CUDA vs CPU
  bool cuda_comparable = true;  // false: CUDA may legitimately differ (index_copy_rows_ with repeats: any write wins)
};

// Every case, built once.
const std::vector<OpCase>& op_cases();
// The rows of gemm, conv2d, the index ops and Adam (tests/op_cases_layers.cpp), and of fill_, cast and the random
// fills (tests/op_cases_data.cpp), appended by op_cases().
void add_gemm_cases(std::vector<OpCase>& t);
void add_conv_cases(std::vector<OpCase>& t);
void add_index_cases(std::vector<OpCase>& t);
void add_adam_cases(std::vector<OpCase>& t);
void add_data_cases(std::vector<OpCase>& t);

// Input k of case c as host values: a fixed stream per (case name, k), so every harness and backend sees the same.
std::vector<double> op_case_input(const OpCase& c, size_t k);

// Machine epsilon of a float dtype.
inline double eps_of(DType t) { return t == DType::Float32 ? 1.1920928955078125e-7 : 2.220446049250313e-16; }

// Helpers of the rows' references: zeros of a shape, the multi-index of a flat index.
inline Host host_zeros(const Shape& s) { return {s, std::vector<double>(static_cast<size_t>(shape_numel(s)), 0.0)}; }
inline std::vector<int64_t> unravel(int64_t flat, const Shape& s) {
  std::vector<int64_t> idx(s.size());
  for (size_t k = s.size(); k-- > 0;) {
    idx[k] = flat % s[k];
    flat /= s[k];
  }
  return idx;
}

// CUDA vs CPU within {atol, rtol} = (a, r) machine epsilons of the dtype.
inline void cuda_eps(OpCase& c, double a, double r) {
  c.cuda32 = {a * eps_of(DType::Float32), r * eps_of(DType::Float32)};
  c.cuda64 = {a * eps_of(DType::Float64), r * eps_of(DType::Float64)};
}

// Finite differences cost two forwards per input element: gradients are checked on small cases only.
inline bool small_enough_for_fd(const std::vector<Shape>& shapes) {
  int64_t n = 0;
  for (const Shape& s : shapes) n += shape_numel(s);
  return n <= 1000;
}

// The unary ops, in enum order: the special-value tests and the table walk all of them.
const std::vector<UnaryOp>& all_unary_ops();

// The exact value (long double) of each unary op and of its derivative, with the limits at +-inf written out where
// IEEE arithmetic would give inf * 0 (silu). NaN in, NaN out, except where the derivative does not read x (neg).
long double unary_exact(UnaryOp op, long double x, long double alpha);
long double unary_derivative_exact(UnaryOp op, long double x, long double alpha);

// Inputs every unary op must survive: NaN, +-inf, +-the largest finite value, +-1e308 (float64) or
// +-1e38 (float32), +-denormal, +-smallest normal, +-0, and ordinary and saturating values; all representable in
// `dtype`, repeated to a length that runs the vectorised loops and their remainders.
std::vector<double> special_values(DType dtype);

}  // namespace jebm::test
