// The walker loops' noise paths (runtime/philox_normals.hpp): the fused ULA + Jarzynski move
// (samplers/cpu/ula_jarzynski.cpp) and the Gaussian-mixture iteration (samplers/gmm_step.cpp, GmmTrainer) give the
// same bits with each intrinsics twin the CPU runs (AVX-512, AVX2) as with the scalar reference, float64 and float32,
// all walkers and a subset.
#include "tests/helpers.hpp"

#include <cstring>
#include <string>
#include <vector>

#include "runtime/philox_normals.hpp"
#include "runtime/ops.hpp"
#include "samplers/gmm_setup.hpp"
#include "samplers/gmm_training.hpp"
#include "samplers/ula_jarzynski.hpp"

using namespace jebm;

namespace {

struct TwinPresent {
  boost::test_tools::assertion_result operator()(boost::unit_test::test_unit_id) const {
    return jebm::test::skip_unless(cpu::noise_avx512_supported() || cpu::noise_avx2_supported(),
                                   "this CPU has neither AVX-512F nor AVX2: there is no second noise path to compare");
  }
};

// The intrinsics twins this CPU runs, each to be compared with the reference.
std::vector<cpu::NoisePath> twins_here() {
  std::vector<cpu::NoisePath> t;
  if (cpu::noise_avx512_supported()) t.push_back(cpu::NoisePath::Avx512);
  if (cpu::noise_avx2_supported()) t.push_back(cpu::NoisePath::Avx2);
  return t;
}

// Sets the noise path for a scope and restores the one chosen at load time.
struct NoisePathScope {
  cpu::NoisePath was = cpu::noise_path();
  explicit NoisePathScope(cpu::NoisePath p) { cpu::set_noise_path(p); }
  ~NoisePathScope() { cpu::set_noise_path(was); }
};

bool same_bytes(const Tensor& a, const Tensor& b) {
  return a.dtype() == b.dtype() && a.shape() == b.shape() &&
         std::memcmp(a.raw_data(), b.raw_data(), static_cast<size_t>(a.numel()) * dtype_size(a.dtype())) == 0;
}

bool same_bits(const std::vector<double>& a, const std::vector<double>& b) {
  return a.size() == b.size() && (a.empty() || std::memcmp(a.data(), b.data(), a.size() * sizeof(double)) == 0);
}

// Three fused moves (the first moves only, then complete + move; the last one of a subset), from the same start.
// dims 37: an odd coordinate count, 19 pairs, so a walker's tiles end in partial vectors.
WalkerPopulation three_moves(cpu::NoisePath path, DType dt, const UlaConfig& cfg) {
  const NoisePathScope scope(path);
  const int64_t n = 150, d = 37;
  Generator gen{11, 0};
  WalkerPopulation pop = WalkerPopulation::create(rand_normal({n, d}, 0.0, 1.0, gen, dt), 0xfffffffffffffff0ull);
  pop.moves = 0xfffffffeull;  // the move counter crosses 2^32: the Philox offset's high word changes
  const Tensor u = rand_normal({n}, 0.0, 1.0, gen, DType::Float64);
  const Tensor g = rand_normal({n, d}, 0.0, 3.0, gen, dt);
  ula_jarzynski_step(pop, u, g, cfg, MoveKind::MoveOnly);
  ula_jarzynski_step(pop, u, g, cfg, MoveKind::CompleteAndMove);
  const std::vector<int64_t> subset = {3, 4, 5, 77, 149, 0};
  const Tensor us = rand_normal({6}, 0.0, 1.0, gen, DType::Float64);
  const Tensor gs = rand_normal({6, d}, 0.0, 3.0, gen, dt);
  ula_jarzynski_step(pop, us, gs, cfg, MoveKind::CompleteAndMove, subset);
  return pop;
}

}  // namespace

BOOST_AUTO_TEST_CASE(fused_moves_are_the_same_on_every_noise_path, *boost::unit_test::precondition(TwinPresent())) {
  UlaConfig clipped;
  clipped.drift_clip = 2.0;
  clipped.weight_kernel = WeightKernel::Tempered;
  clipped.sigma = 0.3;
  for (const cpu::NoisePath twin : twins_here())
    for (const DType dt : {DType::Float64, DType::Float32})
      for (const UlaConfig& cfg : {UlaConfig{}, clipped}) {
        const WalkerPopulation ref = three_moves(cpu::NoisePath::Reference, dt, cfg);
        const WalkerPopulation fast = three_moves(twin, dt, cfg);
        const std::string what = std::string(cpu::noise_path_name(twin)) + " " + dtype_name(dt);
        BOOST_TEST(same_bytes(ref.x, fast.x), what);
        BOOST_TEST(same_bytes(ref.x_prev, fast.x_prev), what);
        BOOST_TEST(same_bytes(ref.log_w, fast.log_w), what);
        BOOST_TEST(same_bytes(ref.partial, fast.partial), what);
        // The moves did move: the noise is in the positions.
        BOOST_TEST(!same_bytes(ref.x, ref.x_prev));
      }
}

BOOST_AUTO_TEST_CASE(gmm_iterations_are_the_same_on_every_noise_path, *boost::unit_test::precondition(TwinPresent())) {
  // The fast GMM path, its corrected CE estimate (the lag sums) and resampling, with held-out blocks, 2 threads.
  GmmConfig c;
  c.dim = 7;
  c.walkers = 300;
  c.data = 200;
  c.holdout_walkers = 128;
  c.holdout_blocks = 2;
  c.resample_rule = {ResampleScheme::Systematic, 0.95, 0.0};  // resample whenever the ESS is below 95 %
  const GmmParams teacher = gmm_teacher(c);
  const Tensor data = gmm_teacher_data(c, teacher);
  std::vector<cpu::NoisePath> paths = {cpu::NoisePath::Reference};
  for (const cpu::NoisePath t : twins_here()) paths.push_back(t);
  std::vector<std::vector<std::vector<double>>> runs(paths.size());
  std::vector<std::vector<Tensor>> walkers(paths.size());
  for (size_t k = 0; k < paths.size(); ++k) {
    const NoisePathScope scope(paths[k]);
    GmmTrainer run(c, Algorithm::Jarzynski, data, teacher);
    for (int it = 0; it < 12; ++it) {
      const GmmRecord r = run.iterate();
      runs[k].push_back({r.ess, r.log_z_estimate, r.log_z_estimate_raw, r.log_z_correction, r.jarzynski_ce,
                         r.holdout_log_z});
    }
    runs[k].push_back(run.params().a);
    runs[k].push_back(run.params().z);
    walkers[k] = {run.walkers().x, run.walkers().log_w, run.holdout_walkers().at(1).x};
  }
  for (size_t k = 1; k < paths.size(); ++k) {
    const char* twin = cpu::noise_path_name(paths[k]);
    for (size_t i = 0; i < runs[0].size(); ++i) BOOST_TEST(same_bits(runs[0][i], runs[k][i]), twin << " row " << i);
    for (size_t i = 0; i < walkers[0].size(); ++i)
      BOOST_TEST(same_bytes(walkers[0][i], walkers[k][i]), twin << " tensor " << i);
  }
  BOOST_TEST(runs[0][11][3] != 0.0);  // the lag correction was computed
}
