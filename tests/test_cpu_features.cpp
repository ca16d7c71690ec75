// runtime/cpu_features.hpp: the one answer every kernel family picks its AVX-512 / AVX2 / baseline version from
// agrees with what the kernel reports for this CPU in /proc/cpuinfo (a different source: the CPUID bits as Linux
// filtered them), and the combined fields are the conjunctions their comments promise.
#include <boost/test/unit_test.hpp>

#include <fstream>
#include <set>
#include <sstream>
#include <string>

#include "runtime/cpu_features.hpp"
#include "tests/helpers.hpp"

namespace {

// The first processor's "flags" line, as a set of names; empty when there is none (not Linux, not x86).
std::set<std::string> cpuinfo_flags() {
  std::ifstream in("/proc/cpuinfo");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("flags", 0) != 0) continue;
    std::istringstream words(line.substr(line.find(':') + 1));
    std::set<std::string> flags;
    for (std::string w; words >> w;) flags.insert(w);
    return flags;
  }
  return {};
}

boost::test_tools::assertion_result has_cpuinfo_flags(boost::unit_test::test_unit_id) {
  return jebm::test::skip_unless(!cpuinfo_flags().empty(), "no 'flags' line in /proc/cpuinfo on this machine");
}

}  // namespace

BOOST_AUTO_TEST_CASE(features_agree_with_proc_cpuinfo, *boost::unit_test::precondition(has_cpuinfo_flags)) {
  const std::set<std::string> f = cpuinfo_flags();
  const auto has = [&](const char* name) { return f.count(name) == 1; };
  const jebm::CpuFeatures& c = jebm::cpu_features();
  BOOST_TEST(c.avx512f == has("avx512f"));
  BOOST_TEST(c.avx2 == has("avx2"));
  BOOST_TEST(c.avx2_fma == (has("avx2") && has("fma")));
  BOOST_TEST(c.avx512 ==
             (has("avx512f") && has("avx512bw") && has("avx512dq") && has("avx512vl") && has("avx512cd")));
  BOOST_TEST_MESSAGE("this CPU: avx512f " << c.avx512f << ", avx512 (F+BW+DQ+VL+CD) " << c.avx512 << ", avx2 "
                                          << c.avx2 << ", avx2+fma " << c.avx2_fma);
}

BOOST_AUTO_TEST_CASE(features_are_asked_once_and_nest) {
  const jebm::CpuFeatures& a = jebm::cpu_features();
  BOOST_TEST(&a == &jebm::cpu_features());
  BOOST_TEST((!a.avx512 || a.avx512f));
  BOOST_TEST((!a.avx2_fma || a.avx2));
}
