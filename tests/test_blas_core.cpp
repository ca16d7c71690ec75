// The BLAS kernel-set override (runtime/blas_core.hpp): which OPENBLAS_CORETYPE a CPU gets when OpenBLAS does
// not recognise it, and, through the jebm binary, that the program then runs a kernel set its CPU can use fully.
#include <boost/test/unit_test.hpp>

#include <cstdlib>
#include <string>

#include "runtime/blas_core.hpp"
#include "tests/binary_helpers.hpp"

using jebm::blas_core_override;
using jebm::CpuFeatures;

namespace {
const CpuFeatures kAvx512{true, true, true, true}, kAvx2{false, true, false, true}, kOld{};

// An environment variable's absence, as a Boost.Test precondition.
struct Unset {
  const char* name;
  boost::test_tools::assertion_result operator()(boost::unit_test::test_unit_id) const {
    boost::test_tools::assertion_result r(std::getenv(name) == nullptr);
    if (!r) r.message() << name << " is set in the test's environment, so jebm leaves the kernel set to it";
    return r;
  }
};
}  // namespace

BOOST_AUTO_TEST_CASE(a_generic_fallback_is_replaced_by_the_widest_kernels_the_cpu_has) {
  BOOST_TEST(blas_core_override("Prescott", kAvx512) == "SkylakeX");
  BOOST_TEST(blas_core_override("Prescott", kAvx2) == "Haswell");
  BOOST_TEST(blas_core_override("Nehalem", kAvx2) == "Haswell");
  BOOST_TEST(blas_core_override("Sandybridge", kAvx512) == "SkylakeX");
  BOOST_TEST(blas_core_override("Unknown", kAvx2) == "Haswell");
  BOOST_TEST(blas_core_override("prescott", kAvx512) == "SkylakeX");  // OpenBLAS's names, in any case
}

BOOST_AUTO_TEST_CASE(a_recognised_cpu_or_an_old_one_keeps_what_openblas_chose) {
  for (const char* core : {"SkylakeX", "Haswell", "Zen", "Cooperlake", "SapphireRapids", "not OpenBLAS"})
    BOOST_TEST(blas_core_override(core, kAvx512).empty(), core);
  BOOST_TEST(blas_core_override("Prescott", kOld).empty());  // a CPU without AVX2: the generic set is right
}

BOOST_AUTO_TEST_CASE(this_process_reports_its_kernel_set) {
  BOOST_TEST(!jebm::blas_core().empty());
  BOOST_TEST(jebm::blas_description().find("(core " + jebm::blas_core() + ")") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(the_jebm_program_runs_a_kernel_set_its_cpu_can_use,
                     *boost::unit_test::precondition(Unset{"OPENBLAS_CORETYPE"})) {
  const jebm::test::Ran r = jebm::test::run_jebm({"--version"});
  BOOST_REQUIRE(r.code == 0);
  const size_t at = r.out.find("(core ");
  BOOST_REQUIRE(at != std::string::npos);
  const std::string core = r.out.substr(at + 6, r.out.find(')', at) - at - 6);
  // Whatever this CPU is: the program's kernel set is not one the override would still replace.
  BOOST_TEST(blas_core_override(core, jebm::cpu_features()).empty(), "jebm runs OpenBLAS core " << core);
  // And where this process (no restart) got a generic set, the program says it replaced it.
  if (!blas_core_override(jebm::blas_core(), jebm::cpu_features()).empty())
    BOOST_TEST(r.out.find("set by jebm through OPENBLAS_CORETYPE (OpenBLAS detected " + jebm::blas_core() + ")") !=
               std::string::npos);
}
