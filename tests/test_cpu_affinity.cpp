// How the jebm program runs on the CPUs (experiments/main.cpp): how its idle OpenMP threads wait, and the CPUs it may
// use (experiments/cpu_affinity.hpp). `jebm --version` reports both, and jebm's self-restart keeps every CPU under
// OMP_PROC_BIND. Before that fix, libgomp's binding of the first process's thread survived exec, and
// `OMP_PROC_BIND=true jebm ...` ran all its threads on one CPU.
#include <boost/test/unit_test.hpp>

#include <string>

#include "experiments/cpu_affinity.hpp"
#include "experiments/version.hpp"
#include "tests/binary_helpers.hpp"

namespace {

// What `jebm --version` says about its CPUs ("cpus: N usable ..."), -1 when the line is missing.
int reported_cpus(const std::string& out) {
  const size_t at = out.find("\ncpus: ");
  return at == std::string::npos ? -1 : std::stoi(out.substr(at + 7));
}

struct TwoCpus {
  boost::test_tools::assertion_result operator()(boost::unit_test::test_unit_id) const {
    boost::test_tools::assertion_result r(jebm::usable_cpus() >= 2);
    if (!r) r.message() << "this process may use " << jebm::usable_cpus() << " CPU: a binding to one cannot show";
    return r;
  }
};

}  // namespace

BOOST_AUTO_TEST_CASE(version_reports_the_cpus_of_this_process) {
  const jebm::test::Ran r = jebm::test::run_jebm({"--version"});
  BOOST_REQUIRE(r.code == 0);
  BOOST_TEST(reported_cpus(r.out) == jebm::usable_cpus(), r.out);
}

// Without OMP_WAIT_POLICY jebm restarts itself (to set it); with OMP_PROC_BIND the restarted process must still see
// every CPU this one may use.
BOOST_AUTO_TEST_CASE(the_restart_under_omp_proc_bind_keeps_every_cpu, *boost::unit_test::precondition(TwoCpus())) {
  for (const char* bind : {"true", "spread", "close"}) {
    const std::string env = std::string("env -u OMP_WAIT_POLICY OMP_PROC_BIND=") + bind + " ";
    const jebm::test::Ran r = jebm::test::run_jebm({"--version"}, env);
    BOOST_REQUIRE(r.code == 0);
    BOOST_TEST(reported_cpus(r.out) == jebm::usable_cpus(), "OMP_PROC_BIND=" << bind << ":\n" << r.out);
  }
}

// How idle OpenMP threads wait (experiments/main.cpp): with neither OMP_WAIT_POLICY nor GOMP_SPINCOUNT set, jebm
// restarts with its bounded spin and says so; a value the user set is kept and reported as theirs.
BOOST_AUTO_TEST_CASE(the_restart_sets_a_bounded_spin_unless_the_user_chose_a_wait) {
  const std::string clean = "env -u OMP_WAIT_POLICY -u GOMP_SPINCOUNT -u JEBM_SET_SPINCOUNT ";
  const struct {
    std::string env, line;
  } cases[] = {
      {clean, std::string("\nopenmp wait: GOMP_SPINCOUNT=") + jebm::kJebmSpinCount + " (set by jebm)"},
      {clean + "OMP_WAIT_POLICY=passive ", "\nopenmp wait: OMP_WAIT_POLICY=passive (yours)\n"},
      {clean + "GOMP_SPINCOUNT=0 ", "\nopenmp wait: GOMP_SPINCOUNT=0 (yours)\n"},
      {clean + "OMP_WAIT_POLICY=active GOMP_SPINCOUNT=5 ",
       "\nopenmp wait: OMP_WAIT_POLICY=active, GOMP_SPINCOUNT=5 (yours)\n"},
  };
  for (const auto& c : cases) {
    const jebm::test::Ran r = jebm::test::run_jebm({"--version"}, c.env);
    BOOST_REQUIRE(r.code == 0);
    BOOST_TEST(r.out.find(c.line) != std::string::npos, c.env << "\n" << r.out);
  }
}
