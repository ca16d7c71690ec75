// CUDA GEMM through cuBLAS. cuBLAS is column-major; a row-major [M, N] matrix is the column-major [N, M] one, so
// C = op(A) op(B) (row-major) is computed as C^T = op(B)^T op(A)^T: the operands swap places and nothing is
// transposed in memory. CPU reference: runtime/cpu/gemm.cpp (CBLAS). Tested by tests/test_cuda_ops.cpp.
#include <climits>

#include "runtime/backend.hpp"
#include "runtime/cuda/context.hpp"

namespace jebm::cuda {

void gemm(bool trans_a, bool trans_b, double alpha, const Tensor& a, const Tensor& b, double beta, Tensor& c) {
  // a: trans_a ? [K, M] : [M, K]; b: trans_b ? [N, K] : [K, N]; c: [M, N], all row-major and contiguous.
  const int64_t m = c.shape()[0], n = c.shape()[1];
  const int64_t k = trans_a ? a.shape()[0] : a.shape()[1];
  if (m == 0 || n == 0) return;
  if (k == 0) {  // op(a) op(b) is all zeros; don't rely on how cuBLAS treats an empty inner dimension
    if (beta == 0.0) fill(c, 0.0); else scalar_op(ScalarOp::Mul, c, beta, 0.0, c);
    return;
  }
  JEBM_CHECK(m <= INT_MAX && n <= INT_MAX && k <= INT_MAX,
             "gemm (cuda): dims M=" << m << " N=" << n << " K=" << k << " exceed cuBLAS's int range");
  // Leading dimensions of the row-major storage = its column counts (>= 1 even for empty K, as cuBLAS demands).
  const int lda = static_cast<int>(std::max<int64_t>(1, a.shape()[1]));
  const int ldb = static_cast<int>(std::max<int64_t>(1, b.shape()[1]));
  const int ldc = static_cast<int>(n);
  const cublasOperation_t op_a = trans_a ? CUBLAS_OP_T : CUBLAS_OP_N;
  const cublasOperation_t op_b = trans_b ? CUBLAS_OP_T : CUBLAS_OP_N;
  Context& ctx = context(c);
  cublasHandle_t h = cublas_handle(ctx);
  switch (c.dtype()) {
    case DType::Float32: {
      const float al = static_cast<float>(alpha), be = static_cast<float>(beta);
      CUBLAS_CHECK(cublasSgemm(h, op_b, op_a, static_cast<int>(n), static_cast<int>(m), static_cast<int>(k), &al,
                               b.device_data<float>(), ldb, a.device_data<float>(), lda, &be, c.device_data<float>(), ldc));
      break;
    }
    case DType::Float64:
      CUBLAS_CHECK(cublasDgemm(h, op_b, op_a, static_cast<int>(n), static_cast<int>(m), static_cast<int>(k), &alpha,
                               b.device_data<double>(), ldb, a.device_data<double>(), lda, &beta, c.device_data<double>(), ldc));
      break;
    default: JEBM_FAIL("gemm (cuda): dtype " << dtype_name(c.dtype()) << " is not supported");
  }
}

}  // namespace jebm::cuda
