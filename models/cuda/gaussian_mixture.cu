// The CUDA entries of the models' kernel table (models/kernels.inc) for the Gaussian mixture, twins of
// models/cpu/gaussian_mixture.cpp (the raw-array closed forms of models/gaussian_mixture.cpp are the reference):
// the fused U / grad_x U / responsibilities per row, the (weighted) parameter gradient and its weighted variance as
// deterministic two-stage reductions. Tested by tests/test_cuda_samplers.cpp (against gmm_eval, gmm_param_grad,
// gmm_data_term) and tests/test_cuda_gmm.cpp (gmm_param_grad_variance).
//
// CPU reference per row x: e_j = -|x - a_j|^2/2 - z_j, m = max e, s = sum exp(e_j - m), U = -(m + log s),
// r_j = exp(e_j - m)/s, g = x - sum_j r_j a_j (accumulated in j order). Parameter sums over rows i with weight c_i:
// acc_a[j] = sum c_i r_ij x_i, acc_z[j] = sum c_i r_ij; dU/da_j = acc_z[j] a_j - acc_a[j], dU/dz_j = acc_z[j].
// GPU: one warp per row (lanes over coordinates, the K distances warp-reduced); the sums are per-block partials
// over fixed row chunks, added in chunk order by a second kernel, so results do not depend on scheduling.
#include <cmath>
#include <algorithm>
#include <cstdint>
#include <vector>

#include "models/backend.hpp"
#include "runtime/cuda/context.hpp"

namespace jebm::cuda {
namespace {

// A row's K exponents live in registers/local memory: K is limited to this many modes.
constexpr int64_t kGmmCudaMaxModes = 32;
constexpr int64_t kSumRows = 256;  // rows per partial sum (the CPU's kRowChunk)

__device__ __forceinline__ double warp_sum(double v) {
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}

// params: [K*D means | K offsets]; x: [n, D]; u: [n]; g: [n, D] or null; r: [n, K] or null.
__global__ void gmm_eval_kernel(const double* __restrict__ params, int64_t k, int64_t d,
                                const double* __restrict__ x, int64_t n, double* __restrict__ u,
                                double* __restrict__ g, double* __restrict__ r) {
  const double* a = params;
  const double* z = params + k * d;
  const int lane = threadIdx.x & 31;
  const int64_t warps = (static_cast<int64_t>(gridDim.x) * blockDim.x) >> 5;
  for (int64_t i = (static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x) >> 5; i < n; i += warps) {
    const double* xi = x + i * d;
    double e[kGmmCudaMaxModes];
    double m = -INFINITY;
    for (int64_t j = 0; j < k; ++j) {
      double s = 0.0;
      for (int64_t c = lane; c < d; c += 32) {
        const double t = xi[c] - a[j * d + c];
        s += t * t;
      }
      e[j] = -0.5 * warp_sum(s) - z[j];
      m = fmax(m, e[j]);
    }
    double s = 0.0;
    for (int64_t j = 0; j < k; ++j) {
      e[j] = ::exp(e[j] - m);
      s += e[j];
    }
    const double inv = 1.0 / s;
    if (r)
      for (int64_t j = lane; j < k; j += 32) r[i * k + j] = e[j] * inv;
    if (g)
      for (int64_t c = lane; c < d; c += 32) {
        double v = xi[c];
        for (int64_t j = 0; j < k; ++j) v -= (e[j] * inv) * a[j * d + c];
        g[i * d + c] = v;
      }
    if (lane == 0) u[i] = -(m + ::log(s));
  }
}

// partial[b, q] for rows [b*kSumRows, (b+1)*kSumRows): q < K*D: sum c r_j x_col; q < K*D+K: sum c r_j;
// q = K*D+K: sum c u (u may be null: 0). c null means c_i = cu.
__global__ void gmm_sums_kernel(const double* __restrict__ x, const double* __restrict__ r,
                                const double* __restrict__ c, double cu, const double* __restrict__ u, int64_t n,
                                int64_t k, int64_t d, double* __restrict__ partial) {
  const int64_t w = k * d + k + 1;
  const int64_t i0 = static_cast<int64_t>(blockIdx.x) * kSumRows;
  const int64_t i1 = i0 + kSumRows < n ? i0 + kSumRows : n;
  for (int64_t q = threadIdx.x; q < w; q += blockDim.x) {
    double acc = 0.0;
    if (q < k * d) {
      const int64_t j = q / d, col = q % d;
      for (int64_t i = i0; i < i1; ++i) acc += ((c ? c[i] : cu) * r[i * k + j]) * x[i * d + col];
    } else if (q < k * d + k) {
      const int64_t j = q - k * d;
      for (int64_t i = i0; i < i1; ++i) acc += (c ? c[i] : cu) * r[i * k + j];
    } else if (u) {
      for (int64_t i = i0; i < i1; ++i) acc += (c ? c[i] : cu) * u[i];
    }
    partial[blockIdx.x * w + q] = acc;
  }
}

// partial[b, q] for rows of block b: q < K*D: sum (c (r_j (a_j - x)_col - g_q))^2, q < K*D+K: sum (c (r_j - g_q))^2,
// with g = [grad_a | grad_z] the weighted mean (the CPU's gmm_param_grad_variance, second pass).
__global__ void gmm_var_kernel(const double* __restrict__ params, const double* __restrict__ gmean,
                               const double* __restrict__ x, const double* __restrict__ r,
                               const double* __restrict__ c, double cu, int64_t n, int64_t k, int64_t d,
                               double* __restrict__ partial) {
  const int64_t w = k * d + k;
  const int64_t i0 = static_cast<int64_t>(blockIdx.x) * kSumRows;
  const int64_t i1 = i0 + kSumRows < n ? i0 + kSumRows : n;
  for (int64_t q = threadIdx.x; q < w; q += blockDim.x) {
    double acc = 0.0;
    if (q < k * d) {
      const int64_t j = q / d, col = q % d;
      for (int64_t i = i0; i < i1; ++i) {
        const double dev = (c ? c[i] : cu) * (r[i * k + j] * (params[q] - x[i * d + col]) - gmean[q]);
        acc += dev * dev;
      }
    } else {
      const int64_t j = q - k * d;
      for (int64_t i = i0; i < i1; ++i) {
        const double dev = (c ? c[i] : cu) * (r[i * k + j] - gmean[q]);
        acc += dev * dev;
      }
    }
    partial[blockIdx.x * w + q] = acc;
  }
}

__global__ void sum_partials_kernel(const double* __restrict__ partial, int64_t blocks, int64_t w,
                                    double* __restrict__ out) {
  for (int64_t q = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; q < w;
       q += static_cast<int64_t>(blockDim.x) * gridDim.x) {
    double s = 0.0;
    for (int64_t b = 0; b < blocks; ++b) s += partial[b * w + q];
    out[q] = s;
  }
}

void check_modes(const GmmParams& p, const char* what) {
  JEBM_CHECK(p.k <= kGmmCudaMaxModes, what << ": K = " << p.k << " modes; the CUDA path handles at most "
                                           << kGmmCudaMaxModes);
}

Tensor upload_params(const GmmParams& p, Device dev) {
  std::vector<double> v(p.a);
  v.insert(v.end(), p.z.begin(), p.z.end());
  return Tensor::from_vector(v, {p.k * p.d + p.k}, DType::Float64, dev);
}

// The K*D + K + 1 weighted sums of gmm_sums_kernel, on the host.
std::vector<double> gmm_sums(const GmmParams& p, const Tensor& x, const Tensor& r, const Tensor& c, const Tensor* u) {
  const int64_t n = x.size(0), w = p.k * p.d + p.k + 1;
  const int64_t blocks = (n + kSumRows - 1) / kSumRows;
  Tensor partial = Tensor::empty({blocks, w}, DType::Float64, x.device());
  Tensor out = Tensor::empty({w}, DType::Float64, x.device());
  cudaStream_t s = cuda::stream(x);
  gmm_sums_kernel<<<static_cast<unsigned>(blocks), 128, 0, s>>>(
      x.device_data<double>(), r.device_data<double>(), c.defined() ? c.device_data<double>() : nullptr,
      1.0 / static_cast<double>(n), u ? u->device_data<double>() : nullptr, n, p.k, p.d, partial.device_data<double>());
  CUDA_CHECK_LAUNCH("gmm_sums_kernel");
  sum_partials_kernel<<<cuda::grid_for(w), cuda::kBlock, 0, s>>>(partial.device_data<double>(), blocks, w,
                                                                 out.device_data<double>());
  CUDA_CHECK_LAUNCH("sum_partials_kernel");
  return out.to_vector();
}

// dU/da_j = acc_z[j] a_j - acc_a[j], dU/dz_j = acc_z[j] (as gmm_param_grad finishes on the CPU).
void finish_grad(const GmmParams& p, const std::vector<double>& acc, double* grad_a, double* grad_z) {
  const int64_t k = p.k, d = p.d;
  for (int64_t j = 0; j < k; ++j) {
    const double s = acc[static_cast<size_t>(k * d + j)];
    grad_z[j] = s;
    for (int64_t q = 0; q < d; ++q)
      grad_a[j * d + q] = s * p.a[static_cast<size_t>(j * d + q)] - acc[static_cast<size_t>(j * d + q)];
  }
}

}  // namespace

void gmm_eval(const GmmParams& p, const Tensor& x, Tensor& u, Tensor* g, Tensor* r) {
  check_modes(p, "gmm_eval");
  const int64_t n = x.size(0);
  if (n == 0) return;
  const Tensor params = upload_params(p, x.device());
  gmm_eval_kernel<<<cuda::grid_for(n * 32), cuda::kBlock, 0, cuda::stream(x)>>>(
      params.device_data<double>(), p.k, p.d, x.device_data<double>(), n, u.device_data<double>(),
      g ? g->device_data<double>() : nullptr, r ? r->device_data<double>() : nullptr);
  CUDA_CHECK_LAUNCH("gmm_eval_kernel");
}

void gmm_param_grad(const GmmParams& p, const Tensor& x, const Tensor& r, const Tensor& c, double* grad_a,
                    double* grad_z) {
  check_modes(p, "gmm_param_grad");
  const int64_t n = x.size(0);
  JEBM_CHECK(n > 0, "gmm_param_grad: no rows");
  finish_grad(p, gmm_sums(p, x, r, c, nullptr), grad_a, grad_z);
}

void gmm_param_grad_variance(const GmmParams& p, const Tensor& x, const Tensor& r, const Tensor& c, double* var_a,
                             double* var_z) {
  check_modes(p, "gmm_param_grad_variance");
  const int64_t n = x.size(0), k = p.k, d = p.d, w = k * d + k;
  JEBM_CHECK(n > 0, "gmm_param_grad_variance: no rows");
  std::vector<double> mean(static_cast<size_t>(w));
  finish_grad(p, gmm_sums(p, x, r, c, nullptr), mean.data(), mean.data() + k * d);
  const Tensor params = upload_params(p, x.device());
  const Tensor gmean = Tensor::from_vector(mean, {w}, DType::Float64, x.device());
  const int64_t blocks = (n + kSumRows - 1) / kSumRows;
  Tensor partial = Tensor::empty({blocks, w}, DType::Float64, x.device());
  Tensor out = Tensor::empty({w}, DType::Float64, x.device());
  cudaStream_t s = cuda::stream(x);
  gmm_var_kernel<<<static_cast<unsigned>(blocks), 128, 0, s>>>(
      params.device_data<double>(), gmean.device_data<double>(), x.device_data<double>(), r.device_data<double>(),
      c.defined() ? c.device_data<double>() : nullptr, 1.0 / static_cast<double>(n), n, k, d,
      partial.device_data<double>());
  CUDA_CHECK_LAUNCH("gmm_var_kernel");
  sum_partials_kernel<<<cuda::grid_for(w), cuda::kBlock, 0, s>>>(partial.device_data<double>(), blocks, w,
                                                                 out.device_data<double>());
  CUDA_CHECK_LAUNCH("sum_partials_kernel");
  const std::vector<double> v = out.to_vector();
  std::copy(v.begin(), v.begin() + k * d, var_a);
  std::copy(v.begin() + k * d, v.end(), var_z);
}

double gmm_data_term(const GmmParams& p, const Tensor& x, double* grad_a, double* grad_z) {
  check_modes(p, "gmm_data_term");
  const int64_t n = x.size(0);
  JEBM_CHECK(n > 0, "gmm_data_term: no rows");
  Tensor u = Tensor::empty({n}, DType::Float64, x.device());
  Tensor r = Tensor::empty({n, p.k}, DType::Float64, x.device());
  cuda::gmm_eval(p, x, u, nullptr, &r);  // qualified: ADL on GmmParams also finds jebm::gmm_eval
  const std::vector<double> acc = gmm_sums(p, x, r, Tensor(), &u);
  if (grad_a && grad_z) finish_grad(p, acc, grad_a, grad_z);
  return acc.back();
}

}  // namespace jebm::cuda
