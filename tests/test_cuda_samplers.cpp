// CUDA samplers against their CPU references (samplers/cuda/*.cu vs samplers/cpu/*.cpp through the device-
// transparent API, models/cuda vs models/cpu gaussian_mixture): cuRAND's Philox words and the normals drawn from them
// (sampler noise and the runtime's random fills), the fused ULA + Jarzynski move (float32/float64, odd D, subsets,
// clipping, every MoveKind, both weight kernels), weight statistics, cumulative sums and ancestors (identical
// indices for the same uniform), both resampling paths, the parameter-change increment, and the GMM closed forms.
// Every case is skipped, with its reason, where no CUDA device (or no CUDA build) is present.
//
// Tolerances: the GPU runs the same double-precision formulas; it differs in summation order (warp trees vs
// sequential sums) and in FMA contraction, i.e. a few ulps per operation. float64 positions: 1e-12 relative;
// log-weights: increments are differences of O(D) sums, so 1e-9 absolute. float32 positions are rounded from the
// same double value, so they agree except where that value sits on a float rounding boundary (1 float ulp);
// float32 log-weights inherit that ulp through |x_prev - x + hG|^2 / (2 sigma^2): 1e-4 absolute at D <= 784.
// GCC 12 at -O3 reports a false "used uninitialized" inside boost::function when utf::precondition is inlined into
// this translation unit (boost/function/function_template.hpp); the warning is about Boost's code, not ours.
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <algorithm>
#include <cmath>
#include <numeric>

#include "models/gaussian_mixture.hpp"
#include "runtime/ops.hpp"
#include "runtime/philox.hpp"
#include "samplers/resampling.hpp"
#include "samplers/ula_jarzynski.hpp"
#include "samplers/walkers.hpp"
#include "tests/helpers.hpp"

using namespace jebm;
using jebm::test::all_close;
namespace utf = boost::unit_test;

namespace {

const Device kCuda = Device::cuda(0);

// Uniform [lo, hi) host values from Philox (seed, stream i).
std::vector<double> uniform(int64_t n, double lo, double hi, uint64_t seed) {
  std::vector<double> v(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) {
    double u0, u1;
    philox_uniform2(seed, static_cast<uint64_t>(i), 7, &u0, &u1);
    v[static_cast<size_t>(i)] = lo + (hi - lo) * u0;
  }
  return v;
}

Tensor host(const std::vector<double>& v, const Shape& s, DType dt = DType::Float64) {
  return Tensor::from_vector(v, s, dt);
}

// A distinct, unsorted subset of [0, n) of size b.
std::vector<int64_t> subset(int64_t n, int64_t b, uint64_t seed) {
  std::vector<int64_t> p(static_cast<size_t>(n));
  std::iota(p.begin(), p.end(), int64_t{0});
  const std::vector<double> u = uniform(n, 0.0, 1.0, seed);
  for (int64_t i = n - 1; i > 0; --i)
    std::swap(p[static_cast<size_t>(i)], p[static_cast<size_t>(static_cast<int64_t>(u[static_cast<size_t>(i)] * (i + 1)))]);
  p.resize(static_cast<size_t>(b));
  return p;
}

bool same_population(const WalkerPopulation& gpu, const WalkerPopulation& cpu, double x_rtol, double x_atol,
                     double w_atol, const std::string& what) {
  const WalkerPopulation g = walkers_to(gpu, Device::cpu());
  bool ok = all_close(g.x, cpu.x, x_atol, x_rtol, what + " x");
  ok = all_close(g.x_prev, cpu.x_prev, x_atol, x_rtol, what + " x_prev") && ok;
  ok = all_close(g.log_w, cpu.log_w, w_atol, 1e-10, what + " log_w") && ok;
  ok = all_close(g.partial, cpu.partial, w_atol, 1e-10, what + " partial") && ok;
  ok = all_close(g.pending, cpu.pending, 0.0, 0.0, what + " pending") && ok;
  ok = ok && g.moves == cpu.moves;
  return ok;
}

}  // namespace

BOOST_AUTO_TEST_CASE(noise_matches_cpu, *utf::precondition(jebm::test::CudaDevicePresent())) {
  for (auto [n, d] : std::vector<std::pair<int64_t, int64_t>>{{1, 1}, {7, 5}, {100, 50}, {3, 3073}}) {
    const Tensor cpu = ula_noise_reference(n, d, 42, 9);
    const Tensor gpu = ula_noise(n, d, 42, 9, kCuda);
    // |z| < 9; polynomial log/sincos with FMA vs without: a few ulps.
    BOOST_TEST(all_close(gpu.to(Device::cpu()), cpu, 1e-13, 1e-12, "noise " + std::to_string(n) + "x" + std::to_string(d)));
  }
}

// cuRAND's Philox4_32_10 (curand_init(seed, subsequence = offset, offset = 4 * stream) + curand4, the mapping of
// runtime/philox.hpp) gives exactly the CPU's words: seeds and offsets with high bits set, streams past 2^32.
BOOST_AUTO_TEST_CASE(curand_philox_words_match_cpu, *utf::precondition(jebm::test::CudaDevicePresent())) {
  struct Case {
    uint64_t seed, first_stream, offset;
  };
  const uint64_t s62 = uint64_t{1} << 62;  // from here on the device uses the hand-written rounds
  for (const Case& c : std::vector<Case>{{0, 0, 0},
                                         {42, 0, 9},
                                         {0xdeadbeefcafef00dULL, 0, 0x123456789ULL},
                                         {7, (uint64_t{1} << 32) - 100, ~uint64_t{0} - 3},
                                         {11, s62 - 50, 5},
                                         {12, ~uint64_t{0} - 60, 6}}) {
    const int64_t n = 4099;
    const std::vector<double> gpu = philox_words(n, c.seed, c.first_stream, c.offset, kCuda).to_vector();
    const std::vector<double> cpu = philox_words(n, c.seed, c.first_stream, c.offset, Device::cpu()).to_vector();
    BOOST_TEST(all_close(gpu, cpu, 0, 0, "words seed " + std::to_string(c.seed) + " stream " +
                                             std::to_string(c.first_stream) + " offset " + std::to_string(c.offset)));
  }
}

// The runtime's random fills (runtime/cuda/rng.cu, words from cuRAND) against the CPU's (runtime/cpu/rng.cpp):
// uniforms bit for bit, normals within libm-vs-CUDA rounding of log/sqrt/sin/cos.
BOOST_AUTO_TEST_CASE(curand_fills_match_cpu, *utf::precondition(jebm::test::CudaDevicePresent())) {
  for (int64_t n : {1, 7, 10001}) {
    Generator a{99, 5}, b{99, 5};
    const Tensor uc = rand_uniform({n}, -1.0, 3.0, a, DType::Float64);
    const Tensor ug = rand_uniform({n}, -1.0, 3.0, b, DType::Float64, kCuda);
    BOOST_TEST(all_close(ug.to(Device::cpu()), uc, 0, 0, "uniform n " + std::to_string(n)));
    const Tensor nc = rand_normal({n}, 0.5, 2.0, a, DType::Float64);
    const Tensor ng = rand_normal({n}, 0.5, 2.0, b, DType::Float64, kCuda);
    BOOST_TEST(all_close(ng.to(Device::cpu()), nc, 1e-14, 1e-13, "normal n " + std::to_string(n)));
  }
}

// The parameter-change increment on the device, over a subset and over all walkers.
BOOST_AUTO_TEST_CASE(parameter_change_matches_cpu, *utf::precondition(jebm::test::CudaDevicePresent())) {
  const int64_t n = 300;
  WalkerPopulation cpu = WalkerPopulation::create(host(uniform(n * 3, -1, 1, 21), {n, 3}), 5);
  cpu.log_w.copy_(host(uniform(n, -2, 2, 22), {n}));
  WalkerPopulation gpu = walkers_to(cpu, kCuda);
  const std::vector<int64_t> idx = subset(n, 77, 23);
  const Tensor uo = host(uniform(77, -3, 3, 24), {77}), un = host(uniform(77, -3, 3, 25), {77});
  jarzynski_parameter_change(cpu, uo, un, idx);
  jarzynski_parameter_change(gpu, uo.to(kCuda), un.to(kCuda), idx);
  const Tensor ao = host(uniform(n, -3, 3, 26), {n}), an = host(uniform(n, -3, 3, 27), {n});
  jarzynski_parameter_change(cpu, ao, an);
  jarzynski_parameter_change(gpu, ao.to(kCuda), an.to(kCuda));
  BOOST_TEST(same_population(gpu, cpu, 0, 0, 0, "parameter change"));
  // The tempered kernel's increment (U_old - U_new) / T, T = 1.25e-3 (the 14x14 preset's).
  jarzynski_parameter_change(cpu, uo, un, idx, 800.0);
  jarzynski_parameter_change(gpu, uo.to(kCuda), un.to(kCuda), idx, 800.0);
  BOOST_TEST(same_population(gpu, cpu, 0, 0, 1e-15, "tempered parameter change"));
}

// Every accessor works on a population living on the device.
BOOST_AUTO_TEST_CASE(population_accessors_on_the_device, *utf::precondition(jebm::test::CudaDevicePresent())) {
  const int64_t n = 50;
  WalkerPopulation cpu = WalkerPopulation::create(host(uniform(n * 2, -1, 1, 31), {n, 2}), 6, 0.25);
  cpu.log_w.copy_(host(uniform(n, -2, 2, 32), {n}));
  const WalkerPopulation gpu = walkers_to(cpu, kCuda);
  const WeightStats a = cpu.stats(), b = gpu.stats();
  BOOST_TEST(all_close({b.log_sum, b.ess, b.cv2}, {a.log_sum, a.ess, a.cv2}, 1e-12, 1e-12, "stats"));
  BOOST_TEST(all_close(gpu.weights(), cpu.weights(), 1e-15, 1e-12, "weights"));
  BOOST_TEST(std::fabs(gpu.log_z_estimate() - cpu.log_z_estimate()) < 1e-12);
  BOOST_TEST(!gpu.any_pending());
  WalkerPopulation moved = walkers_to(cpu, kCuda);
  UlaConfig cfg;
  ula_jarzynski_step(moved, host(uniform(n, -1, 1, 33), {n}).to(kCuda), host(uniform(2 * n, -1, 1, 34), {n, 2}).to(kCuda),
                     cfg, MoveKind::MoveOnly);
  BOOST_TEST(moved.any_pending());
}

BOOST_AUTO_TEST_CASE(fused_step_matches_cpu, *utf::precondition(jebm::test::CudaDevicePresent())) {
  struct Case {
    int64_t n, d;
    DType dt;
    double clip, sigma;
    bool weighted;
    WeightKernel wk = WeightKernel::Consistent;
  };
  const std::vector<Case> cases = {{1, 1, DType::Float64, 0.0, 0.0, true},     {33, 7, DType::Float64, 1.0, 0.0, true},
                                   {1000, 50, DType::Float64, 0.0, 0.0, true}, {257, 50, DType::Float64, 0.5, 0.3, false},
                                   {64, 784, DType::Float32, 0.0, 1e-2, true}, {300, 3, DType::Float32, 1.0, 0.0, true},
                                   {40, 3072, DType::Float32, 0.3, 1e-2, true},
                                   {33, 7, DType::Float64, 1.0, 0.0, true, WeightKernel::Paper2h},
                                   {200, 50, DType::Float64, 0.0, 0.3, true, WeightKernel::Paper2h},
                                   {64, 784, DType::Float32, 0.0, 1e-2, true, WeightKernel::Paper2h},
                                   {33, 7, DType::Float64, 1.0, 0.05, true, WeightKernel::Tempered},
                                   {200, 50, DType::Float64, 0.0, 0.3, true, WeightKernel::Tempered},
                                   {64, 784, DType::Float32, 0.0, 1e-2, true, WeightKernel::Tempered}};
  uint64_t seed = 1;
  for (const Case& c : cases) {
    const std::string what = "n " + std::to_string(c.n) + " d " + std::to_string(c.d) + " " + dtype_name(c.dt) +
                             " clip " + std::to_string(c.clip) + (c.weighted ? " weighted" : " plain") + " kernel " +
                             weight_kernel_name(c.wk);
    UlaConfig cfg;
    cfg.h = 0.05;
    cfg.sigma = c.sigma;
    cfg.drift_clip = c.clip;
    cfg.weighted = c.weighted;
    cfg.weight_kernel = c.wk;
    WalkerPopulation cpu = WalkerPopulation::create(host(uniform(c.n * c.d, -2, 2, seed++), {c.n, c.d}, c.dt), 11);
    WalkerPopulation gpu = walkers_to(cpu, kCuda);
    const double xt = c.dt == DType::Float64 ? 1e-12 : 2e-7, wt = c.dt == DType::Float64 ? 1e-9 : 1e-4;
    // MoveOnly (nothing pending), CompleteAndMove over all, over a subset, CompleteOnly over all.
    for (int step = 0; step < 4; ++step) {
      const MoveKind kind = step == 0 ? MoveKind::MoveOnly : step == 3 ? MoveKind::CompleteOnly : MoveKind::CompleteAndMove;
      std::vector<int64_t> idx;
      if (step == 2) idx = subset(c.n, std::max<int64_t>(1, c.n / 3), seed);
      const int64_t b = idx.empty() ? c.n : static_cast<int64_t>(idx.size());
      const Tensor u = host(uniform(b, -5, 5, seed++), {b});
      const Tensor g = host(uniform(b * c.d, -3, 3, seed++), {b, c.d}, c.dt);
      ula_jarzynski_step(cpu, u, g, cfg, kind, idx);
      ula_jarzynski_step(gpu, u.to(kCuda), g.to(kCuda), cfg, kind, idx);
      BOOST_TEST(same_population(gpu, cpu, xt, xt, wt, what + " step " + std::to_string(step)));
    }
  }
}

BOOST_AUTO_TEST_CASE(weight_stats_and_weights_match_cpu, *utf::precondition(jebm::test::CudaDevicePresent())) {
  for (int64_t n : {1, 5, 1000, 10007}) {
    const std::vector<double> a = uniform(n, -8, 3, 100 + static_cast<uint64_t>(n));
    const WeightStats want = weight_stats(a.data(), n);
    const Tensor dev = host(a, {n}).to(kCuda);
    const WeightStats got = weight_stats(dev);
    BOOST_TEST(all_close({got.log_sum, got.log_mean, got.ess, got.cv2}, {want.log_sum, want.log_mean, want.ess, want.cv2},
                         1e-12, 1e-12, "stats n " + std::to_string(n)));
    BOOST_TEST(all_close(normalized_weights(dev).to_vector(), normalized_weights(a), 1e-15, 1e-12,
                         "weights n " + std::to_string(n)));
  }
}

BOOST_AUTO_TEST_CASE(ancestors_match_cpu, *utf::precondition(jebm::test::CudaDevicePresent())) {
  // Cumulative sums differ from the CPU's only in rounding (~1e-16); a search point within that of a boundary
  // has probability ~N * 1e-16, so the indices must be identical.
  for (int64_t n : {1, 2, 17, 1000, 4096, 10000}) {
    const std::vector<double> w = normalized_weights(uniform(n, -6, 2, 300 + static_cast<uint64_t>(n)));
    const Tensor wd = host(w, {n}).to(kCuda);
    for (double u : {0.0, 0.37, 0.999}) {
      const std::vector<double> got = systematic_ancestors(wd, u).to_vector();
      const std::vector<int64_t> want = systematic_ancestors(w, u);
      BOOST_TEST(all_close(got, std::vector<double>(want.begin(), want.end()), 0, 0, "systematic n " + std::to_string(n)));
    }
    const std::vector<double> got = multinomial_ancestors(wd, 5, 3).to_vector();
    const std::vector<int64_t> want = multinomial_ancestors(w, 5, 3);
    BOOST_TEST(all_close(got, std::vector<double>(want.begin(), want.end()), 0, 0, "multinomial n " + std::to_string(n)));
  }
}

BOOST_AUTO_TEST_CASE(resampling_matches_cpu, *utf::precondition(jebm::test::CudaDevicePresent())) {
  for (ResampleScheme scheme : {ResampleScheme::Systematic, ResampleScheme::Multinomial}) {
    const int64_t n = 500, d = 9;
    UlaConfig cfg;
    WalkerPopulation cpu = WalkerPopulation::create(host(uniform(n * d, -1, 1, 1), {n, d}), 3);
    cpu.log_w.copy_(host(uniform(n, -4, 1, 2), {n}));
    WalkerPopulation gpu = walkers_to(cpu, kCuda);
    // resample_population (nothing pending).
    resample_population(cpu, draw_population_ancestors(cpu, scheme));
    resample_population(gpu, population_ancestors(gpu, scheme));
    BOOST_TEST(same_population(gpu, cpu, 0, 0, 0, std::string("resample ") + resample_scheme_name(scheme)));
    BOOST_TEST(std::fabs(gpu.log_z_offset - cpu.log_z_offset) < 1e-12);
    // resample_and_redo_move: every walker just made a complete+move.
    const Tensor u = host(uniform(n, -2, 2, 4), {n}), g = host(uniform(n * d, -2, 2, 5), {n, d});
    ula_jarzynski_step(cpu, u, g, cfg, MoveKind::CompleteAndMove);
    ula_jarzynski_step(gpu, u.to(kCuda), g.to(kCuda), cfg, MoveKind::CompleteAndMove);
    cpu.log_w.copy_(host(uniform(n, -4, 1, 6), {n}));
    gpu.log_w.copy_(cpu.log_w);
    resample_and_redo_move(cpu, draw_population_ancestors(cpu, scheme), u, g, cfg);
    resample_and_redo_move(gpu, population_ancestors(gpu, scheme), u.to(kCuda), g.to(kCuda), cfg);
    BOOST_TEST(same_population(gpu, cpu, 1e-12, 1e-12, 1e-9, std::string("redo ") + resample_scheme_name(scheme)));
    BOOST_TEST(std::fabs(gpu.log_z_offset - cpu.log_z_offset) < 1e-12);
    BOOST_TEST(gpu.resamplings == cpu.resamplings);
  }
}

// The GMM closed forms through their Tensor dispatch (models/kernels.inc) on the device, against the raw-array CPU
// reference.
BOOST_AUTO_TEST_CASE(gmm_closed_forms_match_cpu, *utf::precondition(jebm::test::CudaDevicePresent())) {
  for (auto [k, d] : std::vector<std::pair<int64_t, int64_t>>{{1, 1}, {2, 50}, {5, 33}, {3, 100}}) {
    const std::string what = "K " + std::to_string(k) + " D " + std::to_string(d);
    GmmParams p = GmmParams::zeros(k, d);
    p.a = uniform(k * d, -3, 3, 50 + static_cast<uint64_t>(k * d));
    p.z = uniform(k, -1, 1, 60 + static_cast<uint64_t>(k));
    const int64_t n = 1234;
    const std::vector<double> x = uniform(n * d, -4, 4, 70);
    std::vector<double> u(static_cast<size_t>(n)), g(static_cast<size_t>(n * d)), r(static_cast<size_t>(n * k));
    gmm_eval(p, x.data(), n, u.data(), g.data(), r.data());
    const Tensor xd = host(x, {n, d}).to(kCuda);
    Tensor ud = Tensor::empty({n}, DType::Float64, kCuda), gd = Tensor::empty({n, d}, DType::Float64, kCuda),
           rd = Tensor::empty({n, k}, DType::Float64, kCuda);
    gmm_eval(p, xd, ud, &gd, &rd);
    // U is -log of a sum of O(|x|^2 D) exponents: relative 1e-12; g, r: a few ulps of O(1..10) values.
    BOOST_TEST(all_close(ud.to_vector(), u, 1e-11, 1e-12, what + " U"));
    BOOST_TEST(all_close(gd.to_vector(), g, 1e-11, 1e-12, what + " grad_x U"));
    BOOST_TEST(all_close(rd.to_vector(), r, 1e-13, 1e-11, what + " responsibilities"));
    const std::vector<double> c = normalized_weights(uniform(n, -3, 0, 80));
    for (bool weighted : {false, true}) {
      std::vector<double> ga(static_cast<size_t>(k * d)), gz(static_cast<size_t>(k)), ga2 = ga, gz2 = gz;
      gmm_param_grad(p, x.data(), r.data(), weighted ? c.data() : nullptr, n, ga.data(), gz.data());
      gmm_param_grad(p, xd, rd, weighted ? host(c, {n}).to(kCuda) : Tensor(), ga2.data(), gz2.data());
      BOOST_TEST(all_close(ga2, ga, 1e-11, 1e-11, what + " dU/da"));
      BOOST_TEST(all_close(gz2, gz, 1e-13, 1e-11, what + " dU/dz"));
    }
    std::vector<double> ga(static_cast<size_t>(k * d)), gz(static_cast<size_t>(k)), ga2 = ga, gz2 = gz;
    const double m = gmm_data_term(p, x.data(), n, ga.data(), gz.data());
    const double m2 = gmm_data_term(p, xd, ga2.data(), gz2.data());
    BOOST_TEST(std::fabs(m2 - m) <= 1e-11 * std::fabs(m) + 1e-12);
    BOOST_TEST(all_close(ga2, ga, 1e-11, 1e-11, what + " data dU/da"));
    BOOST_TEST(all_close(gz2, gz, 1e-13, 1e-11, what + " data dU/dz"));
  }
}

