// CUDA reductions over one axis of x viewed as [outer, n, inner] (sum, mean, max, stable log-sum-exp) and sum_to,
// the inverse of broadcasting. Accumulates in double like the CPU reference (runtime/cpu/reduce.cpp); only the
// summation order differs (tree vs chunked-sequential), so float64 results agree to ~1e-15 relative to sum|x|
// and float32 results are the same correctly-rounded-ish value. Tested by tests/test_cuda_ops.cpp.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

#include "runtime/backend.hpp"
#include "runtime/cuda/context.hpp"

namespace jebm::cuda {
namespace {

// --- CPU reference (runtime/cpu/reduce.cpp), per output: -------------------------------------------------
//   m = max_j x[j]  (Max, LogSumExp);  s = sum_j x[j]  or  sum_j exp(x[j] - m) when m is finite (LogSumExp)
//   Sum: s   Mean: s / n   Max: m   LogSumExp: isfinite(m) ? m + std::log(s) : m
__device__ __forceinline__ double finish(ReduceOp op, double m, double s, int64_t n) {
  switch (op) {
    case ReduceOp::Sum: return s;
    case ReduceOp::Mean: return s / static_cast<double>(n);
    case ReduceOp::Max: return m;
    case ReduceOp::LogSumExp: return isfinite(m) ? m + std::log(s) : m;
  }
  return s;
}

__device__ __forceinline__ bool needs_max(ReduceOp op) { return op == ReduceOp::Max || op == ReduceOp::LogSumExp; }

// Block-wide sum/max of one double per thread (blockDim.x a multiple of 32, at most 1024); all threads get it.
template <bool kMax>
__device__ double block_reduce(double v) {
  __shared__ double shared[32];
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = blockDim.x >> 5;
  for (int o = 16; o > 0; o >>= 1) {
    const double w = __shfl_down_sync(0xffffffffu, v, o);
    v = kMax ? fmax(v, w) : v + w;
  }
  __syncthreads();  // `shared` may still be read from a previous call
  if (lane == 0) shared[warp] = v;
  __syncthreads();
  if (warp == 0) {
    v = lane < warps ? shared[lane] : (kMax ? -INFINITY : 0.0);
    for (int o = 16; o > 0; o >>= 1) {
      const double w = __shfl_down_sync(0xffffffffu, v, o);
      v = kMax ? fmax(v, w) : v + w;
    }
    if (lane == 0) shared[0] = v;
  }
  __syncthreads();
  return shared[0];
}

// Partial max or sum of x[begin, end) for one row, reduced over the block.
template <typename T>
__device__ double row_part(bool max_pass, bool lse, const T* __restrict__ r, int64_t begin, int64_t end, double m) {
  double acc = max_pass ? -INFINITY : 0.0;
  for (int64_t j = begin + threadIdx.x; j < end; j += blockDim.x) {
    const double v = static_cast<double>(r[j]);
    if (max_pass) acc = fmax(acc, v);
    else acc += lse ? std::exp(v - m) : v;
  }
  return max_pass ? block_reduce<true>(acc) : block_reduce<false>(acc);
}

// inner == 1 and rows short enough for one block each: the whole reduction in one kernel.
template <typename T>
__global__ void rows_kernel(ReduceOp op, const T* __restrict__ x, int64_t outer, int64_t n, T* __restrict__ y) {
  for (int64_t o = blockIdx.x; o < outer; o += gridDim.x) {
    const T* r = x + o * n;
    const double m = needs_max(op) ? row_part(true, false, r, 0, n, 0.0) : 0.0;
    double s = 0.0;
    if (op != ReduceOp::Max && (op != ReduceOp::LogSumExp || isfinite(m)))
      s = row_part(false, op == ReduceOp::LogSumExp, r, 0, n, m);
    if (threadIdx.x == 0) y[o] = static_cast<T>(finish(op, m, s, n));
  }
}

// inner == 1 and short rows (n <= kWarpRowMax, e.g. per-walker sums over D = 2): one warp per row, so a block
// of 256 threads finishes 8 rows instead of idling 250 threads on one.
constexpr int64_t kWarpRowMax = 1024;
__device__ __forceinline__ double warp_reduce(bool is_max, double v) {
  for (int o = 16; o > 0; o >>= 1) {
    const double w = __shfl_xor_sync(0xffffffffu, v, o);
    v = is_max ? fmax(v, w) : v + w;
  }
  return v;  // every lane holds the result
}

template <typename T>
__global__ void rows_warp_kernel(ReduceOp op, const T* __restrict__ x, int64_t outer, int64_t n, T* __restrict__ y) {
  const int lane = threadIdx.x & 31;
  const int64_t warps = (int64_t(blockDim.x) >> 5) * gridDim.x;
  for (int64_t o = (blockIdx.x * int64_t(blockDim.x) + threadIdx.x) >> 5; o < outer; o += warps) {
    const T* r = x + o * n;
    double m = 0.0, s = 0.0;
    if (needs_max(op)) {
      double acc = -INFINITY;
      for (int64_t j = lane; j < n; j += 32) acc = fmax(acc, static_cast<double>(r[j]));
      m = warp_reduce(true, acc);
    }
    if (op != ReduceOp::Max && (op != ReduceOp::LogSumExp || isfinite(m))) {
      double acc = 0.0;
      for (int64_t j = lane; j < n; j += 32) {
        const double v = static_cast<double>(r[j]);
        acc += op == ReduceOp::LogSumExp ? std::exp(v - m) : v;
      }
      s = warp_reduce(false, acc);
    }
    if (lane == 0) y[o] = static_cast<T>(finish(op, m, s, n));
  }
}

// Long rows: block (c, o) reduces chunk c of row o into part[o * chunks + c]; row_combine finishes the row.
template <typename T>
__global__ void rows_partial_kernel(bool max_pass, bool lse, const T* __restrict__ x, int64_t n, int64_t chunk,
                                    const double* __restrict__ m, double* __restrict__ part) {
  const int64_t o = blockIdx.y, c = blockIdx.x;
  const int64_t begin = c * chunk, end = begin + chunk < n ? begin + chunk : n;
  const double mo = lse ? m[o] : 0.0;
  double v = max_pass ? -INFINITY : 0.0;
  if (max_pass || !lse || isfinite(mo)) v = row_part(max_pass, lse, x + o * n, begin, end, mo);
  if (threadIdx.x == 0) part[o * gridDim.x + c] = v;
}

// One block per row combines its chunk partials: into m (max pass) or into y (sum pass, or Max's only pass).
template <typename T>
__global__ void rows_combine_kernel(ReduceOp op, bool max_pass, const double* __restrict__ part, int64_t chunks,
                                    int64_t n, double* __restrict__ m, T* __restrict__ y) {
  const int64_t o = blockIdx.x;
  const double* p = part + o * chunks;
  double acc = max_pass ? -INFINITY : 0.0;
  for (int64_t c = threadIdx.x; c < chunks; c += blockDim.x) acc = max_pass ? fmax(acc, p[c]) : acc + p[c];
  acc = max_pass ? block_reduce<true>(acc) : block_reduce<false>(acc);
  if (threadIdx.x != 0) return;
  if (max_pass) {
    m[o] = acc;
    if (op == ReduceOp::Max) y[o] = static_cast<T>(acc);
  } else {
    y[o] = static_cast<T>(finish(op, op == ReduceOp::LogSumExp ? m[o] : 0.0, acc, n));
  }
}

// inner > 1: block (32 x kColRows) owns 32 adjacent columns of one o; threadIdx.y strides over n, so a warp reads
// 32 consecutive values (coalesced); partials meet in shared memory.
constexpr int kColRows = 16;
template <typename T>
__global__ void columns_kernel(ReduceOp op, const T* __restrict__ x, int64_t outer, int64_t n, int64_t inner,
                               T* __restrict__ y) {
  __shared__ double sh[kColRows][33];
  const int tx = threadIdx.x, ty = threadIdx.y;
  const int64_t k = blockIdx.x * 32 + tx;
  const bool lse = op == ReduceOp::LogSumExp;
  for (int64_t o = blockIdx.y; o < outer; o += gridDim.y) {
    const T* base = x + o * n * inner + k;
    double m = 0.0;
    if (needs_max(op)) {
      double acc = -INFINITY;
      if (k < inner)
        for (int64_t j = ty; j < n; j += kColRows) acc = fmax(acc, static_cast<double>(base[j * inner]));
      sh[ty][tx] = acc;
      __syncthreads();
      m = -INFINITY;
      for (int r = 0; r < kColRows; ++r) m = fmax(m, sh[r][tx]);
      __syncthreads();
    }
    double s = 0.0;
    if (op != ReduceOp::Max) {
      double acc = 0.0;
      if (k < inner && (!lse || isfinite(m)))
        for (int64_t j = ty; j < n; j += kColRows) {
          const double v = static_cast<double>(base[j * inner]);
          acc += lse ? std::exp(v - m) : v;
        }
      sh[ty][tx] = acc;
      __syncthreads();
      for (int r = 0; r < kColRows; ++r) s += sh[r][tx];
      __syncthreads();
    }
    if (ty == 0 && k < inner) y[o * inner + k] = static_cast<T>(finish(op, m, s, n));
  }
}

// sum_to's general case: each output element walks the reduced dims of g. Dims of g of size 1 are dropped.
constexpr int kMaxDims = 8;
struct SumToPlan {
  int kept_rank = 0, red_rank = 0;
  int64_t kept_size[kMaxDims] = {}, kept_stride[kMaxDims] = {};  // out index -> g offset
  int64_t red_size[kMaxDims] = {}, red_stride[kMaxDims] = {};
  int64_t red_count = 1;
};

template <typename T>
__global__ void sum_to_kernel(const T* __restrict__ g, T* __restrict__ out, int64_t n_out, SumToPlan p) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n_out; i += int64_t(blockDim.x) * gridDim.x) {
    int64_t rem = i, base = 0;
    for (int k = p.kept_rank - 1; k >= 0; --k) {
      base += (rem % p.kept_size[k]) * p.kept_stride[k];
      rem /= p.kept_size[k];
    }
    double acc = 0.0;
    for (int64_t r = 0; r < p.red_count; ++r) {
      int64_t rr = r, off = base;
      for (int k = p.red_rank - 1; k >= 0; --k) {
        off += (rr % p.red_size[k]) * p.red_stride[k];
        rr /= p.red_size[k];
      }
      acc += static_cast<double>(g[off]);
    }
    out[i] = static_cast<T>(acc);
  }
}

// Rows longer than this are split across blocks (a full reduction of a big vector must fill the GPU).
constexpr int64_t kRowChunk = 1 << 14;

template <typename T>
void reduce_typed(ReduceOp op, const T* x, int64_t outer, int64_t n, int64_t inner, T* y, cudaStream_t s) {
  if (inner > 1) {
    const int64_t col_blocks = (inner + 31) / 32;
    JEBM_CHECK(col_blocks <= INT32_MAX, "reduce (cuda): inner size " << inner << " too large");
    const dim3 grid(static_cast<unsigned>(col_blocks), static_cast<unsigned>(outer < 65535 ? outer : 65535));
    columns_kernel<<<grid, dim3(32, kColRows), 0, s>>>(op, x, outer, n, inner, y);
    CUDA_CHECK_LAUNCH("reduce columns_kernel");
    return;
  }
  if (n <= kWarpRowMax) {
    rows_warp_kernel<<<grid_for(outer * 32), kBlock, 0, s>>>(op, x, outer, n, y);
    CUDA_CHECK_LAUNCH("reduce rows_warp_kernel");
    return;
  }
  const int64_t chunks = (n + kRowChunk - 1) / kRowChunk;
  if (chunks <= 1 || outer > 65535) {
    rows_kernel<<<static_cast<unsigned>(std::min<int64_t>(outer, 65535)), kBlock, 0, s>>>(op, x, outer, n, y);
    CUDA_CHECK_LAUNCH("reduce rows_kernel");
    return;
  }
  // Long rows: [max pass ->] sum pass, each a partial kernel over (chunk, row) then a per-row combine.
  Workspace part(static_cast<size_t>(outer * chunks) * sizeof(double));
  Workspace m(static_cast<size_t>(outer) * sizeof(double));
  double* pp = static_cast<double*>(part.get());
  double* mp = static_cast<double*>(m.get());
  const dim3 grid(static_cast<unsigned>(chunks), static_cast<unsigned>(outer));
  if (op == ReduceOp::Max || op == ReduceOp::LogSumExp) {
    rows_partial_kernel<<<grid, kBlock, 0, s>>>(true, false, x, n, kRowChunk, mp, pp);
    rows_combine_kernel<<<static_cast<unsigned>(outer), kBlock, 0, s>>>(op, true, pp, chunks, n, mp, y);
    CUDA_CHECK_LAUNCH("reduce max pass");
  }
  if (op != ReduceOp::Max) {
    rows_partial_kernel<<<grid, kBlock, 0, s>>>(false, op == ReduceOp::LogSumExp, x, n, kRowChunk, mp, pp);
    rows_combine_kernel<<<static_cast<unsigned>(outer), kBlock, 0, s>>>(op, false, pp, chunks, n, mp, y);
    CUDA_CHECK_LAUNCH("reduce sum pass");
  }
}

}  // namespace

void reduce(ReduceOp op, const Tensor& x, int64_t outer, int64_t n, int64_t inner, Tensor& y) {
  if (outer * inner == 0) return;
  cudaStream_t s = stream(x);
  JEBM_DISPATCH_FLOAT(x.dtype(), "reduce (cuda)",
                      [&] { reduce_typed(op, x.device_data<scalar_t>(), outer, n, inner, y.device_data<scalar_t>(), s); });
}

void sum_to(const Tensor& g, Tensor& out) {
  if (out.numel() == 0) return;
  cudaStream_t s = stream(g);
  const Shape& gs = g.shape();
  const size_t r = gs.size(), off = r - out.shape().size();
  Shape os(r, 1);  // out's shape right-aligned to g's rank
  for (size_t k = 0; k < out.shape().size(); ++k) os[off + k] = out.shape()[k];
  JEBM_DISPATCH_FLOAT(g.dtype(), "sum_to (cuda)", [&] {
    const scalar_t* gp = g.device_data<scalar_t>();
    scalar_t* op = out.device_data<scalar_t>();
    // The same two one-reduction cases as the CPU: broadcast over leading dims ([N, D] -> [D]) or over
    // trailing dims ([N, D] -> [N, 1]).
    size_t lead = 0;
    while (lead < r && os[lead] == 1) ++lead;
    if (std::equal(os.begin() + static_cast<std::ptrdiff_t>(lead), os.end(), gs.begin() + static_cast<std::ptrdiff_t>(lead))) {
      const int64_t inner = out.numel();
      reduce_typed(ReduceOp::Sum, gp, 1, g.numel() / inner, inner, op, s);
      return;
    }
    size_t trail = r;
    while (trail > 0 && os[trail - 1] == 1) --trail;
    if (std::equal(os.begin(), os.begin() + static_cast<std::ptrdiff_t>(trail), gs.begin())) {
      reduce_typed(ReduceOp::Sum, gp, out.numel(), g.numel() / out.numel(), int64_t{1}, op, s);
      return;
    }
    SumToPlan p;
    int64_t stride = 1;
    std::vector<int> kept, red;
    std::vector<int64_t> gstride(r);
    for (size_t k = r; k-- > 0;) {
      gstride[k] = stride;
      stride *= gs[k];
    }
    for (size_t k = 0; k < r; ++k) {
      if (gs[k] == 1) continue;
      JEBM_CHECK(p.kept_rank < kMaxDims && p.red_rank < kMaxDims,
                 "sum_to (cuda): " << shape_str(gs) << " -> " << shape_str(out.shape()) << " has too many dims");
      if (os[k] == 1) {
        p.red_size[p.red_rank] = gs[k];
        p.red_stride[p.red_rank++] = gstride[k];
        p.red_count *= gs[k];
      } else {
        p.kept_size[p.kept_rank] = gs[k];
        p.kept_stride[p.kept_rank++] = gstride[k];
      }
    }
    sum_to_kernel<<<grid_for(out.numel()), kBlock, 0, s>>>(gp, op, out.numel(), p);
    CUDA_CHECK_LAUNCH("sum_to_kernel");
  });
}

}  // namespace jebm::cuda
