// OpenBLAS's kernel set and the override for CPUs it does not recognise (see blas_core.hpp).
// Tested by tests/test_blas_core.cpp.
#include "runtime/blas_core.hpp"

#include <algorithm>
#include <array>
#include <cctype>

// Weak: present in OpenBLAS, absent from other CBLAS implementations (then "not OpenBLAS").
extern "C" {
char* openblas_get_corename(void) __attribute__((weak));
char* openblas_get_config(void) __attribute__((weak));
}

namespace jebm {

std::string blas_core() {
  const char* name = openblas_get_corename ? openblas_get_corename() : nullptr;
  return name ? name : "not OpenBLAS";
}

std::string blas_description() {
  const char* config = openblas_get_config ? openblas_get_config() : nullptr;
  return std::string(config ? config : "CBLAS (not OpenBLAS)") + " (core " + blas_core() + ")";
}

std::string blas_core_override(const std::string& detected, const CpuFeatures& cpu) {
  // OpenBLAS's x86-64 kernel sets older than AVX2 (its names, lower case): what it falls back to on a CPU it
  // does not know, or what an old CPU really is (then the CPU has no AVX2 and nothing changes).
  static const std::array<const char*, 14> pre_avx2 = {"prescott", "core2",     "penryn",    "dunnington", "nehalem",
                                                       "atom",     "sandybridge", "opteron", "barcelona",  "bobcat",
                                                       "katmai",   "northwood", "banias",    "unknown"};
  std::string lower = detected;
  std::transform(lower.begin(), lower.end(), lower.begin(), [](unsigned char c) { return std::tolower(c); });
  if (std::find(pre_avx2.begin(), pre_avx2.end(), lower) == pre_avx2.end()) return "";
  if (cpu.avx512) return "SkylakeX";
  if (cpu.avx2_fma) return "Haswell";
  return "";
}

}  // namespace jebm
