// Which OpenBLAS kernel set runs the CPU GEMMs, and the one to ask for where OpenBLAS's own CPU detection falls back
// to a generic kernel set on a CPU it does not know (Debian's OpenBLAS 0.3.21 calls the 2-core Xeon of family 6
// model 207 "Prescott", an SSE3 kernel set three to four times slower than its AVX-512 one). The jebm program
// restarts itself once with OPENBLAS_CORETYPE set (experiments/main.cpp); a program built on the library can set
// it itself. Tested by tests/test_blas_core.cpp.
#pragma once
#include <string>

#include "runtime/cpu_features.hpp"

namespace jebm {

// OpenBLAS's name for the kernel set it runs ("SkylakeX", "Haswell", "Zen", "Prescott", ...); "not OpenBLAS" when
// the CBLAS in use is another one.
std::string blas_core();

// "OpenBLAS 0.3.21 DYNAMIC_ARCH ... (core SkylakeX)": what a run records about its BLAS.
std::string blas_description();

// The OPENBLAS_CORETYPE that gives this CPU its widest kernels when OpenBLAS detected `detected`: "SkylakeX" or
// "Haswell" where `detected` is a kernel set without AVX2 (a generic fallback) and the CPU has better; else "".
std::string blas_core_override(const std::string& detected, const CpuFeatures& cpu);

}  // namespace jebm
