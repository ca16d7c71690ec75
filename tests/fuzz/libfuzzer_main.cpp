// libFuzzer entry point for one target (JEBM_FUZZ=ON with clang builds jebm_fuzz_<target> from this file with
// -DJEBM_FUZZ_TARGET="<target>"). Start it on the seeds of `jebm_fuzz --write-seeds DIR`; see scripts/fuzz.sh.
#include <cstddef>
#include <cstdint>

#include "tests/fuzz/fuzz_targets.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const jebm::fuzz::FuzzTarget& target = jebm::fuzz::fuzz_target(JEBM_FUZZ_TARGET);
  target.run(data, size);  // a jebm::Error is caught inside; anything else escapes and is reported as a crash
  return 0;
}
