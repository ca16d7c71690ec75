// The ops layer: validates arguments (messages name the op and both shapes), allocates outputs and dispatches
// to runtime/cpu/<family>.cpp or runtime/cuda/<family>.cu by the tensors' device (JEBM_DISPATCH, runtime/backend.hpp).
// Tested by tests/test_ops.cpp, tests/test_tensor.cpp, tests/test_rng.cpp and, on GPUs, tests/test_cuda_ops.cpp.
#include "runtime/ops.hpp"

#include <algorithm>
#include <array>
#include <cmath>
#include <string>

#include "runtime/backend.hpp"

namespace jebm {

namespace {

std::string describe(const Tensor& t) {
  if (!t.defined()) return "undefined";
  return shape_str(t.shape()) + " " + dtype_name(t.dtype()) + " " + t.device().str();
}

void check_defined(const char* op, const Tensor& t, const char* name) {
  JEBM_CHECK(t.defined(), op << ": " << name << " is an undefined tensor");
}

void check_float(const char* op, const Tensor& t, const char* name) {
  check_defined(op, t, name);
  JEBM_CHECK(t.dtype() == DType::Float32 || t.dtype() == DType::Float64,
             op << ": " << name << " must be float32 or float64, got " << describe(t));
}

// Same dtype and device; the message names both tensors.
void check_compatible(const char* op, const Tensor& a, const char* an, const Tensor& b, const char* bn) {
  check_defined(op, a, an);
  check_defined(op, b, bn);
  JEBM_CHECK(a.dtype() == b.dtype(), op << ": dtype mismatch: " << an << " " << describe(a) << " vs " << bn << " "
                                        << describe(b));
  JEBM_CHECK(a.device() == b.device(), op << ": device mismatch: " << an << " " << describe(a) << " vs " << bn << " "
                                          << describe(b));
}

void check_same_shape(const char* op, const Tensor& a, const char* an, const Tensor& b, const char* bn) {
  check_compatible(op, a, an, b, bn);
  JEBM_CHECK(a.shape() == b.shape(), op << ": shape mismatch: " << an << " " << shape_str(a.shape()) << " vs " << bn
                                        << " " << shape_str(b.shape()));
}

void check_index(const char* op, const Tensor& idx, const Tensor& x) {
  check_defined(op, idx, "idx");
  JEBM_CHECK(idx.dtype() == DType::Int64 && idx.dim() == 1,
             op << ": idx must be a 1-D int64 tensor, got " << describe(idx));
  JEBM_CHECK(idx.device() == x.device(), op << ": idx " << describe(idx) << " is on another device than "
                                            << describe(x));
}

int64_t normalize_axis(const char* op, int64_t axis, int64_t rank, const Shape& shape) {
  const int64_t r = std::max<int64_t>(rank, 1);  // a 0-d tensor reduces like a [1] tensor
  const int64_t a = axis < 0 ? axis + r : axis;
  JEBM_CHECK(a >= 0 && a < r, op << ": axis " << axis << " out of range for shape " << shape_str(shape));
  return a;
}

}  // namespace

const char* unary_op_name(UnaryOp op) {
  switch (op) {
    case UnaryOp::Neg: return "neg";
    case UnaryOp::Exp: return "exp";
    case UnaryOp::Log: return "log";
    case UnaryOp::Sqrt: return "sqrt";
    case UnaryOp::Square: return "square";
    case UnaryOp::Abs: return "abs";
    case UnaryOp::Tanh: return "tanh";
    case UnaryOp::Sigmoid: return "sigmoid";
    case UnaryOp::Softplus: return "softplus";
    case UnaryOp::Relu: return "relu";
    case UnaryOp::Silu: return "silu";
    case UnaryOp::LeakyRelu: return "leaky_relu";
  }
  return "unknown";
}

const char* binary_op_name(BinaryOp op) {
  switch (op) {
    case BinaryOp::Add: return "add";
    case BinaryOp::Sub: return "sub";
    case BinaryOp::Mul: return "mul";
    case BinaryOp::Div: return "div";
    case BinaryOp::Max: return "maximum";
    case BinaryOp::Min: return "minimum";
  }
  return "unknown";
}

const char* reduce_op_name(ReduceOp op) {
  switch (op) {
    case ReduceOp::Sum: return "sum";
    case ReduceOp::Mean: return "mean";
    case ReduceOp::Max: return "max";
    case ReduceOp::LogSumExp: return "logsumexp";
  }
  return "unknown";
}

// --- elementwise ------------------------------------------------------------------------------------------

Shape broadcast_shapes(const Shape& a, const Shape& b, const char* op) {
  const size_t r = std::max(a.size(), b.size());
  Shape out(r);
  for (size_t k = 0; k < r; ++k) {
    const int64_t da = k < r - a.size() ? 1 : a[k - (r - a.size())];
    const int64_t db = k < r - b.size() ? 1 : b[k - (r - b.size())];
    JEBM_CHECK(da == db || da == 1 || db == 1, op << ": shapes " << shape_str(a) << " and " << shape_str(b)
                                                  << " cannot be broadcast (dimension " << k << ": " << da << " vs "
                                                  << db << ")");
    out[k] = da == 1 ? db : da;
  }
  return out;
}

Tensor unary(UnaryOp op, const Tensor& x, double alpha) {
  check_float(unary_op_name(op), x, "x");
  Tensor y = Tensor::empty(x.shape(), x.dtype(), x.device());
  JEBM_DISPATCH(x.device(), unary, op, x, y, alpha);
  return y;
}

Tensor unary_backward(UnaryOp op, const Tensor& x, const Tensor& grad_y, double alpha) {
  const std::string name = std::string(unary_op_name(op)) + "_backward";
  check_float(name.c_str(), x, "x");
  check_same_shape(name.c_str(), x, "x", grad_y, "grad_y");
  Tensor gx = Tensor::empty(x.shape(), x.dtype(), x.device());
  JEBM_DISPATCH(x.device(), unary_backward, op, x, grad_y, gx, alpha);
  return gx;
}

Tensor unary_with_derivative(UnaryOp op, const Tensor& x, Tensor& dydx, double alpha) {
  check_float(unary_op_name(op), x, "x");
  Tensor y = Tensor::empty(x.shape(), x.dtype(), x.device());
  dydx = Tensor::empty(x.shape(), x.dtype(), x.device());
  JEBM_DISPATCH(x.device(), unary_with_derivative, op, x, y, dydx, alpha);
  return y;
}

Tensor binary(BinaryOp op, const Tensor& a, const Tensor& b) {
  const char* name = binary_op_name(op);
  check_float(name, a, "a");
  check_compatible(name, a, "a", b, "b");
  Tensor out = Tensor::empty(broadcast_shapes(a.shape(), b.shape(), name), a.dtype(), a.device());
  JEBM_DISPATCH(a.device(), binary, op, a, b, out);
  return out;
}

Tensor scalar_op(ScalarOp op, const Tensor& x, double s, double s2) {
  check_float("scalar_op", x, "x");
  if (op == ScalarOp::Clamp) JEBM_CHECK(s <= s2, "clamp: lo " << s << " > hi " << s2);
  Tensor y = Tensor::empty(x.shape(), x.dtype(), x.device());
  JEBM_DISPATCH(x.device(), scalar_op, op, x, s, s2, y);
  return y;
}

void axpby_(double a, const Tensor& x, double b, Tensor& y) {
  check_float("axpby_", y, "y");
  check_same_shape("axpby_", x, "x", y, "y");
  JEBM_DISPATCH(y.device(), axpby, a, x, b, y);
}

void mul_(Tensor& y, const Tensor& x) {
  check_float("mul_", y, "y");
  check_same_shape("mul_", x, "x", y, "y");
  JEBM_DISPATCH(y.device(), binary, BinaryOp::Mul, y, x, y);
}

void fill_(Tensor& y, double value) {
  check_defined("fill_", y, "y");
  JEBM_DISPATCH(y.device(), fill, y, value);
}

Tensor cast(const Tensor& x, DType dtype) {
  check_defined("cast", x, "x");
  Tensor y = Tensor::empty(x.shape(), dtype, x.device());
  JEBM_DISPATCH(x.device(), cast, x, y);
  return y;
}

// --- reductions -------------------------------------------------------------------------------------------

Tensor reduce(ReduceOp op, const Tensor& x, int64_t axis, bool keepdim) {
  const char* name = reduce_op_name(op);
  check_float(name, x, "x");
  const int64_t a = normalize_axis(name, axis, x.dim(), x.shape());
  Shape xs = x.shape();
  if (xs.empty()) xs = {1};
  int64_t outer = 1, inner = 1;
  for (int64_t k = 0; k < a; ++k) outer *= xs[static_cast<size_t>(k)];
  for (size_t k = static_cast<size_t>(a) + 1; k < xs.size(); ++k) inner *= xs[k];
  const int64_t n = xs[static_cast<size_t>(a)];
  JEBM_CHECK(n > 0 || op == ReduceOp::Sum, name << ": cannot reduce an empty axis " << axis << " of shape "
                                                << shape_str(x.shape()));
  Shape ys = xs;
  if (keepdim) ys[static_cast<size_t>(a)] = 1;
  else ys.erase(ys.begin() + a);
  if (x.dim() == 0) ys = {};  // reducing a 0-d tensor gives a 0-d tensor
  Tensor y = Tensor::empty(ys, x.dtype(), x.device());
  JEBM_DISPATCH(x.device(), reduce, op, x, outer, n, inner, y);
  return y;
}

Tensor reduce_all(ReduceOp op, const Tensor& x) {
  const char* name = reduce_op_name(op);
  check_float(name, x, "x");
  JEBM_CHECK(x.numel() > 0 || op == ReduceOp::Sum, name << ": cannot reduce an empty tensor of shape "
                                                        << shape_str(x.shape()));
  Tensor y = Tensor::empty({}, x.dtype(), x.device());
  JEBM_DISPATCH(x.device(), reduce, op, x, 1, x.numel(), 1, y);
  return y;
}

int64_t first_non_finite(const Tensor& t, double* value) {
  if (!t.defined() || t.dtype() == DType::Int64) return -1;
  if (!t.device().is_cpu()) {
    if (sum_all(mul_scalar(t, 0.0)).item() == 0.0) return -1;
    return first_non_finite(t.to(Device::cpu()), value);
  }
  const std::vector<double> v = t.to_vector();
  for (size_t i = 0; i < v.size(); ++i)
    if (!std::isfinite(v[i])) {
      if (value) *value = v[i];
      return static_cast<int64_t>(i);
    }
  return -1;
}

Tensor sum_to(const Tensor& g, const Shape& shape) {
  check_float("sum_to", g, "g");
  JEBM_CHECK(shape.size() <= g.shape().size() && broadcast_shapes(shape, g.shape(), "sum_to") == g.shape(),
             "sum_to: shape " << shape_str(shape) << " does not broadcast to " << shape_str(g.shape()));
  // Always a fresh tensor, never an alias of g: autograd accumulates into the result in place.
  if (shape_numel(shape) == g.numel()) return g.clone().reshape(shape);
  Tensor out = Tensor::empty(shape, g.dtype(), g.device());
  JEBM_DISPATCH(g.device(), sum_to, g, out);
  return out;
}

// --- GEMM -------------------------------------------------------------------------------------------------

namespace {
// op(a) [M, K] x op(b) [K, N]: returns {M, K, N}.
std::array<int64_t, 3> gemm_dims(const char* op, const Tensor& a, const Tensor& b, bool ta, bool tb) {
  check_float(op, a, "a");
  check_compatible(op, a, "a", b, "b");
  JEBM_CHECK(a.dim() == 2 && b.dim() == 2, op << ": expects 2-D operands, got a " << shape_str(a.shape()) << " and b "
                                              << shape_str(b.shape()));
  const int64_t m = ta ? a.size(1) : a.size(0), ka = ta ? a.size(0) : a.size(1);
  const int64_t kb = tb ? b.size(1) : b.size(0), n = tb ? b.size(0) : b.size(1);
  JEBM_CHECK(ka == kb, op << ": inner dimensions differ: a " << shape_str(a.shape()) << (ta ? " (transposed)" : "")
                          << " vs b " << shape_str(b.shape()) << (tb ? " (transposed)" : ""));
  return {m, ka, n};
}
}  // namespace

Tensor matmul(const Tensor& a, const Tensor& b, bool trans_a, bool trans_b) {
  const auto d = gemm_dims("matmul", a, b, trans_a, trans_b);
  Tensor c = Tensor::empty({d[0], d[2]}, a.dtype(), a.device());
  JEBM_DISPATCH(a.device(), gemm, trans_a, trans_b, 1.0, a, b, 0.0, c);
  return c;
}

void gemm_(bool trans_a, bool trans_b, double alpha, const Tensor& a, const Tensor& b, double beta, Tensor& c) {
  const auto d = gemm_dims("gemm_", a, b, trans_a, trans_b);
  check_compatible("gemm_", a, "a", c, "c");
  JEBM_CHECK(c.shape() == Shape({d[0], d[2]}), "gemm_: c has shape " << shape_str(c.shape()) << ", op(a) op(b) has ["
                                                                     << d[0] << ", " << d[2] << "]");
  JEBM_DISPATCH(a.device(), gemm, trans_a, trans_b, alpha, a, b, beta, c);
}

// --- conv2d -----------------------------------------------------------------------------------------------

Shape conv2d_output_shape(const Shape& x, const Shape& w, const Conv2dParams& p) {
  JEBM_CHECK(x.size() == 4 && w.size() == 4, "conv2d: expects x [N, C, H, W] and w [F, C, KH, KW], got x "
                                                 << shape_str(x) << " and w " << shape_str(w));
  JEBM_CHECK(x[1] == w[1], "conv2d: channels differ: x " << shape_str(x) << " vs w " << shape_str(w));
  JEBM_CHECK(p.stride >= 1 && p.padding >= 0,
             "conv2d: stride " << p.stride << " must be >= 1 and padding " << p.padding << " >= 0");
  const int64_t oh = (x[2] + 2 * p.padding - w[2]) / p.stride + 1;
  const int64_t ow = (x[3] + 2 * p.padding - w[3]) / p.stride + 1;
  JEBM_CHECK(x[2] + 2 * p.padding >= w[2] && x[3] + 2 * p.padding >= w[3] && oh > 0 && ow > 0,
             "conv2d: kernel " << shape_str(w) << " larger than padded input " << shape_str(x) << " (padding "
                               << p.padding << ")");
  return {x[0], w[0], oh, ow};
}

Tensor conv2d(const Tensor& x, const Tensor& w, const Tensor& bias, const Conv2dParams& p) {
  check_float("conv2d", x, "x");
  check_compatible("conv2d", x, "x", w, "w");
  const Shape ys = conv2d_output_shape(x.shape(), w.shape(), p);
  if (bias.defined()) {
    check_compatible("conv2d", x, "x", bias, "bias");
    JEBM_CHECK(bias.shape() == Shape({w.size(0)}), "conv2d: bias " << shape_str(bias.shape()) << " does not match w "
                                                                   << shape_str(w.shape()));
  }
  Tensor y = Tensor::empty(ys, x.dtype(), x.device());
  JEBM_DISPATCH(x.device(), conv2d_forward, x, w, bias, p, y);
  return y;
}

Tensor conv2d_backward_data(const Tensor& grad_y, const Tensor& w, const Shape& x_shape, const Conv2dParams& p) {
  check_float("conv2d_backward_data", grad_y, "grad_y");
  check_compatible("conv2d_backward_data", grad_y, "grad_y", w, "w");
  const Shape ys = conv2d_output_shape(x_shape, w.shape(), p);
  JEBM_CHECK(grad_y.shape() == ys, "conv2d_backward_data: grad_y " << shape_str(grad_y.shape()) << " vs expected "
                                                                   << shape_str(ys) << " for x " << shape_str(x_shape)
                                                                   << " and w " << shape_str(w.shape()));
  Tensor gx = Tensor::empty(x_shape, grad_y.dtype(), grad_y.device());
  JEBM_DISPATCH(grad_y.device(), conv2d_backward_data, grad_y, w, p, gx);
  return gx;
}

Tensor conv2d_backward_filter(const Tensor& grad_y, const Tensor& x, const Shape& w_shape, const Conv2dParams& p) {
  check_float("conv2d_backward_filter", grad_y, "grad_y");
  check_compatible("conv2d_backward_filter", grad_y, "grad_y", x, "x");
  const Shape ys = conv2d_output_shape(x.shape(), w_shape, p);
  JEBM_CHECK(grad_y.shape() == ys, "conv2d_backward_filter: grad_y " << shape_str(grad_y.shape()) << " vs expected "
                                                                     << shape_str(ys) << " for x "
                                                                     << shape_str(x.shape()) << " and w "
                                                                     << shape_str(w_shape));
  Tensor gw = Tensor::empty(w_shape, grad_y.dtype(), grad_y.device());
  JEBM_DISPATCH(grad_y.device(), conv2d_backward_filter, grad_y, x, p, gw);
  return gw;
}

Tensor conv2d_backward_bias(const Tensor& grad_y) {
  check_float("conv2d_backward_bias", grad_y, "grad_y");
  JEBM_CHECK(grad_y.dim() == 4, "conv2d_backward_bias: grad_y must be [N, F, OH, OW], got "
                                    << shape_str(grad_y.shape()));
  Tensor gb = Tensor::empty({grad_y.size(1)}, grad_y.dtype(), grad_y.device());
  JEBM_DISPATCH(grad_y.device(), conv2d_backward_bias, grad_y, gb);
  return gb;
}

// --- rows by index ----------------------------------------------------------------------------------------

Tensor gather_rows(const Tensor& x, const Tensor& idx) {
  check_defined("gather_rows", x, "x");
  JEBM_CHECK(x.dim() >= 1, "gather_rows: x must have at least one dimension, got " << shape_str(x.shape()));
  check_index("gather_rows", idx, x);
  Shape ys = x.shape();
  ys[0] = idx.numel();
  Tensor y = Tensor::empty(ys, x.dtype(), x.device());
  JEBM_DISPATCH(x.device(), gather_rows, x, idx, y);
  return y;
}

Tensor gather_rows(const Tensor& x, const std::vector<int64_t>& idx) {
  return gather_rows(x, Tensor::from_vector(idx, {static_cast<int64_t>(idx.size())}, x.device()));
}

Tensor scatter_add_rows(const Tensor& src, const Tensor& idx, int64_t rows) {
  check_float("scatter_add_rows", src, "src");
  JEBM_CHECK(src.dim() >= 1 && rows >= 0, "scatter_add_rows: src " << shape_str(src.shape()) << ", rows " << rows);
  check_index("scatter_add_rows", idx, src);
  JEBM_CHECK(idx.numel() == src.size(0), "scatter_add_rows: idx " << shape_str(idx.shape()) << " vs src "
                                                                  << shape_str(src.shape()));
  Shape ys = src.shape();
  ys[0] = rows;
  Tensor y = Tensor::zeros(ys, src.dtype(), src.device());
  JEBM_DISPATCH(src.device(), scatter_add_rows, src, idx, y);
  return y;
}

void index_copy_rows_(Tensor& dst, const Tensor& idx, const Tensor& src) {
  check_compatible("index_copy_rows_", dst, "dst", src, "src");
  check_index("index_copy_rows_", idx, dst);
  JEBM_CHECK(dst.dim() >= 1 && src.dim() == dst.dim() &&
                 std::equal(dst.shape().begin() + 1, dst.shape().end(), src.shape().begin() + 1) &&
                 idx.numel() == src.size(0),
             "index_copy_rows_: dst " << shape_str(dst.shape()) << ", idx " << shape_str(idx.shape()) << ", src "
                                      << shape_str(src.shape()) << " (src must be [len(idx), dst.shape[1:]...])");
  JEBM_DISPATCH(dst.device(), index_copy_rows, src, idx, dst);
}

Tensor concat(const std::vector<Tensor>& xs, int64_t axis) {
  JEBM_CHECK(!xs.empty(), "concat: no tensors");
  const Tensor& first = xs[0];
  check_defined("concat", first, "xs[0]");
  JEBM_CHECK(first.dim() >= 1, "concat: 0-d tensors cannot be concatenated");
  const int64_t a = normalize_axis("concat", axis, first.dim(), first.shape());
  Shape ys = first.shape();
  ys[static_cast<size_t>(a)] = 0;
  for (const Tensor& t : xs) {
    check_compatible("concat", first, "xs[0]", t, "xs[i]");
    bool ok = t.dim() == first.dim();
    for (int64_t k = 0; ok && k < t.dim(); ++k) ok = k == a || t.size(k) == first.size(k);
    JEBM_CHECK(ok, "concat: shapes " << shape_str(first.shape()) << " and " << shape_str(t.shape())
                                     << " differ outside axis " << axis);
    ys[static_cast<size_t>(a)] += t.size(a);
  }
  Tensor y = Tensor::empty(ys, first.dtype(), first.device());
  JEBM_DISPATCH(first.device(), concat, xs, a, y);
  return y;
}

// --- random numbers ---------------------------------------------------------------------------------------

void uniform_(Tensor& y, double lo, double hi, Generator& gen) {
  check_float("uniform_", y, "y");
  JEBM_CHECK(lo <= hi, "uniform_: lo " << lo << " > hi " << hi);
  const uint64_t offset = gen.next();
  JEBM_DISPATCH(y.device(), rand_uniform, y, lo, hi, gen.seed, offset);
}

void normal_(Tensor& y, double mean, double stddev, Generator& gen) {
  check_float("normal_", y, "y");
  JEBM_CHECK(stddev >= 0, "normal_: stddev " << stddev << " < 0");
  const uint64_t offset = gen.next();
  JEBM_DISPATCH(y.device(), rand_normal, y, mean, stddev, gen.seed, offset);
}

Tensor rand_uniform(const Shape& shape, double lo, double hi, Generator& gen, DType dtype, Device device) {
  Tensor y = Tensor::empty(shape, dtype, device);
  uniform_(y, lo, hi, gen);
  return y;
}

Tensor rand_normal(const Shape& shape, double mean, double stddev, Generator& gen, DType dtype, Device device) {
  Tensor y = Tensor::empty(shape, dtype, device);
  normal_(y, mean, stddev, gen);
  return y;
}

// --- optimizer --------------------------------------------------------------------------------------------

void adam_update_(Tensor& param, const Tensor& grad, Tensor& m, Tensor& v, const AdamHyper& h) {
  check_float("adam_update_", param, "param");
  check_same_shape("adam_update_", param, "param", grad, "grad");
  check_same_shape("adam_update_", param, "param", m, "m");
  check_same_shape("adam_update_", param, "param", v, "v");
  JEBM_CHECK(h.step >= 1, "adam_update_: step " << h.step << " must be >= 1 (bias correction is 1-based)");
  JEBM_DISPATCH(param.device(), adam_update, param, grad, m, v, h);
}

}  // namespace jebm
