// The op harness (runtime/ops.hpp, runtime/cpu/*.cpp): ONE table of op cases, each run in float32 and float64 and
// compared with a naive double-precision reference written here (unary backward: central differences of the
// forward reference). Families: unary, unary_backward, binary (broadcasting), scalar, axpby, reduce, sum_to, gemm,
// conv2d (direct 7-loop references), index (gather/scatter/index_copy/concat), adam. Plus the error messages.
#include "tests/helpers.hpp"

#include <omp.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <functional>
#include <random>
#include <string>
#include <vector>

#include "runtime/ops.hpp"

using namespace jebm;
using jebm::test::all_close;

using jebm::test::expect_error;

namespace {

// --- host arrays for the references ---------------------------------------------------------------------

struct Host {
  Shape shape;
  std::vector<double> v;
};

Host host_zeros(const Shape& s) { return {s, std::vector<double>(static_cast<size_t>(shape_numel(s)), 0.0)}; }

std::vector<int64_t> unravel(int64_t flat, const Shape& s) {
  std::vector<int64_t> idx(s.size());
  for (size_t k = s.size(); k-- > 0;) {
    idx[k] = flat % s[k];
    flat /= s[k];
  }
  return idx;
}

// Flat index into `s` (right-aligned, size-1 dims broadcast) of the output multi-index `idx`.
int64_t broadcast_index(const std::vector<int64_t>& idx, const Shape& s) {
  const size_t off = idx.size() - s.size();
  int64_t flat = 0;
  for (size_t k = 0; k < s.size(); ++k) flat = flat * s[k] + (s[k] == 1 ? 0 : idx[off + k]);
  return flat;
}

Shape naive_broadcast(const Shape& a, const Shape& b) {
  const size_t r = std::max(a.size(), b.size());
  Shape out(r);
  for (size_t k = 0; k < r; ++k) {
    const int64_t da = k + a.size() < r ? 1 : a[k + a.size() - r];
    const int64_t db = k + b.size() < r ? 1 : b[k + b.size() - r];
    out[k] = std::max(da, db);
  }
  return out;
}

// --- the table ------------------------------------------------------------------------------------------

using RunFn = std::function<std::vector<Tensor>(const std::vector<Tensor>&)>;
using RefFn = std::function<std::vector<Host>(const std::vector<Host>&)>;

struct OpCase {
  std::string family, name;
  std::vector<Shape> shapes;  // float inputs, drawn uniformly from [lo, hi]
  double lo, hi;
  double tol32, tol64;  // used as both atol and rtol
  RunFn run;
  RefFn ref;
  bool avoid_kink = false;  // nudge inputs away from 0 (ReLU, |x|, ...)
};

double unary_ref(UnaryOp op, double x, double alpha) {
  switch (op) {
    case UnaryOp::Neg: return -x;
    case UnaryOp::Exp: return std::exp(x);
    case UnaryOp::Log: return std::log(x);
    case UnaryOp::Sqrt: return std::sqrt(x);
    case UnaryOp::Square: return x * x;
    case UnaryOp::Abs: return std::fabs(x);
    case UnaryOp::Tanh: return std::tanh(x);
    case UnaryOp::Sigmoid: return 1.0 / (1.0 + std::exp(-x));
    case UnaryOp::Softplus: return std::log(1.0 + std::exp(x));
    case UnaryOp::Relu: return x > 0 ? x : 0.0;
    case UnaryOp::Silu: return x / (1.0 + std::exp(-x));
    case UnaryOp::LeakyRelu: return x > 0 ? x : alpha * x;
  }
  return NAN;
}

double binary_ref(BinaryOp op, double a, double b) {
  switch (op) {
    case BinaryOp::Add: return a + b;
    case BinaryOp::Sub: return a - b;
    case BinaryOp::Mul: return a * b;
    case BinaryOp::Div: return a / b;
    case BinaryOp::Max: return std::max(a, b);
    case BinaryOp::Min: return std::min(a, b);
  }
  return NAN;
}

void add_unary_cases(std::vector<OpCase>& t) {
  const std::vector<UnaryOp> ops = {UnaryOp::Neg,     UnaryOp::Exp,      UnaryOp::Log,  UnaryOp::Sqrt,
                                    UnaryOp::Square,  UnaryOp::Abs,      UnaryOp::Tanh, UnaryOp::Sigmoid,
                                    UnaryOp::Softplus, UnaryOp::Relu,    UnaryOp::Silu, UnaryOp::LeakyRelu};
  // Small (serial) and large (OpenMP) sizes.
  for (const Shape& s : {Shape{3, 5}, Shape{260, 130}}) {
    for (UnaryOp op : ops) {
      const bool positive = op == UnaryOp::Log || op == UnaryOp::Sqrt;
      const double lo = positive ? 0.1 : -4.0, hi = positive ? 3.0 : 4.0;
      const bool kink = op == UnaryOp::Abs || op == UnaryOp::Relu || op == UnaryOp::LeakyRelu;
      const double alpha = 0.2;
      const std::string nm = std::string(unary_op_name(op)) + " " + shape_str(s);
      t.push_back({"unary", nm, {s}, lo, hi, 2e-6, 1e-13,
                   [op, alpha](const std::vector<Tensor>& in) { return std::vector<Tensor>{unary(op, in[0], alpha)}; },
                   [op, alpha](const std::vector<Host>& in) {
                     Host y = in[0];
                     for (double& v : y.v) v = unary_ref(op, v, alpha);
                     return std::vector<Host>{y};
                   },
                   kink});
      // d/dx by central differences of the double reference, times a random grad_y.
      t.push_back({"unary_backward", nm, {s, s}, lo, hi, 1e-5, 1e-7,
                   [op, alpha](const std::vector<Tensor>& in) {
                     return std::vector<Tensor>{unary_backward(op, in[0], in[1], alpha)};
                   },
                   [op, alpha](const std::vector<Host>& in) {
                     Host g = in[0];
                     const double h = 1e-6;
                     for (size_t i = 0; i < g.v.size(); ++i) {
                       const double x = in[0].v[i];
                       g.v[i] = (unary_ref(op, x + h, alpha) - unary_ref(op, x - h, alpha)) / (2 * h) * in[1].v[i];
                     }
                     return std::vector<Host>{g};
                   },
                   kink});
    }
  }
}

void add_binary_cases(std::vector<OpCase>& t) {
  // Equal shapes, scalars, row/column broadcasts, rank mismatch, both sides broadcasting, and sizes that take
  // the parallel paths.
  const std::vector<std::pair<Shape, Shape>> pairs = {
      {{3, 4}, {3, 4}},       {{3, 4}, {4}},       {{3, 4}, {3, 1}},       {{2, 3, 4}, {3, 1}},
      {{4}, {2, 3, 4}},       {{2, 1, 4}, {1, 3, 1}}, {{}, {2, 3}},        {{5, 1}, {}},
      {{1}, {6}},             {{2, 3, 1, 5}, {3, 4, 1}}, {{300, 200}, {200}}, {{256, 160}, {256, 1}},
      {{200, 300}, {200, 300}}, {{70000}, {1}}};
  for (BinaryOp op : {BinaryOp::Add, BinaryOp::Sub, BinaryOp::Mul, BinaryOp::Div, BinaryOp::Max, BinaryOp::Min}) {
    for (const auto& [sa, sb] : pairs) {
      // Div keeps the denominator away from zero by drawing every input from [0.5, 2].
      const bool div = op == BinaryOp::Div;
      t.push_back({"binary", std::string(binary_op_name(op)) + " " + shape_str(sa) + " " + shape_str(sb), {sa, sb},
                   div ? 0.5 : -2.0, 2.0, 1e-6, 1e-14,
                   [op](const std::vector<Tensor>& in) { return std::vector<Tensor>{binary(op, in[0], in[1])}; },
                   [op](const std::vector<Host>& in) {
                     Host y = host_zeros(naive_broadcast(in[0].shape, in[1].shape));
                     for (size_t i = 0; i < y.v.size(); ++i) {
                       const auto idx = unravel(static_cast<int64_t>(i), y.shape);
                       y.v[i] = binary_ref(op, in[0].v[static_cast<size_t>(broadcast_index(idx, in[0].shape))],
                                           in[1].v[static_cast<size_t>(broadcast_index(idx, in[1].shape))]);
                     }
                     return std::vector<Host>{y};
                   }});
    }
  }
}

void add_scalar_cases(std::vector<OpCase>& t) {
  struct S {
    const char* name;
    ScalarOp op;
    double s, s2, lo, hi;
  };
  const std::vector<S> list = {{"add_scalar", ScalarOp::Add, 1.5, 0, -2, 2},   {"mul_scalar", ScalarOp::Mul, -2.5, 0, -2, 2},
                               {"pow 2", ScalarOp::Pow, 2.0, 0, -2, 2},         {"pow 3", ScalarOp::Pow, 3.0, 0, -2, 2},
                               {"pow 0.5", ScalarOp::Pow, 0.5, 0, 0.1, 3},      {"pow -1.5", ScalarOp::Pow, -1.5, 0, 0.1, 3},
                               {"pow 1", ScalarOp::Pow, 1.0, 0, -2, 2},         {"clamp", ScalarOp::Clamp, -0.5, 0.7, -2, 2}};
  for (const Shape& shape : {Shape{7, 3}, Shape{50000}}) {
    for (const S& c : list) {
      t.push_back({"scalar", std::string(c.name) + " " + shape_str(shape), {shape}, c.lo, c.hi, 2e-6, 1e-14,
                   [c](const std::vector<Tensor>& in) { return std::vector<Tensor>{scalar_op(c.op, in[0], c.s, c.s2)}; },
                   [c](const std::vector<Host>& in) {
                     Host y = in[0];
                     for (double& v : y.v) {
                       if (c.op == ScalarOp::Add) v = v + c.s;
                       else if (c.op == ScalarOp::Mul) v = v * c.s;
                       else if (c.op == ScalarOp::Pow) v = std::pow(v, c.s);
                       else v = std::min(std::max(v, c.s), c.s2);
                     }
                     return std::vector<Host>{y};
                   }});
    }
  }
  for (const Shape& shape : {Shape{4, 5}, Shape{60000}}) {
    for (const auto& [a, b] : std::vector<std::pair<double, double>>{{0.5, -1.25}, {2.0, 0.0}, {-1.0, 1.0}}) {
      t.push_back({"axpby", "axpby " + std::to_string(a) + " " + std::to_string(b) + " " + shape_str(shape),
                   {shape, shape}, -2, 2, 1e-6, 1e-14,
                   [a = a, b = b](const std::vector<Tensor>& in) {
                     Tensor y = in[1].clone();
                     axpby_(a, in[0], b, y);
                     return std::vector<Tensor>{y};
                   },
                   [a = a, b = b](const std::vector<Host>& in) {
                     Host y = in[1];
                     for (size_t i = 0; i < y.v.size(); ++i) y.v[i] = a * in[0].v[i] + b * in[1].v[i];
                     return std::vector<Host>{y};
                   }});
    }
  }
}

Host reduce_ref(ReduceOp op, const Host& x, int64_t axis, bool keepdim) {
  Shape xs = x.shape.empty() ? Shape{1} : x.shape;
  const int64_t r = static_cast<int64_t>(xs.size());
  const int64_t a = axis < 0 ? axis + r : axis;
  Shape ys = xs;
  ys[static_cast<size_t>(a)] = 1;
  Host y = host_zeros(ys);
  const int64_t n = xs[static_cast<size_t>(a)];
  for (size_t i = 0; i < y.v.size(); ++i) {
    auto idx = unravel(static_cast<int64_t>(i), ys);
    std::vector<double> vals;
    for (int64_t j = 0; j < n; ++j) {
      idx[static_cast<size_t>(a)] = j;
      int64_t flat = 0;
      for (size_t k = 0; k < xs.size(); ++k) flat = flat * xs[k] + idx[k];
      vals.push_back(x.v[static_cast<size_t>(flat)]);
    }
    double s = 0, m = -INFINITY;
    for (double v : vals) {
      s += v;
      m = std::max(m, v);
    }
    double e = 0;
    for (double v : vals) e += std::exp(v - m);
    y.v[i] = op == ReduceOp::Sum ? s : op == ReduceOp::Mean ? s / n : op == ReduceOp::Max ? m : m + std::log(e);
  }
  if (!keepdim) ys.erase(ys.begin() + a);
  if (x.shape.empty()) ys = {};
  y.shape = ys;
  return y;
}

void add_reduce_cases(std::vector<OpCase>& t) {
  struct R {
    Shape shape;
    int64_t axis;
    bool keepdim;
  };
  // Every axis of a 3-D tensor, negative axes, keepdim, 0-d, and large sizes for the chunked/parallel paths.
  const std::vector<R> list = {{{3, 4, 5}, 0, false}, {{3, 4, 5}, 1, false}, {{3, 4, 5}, 2, false},
                               {{3, 4, 5}, -1, true}, {{3, 4, 5}, -3, true}, {{7}, 0, false},
                               {{}, 0, false},        {{70000}, 0, false},  {{3, 40000}, 1, false},
                               {{40000, 3}, 0, true}, {{20, 600, 3}, 1, false}, {{2, 5, 700}, 1, false}};
  for (ReduceOp op : {ReduceOp::Sum, ReduceOp::Mean, ReduceOp::Max, ReduceOp::LogSumExp}) {
    for (const R& c : list) {
      t.push_back({"reduce",
                   std::string(reduce_op_name(op)) + " " + shape_str(c.shape) + " axis " + std::to_string(c.axis) +
                       (c.keepdim ? " keepdim" : ""),
                   {c.shape}, -3, 3, 1e-5, 1e-12,
                   [op, c](const std::vector<Tensor>& in) { return std::vector<Tensor>{reduce(op, in[0], c.axis, c.keepdim)}; },
                   [op, c](const std::vector<Host>& in) { return std::vector<Host>{reduce_ref(op, in[0], c.axis, c.keepdim)}; }});
    }
    t.push_back({"reduce", std::string(reduce_op_name(op)) + " all", {{6, 7, 8}}, -3, 3, 1e-5, 1e-12,
                 [op](const std::vector<Tensor>& in) { return std::vector<Tensor>{reduce_all(op, in[0])}; },
                 [op](const std::vector<Host>& in) {
                   Host flat{{static_cast<int64_t>(in[0].v.size())}, in[0].v};
                   return std::vector<Host>{reduce_ref(op, flat, 0, false)};
                 }});
  }
  // sum_to: the inverse of broadcasting, for leading, trailing and interleaved broadcast dimensions.
  const std::vector<std::pair<Shape, Shape>> st = {{{3, 4}, {4}},       {{3, 4}, {3, 1}},         {{2, 3, 4}, {3, 1}},
                                                   {{2, 3, 4}, {2, 1, 4}}, {{2, 3, 4}, {}},        {{3, 4}, {3, 4}},
                                                   {{2, 3, 4}, {1, 3, 4}}, {{5, 300, 40}, {300, 1}}, {{4, 1, 3}, {1, 3}}};
  for (const auto& [gs, to] : st) {
    t.push_back({"sum_to", "sum_to " + shape_str(gs) + " -> " + shape_str(to), {gs}, -2, 2, 1e-5, 1e-12,
                 [to = to](const std::vector<Tensor>& in) { return std::vector<Tensor>{sum_to(in[0], to)}; },
                 [to = to](const std::vector<Host>& in) {
                   Host y = host_zeros(to);
                   for (size_t i = 0; i < in[0].v.size(); ++i)
                     y.v[static_cast<size_t>(broadcast_index(unravel(static_cast<int64_t>(i), in[0].shape), to))] += in[0].v[i];
                   return std::vector<Host>{y};
                 }});
  }
}

void add_gemm_cases(std::vector<OpCase>& t) {
  for (const auto& [m, k, n] : std::vector<std::array<int64_t, 3>>{{7, 5, 3}, {64, 33, 17}, {1, 9, 1}}) {
    for (int combo = 0; combo < 4; ++combo) {
      const bool ta = combo & 1, tb = combo & 2;
      const Shape sa = ta ? Shape{k, m} : Shape{m, k}, sb = tb ? Shape{n, k} : Shape{k, n};
      auto ref = [=](const std::vector<Host>& in, double alpha, double beta, const Host* c0) {
        Host c = host_zeros({m, n});
        for (int64_t i = 0; i < m; ++i)
          for (int64_t j = 0; j < n; ++j) {
            double s = 0;
            for (int64_t p = 0; p < k; ++p) {
              const double av = ta ? in[0].v[static_cast<size_t>(p * m + i)] : in[0].v[static_cast<size_t>(i * k + p)];
              const double bv = tb ? in[1].v[static_cast<size_t>(j * k + p)] : in[1].v[static_cast<size_t>(p * n + j)];
              s += av * bv;
            }
            const size_t o = static_cast<size_t>(i * n + j);
            c.v[o] = alpha * s + (c0 ? beta * c0->v[o] : 0.0);
          }
        return c;
      };
      const std::string nm = "[" + std::to_string(m) + "x" + std::to_string(k) + "x" + std::to_string(n) + "]" +
                             (ta ? " a^T" : " a") + (tb ? " b^T" : " b");
      t.push_back({"gemm", "matmul " + nm, {sa, sb}, -1, 1, 1e-5, 1e-12,
                   [=](const std::vector<Tensor>& in) { return std::vector<Tensor>{matmul(in[0], in[1], ta, tb)}; },
                   [=](const std::vector<Host>& in) { return std::vector<Host>{ref(in, 1.0, 0.0, nullptr)}; }});
      t.push_back({"gemm", "gemm_ alpha beta " + nm, {sa, sb, {m, n}}, -1, 1, 1e-5, 1e-12,
                   [=](const std::vector<Tensor>& in) {
                     Tensor c = in[2].clone();
                     gemm_(ta, tb, -0.75, in[0], in[1], 0.5, c);
                     return std::vector<Tensor>{c};
                   },
                   [=](const std::vector<Host>& in) { return std::vector<Host>{ref(in, -0.75, 0.5, &in[2])}; }});
    }
  }
}

// conv2d references by the index relation iy = oy*s - p + i, ix = ox*s - p + j, looped directly.
struct ConvCfg {
  int64_t n, c, h, w, f, kh, kw, stride, pad;
};

template <typename F>
void conv_loops(const ConvCfg& q, int64_t oh, int64_t ow, F body) {
  for (int64_t n = 0; n < q.n; ++n)
    for (int64_t f = 0; f < q.f; ++f)
      for (int64_t oy = 0; oy < oh; ++oy)
        for (int64_t ox = 0; ox < ow; ++ox)
          for (int64_t c = 0; c < q.c; ++c)
            for (int64_t i = 0; i < q.kh; ++i)
              for (int64_t j = 0; j < q.kw; ++j) {
                const int64_t iy = oy * q.stride - q.pad + i, ix = ox * q.stride - q.pad + j;
                if (iy < 0 || iy >= q.h || ix < 0 || ix >= q.w) continue;
                body(((n * q.c + c) * q.h + iy) * q.w + ix, ((f * q.c + c) * q.kh + i) * q.kw + j,
                     ((n * q.f + f) * oh + oy) * ow + ox);
              }
}

void add_conv_cases(std::vector<OpCase>& t) {
  // Strides 1-3, paddings 0-4, non-square kernels and images, 1x1, the MNIST first layer, and a batch large enough
  // to be split into several im2col groups.
  const std::vector<ConvCfg> cfgs = {{2, 3, 7, 6, 4, 3, 3, 1, 0}, {2, 3, 8, 8, 5, 3, 3, 2, 1}, {3, 1, 28, 28, 4, 5, 5, 2, 4},
                                     {1, 2, 5, 5, 3, 1, 1, 1, 0}, {2, 2, 6, 7, 3, 2, 3, 3, 2}, {30, 16, 32, 32, 4, 3, 3, 1, 1}};
  for (const ConvCfg& q : cfgs) {
    const Conv2dParams p{q.stride, q.pad};
    const Shape xs{q.n, q.c, q.h, q.w}, ws{q.f, q.c, q.kh, q.kw};
    const int64_t oh = (q.h + 2 * q.pad - q.kh) / q.stride + 1, ow = (q.w + 2 * q.pad - q.kw) / q.stride + 1;
    const Shape ys{q.n, q.f, oh, ow};
    const std::string nm = "x" + shape_str(xs) + " w" + shape_str(ws) + " s" + std::to_string(q.stride) + " p" +
                           std::to_string(q.pad);
    // float32 sums of L terms of size ~1 carry ~eps * sqrt(L) absolute error; backward_filter sums N*OH*OW terms.
    const double tol32 = 1e-5 * std::max(1.0, std::sqrt(static_cast<double>(q.n * oh * ow)) / 20);
    t.push_back({"conv2d", "forward " + nm, {xs, ws, {q.f}}, -1, 1, tol32, 1e-12,
                 [=](const std::vector<Tensor>& in) { return std::vector<Tensor>{conv2d(in[0], in[1], in[2], p)}; },
                 [=](const std::vector<Host>& in) {
                   Host y = host_zeros(ys);
                   for (size_t o = 0; o < y.v.size(); ++o) y.v[o] = in[2].v[static_cast<size_t>(unravel(static_cast<int64_t>(o), ys)[1])];
                   conv_loops(q, oh, ow, [&](int64_t xi, int64_t wi, int64_t yi) {
                     y.v[static_cast<size_t>(yi)] += in[0].v[static_cast<size_t>(xi)] * in[1].v[static_cast<size_t>(wi)];
                   });
                   return std::vector<Host>{y};
                 }});
    t.push_back({"conv2d", "forward without bias " + nm, {xs, ws}, -1, 1, tol32, 1e-12,
                 [=](const std::vector<Tensor>& in) { return std::vector<Tensor>{conv2d(in[0], in[1], Tensor(), p)}; },
                 [=](const std::vector<Host>& in) {
                   Host y = host_zeros(ys);
                   conv_loops(q, oh, ow, [&](int64_t xi, int64_t wi, int64_t yi) {
                     y.v[static_cast<size_t>(yi)] += in[0].v[static_cast<size_t>(xi)] * in[1].v[static_cast<size_t>(wi)];
                   });
                   return std::vector<Host>{y};
                 }});
    t.push_back({"conv2d", "backward_data " + nm, {ys, ws}, -1, 1, tol32, 1e-12,
                 [=](const std::vector<Tensor>& in) { return std::vector<Tensor>{conv2d_backward_data(in[0], in[1], xs, p)}; },
                 [=](const std::vector<Host>& in) {
                   Host gx = host_zeros(xs);
                   conv_loops(q, oh, ow, [&](int64_t xi, int64_t wi, int64_t yi) {
                     gx.v[static_cast<size_t>(xi)] += in[0].v[static_cast<size_t>(yi)] * in[1].v[static_cast<size_t>(wi)];
                   });
                   return std::vector<Host>{gx};
                 }});
    t.push_back({"conv2d", "backward_filter " + nm, {ys, xs}, -1, 1, tol32, 1e-12,
                 [=](const std::vector<Tensor>& in) { return std::vector<Tensor>{conv2d_backward_filter(in[0], in[1], ws, p)}; },
                 [=](const std::vector<Host>& in) {
                   Host gw = host_zeros(ws);
                   conv_loops(q, oh, ow, [&](int64_t xi, int64_t wi, int64_t yi) {
                     gw.v[static_cast<size_t>(wi)] += in[0].v[static_cast<size_t>(yi)] * in[1].v[static_cast<size_t>(xi)];
                   });
                   return std::vector<Host>{gw};
                 }});
    t.push_back({"conv2d", "backward_bias " + nm, {ys}, -1, 1, tol32, 1e-12,
                 [=](const std::vector<Tensor>& in) { return std::vector<Tensor>{conv2d_backward_bias(in[0])}; },
                 [=](const std::vector<Host>& in) {
                   Host gb = host_zeros({q.f});
                   for (size_t o = 0; o < in[0].v.size(); ++o)
                     gb.v[static_cast<size_t>(unravel(static_cast<int64_t>(o), ys)[1])] += in[0].v[o];
                   return std::vector<Host>{gb};
                 }});
  }
}

void add_index_cases(std::vector<OpCase>& t) {
  const std::vector<int64_t> idx = {4, 0, 2, 2, 5, 1, 0};  // repeats, out of order
  const Tensor idx_t = Tensor::from_vector(idx, {static_cast<int64_t>(idx.size())});
  const int64_t m = static_cast<int64_t>(idx.size());
  for (const Shape& row : {Shape{}, Shape{3}, Shape{2, 4}}) {
    Shape xs{6}, ss{m};
    xs.insert(xs.end(), row.begin(), row.end());
    ss.insert(ss.end(), row.begin(), row.end());
    const int64_t d = shape_numel(row);
    t.push_back({"index", "gather_rows " + shape_str(xs), {xs}, -2, 2, 0, 0,
                 [=](const std::vector<Tensor>& in) { return std::vector<Tensor>{gather_rows(in[0], idx_t)}; },
                 [=](const std::vector<Host>& in) {
                   Host y = host_zeros(ss);
                   for (int64_t i = 0; i < m; ++i)
                     for (int64_t k = 0; k < d; ++k) y.v[static_cast<size_t>(i * d + k)] = in[0].v[static_cast<size_t>(idx[i] * d + k)];
                   return std::vector<Host>{y};
                 }});
    t.push_back({"index", "scatter_add_rows " + shape_str(ss), {ss}, -2, 2, 1e-6, 1e-14,
                 [=](const std::vector<Tensor>& in) { return std::vector<Tensor>{scatter_add_rows(in[0], idx_t, 6)}; },
                 [=](const std::vector<Host>& in) {
                   Host y = host_zeros(xs);
                   for (int64_t i = 0; i < m; ++i)
                     for (int64_t k = 0; k < d; ++k) y.v[static_cast<size_t>(idx[i] * d + k)] += in[0].v[static_cast<size_t>(i * d + k)];
                   return std::vector<Host>{y};
                 }});
    t.push_back({"index", "index_copy_rows_ " + shape_str(xs), {xs, ss}, -2, 2, 0, 0,
                 [=](const std::vector<Tensor>& in) {
                   Tensor dst = in[0].clone();
                   index_copy_rows_(dst, idx_t, in[1]);
                   return std::vector<Tensor>{dst};
                 },
                 [=](const std::vector<Host>& in) {
                   Host y = in[0];
                   for (int64_t i = 0; i < m; ++i)  // in order: the last write to a repeated row wins
                     for (int64_t k = 0; k < d; ++k) y.v[static_cast<size_t>(idx[i] * d + k)] = in[1].v[static_cast<size_t>(i * d + k)];
                   return std::vector<Host>{y};
                 }});
  }
  for (int64_t axis : {0, 1, 2, -1}) {
    const int64_t a = axis < 0 ? axis + 3 : axis;
    std::vector<Shape> shapes;
    for (int64_t len : {2, 1, 3}) {
      Shape s{2, 3, 4};
      s[static_cast<size_t>(a)] = len;
      shapes.push_back(s);
    }
    t.push_back({"index", "concat axis " + std::to_string(axis), shapes, -2, 2, 0, 0,
                 [=](const std::vector<Tensor>& in) { return std::vector<Tensor>{concat(in, axis)}; },
                 [=](const std::vector<Host>& in) {
                   Shape ys{2, 3, 4};
                   ys[static_cast<size_t>(a)] = 6;
                   Host y = host_zeros(ys);
                   int64_t start = 0;
                   for (const Host& x : in) {
                     for (size_t i = 0; i < x.v.size(); ++i) {
                       auto id = unravel(static_cast<int64_t>(i), x.shape);
                       id[static_cast<size_t>(a)] += start;
                       y.v[static_cast<size_t>((id[0] * ys[1] + id[1]) * ys[2] + id[2])] = x.v[i];
                     }
                     start += x.shape[static_cast<size_t>(a)];
                   }
                   return std::vector<Host>{y};
                 }});
  }
}

void add_adam_cases(std::vector<OpCase>& t) {
  for (const auto& [wd, step] : std::vector<std::pair<double, int64_t>>{{0.0, 1}, {0.01, 1}, {0.1, 7}}) {
    AdamHyper h;
    h.lr = 0.05;
    h.weight_decay = wd;
    h.step = step;
    for (const Shape& s : {Shape{5, 3}, Shape{40000}}) {
      // Inputs: param, grad, m, v (v = |draw| so it is a valid second moment).
      t.push_back({"adam", "adam wd " + std::to_string(wd) + " step " + std::to_string(step) + " " + shape_str(s),
                   {s, s, s, s}, -1, 1, 1e-5, 1e-13,
                   [=](const std::vector<Tensor>& in) {
                     Tensor p = in[0].clone(), m = in[2].clone(), v = abs(in[3]);
                     adam_update_(p, in[1], m, v, h);
                     return std::vector<Tensor>{p, m, v};
                   },
                   [=](const std::vector<Host>& in) {
                     Host p = in[0], m = in[2], v = in[3];
                     for (size_t i = 0; i < p.v.size(); ++i) {
                       const double g = in[1].v[i] + h.weight_decay * p.v[i];
                       m.v[i] = h.beta1 * m.v[i] + (1 - h.beta1) * g;
                       v.v[i] = h.beta2 * std::fabs(v.v[i]) + (1 - h.beta2) * g * g;
                       const double mhat = m.v[i] / (1 - std::pow(h.beta1, step));
                       const double vhat = v.v[i] / (1 - std::pow(h.beta2, step));
                       p.v[i] -= h.lr * mhat / (std::sqrt(vhat) + h.eps);
                     }
                     return std::vector<Host>{p, m, v};
                   }});
    }
  }
}

const std::vector<OpCase>& op_table() {
  static const std::vector<OpCase> table = [] {
    std::vector<OpCase> t;
    add_unary_cases(t);
    add_binary_cases(t);
    add_scalar_cases(t);
    add_reduce_cases(t);
    add_gemm_cases(t);
    add_conv_cases(t);
    add_index_cases(t);
    add_adam_cases(t);
    return t;
  }();
  return table;
}

// Draws the inputs (deterministic per case and input), runs the op in `dtype` and compares with the reference
// computed from exactly the values the op saw.
void run_case(const OpCase& c, DType dtype) {
  std::vector<Tensor> in;
  std::vector<Host> host;
  for (size_t k = 0; k < c.shapes.size(); ++k) {
    std::mt19937_64 rng(std::hash<std::string>{}(c.name) + k);
    std::uniform_real_distribution<double> u(c.lo, c.hi);
    std::vector<double> v(static_cast<size_t>(shape_numel(c.shapes[k])));
    for (double& x : v) {
      x = u(rng);
      if (c.avoid_kink && std::fabs(x) < 0.05) x = 0.3;
    }
    in.push_back(Tensor::from_vector(v, c.shapes[k], dtype));
    host.push_back({c.shapes[k], in.back().to_vector()});
  }
  const std::vector<Tensor> got = c.run(in);
  const std::vector<Host> want = c.ref(host);
  BOOST_TEST_REQUIRE(got.size() == want.size());
  const double tol = dtype == DType::Float32 ? c.tol32 : c.tol64;
  for (size_t k = 0; k < got.size(); ++k) {
    const std::string what = c.family + " " + c.name + " " + dtype_name(dtype) + " output " + std::to_string(k);
    BOOST_TEST((got[k].dtype() == dtype), what);
    BOOST_TEST(shape_str(got[k].shape()) == shape_str(want[k].shape), what);
    BOOST_TEST(all_close(got[k].to_vector(), want[k].v, tol, tol, what), what);
  }
}

void run_family(const std::string& family) {
  int count = 0;
  for (const OpCase& c : op_table()) {
    if (c.family != family) continue;
    if (jebm::test::sanitized() && count > 40) break;  // ASan/UBSan runs keep the first cases of each family
    for (DType dt : {DType::Float32, DType::Float64}) {
      BOOST_TEST_CONTEXT(family << ": " << c.name << " (" << dtype_name(dt) << ")") { run_case(c, dt); }
    }
    ++count;
  }
  BOOST_TEST(count > 0, "no cases in family " << family);
}

}  // namespace

BOOST_AUTO_TEST_CASE(unary_ops) { run_family("unary"); }
BOOST_AUTO_TEST_CASE(unary_backward_ops) { run_family("unary_backward"); }
BOOST_AUTO_TEST_CASE(binary_ops_broadcast) { run_family("binary"); }
BOOST_AUTO_TEST_CASE(scalar_ops) { run_family("scalar"); }
BOOST_AUTO_TEST_CASE(axpby) { run_family("axpby"); }
BOOST_AUTO_TEST_CASE(reductions) { run_family("reduce"); }
BOOST_AUTO_TEST_CASE(sum_to_inverts_broadcasting) { run_family("sum_to"); }
BOOST_AUTO_TEST_CASE(gemm_all_transposes) { run_family("gemm"); }
BOOST_AUTO_TEST_CASE(conv2d_forward_and_backward) { run_family("conv2d"); }
BOOST_AUTO_TEST_CASE(index_ops) { run_family("index"); }
BOOST_AUTO_TEST_CASE(adam_one_step) { run_family("adam"); }

BOOST_AUTO_TEST_CASE(activations_are_stable_at_extreme_inputs) {
  for (DType dt : {DType::Float32, DType::Float64}) {
    const Tensor x = Tensor::from_vector(std::vector<double>{-1000, -80, 80, 1000}, {4}, dt);
    const auto sp = softplus(x).to_vector();
    BOOST_TEST(sp[0] == 0.0);
    BOOST_TEST(sp[1] == std::exp(-80.0), boost::test_tools::tolerance(1e-5));
    BOOST_TEST(sp[2] == 80.0);
    BOOST_TEST(sp[3] == 1000.0);
    const auto sg = sigmoid(x).to_vector();
    BOOST_TEST(sg[0] == 0.0);
    BOOST_TEST(sg[3] == 1.0);
    for (double v : silu(x).to_vector()) BOOST_TEST(std::isfinite(v));
    for (double v : unary_backward(UnaryOp::Softplus, x, Tensor::ones({4}, dt)).to_vector()) BOOST_TEST(std::isfinite(v));
    // log-sum-exp of huge equal values: m + log(n), no overflow.
    const Tensor big = Tensor::full({3, 5}, 1000.0, dt);
    for (double v : logsumexp(big, 1).to_vector()) BOOST_TEST(v == 1000.0 + std::log(5.0), boost::test_tools::tolerance(1e-6));
    const Tensor ninf = Tensor::full({4}, -INFINITY, dt);
    BOOST_TEST(std::isinf(logsumexp(ninf, 0).item()));
    BOOST_TEST(logsumexp(ninf, 0).item() < 0);
  }
}

BOOST_AUTO_TEST_CASE(results_do_not_depend_on_thread_count) {
  Generator gen{5, 0};
  const Tensor x = rand_normal({3, 100000}, 0, 1, gen, DType::Float32);
  const Tensor y = rand_normal({50000, 7}, 0, 1, gen, DType::Float32);
  std::vector<std::vector<double>> runs;
  for (int threads : {1, 2, 3}) {
    omp_set_num_threads(threads);
    std::vector<double> r = sum(x, 1).to_vector();
    for (double v : logsumexp(x, 1).to_vector()) r.push_back(v);
    for (double v : sum(y, 0).to_vector()) r.push_back(v);
    r.push_back(sum_all(x).item());
    // GEMM and conv2d: BLAS blocks and im2col groups depend on the shapes only.
    for (double v : matmul(x.reshape({300, 1000}), x.reshape({1000, 300})).to_vector()) r.push_back(v);
    const Tensor img = x.reshape({12, 25, 1000}).rows(0, 12).reshape({12, 1, 100, 250});
    const Tensor w = y.rows(0, 45).reshape({7, 1, 5, 9});
    for (double v : conv2d_backward_filter(conv2d(img, w, Tensor(), {2, 1}), img, w.shape(), {2, 1}).to_vector()) r.push_back(v);
    runs.push_back(r);
  }
  omp_set_num_threads(2);
  BOOST_TEST(runs[0] == runs[1]);
  BOOST_TEST(runs[0] == runs[2]);
}

BOOST_AUTO_TEST_CASE(errors_name_the_op_and_both_shapes) {
  const Tensor a = Tensor::zeros({3, 4}), b = Tensor::zeros({5});
  expect_error([&] { add(a, b); }, {"add", "[3, 4]", "[5]"});
  expect_error([&] { broadcast_shapes({2, 3}, {4, 3}, "mul"); }, {"mul", "[2, 3]", "[4, 3]"});
  expect_error([&] { add(a, Tensor::zeros({3, 4}, DType::Float64)); }, {"add", "float32", "float64"});
  expect_error([&] { matmul(a, Tensor::zeros({3, 2})); }, {"matmul", "[3, 4]", "[3, 2]"});
  expect_error([&] { matmul(a, b); }, {"matmul", "[3, 4]", "[5]"});
  Tensor c = Tensor::zeros({3, 3});
  expect_error([&] { gemm_(false, false, 1, a, Tensor::zeros({4, 2}), 0, c); }, {"gemm_", "[3, 3]"});
  expect_error([&] { axpby_(1, a, 1, c); }, {"axpby_", "[3, 4]", "[3, 3]"});
  expect_error([&] { conv2d(Tensor::zeros({1, 3, 8, 8}), Tensor::zeros({2, 4, 3, 3}), Tensor(), {}); },
               {"conv2d", "[1, 3, 8, 8]", "[2, 4, 3, 3]"});
  expect_error([&] { conv2d(Tensor::zeros({1, 3, 2, 2}), Tensor::zeros({2, 3, 5, 5}), Tensor(), {}); },
               {"conv2d", "[2, 3, 5, 5]"});
  expect_error([&] { conv2d_backward_data(Tensor::zeros({1, 2, 5, 5}), Tensor::zeros({2, 3, 3, 3}), {1, 3, 8, 8}, {}); },
               {"conv2d_backward_data", "[1, 2, 5, 5]", "[1, 2, 6, 6]"});
  expect_error([&] { sum(a, 2); }, {"sum", "axis 2", "[3, 4]"});
  expect_error([&] { sum_to(a, {2, 4}); }, {"sum_to", "[2, 4]", "[3, 4]"});
  expect_error([&] { exp(Tensor::zeros({2}, DType::Int64)); }, {"exp", "int64"});
  const Tensor idx = Tensor::from_vector(std::vector<int64_t>{0, 7}, {2});
  expect_error([&] { gather_rows(a, idx); }, {"gather_rows", "index 7", "3 rows"});
  expect_error([&] { scatter_add_rows(Tensor::zeros({2, 4}), idx, 3); }, {"scatter_add_rows", "index 7"});
  Tensor dst = Tensor::zeros({3, 4});
  expect_error([&] { index_copy_rows_(dst, idx, Tensor::zeros({2, 4})); }, {"index_copy_rows", "index 7"});
  expect_error([&] { gather_rows(a, Tensor::zeros({2})); }, {"gather_rows", "int64"});
  expect_error([&] { concat({a, Tensor::zeros({3, 5})}, 0); }, {"concat", "[3, 4]", "[3, 5]"});
  Tensor p = Tensor::zeros({3}), m = Tensor::zeros({3}), v = Tensor::zeros({4});
  expect_error([&] { adam_update_(p, p, m, v, {}); }, {"adam_update_", "[3]", "[4]"});
}

BOOST_AUTO_TEST_CASE(fill_and_cast_cover_every_dtype) {
  for (DType from : {DType::Float32, DType::Float64, DType::Int64}) {
    Tensor t = Tensor::empty({70000}, from);  // large enough for the parallel path
    fill_(t, -3.0);
    for (DType to : {DType::Float32, DType::Float64, DType::Int64}) {
      const auto v = cast(t, to).to_vector();
      BOOST_TEST(v.size() == 70000u);
      BOOST_TEST(std::all_of(v.begin(), v.end(), [](double x) { return x == -3.0; }));
    }
  }
  // float -> int64 truncates toward zero.
  const Tensor f = Tensor::from_vector(std::vector<double>{2.7, -2.7, 0.4}, {3}, DType::Float64);
  BOOST_TEST(cast(f, DType::Int64).host_vector<int64_t>() == std::vector<int64_t>({2, -2, 0}));
}
