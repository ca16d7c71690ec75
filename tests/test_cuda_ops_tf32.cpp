// The CUDA conv2d and GEMM in TF32 mode (JEBM_ALLOW_TF32=1, which this binary sets for itself before any jebm
// code reads it): cuDNN's Find may then pick tensor-core, FFT and Winograd algorithms and cuBLAS uses TF32 tensor
// ops, so results are compared with a float64 CPU reference within a TF32 tolerance instead of FP32 rounding.
// The strict-FP32 default is covered by tests/test_cuda_ops.cpp, whose tolerances a TF32 leak would exceed.
// Every case has the CudaDevicePresent precondition, so machines without a GPU report them skipped.
#include "tests/helpers.hpp"

#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <random>
#include <string>
#include <vector>

#include "runtime/backend.hpp"
#ifdef JEBM_WITH_CUDA
#include "runtime/cuda/context.hpp"
#endif

using namespace jebm;
namespace utf = boost::unit_test;

namespace {
#ifdef JEBM_WITH_CUDA

// Before main: allow_tf32() reads the variable once, on first use, which is inside a test body.
const bool kTf32Requested = [] { return ::setenv("JEBM_ALLOW_TF32", "1", 1) == 0; }();

// Inputs uniform in [-2, 2), rounded to float32 once; the same values go to the float32 CUDA tensor and the
// float64 CPU tensor, so the reference is the exact result of the float32 inputs (up to float64 rounding).
struct Pair {
  Tensor gpu, cpu;
};
Pair input(const Shape& s, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<double> u(-2.0, 2.0);
  std::vector<double> v(static_cast<size_t>(shape_numel(s)));
  for (double& x : v) x = static_cast<double>(static_cast<float>(u(rng)));
  return {Tensor::from_vector(v, s, DType::Float32, Device::cuda()), Tensor::from_vector(v, s, DType::Float64, Device::cpu())};
}
Pair output(const Shape& s) {
  Pair p{Tensor::empty(s, DType::Float32, Device::cuda()), Tensor::empty(s, DType::Float64, Device::cpu())};
  cuda::fill(p.gpu, std::nan(""));  // an element the kernel forgets to write fails the comparison
  return p;
}

// A dot product of K terms with |a|, |b| <= 2. TF32 keeps 10 mantissa bits of each input, so a product is off by
// at most 2^-9 |ab| and, for these uniform inputs, by 2^-9 * 4/3 ~ 0.0026 rms; the terms' errors have random
// signs, so the sum's error has rms <= 0.0026 sqrt(K) and 0.1 sqrt(K) is ~38 of those. Plus the worst case of
// FP32 accumulation in any order, K * 8 * eps32 (as in test_cuda_ops.cpp). A wrong algorithm, layout or
// workspace gives errors of the size of the values themselves (~1.3 sqrt(K)), far above this.
double tf32_atol(double k) { return 0.1 * std::sqrt(k) + k * 8.0 * 1.1920929e-7; }

bool close(const Tensor& got, const Tensor& want, double k, const std::string& what) {
  return test::all_close(got.to(Device::cpu()).to_vector(), want.to_vector(), tf32_atol(k), 0.0, what);
}

struct ConvShape { int64_t n, c, h, w, f, k, stride, pad; };
// The CIFAR-10 energy CNN's layers (the paper's CIFAR-10 network) at a small batch, plus an odd one.
const std::vector<ConvShape> kShapes = {{4, 3, 32, 32, 64, 3, 1, 1},   {4, 64, 32, 32, 128, 4, 2, 1},
                                        {8, 128, 16, 16, 256, 4, 2, 1}, {8, 256, 8, 8, 512, 4, 2, 1},
                                        {8, 512, 4, 4, 1, 4, 1, 0},     {3, 5, 9, 7, 6, 3, 1, 1}};

// The bodies of the two tests below (CUDA builds only).
void check_conv2d_tf32() {
  uint64_t seed = 100;
  for (const ConvShape& s : kShapes) {
    const std::string what = "conv " + shape_str({s.n, s.c, s.h, s.w}) + " k" + std::to_string(s.k) + " s" +
                             std::to_string(s.stride) + " p" + std::to_string(s.pad) + " -> " + std::to_string(s.f);
    const Conv2dParams p{s.stride, s.pad};
    const Shape xs = {s.n, s.c, s.h, s.w}, ws = {s.f, s.c, s.k, s.k};
    const Shape ys = conv2d_output_shape(xs, ws, p);
    const Pair x = input(xs, ++seed), w = input(ws, ++seed), gy = input(ys, ++seed);
    Pair y = output(ys), gx = output(xs), gw = output(ws);
    cuda::conv2d_forward(x.gpu, w.gpu, Tensor(), p, y.gpu);
    cpu::conv2d_forward(x.cpu, w.cpu, Tensor(), p, y.cpu);
    cuda::conv2d_backward_data(gy.gpu, w.gpu, p, gx.gpu);
    cpu::conv2d_backward_data(gy.cpu, w.cpu, p, gx.cpu);
    cuda::conv2d_backward_filter(gy.gpu, x.gpu, p, gw.gpu);
    cpu::conv2d_backward_filter(gy.cpu, x.cpu, p, gw.cpu);
    BOOST_CHECK_MESSAGE(close(y.gpu, y.cpu, static_cast<double>(s.c * s.k * s.k), what + " forward"),
                        what << " forward: beyond the TF32 tolerance");
    BOOST_CHECK_MESSAGE(close(gx.gpu, gx.cpu, static_cast<double>(s.f * s.k * s.k), what + " backward-data"),
                        what << " backward-data: beyond the TF32 tolerance");
    BOOST_CHECK_MESSAGE(close(gw.gpu, gw.cpu, static_cast<double>(s.n * ys[2] * ys[3]), what + " backward-filter"),
                        what << " backward-filter: beyond the TF32 tolerance");
    // The chosen algorithm is cached: a second call must give the same values (up to atomics' order).
    Pair y2 = output(ys);
    cuda::conv2d_forward(x.gpu, w.gpu, Tensor(), p, y2.gpu);
    BOOST_CHECK_MESSAGE(close(y2.gpu, y.cpu, static_cast<double>(s.c * s.k * s.k), what + " forward (again)"),
                        what << " forward, second call: beyond the TF32 tolerance");
  }
}

void check_gemm_tf32() {
  struct G { int64_t m, n, k; bool ta, tb; };
  uint64_t seed = 200;
  for (const G& g : {G{512, 512, 512, false, false}, G{256, 64, 1024, true, false}, G{33, 129, 300, false, true}}) {
    const std::string what = "gemm " + std::to_string(g.m) + "x" + std::to_string(g.n) + "x" + std::to_string(g.k);
    const Pair a = input(g.ta ? Shape{g.k, g.m} : Shape{g.m, g.k}, ++seed);
    const Pair b = input(g.tb ? Shape{g.n, g.k} : Shape{g.k, g.n}, ++seed);
    Pair c = output({g.m, g.n});
    cuda::gemm(g.ta, g.tb, 1.0, a.gpu, b.gpu, 0.0, c.gpu);
    cpu::gemm(g.ta, g.tb, 1.0, a.cpu, b.cpu, 0.0, c.cpu);
    BOOST_CHECK_MESSAGE(close(c.gpu, c.cpu, static_cast<double>(g.k), what), what << ": beyond the TF32 tolerance");
  }
}

#endif  // JEBM_WITH_CUDA

struct Tf32Requested {
  boost::test_tools::assertion_result operator()(utf::test_unit_id) const {
#ifdef JEBM_WITH_CUDA
    return test::skip_unless(kTf32Requested && cuda::allow_tf32(), "JEBM_ALLOW_TF32=1 did not take effect");
#else
    return test::skip_unless(false, "CUDA backend not built");
#endif
  }
};

}  // namespace

BOOST_AUTO_TEST_SUITE(cuda_tf32)

// Declared in every build, so that a build without the CUDA backend (or a machine without a device) reports each
// of them skipped with its reason; the preconditions keep the bodies from running there.
BOOST_AUTO_TEST_CASE(conv2d_matches_float64_within_tf32_rounding,
                     *utf::precondition(test::CudaDevicePresent()) * utf::precondition(Tf32Requested())) {
#ifdef JEBM_WITH_CUDA
  check_conv2d_tf32();
#else
  BOOST_FAIL("unreachable: CudaDevicePresent is false without the CUDA backend");
#endif
}

BOOST_AUTO_TEST_CASE(gemm_matches_float64_within_tf32_rounding,
                     *utf::precondition(test::CudaDevicePresent()) * utf::precondition(Tf32Requested())) {
#ifdef JEBM_WITH_CUDA
  check_gemm_tf32();
#else
  BOOST_FAIL("unreachable: CudaDevicePresent is false without the CUDA backend");
#endif
}

BOOST_AUTO_TEST_SUITE_END()
