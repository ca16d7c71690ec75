// The walker loops' noise paths (runtime/philox_normals.hpp): the fused ULA + Jarzynski move
// (samplers/cpu/ula_jarzynski.cpp) and the Gaussian-mixture iteration (samplers/gmm_step.cpp, GmmTrainer) give the
// same bits with the AVX-512 twin as with the scalar reference, float64 and float32, all walkers and a subset.
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

struct Avx512Present {
  boost::test_tools::assertion_result operator()(boost::unit_test::test_unit_id) const {
    return jebm::test::skip_unless(cpu::noise_avx512_supported(),
                                   "this CPU has no AVX-512F: there is no second noise path to compare");
  }
};

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

BOOST_AUTO_TEST_CASE(fused_moves_are_the_same_on_both_noise_paths, *boost::unit_test::precondition(Avx512Present())) {
  UlaConfig clipped;
  clipped.drift_clip = 2.0;
  clipped.weight_kernel = WeightKernel::Tempered;
  clipped.sigma = 0.3;
  for (const DType dt : {DType::Float64, DType::Float32})
    for (const UlaConfig& cfg : {UlaConfig{}, clipped}) {
      const WalkerPopulation ref = three_moves(cpu::NoisePath::Reference, dt, cfg);
      const WalkerPopulation fast = three_moves(cpu::NoisePath::Avx512, dt, cfg);
      BOOST_TEST(same_bytes(ref.x, fast.x), dtype_name(dt));
      BOOST_TEST(same_bytes(ref.x_prev, fast.x_prev), dtype_name(dt));
      BOOST_TEST(same_bytes(ref.log_w, fast.log_w), dtype_name(dt));
      BOOST_TEST(same_bytes(ref.partial, fast.partial), dtype_name(dt));
      // The moves did move: the noise is in the positions.
      BOOST_TEST(!same_bytes(ref.x, ref.x_prev));
    }
}

BOOST_AUTO_TEST_CASE(gmm_iterations_are_the_same_on_both_noise_paths, *boost::unit_test::precondition(Avx512Present())) {
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
  std::vector<std::vector<double>> runs[2];
  std::vector<Tensor> walkers[2];
  for (int k = 0; k < 2; ++k) {
    const NoisePathScope scope(k == 0 ? cpu::NoisePath::Reference : cpu::NoisePath::Avx512);
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
  for (size_t i = 0; i < runs[0].size(); ++i) BOOST_TEST(same_bits(runs[0][i], runs[1][i]), "row " << i);
  for (size_t i = 0; i < walkers[0].size(); ++i) BOOST_TEST(same_bytes(walkers[0][i], walkers[1][i]), "tensor " << i);
  BOOST_TEST(runs[0][11][3] != 0.0);  // the lag correction was computed
}
