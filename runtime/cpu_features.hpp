// What the CPU this process runs on offers, asked once: every kernel family (the walkers' noise, the direct
// convolutions, the im2col gathers, OpenBLAS's kernel-set override, the bench's FMA peak) picks its AVX-512, AVX2
// or baseline version from this one answer. Tested by tests/test_cpu_features.cpp against /proc/cpuinfo.
#pragma once

namespace jebm {

struct CpuFeatures {
  bool avx512 = false;    // AVX-512 F, BW, DQ, VL and CD: what OpenBLAS's SkylakeX kernels use
  bool avx2_fma = false;  // AVX2 and FMA: OpenBLAS's Haswell kernels, jebm's FMA convolutions and FMA peak
  bool avx512f = false;   // AVX-512 F alone: what jebm's own AVX-512 code uses
  bool avx2 = false;      // AVX2 alone: the walkers' noise twin (integer lanes, no FMA)
};

// Of the CPU this process runs on (GCC's __builtin_cpu_supports, which also checks that the OS saves the wide
// registers); computed on the first call.
const CpuFeatures& cpu_features();

}  // namespace jebm
