// CPU GEMM through CBLAS (OpenBLAS): c = alpha * op(a) op(b) + beta * c, row-major, float32 and float64.
// The reference for runtime/cuda/gemm.cu (cuBLAS). Tested by tests/test_ops.cpp (all transpose combinations
// against a triple loop).
//
// Threads: OpenBLAS is kept single-threaded and large products are cut into fixed blocks of rows or columns that
// OpenMP threads run in parallel. One thread pool in the process (OpenBLAS's pthreads pool and OpenMP's spinning
// each other out made conv2d several times slower on a shared 2-core machine), and the blocks depend only on the
// shapes, so results do not depend on the thread count. gemm_blocked (runtime/cpu/gemm.hpp) is the same product on raw
// pointers; called inside a parallel region (conv2d's sample groups) it runs its blocks serially.
#include "runtime/cpu/gemm.hpp"

#include <cblas.h>
#include <omp.h>

#include <algorithm>
#include <mutex>

#include "runtime/backend.hpp"

// Weak: present in OpenBLAS, absent from other CBLAS implementations (then nothing is called).
#pragma weak openblas_set_num_threads

namespace jebm::cpu {
namespace {

constexpr int64_t kGemmSerialFlops = int64_t{1} << 21;  // below ~2 MFLOP one BLAS call is faster than forking
constexpr int64_t kGemmMinBlock = 64;                   // rows/columns per block, at least
constexpr int64_t kGemmMaxBlocks = 16;

void single_threaded_blas() {
  static std::once_flag once;
  std::call_once(once, [] {
    if (&openblas_set_num_threads != nullptr) openblas_set_num_threads(1);
  });
}

inline void blas_gemm(CBLAS_TRANSPOSE ta, CBLAS_TRANSPOSE tb, int m, int n, int k, float alpha, const float* a,
                      int lda, const float* b, int ldb, float beta, float* c, int ldc) {
  cblas_sgemm(CblasRowMajor, ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}
inline void blas_gemm(CBLAS_TRANSPOSE ta, CBLAS_TRANSPOSE tb, int m, int n, int k, double alpha, const double* a,
                      int lda, const double* b, int ldb, double beta, double* c, int ldc) {
  cblas_dgemm(CblasRowMajor, ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}

template <typename scalar_t>
void gemm_blocked_typed(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, scalar_t alpha, const scalar_t* ap,
                        int64_t lda, const scalar_t* bp, int64_t ldb, scalar_t beta, scalar_t* cp, int64_t ldc,
                        bool serial) {
  JEBM_CHECK(m < (int64_t{1} << 31) && n < (int64_t{1} << 31) && k < (int64_t{1} << 31),
             "gemm: dimensions [" << m << ", " << k << "] x [" << k << ", " << n << "] exceed CBLAS's int range");
  if (m == 0 || n == 0) return;
  if (k == 0) {
    // Empty inner dimension: op(a) op(b) is zero, and some BLAS builds reject lda = 0.
    for (int64_t i = 0; i < m; ++i)
      for (int64_t j = 0; j < n; ++j) {
        scalar_t& v = cp[i * ldc + j];
        v = beta == scalar_t(0) ? scalar_t(0) : beta * v;
      }
    return;
  }
  single_threaded_blas();
  const CBLAS_TRANSPOSE ta = trans_a ? CblasTrans : CblasNoTrans, tb = trans_b ? CblasTrans : CblasNoTrans;
  // Split the longer of M and N. Row block [r0, r1) of op(a) starts at row r0 of a, or column r0 of a^T;
  // column block [c0, c1) of op(b) starts at column c0 of b, or row c0 of b^T.
  const bool split_rows = m >= n;
  const int64_t len = split_rows ? m : n;
  const int64_t blocks = serial || 2 * m * n * k < kGemmSerialFlops ? 1 : std::clamp<int64_t>(len / kGemmMinBlock, 1, kGemmMaxBlocks);
  const int64_t step = (len + blocks - 1) / blocks;
  auto run_block = [&](int64_t blk) {
    const int64_t lo = blk * step, hi = std::min(len, lo + step);
    if (lo >= hi) return;
    if (split_rows) {
      blas_gemm(ta, tb, static_cast<int>(hi - lo), static_cast<int>(n), static_cast<int>(k), alpha,
                ap + (trans_a ? lo : lo * lda), static_cast<int>(lda), bp, static_cast<int>(ldb), beta, cp + lo * ldc,
                static_cast<int>(ldc));
    } else {
      blas_gemm(ta, tb, static_cast<int>(m), static_cast<int>(hi - lo), static_cast<int>(k), alpha, ap,
                static_cast<int>(lda), bp + (trans_b ? lo * ldb : lo), static_cast<int>(ldb), beta, cp + lo,
                static_cast<int>(ldc));
    }
  };
  if (blocks == 1 || omp_in_parallel()) {
    for (int64_t blk = 0; blk < blocks; ++blk) run_block(blk);
  } else {
#pragma omp parallel for schedule(dynamic, 1)
    for (int64_t blk = 0; blk < blocks; ++blk) run_block(blk);
  }
}

template <typename scalar_t>
void gemm_typed(bool trans_a, bool trans_b, double alpha, const Tensor& a, const Tensor& b, double beta, Tensor& c) {
  // a: [M, K] or [K, M] when transposed; b: [K, N] or [N, K]; c: [M, N]
  const int64_t m = c.size(0), n = c.size(1), k = trans_a ? a.size(0) : a.size(1);
  gemm_blocked_typed(trans_a, trans_b, m, n, k, static_cast<scalar_t>(alpha), a.data<scalar_t>(), a.size(1),
                     b.data<scalar_t>(), b.size(1), static_cast<scalar_t>(beta), c.data<scalar_t>(), n, false);
}

}  // namespace

void gemm_blocked(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, float alpha, const float* a,
                  int64_t lda, const float* b, int64_t ldb, float beta, float* c, int64_t ldc) {
  gemm_blocked_typed(trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc, false);
}

void gemm_blocked(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, double alpha, const double* a,
                  int64_t lda, const double* b, int64_t ldb, double beta, double* c, int64_t ldc) {
  gemm_blocked_typed(trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc, false);
}

void gemm_serial(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, float alpha, const float* a, int64_t lda,
                 const float* b, int64_t ldb, float beta, float* c, int64_t ldc) {
  gemm_blocked_typed(trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc, true);
}

void gemm_serial(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, double alpha, const double* a,
                 int64_t lda, const double* b, int64_t ldb, double beta, double* c, int64_t ldc) {
  gemm_blocked_typed(trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc, true);
}

void gemm(bool trans_a, bool trans_b, double alpha, const Tensor& a, const Tensor& b, double beta, Tensor& c) {
  JEBM_DISPATCH_FLOAT(c.dtype(), "gemm", [&] { gemm_typed<scalar_t>(trans_a, trans_b, alpha, a, b, beta, c); });
}

}  // namespace jebm::cpu
