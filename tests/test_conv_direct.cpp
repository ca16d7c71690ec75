// The direct conv2d (runtime/cpu/conv_direct.cpp): forward, backward-data and backward-filter against the im2col +
// GEMM path and a 7-loop double-precision reference, in float32 and float64, on strides 1 to 3, padding 0 to 4,
// kernels 1 to 5, odd sizes, channel and filter counts that do not fill a vector or a block, batch 1 to 40 (more
// samples than filter-gradient slots, more steps than a chunk of the filter gradient by taps), and MNIST's conv3 and
// conv4; bit-identical at 1 and 2 threads and between the AVX-512, the FMA and the portable code, and between the
// three layouts of the forward (lanes over filters, over output columns, over filters by pixels of the plane) and
// the four of the input gradient (by output phase, by the columns of one stride phase or of one (row, column) phase,
// by pixels of the plane); each filter-gradient layout (per sample, by taps of the plane) against the loops and to
// its own bits; and the dispatch (runtime/cpu/conv.cpp) sends the MNIST CNN's layers direct and CIFAR-10's wide ones
// to the GEMM.
#include "tests/helpers.hpp"

#include <cstdint>
#include <string>
#include <vector>

#include "runtime/cpu/conv_direct.hpp"
#include "runtime/ops.hpp"

using namespace jebm;
using jebm::test::all_close;

namespace {

struct Case {
  int64_t n, c, h, w, f, kh, kw, stride, pad;
};

// The MNIST CNN's conv1 at 28x28 and 14x14 and its conv2, then odd shapes: C and F not multiples of the vector
// width or of a channel block (C 3, 5, 6, 9; F 3, 5, 7, 17, 20), rows shorter and longer than a pixel block and
// than one or two vectors (5 to 37 wide), stride 1, 2 and 3, padding 0 to 4, 1x1, 3x3, 4x4, 5x5 and 5x3 kernels (a
// 1x1 kernel at stride 2 leaves every other row and column without gradient).
const std::vector<Case> kCases = {
    {3, 1, 28, 28, 16, 5, 5, 2, 4},
    {1, 1, 14, 14, 16, 5, 5, 2, 4},
    {2, 16, 16, 16, 32, 3, 3, 2, 1},
    {2, 3, 7, 9, 5, 3, 3, 1, 0},
    {4, 2, 11, 10, 20, 3, 2, 2, 1},
    {5, 1, 9, 13, 3, 5, 3, 1, 2},
    {2, 4, 6, 5, 17, 1, 1, 1, 0},
    {1, 2, 19, 23, 9, 3, 3, 2, 0},
    {6, 1, 12, 30, 8, 4, 4, 1, 3},
    {11, 2, 9, 9, 16, 3, 3, 1, 1},
    {2, 3, 13, 37, 7, 4, 4, 2, 3},
    {3, 5, 10, 17, 6, 3, 3, 3, 2},
    {2, 6, 8, 8, 11, 1, 1, 2, 0},
    {1, 2, 5, 33, 4, 5, 5, 2, 0},
    {2, 9, 7, 14, 10, 3, 3, 1, 4},
    {2, 5, 9, 9, 3, 4, 4, 2, 2},
    // The MNIST CNN's conv3 and conv4 at 28x28 and 14x14 and conv2 at 14x14 (the layouts by pixels of the plane),
    // then channel and filter counts that fill no vector (20, 40, 17, 23), stride 1 and 3, a 2x3 kernel.
    {2, 32, 8, 8, 64, 3, 3, 2, 1},
    {3, 64, 4, 4, 64, 3, 3, 2, 1},
    {2, 32, 5, 5, 64, 3, 3, 2, 1},
    {1, 64, 3, 3, 64, 3, 3, 2, 1},
    {2, 16, 9, 9, 32, 3, 3, 2, 1},
    {3, 20, 7, 6, 40, 3, 3, 2, 1},
    {2, 17, 5, 7, 23, 2, 3, 1, 1},
    {2, 16, 9, 9, 48, 3, 3, 3, 1}};

std::string name(const Case& q) {
  return "x[" + std::to_string(q.n) + ", " + std::to_string(q.c) + ", " + std::to_string(q.h) + ", " +
         std::to_string(q.w) + "] w[" + std::to_string(q.f) + ", " + std::to_string(q.c) + ", " +
         std::to_string(q.kh) + ", " + std::to_string(q.kw) + "] s" + std::to_string(q.stride) + " p" +
         std::to_string(q.pad);
}

// A case's input, weights, bias and output gradient, uniform on [-1, 1], drawn from gen in that order.
struct Inputs {
  Tensor x, w, b, gy;
};

Inputs random_inputs(const Case& q, DType dt, Generator& gen) {
  Inputs in;
  in.x = rand_uniform({q.n, q.c, q.h, q.w}, -1, 1, gen, dt);
  in.w = rand_uniform({q.f, q.c, q.kh, q.kw}, -1, 1, gen, dt);
  in.b = rand_uniform({q.f}, -1, 1, gen, dt);
  in.gy = rand_uniform(conv2d_output_shape(in.x.shape(), in.w.shape(), {q.stride, q.pad}), -1, 1, gen, dt);
  return in;
}

// y = conv(x, w) + b, grad_x = conv^T(gy, w) and grad_w by the index relation iy = oy*s - p + i, ix = ox*s - p + j, in
// double.
struct Loops {
  std::vector<double> y, gx, gw;
};

Loops loops(const Case& q, const Inputs& in) {
  const std::vector<double> x = in.x.to_vector(), w = in.w.to_vector(), b = in.b.to_vector(), gy = in.gy.to_vector();
  const int64_t oh = in.gy.size(2), ow = in.gy.size(3);
  Loops r{std::vector<double>(gy.size(), 0.0), std::vector<double>(x.size(), 0.0), std::vector<double>(w.size(), 0.0)};
  for (int64_t n = 0; n < q.n; ++n)
    for (int64_t f = 0; f < q.f; ++f)
      for (int64_t oy = 0; oy < oh; ++oy)
        for (int64_t ox = 0; ox < ow; ++ox) {
          const size_t yi = static_cast<size_t>(((n * q.f + f) * oh + oy) * ow + ox);
          r.y[yi] = b[static_cast<size_t>(f)];
          for (int64_t c = 0; c < q.c; ++c)
            for (int64_t i = 0; i < q.kh; ++i)
              for (int64_t j = 0; j < q.kw; ++j) {
                const int64_t iy = oy * q.stride - q.pad + i, ix = ox * q.stride - q.pad + j;
                if (iy < 0 || iy >= q.h || ix < 0 || ix >= q.w) continue;
                const size_t xi = static_cast<size_t>(((n * q.c + c) * q.h + iy) * q.w + ix);
                const size_t wi = static_cast<size_t>(((f * q.c + c) * q.kh + i) * q.kw + j);
                r.y[yi] += x[xi] * w[wi];
                r.gx[xi] += gy[yi] * w[wi];
                r.gw[wi] += gy[yi] * x[xi];
              }
        }
  return r;
}

struct Outputs {
  Tensor y, gx, gw;
};

Outputs run_direct(const Case& q, const Tensor& x, const Tensor& w, const Tensor& b, const Tensor& gy) {
  const Conv2dParams p{q.stride, q.pad};
  Outputs o{Tensor::zeros(gy.shape(), x.dtype()), Tensor::zeros(x.shape(), x.dtype()),
            Tensor::zeros(w.shape(), x.dtype())};
  cpu::conv2d_direct_forward(x, w, b, p, o.y);
  cpu::conv2d_direct_backward_data(gy, w, p, o.gx);
  cpu::conv2d_direct_backward_filter(gy, x, p, o.gw);
  return o;
}

// For its lifetime: a layout forced through `set` (one of conv2d_direct_force_*_layout), an instruction set and a
// thread count; then the defaults again.
struct Forced {
  void (*set)(int);
  jebm::test::ThreadCount threads;
  Forced(void (*s)(int), int layout, int isa, int nthreads) : set(s), threads(nthreads) {
    set(layout);
    cpu::conv2d_direct_force_isa(isa);
  }
  ~Forced() {
    set(-1);
    cpu::conv2d_direct_force_isa(-1);
  }
};

}  // namespace

BOOST_AUTO_TEST_CASE(direct_equals_im2col_and_the_loop_reference) {
  for (const Case& q : kCases)
    for (DType dt : {DType::Float32, DType::Float64}) {
      BOOST_TEST_CONTEXT(name(q) << " " << dtype_name(dt)) {
        const Conv2dParams p{q.stride, q.pad};
        Generator gen{11, static_cast<uint64_t>(q.n * 1000 + q.f)};
        const auto [x, w, b, gy] = random_inputs(q, dt, gen);
        const Shape ys = gy.shape();
        const Outputs d = run_direct(q, x, w, b, gy);
        Tensor y = Tensor::zeros(ys, dt), gx = Tensor::zeros(x.shape(), dt), gw = Tensor::zeros(w.shape(), dt);
        cpu::conv2d_im2col_forward(x, w, b, p, y);
        cpu::conv2d_im2col_backward_data(gy, w, p, gx);
        cpu::conv2d_im2col_backward_filter(gy, x, p, gw);
        const auto [yr, gxr, gwr] = loops(q, {x, w, b, gy});
        // Sums of at most C*KH*KW (forward) or F*KH*KW (backward-data) products of terms in [-1, 1], in different
        // orders: a few ulps of the sum's length.
        const double tol = dt == DType::Float32 ? 1e-5 : 1e-13;
        const double tf = tol * static_cast<double>(q.c * q.kh * q.kw);
        const double tb = tol * static_cast<double>(q.f * q.kh * q.kw);
        const double tw = tol * static_cast<double>(q.n * ys[2] * ys[3]);  // grad_w sums over N*OH*OW
        BOOST_TEST(all_close(d.y, y, tf, tol, "forward vs im2col"));
        BOOST_TEST(all_close(d.gx, gx, tb, tol, "backward_data vs im2col"));
        BOOST_TEST(all_close(d.y.to_vector(), yr, tf, tol, "forward vs loops"));
        BOOST_TEST(all_close(d.gx.to_vector(), gxr, tb, tol, "backward_data vs loops"));
        BOOST_TEST(all_close(d.gw, gw, tw, tol, "backward_filter vs im2col"));
        BOOST_TEST(all_close(d.gw.to_vector(), gwr, tw, tol, "backward_filter vs loops"));
        // Without a bias, the forward is the same sums without the added term.
        Tensor y0 = Tensor::zeros(ys, dt), y0ref = Tensor::zeros(ys, dt);
        cpu::conv2d_direct_forward(x, w, Tensor(), p, y0);
        cpu::conv2d_im2col_forward(x, w, Tensor(), p, y0ref);
        BOOST_TEST(all_close(y0, y0ref, tf, tol, "forward without bias vs im2col"));
      }
    }
}

BOOST_AUTO_TEST_CASE(direct_results_do_not_depend_on_thread_count) {
  for (const Case& q : kCases)
    for (DType dt : {DType::Float32, DType::Float64}) {
      BOOST_TEST_CONTEXT(name(q) << " " << dtype_name(dt)) {
        Generator gen{12, 0};
        const auto [x, w, b, gy] = random_inputs(q, dt, gen);
        std::vector<std::vector<double>> runs;
        for (int threads : {1, 2}) {
          const jebm::test::ThreadCount count(threads);
          const Outputs o = run_direct(q, x, w, b, gy);
          std::vector<double> r = o.y.to_vector();
          for (double v : o.gx.to_vector()) r.push_back(v);
          for (double v : o.gw.to_vector()) r.push_back(v);
          runs.push_back(r);
        }
        BOOST_TEST(runs[0] == runs[1]);
      }
    }
}

BOOST_AUTO_TEST_CASE(direct_results_do_not_depend_on_the_instruction_set) {
  // The code this CPU picks against the FMA (AVX2-class) one and the portable one, fma() lane by lane: every output
  // is the same fused multiply-adds in the same order, so the bits must agree.
  for (const Case& q : kCases)
    for (DType dt : {DType::Float32, DType::Float64}) {
      BOOST_TEST_CONTEXT(name(q) << " " << dtype_name(dt)) {
        Generator gen{14, 0};
        const auto [x, w, b, gy] = random_inputs(q, dt, gen);
        const Outputs best = run_direct(q, x, w, b, gy);
        for (int isa : {1, 0}) {
          cpu::conv2d_direct_force_isa(isa);
          const Outputs other = run_direct(q, x, w, b, gy);
          cpu::conv2d_direct_force_isa(-1);
          BOOST_TEST(best.y.to_vector() == other.y.to_vector(), "forward, instruction set " << isa);
          BOOST_TEST(best.gx.to_vector() == other.gx.to_vector(), "input gradient, instruction set " << isa);
          BOOST_TEST(best.gw.to_vector() == other.gw.to_vector(), "filter gradient, instruction set " << isa);
        }
      }
    }
}

BOOST_AUTO_TEST_CASE(forward_layouts_give_the_same_bits) {
  // Lanes over filters, lanes over output columns and lanes over filters with pixel blocks from the whole plane sum
  // the same fused products in the same order: each forced on
  // every case, in every instruction set, at 1 and 2 threads, must give the bits of the other, and match the loops.
  for (const Case& q : kCases)
    for (DType dt : {DType::Float32, DType::Float64}) {
      BOOST_TEST_CONTEXT(name(q) << " " << dtype_name(dt)) {
        Generator gen{15, 0};
        const auto [x, w, b, gy] = random_inputs(q, dt, gen);
        const Conv2dParams p{q.stride, q.pad};
        const auto [yr, gxr, gwr] = loops(q, {x, w, b, gy});
        const double tf = (dt == DType::Float32 ? 1e-5 : 1e-13) * static_cast<double>(q.c * q.kh * q.kw);
        const double tol = dt == DType::Float32 ? 1e-5 : 1e-13;
        Tensor y_nobias = Tensor::zeros(gy.shape(), dt);
        cpu::conv2d_im2col_forward(x, w, Tensor(), p, y_nobias);
        std::vector<double> first[2];  // with and without the bias
        for (int layout : {0, 1, 2})
          for (int isa : {2, 1, 0})
            for (int threads : {1, 2})
              for (int with_bias : {1, 0}) {
                Tensor y = Tensor::zeros(gy.shape(), dt);
                {
                  const Forced forced(cpu::conv2d_direct_force_forward_layout, layout, isa, threads);
                  cpu::conv2d_direct_forward(x, w, with_bias ? b : Tensor(), p, y);
                }
                const std::vector<double> got = y.to_vector();
                if (with_bias) BOOST_TEST(all_close(got, yr, tf, tol, "forward vs loops"));
                else BOOST_TEST(all_close(y, y_nobias, tf, tol, "forward without bias vs im2col"));
                if (first[with_bias].empty()) first[with_bias] = got;
                BOOST_TEST(got == first[with_bias], "layout " << layout << ", instruction set " << isa << ", "
                                                              << threads << " threads, bias " << with_bias);
              }
      }
    }
}

BOOST_AUTO_TEST_CASE(backward_data_layouts_give_the_same_bits) {
  // By output phase, by the columns of one stride phase and by the columns of one (row, column) phase (both stride 2
  // only; the last skips the zero padding taps, whose x * 0 leaves the sums unchanged), and by pixels of the plane
  // (lanes over channels; it skips those taps too) run the same fused multiply-adds in the same order: each forced
  // on every case (the column layouts on the stride-2 ones), in every instruction set, at 1 and 2 threads, must give
  // the bits of the others (== on values: a zero's sign may differ), and match the loops.
  for (const Case& q : kCases)
    for (DType dt : {DType::Float32, DType::Float64}) {
      BOOST_TEST_CONTEXT(name(q) << " " << dtype_name(dt)) {
        Generator gen{16, 0};
        const auto [x, w, b, gy] = random_inputs(q, dt, gen);
        const Conv2dParams p{q.stride, q.pad};
        const auto [yr, gxr, gwr] = loops(q, {x, w, b, gy});
        const double tol = dt == DType::Float32 ? 1e-5 : 1e-13;
        std::vector<double> first;
        for (int layout : {0, 1, 2, 3})
          for (int isa : {2, 1, 0})
            for (int threads : {1, 2}) {
              if (q.stride != 2 && (layout == 1 || layout == 2)) continue;
              Tensor gx = Tensor::zeros(x.shape(), dt);
              {
                const Forced forced(cpu::conv2d_direct_force_backward_data_layout, layout, isa, threads);
                cpu::conv2d_direct_backward_data(gy, w, p, gx);
              }
              const std::vector<double> got = gx.to_vector();
              BOOST_TEST(all_close(got, gxr, tol * static_cast<double>(q.f * q.kh * q.kw), tol, "vs loops"));
              if (first.empty()) first = got;
              BOOST_TEST(got == first, "layout " << layout << ", instruction set " << isa << ", " << threads
                                                 << " threads");
            }
      }
    }
}

BOOST_AUTO_TEST_CASE(backward_filter_layouts_match_the_loops_and_keep_their_bits) {
  // Per sample in fixed slots, and by taps of the plane (one chain per tap over every (sample, pixel)): other sums
  // in other orders, so each layout is held to the loops, and to its own bits in every instruction set and at 1 and 2
  // threads.
  for (const Case& q : kCases)
    for (DType dt : {DType::Float32, DType::Float64}) {
      BOOST_TEST_CONTEXT(name(q) << " " << dtype_name(dt)) {
        Generator gen{17, 0};
        const auto [x, w, b, gy] = random_inputs(q, dt, gen);
        const Conv2dParams p{q.stride, q.pad};
        const auto [yr, gxr, gwr] = loops(q, {x, w, b, gy});
        const double tol = dt == DType::Float32 ? 1e-5 : 1e-13;
        const double tw = tol * static_cast<double>(q.n * gy.size(2) * gy.size(3));
        for (int layout : {0, 1}) {
          std::vector<double> first;
          for (int isa : {2, 1, 0})
            for (int threads : {1, 2}) {
              Tensor gw = Tensor::zeros(w.shape(), dt);
              {
                const Forced forced(cpu::conv2d_direct_force_backward_filter_layout, layout, isa, threads);
                cpu::conv2d_direct_backward_filter(gy, x, p, gw);
              }
              const std::vector<double> got = gw.to_vector();
              BOOST_TEST(all_close(got, gwr, tw, tol, "vs loops"));
              if (first.empty()) first = got;
              BOOST_TEST(got == first,
                         "layout " << layout << ", instruction set " << isa << ", " << threads << " threads");
            }
        }
      }
    }
}

BOOST_AUTO_TEST_CASE(an_empty_batch_gives_empty_outputs_in_every_layout) {
  // No samples: empty y and grad_x, a zero filter gradient, whatever the layout (the plane's layouts size their
  // groups of samples by the batch).
  for (const Case& q :
       {Case{0, 32, 8, 8, 64, 3, 3, 2, 1}, Case{0, 16, 9, 9, 32, 3, 3, 2, 1}, Case{0, 1, 28, 28, 16, 5, 5, 2, 4}}) {
    BOOST_TEST_CONTEXT(name(q)) {
      Generator gen{18, 0};
      const auto [x, w, b, gy] = random_inputs(q, DType::Float32, gen);
      const Conv2dParams p{q.stride, q.pad};
      for (int layout : {0, 1, 2, 3}) {
        Tensor y = Tensor::zeros(gy.shape(), DType::Float32), gx = Tensor::zeros(x.shape(), DType::Float32);
        Tensor gw = rand_uniform(w.shape(), -1, 1, gen, DType::Float32);
        {
          const Forced fwd(cpu::conv2d_direct_force_forward_layout, std::min(layout, 2), -1, 2);
          cpu::conv2d_direct_forward(x, w, b, p, y);
        }
        {
          const Forced data(cpu::conv2d_direct_force_backward_data_layout, layout, -1, 2);
          cpu::conv2d_direct_backward_data(gy, w, p, gx);
        }
        {
          const Forced filter(cpu::conv2d_direct_force_backward_filter_layout, std::min(layout, 1), -1, 2);
          cpu::conv2d_direct_backward_filter(gy, x, p, gw);
        }
        BOOST_TEST(y.numel() == 0);
        BOOST_TEST(gx.numel() == 0);
        BOOST_TEST(gw.to_vector() == std::vector<double>(static_cast<size_t>(gw.numel()), 0.0), "layout " << layout);
      }
      BOOST_TEST(conv2d(x, w, b, p).shape() == gy.shape());
      BOOST_TEST(conv2d_backward_data(gy, w, x.shape(), p).shape() == x.shape());
      BOOST_TEST(conv2d_backward_filter(gy, x, w.shape(), p).to_vector() ==
                 std::vector<double>(static_cast<size_t>(w.numel()), 0.0));
    }
  }
}

BOOST_AUTO_TEST_CASE(mnist_layers_go_direct_and_wide_ones_through_the_gemm) {
  const Conv2dParams s2p4{2, 4}, s2p1{2, 1};
  const Conv2dParams s1p1{1, 1};
  for (const Shape& x : {Shape{256, 1, 28, 28}, Shape{256, 1, 14, 14}}) {  // conv1, K = 25, at 28x28 and 14x14
    BOOST_TEST(cpu::conv2d_direct_forward_fits(x, {16, 1, 5, 5}, s2p4));
    BOOST_TEST(cpu::conv2d_direct_backward_data_fits(x, {16, 1, 5, 5}, s2p4));
    BOOST_TEST(cpu::conv2d_direct_backward_filter_fits(x, {16, 1, 5, 5}, s2p4));
  }
  BOOST_TEST(cpu::conv2d_direct_forward_fits({256, 16, 16, 16}, {32, 16, 3, 3}, s2p1));  // conv2, K = 144
  BOOST_TEST(cpu::conv2d_direct_backward_data_fits({256, 16, 16, 16}, {32, 16, 3, 3}, s2p1));
  BOOST_TEST(cpu::conv2d_direct_backward_filter_fits({256, 16, 16, 16}, {32, 16, 3, 3}, s2p1));
  BOOST_TEST(cpu::conv2d_direct_forward_fits({256, 16, 9, 9}, {32, 16, 3, 3}, s2p1));  // conv2 on 9x9: rows of 5
  BOOST_TEST(cpu::conv2d_direct_backward_data_fits({256, 16, 9, 9}, {32, 16, 3, 3}, s2p1));
  // conv3 (K = 288) and conv4 (576) at 28x28 and 14x14: forward and input gradient by pixels of the plane, the
  // filter gradient by taps of the plane.
  for (const Shape& x : {Shape{256, 32, 8, 8}, Shape{256, 32, 5, 5}, Shape{256, 64, 4, 4}, Shape{256, 64, 3, 3}}) {
    const Shape w{64, x[1], 3, 3};
    BOOST_TEST(cpu::conv2d_direct_forward_fits(x, w, s2p1));
    BOOST_TEST(cpu::conv2d_direct_backward_data_fits(x, w, s2p1));
    BOOST_TEST(cpu::conv2d_direct_backward_data_by_plane(x, w));
    BOOST_TEST(cpu::conv2d_direct_backward_filter_fits(x, w, s2p1));
    BOOST_TEST(cpu::conv2d_direct_backward_filter_by_plane(x, w, s2p1));
  }
  // conv2 at 28x28: input gradient by phases, filter gradient per sample; at 14x14 (rows of 9, 25 output pixels)
  // both by the plane.
  BOOST_TEST(!cpu::conv2d_direct_backward_data_by_plane({256, 16, 16, 16}, {32, 16, 3, 3}));
  BOOST_TEST(!cpu::conv2d_direct_backward_filter_by_plane({256, 16, 16, 16}, {32, 16, 3, 3}, s2p1));
  BOOST_TEST(cpu::conv2d_direct_backward_data_by_plane({256, 16, 9, 9}, {32, 16, 3, 3}));
  BOOST_TEST(cpu::conv2d_direct_backward_filter_by_plane({256, 16, 9, 9}, {32, 16, 3, 3}, s2p1));
  // conv1 (one channel, 16 filters): never by the plane.
  BOOST_TEST(!cpu::conv2d_direct_backward_data_by_plane({256, 1, 14, 14}, {16, 1, 5, 5}));
  BOOST_TEST(!cpu::conv2d_direct_backward_filter_by_plane({256, 1, 28, 28}, {16, 1, 5, 5}, s2p4));
  // CIFAR-10's wide layers: through the GEMM, even the 256 -> 512 one on 8x8 (rows of 4).
  BOOST_TEST(!cpu::conv2d_direct_forward_fits({32, 256, 8, 8}, {512, 256, 4, 4}, s2p1));
  BOOST_TEST(!cpu::conv2d_direct_backward_data_fits({32, 256, 8, 8}, {512, 256, 4, 4}, s2p1));
  BOOST_TEST(!cpu::conv2d_direct_backward_filter_fits({32, 256, 8, 8}, {512, 256, 4, 4}, s2p1));
  BOOST_TEST(!cpu::conv2d_direct_forward_fits({32, 64, 32, 32}, {128, 64, 4, 4}, s2p1));
  // CIFAR-10's conv1 (K = 27, 64 filters): the forward (rows of 32, by columns) and the input gradient go direct.
  BOOST_TEST(cpu::conv2d_direct_forward_fits({64, 3, 32, 32}, {64, 3, 3, 3}, s1p1));
  BOOST_TEST(cpu::conv2d_direct_backward_data_fits({64, 3, 32, 32}, {64, 3, 3, 3}, s1p1));
  BOOST_TEST(!cpu::conv2d_direct_backward_filter_fits({64, 3, 32, 32}, {64, 3, 3, 3}, s1p1));
  BOOST_TEST(cpu::conv2d_direct_forward_fits({256, 1, 6, 6}, {16, 1, 3, 3}, s2p1));  // rows of 3: by the plane
  BOOST_TEST(!cpu::conv2d_direct_backward_data_fits({256, 1, 6, 6}, {16, 1, 3, 3}, s2p1));
  // The op takes the direct path where it fits: its results are the direct kernels' bits.
  Generator gen{13, 0};
  const Case q = kCases[0];  // stride 2, padding 4: s2p4
  const auto [x, w, b, gy] = random_inputs(q, DType::Float32, gen);
  const Outputs d = run_direct(q, x, w, b, gy);
  BOOST_TEST(conv2d(x, w, b, s2p4).to_vector() == d.y.to_vector());
  BOOST_TEST(conv2d_backward_data(gy, w, x.shape(), s2p4).to_vector() == d.gx.to_vector());
  BOOST_TEST(conv2d_backward_filter(gy, x, w.shape(), s2p4).to_vector() == d.gw.to_vector());
}
