// CUDA vs CPU: every row of the shared op-case table (tests/op_cases.cpp) through the ops layer on both devices, the
// unary ops at special values, and the kernel entry points (runtime/kernels.inc through runtime/backend.hpp) called
// directly on NaN-filled outputs, so an element a kernel forgets to write fails; each on identical random inputs,
// float32 and float64, compared elementwise with a tolerance justified per op (first mismatches printed). Plus the
// CUDA context itself: transfers, the caching allocator's steady state, deferred index errors, the ops layer.
// Every case has the CudaDevicePresent precondition, so machines without a GPU report them skipped.
#include "tests/helpers.hpp"

#include <cmath>
#include <cstdint>
#include <functional>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "runtime/backend.hpp"
#include "runtime/ops.hpp"
#include "tests/op_cases.hpp"
#ifdef JEBM_WITH_CUDA
#include "runtime/cuda/context.hpp"
#endif

using namespace jebm;
using jebm::test::all_close;
namespace utf = boost::unit_test;

namespace {
#ifdef JEBM_WITH_CUDA  // the table needs both backends; a CPU-only build keeps only require_names_the_reason

// The same kernel call on either backend (both return void).
#define KERNEL(on_cuda, FN, ...) ((on_cuda) ? ::jebm::cuda::FN(__VA_ARGS__) : ::jebm::cpu::FN(__VA_ARGS__))

using jebm::test::eps_of;

// What a case sees: the device it runs on and inputs that are identical on both runs (the same seeded stream of
// host values, copied to the device).
struct Env {
  Device dev;
  DType dt;
  uint64_t seed;
  int inputs = 0;
  bool cuda() const { return dev.is_cuda(); }

  // Uniform in [lo, hi), drawn on the host with a fixed seed per (case, input number).
  Tensor in(const Shape& s, double lo = -2.0, double hi = 2.0) {
    std::mt19937_64 rng(seed * 1000003u + static_cast<uint64_t>(inputs++));
    std::uniform_real_distribution<double> u(lo, hi);
    std::vector<double> v(static_cast<size_t>(shape_numel(s)));
    for (double& x : v) x = u(rng);
    return Tensor::from_vector(v, s, dt, dev);
  }
  Tensor values(const std::vector<double>& v, const Shape& s) { return Tensor::from_vector(v, s, dt, dev); }
  Tensor index(const std::vector<int64_t>& v) { return Tensor::from_vector(v, {static_cast<int64_t>(v.size())}, dev); }
  // Output buffers start as NaN so that an element a kernel forgets to write fails the comparison.
  Tensor out(const Shape& s, DType t) {
    Tensor y = Tensor::empty(s, t, dev);
    KERNEL(cuda(), fill, y, t == DType::Int64 ? -7.0 : std::nan(""));
    return y;
  }
  Tensor out(const Shape& s) { return out(s, dt); }
};

using jebm::test::Tol;

// all_close, except that equal infinities and NaN against NaN count as equal (log-sum-exp of an all -inf row is
// -inf on both backends, the mean over an empty axis NaN).
bool matches(const Tensor& got, const Tensor& want, const Tol& t, const std::string& what) {
  if (got.shape() != want.shape()) return all_close(got, want, t.atol, t.rtol, what);
  std::vector<double> g = got.to_vector(), w = want.to_vector();
  for (size_t i = 0; i < g.size(); ++i)
    if (g[i] == w[i] || (std::isnan(g[i]) && std::isnan(w[i]))) g[i] = w[i] = 0.0;
  return all_close(g, w, t.atol, t.rtol, what);
}

// One row of the table: run() returns the outputs to compare; tol() gives the tolerance for a dtype and variant.
struct Case {
  std::string name;
  int variants;
  std::function<std::vector<Tensor>(Env&, int)> run;
  std::function<Tol(DType, int)> tol;
};

Tol exact(DType, int) { return {0.0, 0.0}; }

void run_cases(const std::vector<Case>& cases, std::vector<DType> dtypes = {DType::Float32, DType::Float64}) {
  uint64_t seed = 1;
  for (const Case& c : cases) {
    for (DType dt : dtypes) {
      for (int v = 0; v < c.variants; ++v, ++seed) {
        const std::string what = c.name + " [" + dtype_name(dt) + ", variant " + std::to_string(v) + "]";
        Env cpu_env{Device::cpu(), dt, seed};
        Env gpu_env{Device::cuda(), dt, seed};
        std::vector<Tensor> want, got;
        try {
          want = c.run(cpu_env, v);
          got = c.run(gpu_env, v);
        } catch (const std::exception& e) {
          BOOST_ERROR(what << " threw: " << e.what());
          continue;
        }
        BOOST_REQUIRE_EQUAL(want.size(), got.size());
        const Tol t = c.tol(dt, v);
        for (size_t k = 0; k < want.size(); ++k) {
          const std::string w = what + " output " + std::to_string(k);
          BOOST_CHECK_MESSAGE(got[k].device().is_cuda(), w << ": CUDA output is not on the GPU");
          BOOST_CHECK_MESSAGE(matches(got[k], want[k], t, w),
                              w << ": CUDA differs from CPU beyond atol " << t.atol << ", rtol " << t.rtol);
        }
      }
    }
  }
}

// --- elementwise -----------------------------------------------------------------------------------------

const std::vector<Shape> kShapes = {{1}, {7}, {33, 5}, {4, 3, 17, 9}, {1 << 17}};

const UnaryOp kUnary[] = {UnaryOp::Neg,      UnaryOp::Exp,  UnaryOp::Log,  UnaryOp::Sqrt,
                          UnaryOp::Square,   UnaryOp::Abs,  UnaryOp::Tanh, UnaryOp::Sigmoid,
                          UnaryOp::Softplus, UnaryOp::Relu, UnaryOp::Silu, UnaryOp::LeakyRelu};

bool positive_domain(UnaryOp op) { return op == UnaryOp::Log || op == UnaryOp::Sqrt; }

// CUDA's float exp/log/tanh are within 2 ulp of correctly rounded and glibc's within 1: a few ulps of the result,
// plus an absolute term for results near 0 (tanh, silu) where derived terms lose relative accuracy. Pure
// arithmetic ops (neg, square, abs, relu) are exact.
Tol unary_tol(DType t, int) { return {8 * eps_of(t), 8 * eps_of(t)}; }

std::vector<Case> elementwise_cases() {
  std::vector<Case> cs;
  for (UnaryOp op : kUnary) {
    cs.push_back({std::string("unary ") + unary_op_name(op), static_cast<int>(kShapes.size()),
                  [op](Env& e, int v) {
                    Tensor x = positive_domain(op) ? e.in(kShapes[v], 0.05, 5.0) : e.in(kShapes[v], -6.0, 6.0);
                    Tensor y = e.out(kShapes[v]);
                    KERNEL(e.cuda(), unary, op, x, y, 0.1);
                    return std::vector<Tensor>{y};
                  },
                  unary_tol});
    cs.push_back({std::string("unary_backward ") + unary_op_name(op), static_cast<int>(kShapes.size()),
                  [op](Env& e, int v) {
                    Tensor x = positive_domain(op) ? e.in(kShapes[v], 0.05, 5.0) : e.in(kShapes[v], -6.0, 6.0);
                    Tensor g = e.in(kShapes[v]);
                    Tensor gx = e.out(kShapes[v]);
                    KERNEL(e.cuda(), unary_backward, op, x, g, gx, 0.1);
                    return std::vector<Tensor>{gx};
                  },
                  // 1/x at x = 0.05 and sqrt's derivative amplify the ulps of the forward functions by |g| <= 2.
                  [](DType t, int) { return Tol{16 * eps_of(t), 16 * eps_of(t)}; }});
  }
  // Broadcasting pairs: equal, scalar either side, row/column vectors, a middle dim, rank mismatch.
  static const std::vector<std::pair<Shape, Shape>> pairs = {
      {{5, 7}, {5, 7}},     {{5, 7}, {1}},          {{1}, {5, 7}},          {{5, 7}, {7}},
      {{5, 7}, {5, 1}},     {{4, 1, 6}, {1, 3, 6}}, {{2, 3, 4, 5}, {3, 1, 5}}, {{300, 257}, {257}},
      {{}, {3, 2}}};
  const BinaryOp bops[] = {BinaryOp::Add, BinaryOp::Sub, BinaryOp::Mul, BinaryOp::Div, BinaryOp::Max, BinaryOp::Min};
  for (BinaryOp op : bops) {
    cs.push_back({std::string("binary ") + binary_op_name(op), static_cast<int>(pairs.size()),
                  [op](Env& e, int v) {
                    const auto& [sa, sb] = pairs[static_cast<size_t>(v)];
                    Tensor a = e.in(sa);
                    Tensor b = op == BinaryOp::Div ? e.in(sb, 0.5, 3.0) : e.in(sb);
                    Tensor o = e.out(broadcast_shapes(sa, sb, "test"));
                    KERNEL(e.cuda(), binary, op, a, b, o);
                    return std::vector<Tensor>{o};
                  },
                  exact});  // + - * / are correctly rounded IEEE operations on both sides (nvcc keeps prec-div)
  }
  struct ScalarCase { ScalarOp op; double s, s2; };
  static const ScalarCase scs[] = {{ScalarOp::Add, 1.25, 0}, {ScalarOp::Mul, -0.7, 0}, {ScalarOp::Pow, 2.0, 0},
                                   {ScalarOp::Pow, 0.5, 0},  {ScalarOp::Pow, 1.7, 0},  {ScalarOp::Pow, -1.5, 0},
                                   {ScalarOp::Clamp, -0.5, 0.75}};
  for (const ScalarCase& sc : scs) {
    cs.push_back({"scalar_op " + std::to_string(static_cast<int>(sc.op)) + " s=" + std::to_string(sc.s),
                  static_cast<int>(kShapes.size()),
                  [sc](Env& e, int v) {
                    Tensor x = sc.op == ScalarOp::Pow ? e.in(kShapes[v], 0.1, 3.0) : e.in(kShapes[v]);
                    Tensor y = e.out(kShapes[v]);
                    KERNEL(e.cuda(), scalar_op, sc.op, x, sc.s, sc.s2, y);
                    return std::vector<Tensor>{y};
                  },
                  // powf is within 4 ulp on CUDA (1 in glibc); the rest is exact arithmetic.
                  [sc](DType t, int) { return sc.op == ScalarOp::Pow ? Tol{0, 8 * eps_of(t)} : Tol{0, 0}; }});
  }
  cs.push_back({"axpby", static_cast<int>(kShapes.size()),
                [](Env& e, int v) {
                  Tensor x = e.in(kShapes[v]), y = e.in(kShapes[v]), y0 = e.out(kShapes[v]);
                  KERNEL(e.cuda(), axpby, 1.5, x, -0.75, y);
                  KERNEL(e.cuda(), axpby, 2.0, x, 0.0, y0);  // b = 0 must overwrite the NaN
                  return std::vector<Tensor>{y, y0};
                },
                // nvcc fuses a*x + b*y into one FMA: one rounding fewer, so results differ by up to one ulp of the
                // larger term (|a x| <= 3), absolute because the two terms may cancel.
                [](DType t, int) { return Tol{4 * 3.0 * eps_of(t), 0}; }});
  cs.push_back({"fill", static_cast<int>(kShapes.size()),
                [](Env& e, int v) {
                  Tensor y = e.out(kShapes[v]), i = e.out(kShapes[v], DType::Int64);
                  KERNEL(e.cuda(), fill, y, -3.3);
                  KERNEL(e.cuda(), fill, i, 42.0);
                  return std::vector<Tensor>{y, i};
                },
                exact});
  cs.push_back({"cast", static_cast<int>(kShapes.size()),
                [](Env& e, int v) {
                  Tensor x = e.in(kShapes[v], -1000.0, 1000.0);
                  std::vector<Tensor> outs;
                  for (DType to : {DType::Float32, DType::Float64, DType::Int64}) {
                    Tensor y = e.out(kShapes[v], to);
                    KERNEL(e.cuda(), cast, x, y);
                    Tensor back = e.out(kShapes[v]);
                    KERNEL(e.cuda(), cast, y, back);  // and from every dtype back
                    outs.push_back(y);
                    outs.push_back(back);
                  }
                  return outs;
                },
                exact});  // conversions are correctly rounded (floats) or truncating (int64) on both sides
  return cs;
}

// --- reductions ------------------------------------------------------------------------------------------

struct ReduceShape { int64_t outer, n, inner; };
// Row paths: warp per row (n <= 1024), block per row, rows split across blocks; the column path; empty n.
const std::vector<ReduceShape> kReduceShapes = {{1, 1, 1},    {5, 9, 1},    {3, 100000, 1}, {1, 1 << 20, 1},
                                                {70000, 3, 1}, {4, 37, 33}, {2, 5000, 3},   {1, 1, 1000},
                                                {3, 0, 2},     {7, 1025, 1}, {3, 0, 1}};

// Both sides accumulate in double; only the summation order differs (~n * 1e-16 of sum |x|, |x| <= 2), which can
// flip the final rounding to float by one ulp.
Tol reduce_tol(DType t, int v) {
  const ReduceShape& s = kReduceShapes[static_cast<size_t>(v)];
  return {1e-15 * 2.0 * static_cast<double>(s.n + 1), 2 * eps_of(t)};
}

std::vector<Case> reduce_cases() {
  std::vector<Case> cs;
  for (ReduceOp op : {ReduceOp::Sum, ReduceOp::Mean, ReduceOp::Max, ReduceOp::LogSumExp}) {
    cs.push_back({std::string("reduce ") + reduce_op_name(op), static_cast<int>(kReduceShapes.size()),
                  [op](Env& e, int v) {
                    const ReduceShape& s = kReduceShapes[static_cast<size_t>(v)];
                    Tensor x = e.in({s.outer, s.n, s.inner});
                    Tensor y = e.out({s.outer, s.inner});
                    KERNEL(e.cuda(), reduce, op, x, s.outer, s.n, s.inner, y);
                    return std::vector<Tensor>{y};
                  },
                  reduce_tol});
  }
  // Log-sum-exp and max with infinities: an all -inf row gives -inf, a +inf entry gives +inf.
  cs.push_back({"reduce LogSumExp/Max with infinities", 1,
                [](Env& e, int) {
                  const double inf = std::numeric_limits<double>::infinity();
                  Tensor x = e.values({-inf, -inf, -inf, 1.0, -inf, 2.0, 0.5, inf, -3.0}, {3, 3});
                  Tensor a = e.out({3, 1}), b = e.out({3, 1});
                  KERNEL(e.cuda(), reduce, ReduceOp::LogSumExp, x, 3, 3, 1, a);
                  KERNEL(e.cuda(), reduce, ReduceOp::Max, x, 3, 3, 1, b);
                  return std::vector<Tensor>{a, b};
                },
                [](DType t, int) { return Tol{0, 2 * eps_of(t)}; }});
  // sum_to: over leading dims, over trailing dims, to a scalar, and the general (interleaved) pattern.
  static const std::vector<std::pair<Shape, Shape>> pairs = {
      {{300, 7}, {7}}, {{300, 7}, {1, 7}}, {{6, 500}, {6, 1}}, {{1000, 33}, {}}, {{2, 3, 4, 5}, {3, 1, 5}},
      {{4, 1, 3, 2}, {4, 1, 1, 1}}, {{5, 6}, {5, 6}}};
  cs.push_back({"sum_to", static_cast<int>(pairs.size()),
                [](Env& e, int v) {
                  const auto& [gs, os] = pairs[static_cast<size_t>(v)];
                  Tensor g = e.in(gs), o = e.out(os);
                  KERNEL(e.cuda(), sum_to, g, o);
                  return std::vector<Tensor>{o};
                },
                [](DType t, int) { return Tol{1e-15 * 2.0 * 35000, 2 * eps_of(t)}; }});
  return cs;
}

// --- gemm ------------------------------------------------------------------------------------------------

struct GemmShape { int64_t m, n, k; };
const std::vector<GemmShape> kGemmShapes = {{1, 1, 1}, {3, 5, 7}, {64, 64, 64}, {129, 33, 250}, {10, 1000, 3},
                                            {256, 128, 1024}, {4, 6, 0}};

std::vector<Case> gemm_cases() {
  std::vector<Case> cs;
  for (int ta = 0; ta < 2; ++ta)
    for (int tb = 0; tb < 2; ++tb)
      cs.push_back({"gemm ta=" + std::to_string(ta) + " tb=" + std::to_string(tb),
                    static_cast<int>(kGemmShapes.size()),
                    [ta, tb](Env& e, int v) {
                      const GemmShape& s = kGemmShapes[static_cast<size_t>(v)];
                      Tensor a = ta ? e.in({s.k, s.m}) : e.in({s.m, s.k});
                      Tensor b = tb ? e.in({s.n, s.k}) : e.in({s.k, s.n});
                      Tensor c = e.in({s.m, s.n}), c0 = e.out({s.m, s.n});
                      KERNEL(e.cuda(), gemm, ta != 0, tb != 0, 1.3, a, b, 0.7, c);
                      KERNEL(e.cuda(), gemm, ta != 0, tb != 0, 1.0, a, b, 0.0, c0);  // beta 0 ignores the NaNs
                      return std::vector<Tensor>{c, c0};
                    },
                    // Different summation orders in the dtype: |error| <= K * eps * sum_k |a||b| * alpha, with
                    // |a|, |b| <= 2; plus the beta * c term's rounding.
                    [](DType t, int v) {
                      const GemmShape& s = kGemmShapes[static_cast<size_t>(v)];
                      return Tol{(static_cast<double>(s.k) * 4.0 * 1.3 * 2 + 4) * eps_of(t), 0};
                    }});
  return cs;
}

// --- conv2d ----------------------------------------------------------------------------------------------

struct ConvShape { int64_t n, c, h, w, f, k, stride, pad; };
const std::vector<ConvShape> kConvShapes = {{1, 1, 5, 5, 1, 3, 1, 0},   {2, 3, 8, 8, 4, 3, 1, 1},
                                            {3, 2, 9, 7, 5, 3, 2, 1},   {4, 16, 16, 16, 8, 3, 1, 1},
                                            {2, 3, 32, 32, 32, 4, 2, 1}, {5, 4, 6, 6, 3, 1, 1, 0},
                                            {2, 8, 7, 7, 6, 5, 1, 2}};

Shape conv_y_shape(const ConvShape& s) {
  return conv2d_output_shape({s.n, s.c, s.h, s.w}, {s.f, s.c, s.k, s.k}, {s.stride, s.pad});
}

// Sums of products in the dtype, in different orders (cuDNN's algorithm vs im2col + BLAS): bound K * eps *
// sum |a||b| with |a|, |b| <= 2 and K the length of each dot product.
Tol conv_tol(DType t, double k) { return {(k * 4.0 * 2 + 4) * eps_of(t), 0}; }

std::vector<Case> conv_cases() {
  std::vector<Case> cs;
  const int nv = static_cast<int>(kConvShapes.size());
  cs.push_back({"conv2d_forward", nv,
                [](Env& e, int v) {
                  const ConvShape& s = kConvShapes[static_cast<size_t>(v)];
                  Tensor x = e.in({s.n, s.c, s.h, s.w}), w = e.in({s.f, s.c, s.k, s.k}), b = e.in({s.f});
                  Tensor y = e.out(conv_y_shape(s)), y0 = e.out(conv_y_shape(s));
                  KERNEL(e.cuda(), conv2d_forward, x, w, b, Conv2dParams{s.stride, s.pad}, y);
                  KERNEL(e.cuda(), conv2d_forward, x, w, Tensor(), Conv2dParams{s.stride, s.pad}, y0);
                  return std::vector<Tensor>{y, y0};
                },
                [](DType t, int v) {
                  const ConvShape& s = kConvShapes[static_cast<size_t>(v)];
                  return conv_tol(t, static_cast<double>(s.c * s.k * s.k + 1));
                }});
  cs.push_back({"conv2d_backward_data", nv,
                [](Env& e, int v) {
                  const ConvShape& s = kConvShapes[static_cast<size_t>(v)];
                  Tensor gy = e.in(conv_y_shape(s)), w = e.in({s.f, s.c, s.k, s.k});
                  Tensor gx = e.out({s.n, s.c, s.h, s.w});
                  KERNEL(e.cuda(), conv2d_backward_data, gy, w, Conv2dParams{s.stride, s.pad}, gx);
                  return std::vector<Tensor>{gx};
                },
                [](DType t, int v) {
                  const ConvShape& s = kConvShapes[static_cast<size_t>(v)];
                  return conv_tol(t, static_cast<double>(s.f * s.k * s.k));
                }});
  cs.push_back({"conv2d_backward_filter", nv,
                [](Env& e, int v) {
                  const ConvShape& s = kConvShapes[static_cast<size_t>(v)];
                  Tensor gy = e.in(conv_y_shape(s)), x = e.in({s.n, s.c, s.h, s.w});
                  Tensor gw = e.out({s.f, s.c, s.k, s.k});
                  KERNEL(e.cuda(), conv2d_backward_filter, gy, x, Conv2dParams{s.stride, s.pad}, gw);
                  return std::vector<Tensor>{gw};
                },
                [](DType t, int v) {
                  const ConvShape& s = kConvShapes[static_cast<size_t>(v)];
                  const Shape ys = conv_y_shape(s);
                  return conv_tol(t, static_cast<double>(s.n * ys[2] * ys[3]));
                }});
  cs.push_back({"conv2d_backward_bias", nv,
                [](Env& e, int v) {
                  const ConvShape& s = kConvShapes[static_cast<size_t>(v)];
                  Tensor gy = e.in(conv_y_shape(s)), gb = e.out({s.f});
                  KERNEL(e.cuda(), conv2d_backward_bias, gy, gb);
                  return std::vector<Tensor>{gb};
                },
                [](DType t, int) { return Tol{1e-12, 2 * eps_of(t)}; }});  // double accumulation on both sides
  return cs;
}

// --- index, rng, optim -----------------------------------------------------------------------------------

std::vector<Case> index_cases() {
  std::vector<Case> cs;
  static const std::vector<Shape> rows = {{6}, {6, 5}, {6, 3, 4}, {1000, 17}};
  cs.push_back({"gather_rows", static_cast<int>(rows.size()),
                [](Env& e, int v) {
                  const Shape& s = rows[static_cast<size_t>(v)];
                  Tensor x = e.in(s);
                  std::vector<int64_t> idx;
                  for (int64_t i = 0; i < 2 * s[0] + 3; ++i) idx.push_back((i * 7 + 3) % s[0]);  // repeats
                  Shape ys = s;
                  ys[0] = static_cast<int64_t>(idx.size());
                  Tensor y = e.out(ys);
                  KERNEL(e.cuda(), gather_rows, x, e.index(idx), y);
                  return std::vector<Tensor>{y};
                },
                exact});
  cs.push_back({"scatter_add_rows", static_cast<int>(rows.size()),
                [](Env& e, int v) {
                  const Shape& s = rows[static_cast<size_t>(v)];
                  std::vector<int64_t> idx;
                  for (int64_t i = 0; i < 3 * s[0]; ++i) idx.push_back((i * 7 + 1) % s[0]);  // each row 3 times
                  Shape ss = s;
                  ss[0] = static_cast<int64_t>(idx.size());
                  Tensor src = e.in(ss), y = e.out(s);
                  KERNEL(e.cuda(), fill, y, 0.0);
                  KERNEL(e.cuda(), scatter_add_rows, src, e.index(idx), y);
                  return std::vector<Tensor>{y};
                },
                // Three terms per element (|x| <= 2, partial sums < 8) added by atomics in any order: each order
                // makes two roundings of at most half an ulp of 8, so two orders differ by at most 2 ulp(8).
                [](DType t, int) { return Tol{2 * 8.0 * eps_of(t), 0}; }});
  cs.push_back({"index_copy_rows", static_cast<int>(rows.size()),
                [](Env& e, int v) {
                  const Shape& s = rows[static_cast<size_t>(v)];
                  std::vector<int64_t> idx;  // unique indices: with repeats the CUDA winner is unspecified
                  for (int64_t i = s[0] - 1; i >= 0; i -= 2) idx.push_back(i);
                  Shape ss = s;
                  ss[0] = static_cast<int64_t>(idx.size());
                  Tensor src = e.in(ss), dst = e.in(s);
                  KERNEL(e.cuda(), index_copy_rows, src, e.index(idx), dst);
                  return std::vector<Tensor>{dst};
                },
                exact});
  cs.push_back({"concat", 3,
                [](Env& e, int v) {
                  const int64_t axis = v;  // 0, 1, 2 over [2..4, 3..5, 4..6]-shaped pieces
                  std::vector<Tensor> xs;
                  Shape ys = {2, 3, 4};
                  ys[static_cast<size_t>(axis)] = 0;
                  for (int64_t len : {1, 3, 2}) {
                    Shape s = {2, 3, 4};
                    s[static_cast<size_t>(axis)] = len;
                    xs.push_back(e.in(s));
                    ys[static_cast<size_t>(axis)] += len;
                  }
                  Tensor y = e.out(ys);
                  KERNEL(e.cuda(), concat, xs, axis, y);
                  return std::vector<Tensor>{y};
                },
                exact});
  return cs;
}

std::vector<Case> rng_cases() {
  static const std::vector<int64_t> sizes = {1, 2, 3, 1001, 1 << 20};
  std::vector<Case> cs;
  cs.push_back({"rand_uniform", static_cast<int>(sizes.size()),
                [](Env& e, int v) {
                  Tensor y = e.out({sizes[static_cast<size_t>(v)]});
                  KERNEL(e.cuda(), rand_uniform, y, -1.5, 2.5, 0x1234abcd5678ull + static_cast<uint64_t>(v), 17);
                  return std::vector<Tensor>{y};
                },
                exact});  // Philox words -> (k + 0.5) * 2^-53 -> u * scale + shift: exact IEEE steps on both sides
  cs.push_back({"rand_normal", static_cast<int>(sizes.size()),
                [](Env& e, int v) {
                  Tensor y = e.out({sizes[static_cast<size_t>(v)]});
                  KERNEL(e.cuda(), rand_normal, y, 0.5, 2.0, 99 + static_cast<uint64_t>(v), (1ull << 40) + 3);
                  return std::vector<Tensor>{y};
                },
                // log/sin/cos in double: CUDA within 1-2 ulp of glibc, so float64 values (|z| < 12) agree to
                // ~1e-15; in float32 the double result rounds to the same float except across a rounding
                // boundary (one float ulp).
                [](DType t, int) { return t == DType::Float64 ? Tol{1e-14, 1e-14} : Tol{1e-30, 1.5 * eps_of(t)}; }});
  return cs;
}

std::vector<Case> optim_cases() {
  static const std::vector<Shape> shapes = {{1}, {37}, {64, 33}, {1 << 18}};
  std::vector<Case> cs;
  for (double wd : {0.0, 0.01}) {
    cs.push_back({"adam_update wd=" + std::to_string(wd), static_cast<int>(shapes.size()),
                  [wd](Env& e, int v) {
                    const Shape& s = shapes[static_cast<size_t>(v)];
                    Tensor p = e.in(s), g = e.in(s), m = e.in(s, -0.1, 0.1), sq = e.in(s, 0.0, 0.5);
                    AdamHyper h;
                    h.lr = 1e-2;
                    h.weight_decay = wd;
                    h.step = 7;
                    KERNEL(e.cuda(), adam_update, p, g, m, sq, h);
                    return std::vector<Tensor>{p, m, sq};
                  },
                  // FMA contraction on the GPU: each output within a few ulps of its magnitude (<= 2).
                  [](DType t, int) { return Tol{8 * 2.0 * eps_of(t), 8 * eps_of(t)}; }});
  }
  return cs;
}

// --- the shared op-case table (tests/op_cases.cpp) through the ops layer ------------------------------------

// Every comparable row, on identical inputs: CPU ops vs CUDA ops, within the row's CUDA tolerance.
void run_table_cases() {
  int compared = 0;
  for (const test::OpCase& c : test::op_cases()) {
    if (!c.cuda_comparable) continue;
    for (DType dt : {DType::Float32, DType::Float64}) {
      const std::string what = c.family + " " + c.name + " [" + dtype_name(dt) + "]";
      std::vector<Tensor> cpu_in, gpu_in;
      for (size_t k = 0; k < c.shapes.size(); ++k) {
        cpu_in.push_back(Tensor::from_vector(test::op_case_input(c, k), c.shapes[k], dt));
        gpu_in.push_back(cpu_in.back().to(Device::cuda()));
      }
      std::vector<Tensor> want, got;
      try {
        want = c.run(cpu_in);
        got = c.run(gpu_in);
      } catch (const std::exception& e) {
        BOOST_ERROR(what << " threw: " << e.what());
        continue;
      }
      BOOST_REQUIRE_EQUAL(want.size(), got.size());
      const Tol t = dt == DType::Float32 ? c.cuda32 : c.cuda64;
      for (size_t k = 0; k < want.size(); ++k) {
        const std::string w = what + " output " + std::to_string(k);
        BOOST_CHECK_MESSAGE(got[k].device().is_cuda(), w << ": CUDA output is not on the GPU");
        BOOST_CHECK_MESSAGE(matches(got[k], want[k], t, w),
                            w << ": CUDA differs from CPU beyond atol " << t.atol << ", rtol " << t.rtol);
      }
    }
    ++compared;
  }
  BOOST_TEST(compared > 100);
}

// Every unary op and its derivative at NaN, +-inf, huge, denormal and +-0 inputs: NaN where the CPU
// gives NaN, the same infinities, and finite values within a few ulps plus an absolute term: the smallest normal for
// values (float32's shared exp flushes below it, and FMA contraction may move a result across), one epsilon for the
// derivatives (1 - tanh^2 and s (1 - s) subtract from 1).
void run_special_values() {
  for (DType dt : {DType::Float32, DType::Float64}) {
    const std::vector<double> xv = test::special_values(dt);
    const Shape shape{static_cast<int64_t>(xv.size())};
    const Tensor x = Tensor::from_vector(xv, shape, dt), ones = Tensor::ones(shape, dt);
    const Tensor xg = x.to(Device::cuda()), ones_g = ones.to(Device::cuda());
    const double tiny = dt == DType::Float32 ? std::numeric_limits<float>::min() : std::numeric_limits<double>::min();
    for (UnaryOp op : test::all_unary_ops()) {
      const std::string what = std::string(unary_op_name(op)) + " at special values [" + dtype_name(dt) + "]";
      BOOST_CHECK_MESSAGE(matches(unary(op, xg, 0.1), unary(op, x, 0.1), Tol{tiny, 8 * eps_of(dt)}, what),
                          what << ": CUDA differs from CPU");
      BOOST_CHECK_MESSAGE(matches(unary_backward(op, xg, ones_g, 0.1), unary_backward(op, x, ones, 0.1),
                                  Tol{eps_of(dt), 16 * eps_of(dt)}, what + " backward"),
                          what << " backward: CUDA differs from CPU");
    }
  }
}
#endif  // JEBM_WITH_CUDA

}  // namespace

// ---------------------------------------------------------------------------------------------------------

BOOST_AUTO_TEST_SUITE(cuda_vs_cpu)

#ifdef JEBM_WITH_CUDA
BOOST_AUTO_TEST_CASE(elementwise, *utf::precondition(jebm::test::CudaDevicePresent())) { run_cases(elementwise_cases()); }
BOOST_AUTO_TEST_CASE(reduce, *utf::precondition(jebm::test::CudaDevicePresent())) { run_cases(reduce_cases()); }
BOOST_AUTO_TEST_CASE(gemm, *utf::precondition(jebm::test::CudaDevicePresent())) { run_cases(gemm_cases()); }
BOOST_AUTO_TEST_CASE(conv2d, *utf::precondition(jebm::test::CudaDevicePresent())) { run_cases(conv_cases()); }
BOOST_AUTO_TEST_CASE(index, *utf::precondition(jebm::test::CudaDevicePresent())) {
  run_cases(index_cases(), {DType::Float32, DType::Float64});
}
BOOST_AUTO_TEST_CASE(rng, *utf::precondition(jebm::test::CudaDevicePresent())) { run_cases(rng_cases()); }
BOOST_AUTO_TEST_CASE(optim, *utf::precondition(jebm::test::CudaDevicePresent())) { run_cases(optim_cases()); }
BOOST_AUTO_TEST_CASE(op_table, *utf::precondition(jebm::test::CudaDevicePresent())) { run_table_cases(); }
BOOST_AUTO_TEST_CASE(unary_special_values, *utf::precondition(jebm::test::CudaDevicePresent())) {
  run_special_values();
}
#endif

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(cuda_context)

BOOST_AUTO_TEST_CASE(transfers_round_trip, *utf::precondition(jebm::test::CudaDevicePresent())) {
  std::vector<double> v(1000);
  for (size_t i = 0; i < v.size(); ++i) v[i] = std::sin(static_cast<double>(i)) * 1e3;
  for (DType dt : {DType::Float32, DType::Float64, DType::Int64}) {
    Tensor h = Tensor::from_vector(v, {10, 100}, dt);
    Tensor d = h.to(Device::cuda());
    BOOST_TEST(d.device().is_cuda());
    BOOST_TEST(all_close(d.to(Device::cpu()), h, 0, 0, "round trip"));
    // A row view of a device tensor copies from its offset.
    BOOST_TEST(all_close(d.rows(3, 5).to(Device::cpu()), h.rows(3, 5), 0, 0, "rows view"));
    Tensor c = d.clone();
    BOOST_TEST(!c.same_storage(d));
    BOOST_TEST(all_close(c, h, 0, 0, "clone"));
  }
}

BOOST_AUTO_TEST_CASE(ops_layer_dispatches_to_cuda, *utf::precondition(jebm::test::CudaDevicePresent())) {
  Tensor a = Tensor::from_vector(std::vector<double>{1, 2, 3, 4, 5, 6}, {2, 3}, DType::Float64);
  Tensor b = Tensor::from_vector(std::vector<double>{1, 0, -1, 2, 0.5, 1}, {3, 2}, DType::Float64);
  const Device gpu = Device::cuda();
  Tensor c = matmul(a.to(gpu), b.to(gpu));
  BOOST_TEST(c.device().is_cuda());
  BOOST_TEST(all_close(c.to(Device::cpu()), matmul(a, b), 0, 0, "matmul"));
  Tensor s = sum_all(exp(a.to(gpu)));
  BOOST_TEST(all_close(s.to(Device::cpu()), sum_all(exp(a)), 1e-13, 1e-15, "sum(exp)"));
  Generator g1{5, 0}, g2{5, 0};
  Tensor r = rand_normal({1000}, 0.0, 1.0, g1, DType::Float64, gpu);
  BOOST_TEST(all_close(r.to(Device::cpu()), rand_normal({1000}, 0.0, 1.0, g2, DType::Float64), 1e-14, 1e-14, "rand"));
}

#ifdef JEBM_WITH_CUDA
BOOST_AUTO_TEST_CASE(allocator_steady_state, *utf::precondition(jebm::test::CudaDevicePresent())) {
  // A training-loop-like pattern: after one warm-up iteration, no cudaMalloc and never a cudaFree.
  auto iteration = [] {
    Tensor x = Tensor::ones({512, 300}, DType::Float32, Device::cuda());
    Tensor y = add(x, x);
    Tensor z = matmul(y, y, false, true);
    return sum_all(z).item();
  };
  const double first = iteration();
  const auto before = jebm::cuda::allocator_stats();
  for (int i = 0; i < 20; ++i) BOOST_TEST(iteration() == first);
  const auto after = jebm::cuda::allocator_stats();
  BOOST_TEST(after.malloc_calls == before.malloc_calls);
  BOOST_TEST(after.free_calls == before.free_calls);
  BOOST_TEST(after.bytes_in_use == before.bytes_in_use);
}

BOOST_AUTO_TEST_CASE(bad_index_reported_at_next_sync, *utf::precondition(jebm::test::CudaDevicePresent())) {
  Tensor x = Tensor::zeros({4, 3}, DType::Float32, Device::cuda());
  Tensor idx = Tensor::from_vector(std::vector<int64_t>{0, 9, 1}, {3}, Device::cuda());
  Tensor y = Tensor::empty({3, 3}, DType::Float32, Device::cuda());
  jebm::cuda::gather_rows(x, idx, y);
  bool thrown = false;
  try {
    (void)y.to_vector();
  } catch (const jebm::Error& e) {
    thrown = true;
    const std::string msg = e.what();
    BOOST_TEST_MESSAGE(msg);
    BOOST_TEST(msg.find("gather_rows") != std::string::npos);
    BOOST_TEST(msg.find("index 9 at position 1") != std::string::npos);
  }
  BOOST_TEST(thrown);
  BOOST_TEST(y.to_vector().size() == 9u);  // reported once, then cleared
}
#endif

BOOST_AUTO_TEST_CASE(require_names_the_reason) {
  // Runs everywhere: without a device, asking for one says why instead of crashing.
  if (cuda_api::available()) {
    BOOST_TEST(cuda_api::device_count() > 0);
    BOOST_TEST(cuda_api::device_name(0) != "none");
    return;
  }
  BOOST_TEST(cuda_api::device_count() == 0);
  try {
    Tensor::zeros({2}, DType::Float32, Device::cuda());
    BOOST_ERROR("allocating a CUDA tensor without a device did not throw");
  } catch (const jebm::Error& e) {
    const std::string msg = e.what();
    BOOST_TEST_MESSAGE(msg);
    BOOST_TEST((msg.find("no CUDA device") != std::string::npos || msg.find("without the CUDA backend") != std::string::npos));
  }
}

BOOST_AUTO_TEST_SUITE_END()
