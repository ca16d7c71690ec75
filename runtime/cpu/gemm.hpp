// Raw-pointer GEMM for the CPU kernels that call it from inside their own loops (runtime/cpu/conv.cpp).
// Implemented in runtime/cpu/gemm.cpp; covered by tests/test_ops.cpp through gemm and conv2d.
#pragma once
#include <cstdint>

namespace jebm::cpu {

// Row-major c[m, n] = alpha * op(a) op(b) + beta * c, op(a): [m, k], op(b): [k, n]. The product is cut into fixed
// blocks that depend only on (m, n, k); they run on the OpenMP threads when called outside a parallel region and one
// after another inside one, with the same result either way. beta == 0 overwrites c (NaN in c is ignored).
void gemm_blocked(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, float alpha, const float* a,
                  int64_t lda, const float* b, int64_t ldb, float beta, float* c, int64_t ldc);
void gemm_blocked(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, double alpha, const double* a,
                  int64_t lda, const double* b, int64_t ldb, double beta, double* c, int64_t ldc);

// The same product as one single-threaded BLAS call, for callers that already run one product per thread.
void gemm_serial(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, float alpha, const float* a, int64_t lda,
                 const float* b, int64_t ldb, float beta, float* c, int64_t ldc);
void gemm_serial(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, double alpha, const double* a,
                 int64_t lda, const double* b, int64_t ldb, double beta, double* c, int64_t ldc);

}  // namespace jebm::cpu
