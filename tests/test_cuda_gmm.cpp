// `jebm gmm --device cuda` against the CPU closed-form path (GmmTrainer with the unfused device-transparent
// pass of samplers/gmm_step.cpp vs the fused CPU pass): a few iterations of each algorithm from the same start agree
// in parameters, log Z estimates (raw, corrected, held-out), ESS and resampling counts; the device variance of the
// weighted gradient equals the CPU's. Skipped, with the reason, where no CUDA device is present.
//
// Tolerance: both paths do the same float64 arithmetic per iteration up to summation order and FMA (~1e-15
// relative); over 30 gradient-descent iterations that grows to well under 1e-9 relative in the parameters.
// GCC 12 at -O3 reports a false "used uninitialized" inside boost::function when utf::precondition is inlined into
// this translation unit (boost/function/function_template.hpp); the warning is about Boost's code, not ours.
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <cmath>

#include "runtime/cuda_api.hpp"
#include "samplers/gmm_training.hpp"
#include "tests/helpers.hpp"

using namespace jebm;
using jebm::test::all_close;
namespace utf = boost::unit_test;

namespace {

// The opposite precondition: the error path below can only be exercised where CUDA cannot be used.
struct NoCudaDevice {
  boost::test_tools::assertion_result operator()(utf::test_unit_id) const {
    if (!cuda_api::available()) return true;
    boost::test_tools::assertion_result r(false);
    r.message() << "skipped: a CUDA device is present, so asking for one is not an error here";
    return r;
  }
};

}  // namespace

BOOST_AUTO_TEST_CASE(gmm_iterations_match_cpu, *utf::precondition(jebm::test::CudaDevicePresent())) {
  GmmConfig c;
  c.dim = 11;
  c.walkers = 700;
  c.data = 600;
  c.h = 0.1;
  c.resample_rule = {ResampleScheme::Systematic, 0.0, 0.05};  // resample often, so the device path is exercised
  c.holdout_walkers = 300;
  c.holdout_blocks = 3;
  const GmmParams teacher = gmm_teacher(c);
  const Tensor data = gmm_teacher_data(c, teacher);
  for (Algorithm algo : {Algorithm::Jarzynski, Algorithm::Pcd, Algorithm::Cd}) {
    GmmConfig cg = c;
    cg.device = Device::cuda(0);
    GmmTrainer cpu(c, algo, data, teacher), gpu(cg, algo, data, teacher);
    const std::string what = algorithm_name(algo);
    for (int k = 0; k < 30; ++k) {
      const GmmRecord a = cpu.iterate(), b = gpu.iterate();
      BOOST_TEST(a.resamplings == b.resamplings, what << " iteration " << k << ": resamplings " << a.resamplings
                                                      << " vs " << b.resamplings);
      BOOST_TEST(a.holdout_resamplings == b.holdout_resamplings);
      if (algo == Algorithm::Jarzynski)
        BOOST_TEST(all_close({b.log_z_estimate_raw, b.log_z_estimate, b.holdout_log_z, b.ess},
                             {a.log_z_estimate_raw, a.log_z_estimate, a.holdout_log_z, a.ess}, 1e-9, 1e-9,
                             what + " log Z (raw, corrected, held-out), ESS"));
      BOOST_TEST(all_close({b.exact_ce}, {a.exact_ce}, 1e-10, 1e-10, what + " exact CE"));
    }
    BOOST_TEST(all_close(gpu.params().a, cpu.params().a, 1e-9, 1e-9, what + " means"));
    BOOST_TEST(all_close(gpu.params().z, cpu.params().z, 1e-9, 1e-9, what + " z"));
    const GmmRecord a = cpu.final_record(), b = gpu.final_record();
    if (algo == Algorithm::Jarzynski)
      BOOST_TEST(all_close({b.log_z_estimate, b.holdout_log_z}, {a.log_z_estimate, a.holdout_log_z}, 1e-9, 1e-9,
                           what + " final log Z"));
  }
}

// A checkpoint of a CUDA run (walkers copied back, the lag state and held-out blocks) resumes on the device and
// on the CPU, and both go on as the uninterrupted CUDA run (to the device's rounding against the CPU).
BOOST_AUTO_TEST_CASE(gmm_checkpoint_of_a_cuda_run_resumes, *utf::precondition(jebm::test::CudaDevicePresent())) {
  GmmConfig c;
  c.dim = 6;
  c.walkers = 500;
  c.data = 400;
  c.resample_rule = {ResampleScheme::Systematic, 0.0, 0.05};
  c.holdout_walkers = 60;
  c.holdout_blocks = 3;
  c.device = Device::cuda(0);
  GmmConfig cpu_c = c;
  cpu_c.device = Device::cpu();
  const GmmParams teacher = gmm_teacher(c);
  const Tensor data = gmm_teacher_data(c, teacher);
  GmmTrainer straight(c, Algorithm::Jarzynski, data, teacher), saved(c, Algorithm::Jarzynski, data, teacher);
  for (int k = 0; k < 20; ++k) {
    straight.iterate();
    saved.iterate();
  }
  CheckpointTensors tensors;
  CheckpointMetadata meta;
  saved.save_state(tensors, meta);
  SafeTensors st;
  st.path = "(in memory)";
  for (const auto& [name, t] : tensors) st.tensors[name] = t.to(Device::cpu());
  st.metadata = meta;
  GmmTrainer on_gpu(c, Algorithm::Jarzynski, data, teacher), on_cpu(cpu_c, Algorithm::Jarzynski, data, teacher);
  on_gpu.load_state(st);
  on_cpu.load_state(st);
  for (int k = 20; k < 40; ++k) {
    const GmmRecord a = straight.iterate(), b = on_gpu.iterate(), d = on_cpu.iterate();
    BOOST_TEST(all_close({b.log_z_estimate, b.holdout_log_z, b.ess, d.log_z_estimate, d.holdout_log_z, d.ess},
                         {a.log_z_estimate, a.holdout_log_z, a.ess, a.log_z_estimate, a.holdout_log_z, a.ess}, 1e-9,
                         1e-9, "iteration " + std::to_string(k) + ": log Z, held-out log Z, ESS"));
  }
  BOOST_TEST(all_close(on_gpu.params().a, straight.params().a, 1e-9, 1e-9, "means (resumed on the device)"));
  BOOST_TEST(all_close(on_cpu.params().a, straight.params().a, 1e-9, 1e-9, "means (resumed on the CPU)"));
}

BOOST_AUTO_TEST_CASE(gradient_variance_matches_cpu, *utf::precondition(jebm::test::CudaDevicePresent())) {
  GmmConfig c;
  c.dim = 7;
  c.student_modes = 3;
  const GmmParams p = gmm_student_init(c);
  const int64_t n = 1000;
  Tensor x = Tensor::empty({n, c.dim}, DType::Float64);
  gmm_sample(p, n, 5, 0, x.data<double>());
  std::vector<double> lw(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) lw[static_cast<size_t>(i)] = std::sin(0.37 * static_cast<double>(i));
  const Tensor w = Tensor::from_vector(normalized_weights(lw), {n}, DType::Float64);
  Tensor u = Tensor::empty({n}, DType::Float64), r = Tensor::empty({n, p.k}, DType::Float64);
  gmm_eval(p, x, u, nullptr, &r);
  std::vector<double> va(static_cast<size_t>(p.k * p.d)), vz(static_cast<size_t>(p.k)), va2 = va, vz2 = vz;
  gmm_param_grad_variance(p, x, r, w, va.data(), vz.data());
  const Device dev = Device::cuda(0);
  gmm_param_grad_variance(p, x.to(dev), r.to(dev), w.to(dev), va2.data(), vz2.data());
  BOOST_TEST(all_close(va2, va, 1e-14, 1e-10, "variance of dU/da"));
  BOOST_TEST(all_close(vz2, vz, 1e-14, 1e-10, "variance of dU/dz"));
}

// Where CUDA cannot be used (no CUDA build, or no device), asking for it is a clear error, not a crash.
BOOST_AUTO_TEST_CASE(cuda_without_device_is_a_clear_error, *utf::precondition(NoCudaDevice())) {
  GmmConfig c;
  c.dim = 3;
  c.walkers = 10;
  c.data = 10;
  c.device = Device::cuda(0);
  const GmmParams teacher = gmm_teacher(c);
  const Tensor data = gmm_teacher_data(c, teacher);
  BOOST_CHECK_EXCEPTION(GmmTrainer(c, Algorithm::Jarzynski, data, teacher), Error, [](const Error& e) {
    return std::string(e.what()).find("cuda") != std::string::npos || std::string(e.what()).find("CUDA") != std::string::npos;
  });
}
