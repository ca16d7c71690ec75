// Rows of the op-case table (tests/op_cases.hpp) for the linear-algebra and layer ops: gemm (transposes, K = 0),
// conv2d forward and both backwards (strides, paddings, non-square kernels; references by direct loops), the index
// ops (gather_rows, scatter_add_rows, index_copy_rows_, concat) and the Adam update. Read through op_cases() by
// tests/test_ops.cpp, tests/test_cuda_ops.cpp and tests/test_autograd.cpp.
#include <array>
#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "autograd/ops.hpp"
#include "tests/op_cases.hpp"

namespace jebm::test {

void add_gemm_cases(std::vector<OpCase>& t) {
  // Small, odd and tile-sized shapes, a long K, a wide N, and K = 0 (the product is 0: C = beta C).
  for (const auto& [m, k, n] : std::vector<std::array<int64_t, 3>>{
           {7, 5, 3}, {64, 33, 17}, {1, 9, 1}, {64, 64, 64}, {129, 250, 33}, {10, 3, 1000}, {4, 0, 6}}) {
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
      if (small_enough_for_fd({sa, sb}))
        t.back().grad = [=](const std::vector<ag::Var>& v) { return ag::matmul(v[0], v[1], ta, tb); };
      // Different summation orders in the dtype (BLAS vs cuBLAS): |error| <= K * eps * sum_k |a||b|, |a|, |b| <= 1.
      cuda_eps(t.back(), 2.0 * static_cast<double>(k) + 4, 0);
      t.push_back({"gemm", "gemm_ alpha beta " + nm, {sa, sb, {m, n}}, -1, 1, 1e-5, 1e-12,
                   [=](const std::vector<Tensor>& in) {
                     Tensor c = in[2].clone();
                     gemm_(ta, tb, -0.75, in[0], in[1], 0.5, c);
                     return std::vector<Tensor>{c};
                   },
                   [=](const std::vector<Host>& in) { return std::vector<Host>{ref(in, -0.75, 0.5, &in[2])}; }});
      cuda_eps(t.back(), 2.0 * static_cast<double>(k) + 4, 0);
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
                                     {1, 2, 5, 5, 3, 1, 1, 1, 0}, {2, 2, 6, 7, 3, 2, 3, 3, 2}, {30, 16, 32, 32, 4, 3, 3, 1, 1},
                                     // stride 1/2 x padding 0/1/2 on one small layer, and a 1x2 kernel (gradient-checked)
                                     {2, 3, 5, 6, 4, 3, 3, 1, 0}, {2, 3, 5, 6, 4, 3, 3, 1, 1}, {2, 3, 5, 6, 4, 3, 3, 2, 1},
                                     {2, 3, 5, 6, 4, 3, 3, 2, 2}, {2, 3, 5, 6, 4, 3, 3, 1, 2}, {2, 3, 5, 6, 4, 3, 3, 2, 0},
                                     {1, 2, 4, 4, 3, 1, 2, 1, 1},
                                     // 32 filters of 4x4 at stride 2, a 5x5 kernel with padding 2, 1x1 over 4 channels
                                     {2, 3, 32, 32, 32, 4, 4, 2, 1}, {2, 8, 7, 7, 6, 5, 5, 1, 2}, {5, 4, 6, 6, 3, 1, 1, 1, 0}};
  // cuDNN's algorithm vs im2col + BLAS: sums of products in the dtype, in different orders: bound K * eps * sum |a||b|
  // with |a|, |b| <= 1 and K the length of each dot product.
  auto conv_cuda_tol = [](OpCase& c, int64_t k) { cuda_eps(c, 2.0 * static_cast<double>(k) + 4, 0); };
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
    if (small_enough_for_fd({xs, ws, {q.f}}))
      t.back().grad = [=](const std::vector<ag::Var>& v) { return ag::conv2d(v[0], v[1], v[2], p); };
    conv_cuda_tol(t.back(), q.c * q.kh * q.kw + 1);
    t.push_back({"conv2d", "forward without bias " + nm, {xs, ws}, -1, 1, tol32, 1e-12,
                 [=](const std::vector<Tensor>& in) { return std::vector<Tensor>{conv2d(in[0], in[1], Tensor(), p)}; },
                 [=](const std::vector<Host>& in) {
                   Host y = host_zeros(ys);
                   conv_loops(q, oh, ow, [&](int64_t xi, int64_t wi, int64_t yi) {
                     y.v[static_cast<size_t>(yi)] += in[0].v[static_cast<size_t>(xi)] * in[1].v[static_cast<size_t>(wi)];
                   });
                   return std::vector<Host>{y};
                 }});
    if (small_enough_for_fd({xs, ws}))
      t.back().grad = [=](const std::vector<ag::Var>& v) { return ag::conv2d(v[0], v[1], ag::Var(), p); };
    conv_cuda_tol(t.back(), q.c * q.kh * q.kw);
    t.push_back({"conv2d", "backward_data " + nm, {ys, ws}, -1, 1, tol32, 1e-12,
                 [=](const std::vector<Tensor>& in) { return std::vector<Tensor>{conv2d_backward_data(in[0], in[1], xs, p)}; },
                 [=](const std::vector<Host>& in) {
                   Host gx = host_zeros(xs);
                   conv_loops(q, oh, ow, [&](int64_t xi, int64_t wi, int64_t yi) {
                     gx.v[static_cast<size_t>(xi)] += in[0].v[static_cast<size_t>(yi)] * in[1].v[static_cast<size_t>(wi)];
                   });
                   return std::vector<Host>{gx};
                 }});
    conv_cuda_tol(t.back(), q.f * q.kh * q.kw);
    t.push_back({"conv2d", "backward_filter " + nm, {ys, xs}, -1, 1, tol32, 1e-12,
                 [=](const std::vector<Tensor>& in) { return std::vector<Tensor>{conv2d_backward_filter(in[0], in[1], ws, p)}; },
                 [=](const std::vector<Host>& in) {
                   Host gw = host_zeros(ws);
                   conv_loops(q, oh, ow, [&](int64_t xi, int64_t wi, int64_t yi) {
                     gw.v[static_cast<size_t>(wi)] += in[0].v[static_cast<size_t>(yi)] * in[1].v[static_cast<size_t>(xi)];
                   });
                   return std::vector<Host>{gw};
                 }});
    conv_cuda_tol(t.back(), q.n * oh * ow);
    t.push_back({"conv2d", "backward_bias " + nm, {ys}, -1, 1, tol32, 1e-12,
                 [=](const std::vector<Tensor>& in) { return std::vector<Tensor>{conv2d_backward_bias(in[0])}; },
                 [=](const std::vector<Host>& in) {
                   Host gb = host_zeros({q.f});
                   for (size_t o = 0; o < in[0].v.size(); ++o)
                     gb.v[static_cast<size_t>(unravel(static_cast<int64_t>(o), ys)[1])] += in[0].v[o];
                   return std::vector<Host>{gb};
                 }});
    // A sum over N x OH x OW per channel: cuDNN adds in its own order (seen on an H200: float64 differs in the
    // last bits), so the same rounding allowance as the other convolution sums.
    conv_cuda_tol(t.back(), q.n * oh * ow);
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
                 [=](const std::vector<Tensor>& in) { return std::vector<Tensor>{gather_rows(in[0], idx_t.to(in[0].device()))}; },
                 [=](const std::vector<Host>& in) {
                   Host y = host_zeros(ss);
                   for (int64_t i = 0; i < m; ++i)
                     for (int64_t k = 0; k < d; ++k) y.v[static_cast<size_t>(i * d + k)] = in[0].v[static_cast<size_t>(idx[i] * d + k)];
                   return std::vector<Host>{y};
                 }});
    t.back().grad = [idx_t](const std::vector<ag::Var>& v) { return ag::gather_rows(v[0], idx_t); };
    t.push_back({"index", "scatter_add_rows " + shape_str(ss), {ss}, -2, 2, 1e-6, 1e-14,
                 [=](const std::vector<Tensor>& in) { return std::vector<Tensor>{scatter_add_rows(in[0], idx_t.to(in[0].device()), 6)}; },
                 [=](const std::vector<Host>& in) {
                   Host y = host_zeros(xs);
                   for (int64_t i = 0; i < m; ++i)
                     for (int64_t k = 0; k < d; ++k) y.v[static_cast<size_t>(idx[i] * d + k)] += in[0].v[static_cast<size_t>(i * d + k)];
                   return std::vector<Host>{y};
                 }});
    cuda_eps(t.back(), 4, 0);  // atomics add a repeated row's two terms in either order
    t.push_back({"index", "index_copy_rows_ " + shape_str(xs), {xs, ss}, -2, 2, 0, 0,
                 [=](const std::vector<Tensor>& in) {
                   Tensor dst = in[0].clone();
                   index_copy_rows_(dst, idx_t.to(dst.device()), in[1]);
                   return std::vector<Tensor>{dst};
                 },
                 [=](const std::vector<Host>& in) {
                   Host y = in[0];
                   for (int64_t i = 0; i < m; ++i)  // in order: the last write to a repeated row wins
                     for (int64_t k = 0; k < d; ++k) y.v[static_cast<size_t>(idx[i] * d + k)] = in[1].v[static_cast<size_t>(i * d + k)];
                   return std::vector<Host>{y};
                 }});
    t.back().cuda_comparable = false;  // with repeated rows any CUDA write may win (tests/test_cuda_ops.cpp: unique)
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
    t.back().grad = [axis](const std::vector<ag::Var>& v) { return ag::concat(v, axis); };
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
      cuda_eps(t.back(), 16, 8);  // FMA contraction on the GPU: a few ulps of each output (|p| <= 1)
    }
  }
}

}  // namespace jebm::test
