// `jebm gmm --device cuda` against the CPU closed-form path (experiments/gmm_cuda.cpp vs GmmExperiment::
// iterate_fast): a few iterations of each algorithm from the same start agree in parameters, log Z estimates,
// ESS and resampling counts. Links jebm_experiments; skipped where no CUDA device is present.
//
// Tolerance: both paths do the same float64 arithmetic per iteration up to summation order and FMA (~1e-15
// relative); over 30 gradient-descent iterations that grows to well under 1e-9 relative in the parameters.
// GCC 12 at -O3 reports a false "used uninitialized" inside boost::function when utf::precondition is inlined into
// this translation unit (boost/function/function_template.hpp); the warning is about Boost's code, not ours.
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include "experiments/gmm.hpp"
#include "runtime/cuda_api.hpp"
#include "tests/helpers.hpp"

using namespace jebm;
using jebm::test::all_close;
namespace utf = boost::unit_test;

BOOST_AUTO_TEST_CASE(gmm_iterations_match_cpu, *utf::precondition(jebm::test::CudaDevicePresent())) {
  GmmConfig c;
  c.dim = 11;
  c.walkers = 700;
  c.data = 600;
  c.h = 0.1;
  c.resample_rule = {ResampleScheme::Systematic, 0.0, 0.05};  // resample often, so the device path is exercised
  const GmmParams teacher = gmm_teacher(c);
  const Tensor data = gmm_teacher_data(c, teacher);
  for (Algorithm algo : {Algorithm::Jarzynski, Algorithm::Pcd, Algorithm::Cd}) {
    GmmConfig cg = c;
    cg.device = Device::cuda(0);
    GmmExperiment cpu(c, algo, data, teacher), gpu(cg, algo, data, teacher);
    const std::string what = algorithm_name(algo);
    for (int k = 0; k < 30; ++k) {
      const GmmRecord a = cpu.iterate(), b = gpu.iterate();
      BOOST_TEST(a.resamplings == b.resamplings, what << " iteration " << k << ": resamplings " << a.resamplings
                                                      << " vs " << b.resamplings);
      if (algo == Algorithm::Jarzynski)
        BOOST_TEST(all_close({b.log_z_estimate, b.ess}, {a.log_z_estimate, a.ess}, 1e-9, 1e-9, what + " log Z, ESS"));
      BOOST_TEST(all_close({b.exact_ce}, {a.exact_ce}, 1e-10, 1e-10, what + " exact CE"));
    }
    BOOST_TEST(all_close(gpu.params().a, cpu.params().a, 1e-9, 1e-9, what + " means"));
    BOOST_TEST(all_close(gpu.params().z, cpu.params().z, 1e-9, 1e-9, what + " z"));
    const GmmRecord a = cpu.final_record(), b = gpu.final_record();
    if (algo == Algorithm::Jarzynski)
      BOOST_TEST(all_close({b.log_z_estimate}, {a.log_z_estimate}, 1e-9, 1e-9, what + " final log Z"));
  }
}

// Where CUDA cannot be used (no CUDA build, or no device), asking for it is a clear error, not a crash.
BOOST_AUTO_TEST_CASE(cuda_without_device_is_a_clear_error) {
  if (cuda_api::available()) return;  // nothing to check on a GPU machine
  GmmConfig c;
  c.dim = 3;
  c.walkers = 10;
  c.data = 10;
  c.device = Device::cuda(0);
  const GmmParams teacher = gmm_teacher(c);
  const Tensor data = gmm_teacher_data(c, teacher);
  BOOST_CHECK_EXCEPTION(GmmExperiment(c, Algorithm::Jarzynski, data, teacher), Error, [](const Error& e) {
    return std::string(e.what()).find("cuda") != std::string::npos || std::string(e.what()).find("CUDA") != std::string::npos;
  });
}
