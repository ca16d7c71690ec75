// CUDA conv2d (NCHW) through cuDNN's convolution API: forward (+ bias via cudnnAddTensor), backward-data,
// backward-filter, and backward-bias (a small kernel, summed in double like the CPU). Descriptors are built once
// per (device, dtype, shape, stride, padding) and kept; each direction's algorithm is picked once from
// cudnnGet*Algorithm_v7's ranked list: the fastest that is deterministic and, for float32 unless JEBM_ALLOW_TF32=1,
// uses no tensor-op (TF32) math, so results match the CPU's im2col + GEMM (runtime/cpu/conv.cpp) to FP32
// summation-order rounding. Workspaces come from the caching allocator. cuDNN 9 still ships this (legacy) API;
// moving to the graph API would change only this file. Tested by tests/test_cuda_ops.cpp.
#include <climits>
#include <cstdint>
#include <cstring>
#include <memory>
#include <mutex>
#include <unordered_map>

#include "runtime/backend.hpp"
#include "runtime/cuda/context.hpp"

namespace jebm::cuda {
namespace {

struct ConvKey {
  int device, dtype;
  int64_t n, c, h, w, f, kh, kw, stride, pad;
  bool operator==(const ConvKey& o) const { return std::memcmp(this, &o, sizeof(ConvKey)) == 0; }
};
struct ConvKeyHash {
  size_t operator()(const ConvKey& k) const {
    const int64_t v[] = {k.device, k.dtype, k.n, k.c, k.h, k.w, k.f, k.kh, k.kw, k.stride, k.pad};
    size_t h = 0;
    for (int64_t x : v) h = h * 1000003u ^ std::hash<int64_t>()(x);
    return h;
  }
};

struct Algo {
  bool chosen = false;
  int algo = 0;  // the direction's cudnnConvolution*Algo_t
  cudnnMathType_t math = CUDNN_FMA_MATH;
  size_t workspace = 0;
};

// Descriptors live as long as the process (their shapes recur every iteration).
struct ConvPlan {
  cudnnDataType_t dt;
  cudnnTensorDescriptor_t x = nullptr, y = nullptr, bias = nullptr;
  cudnnFilterDescriptor_t w = nullptr;
  cudnnConvolutionDescriptor_t conv = nullptr;
  Algo fwd, bwd_data, bwd_filter;
};

int to_int(int64_t v, const char* what) {
  JEBM_CHECK(v >= 0 && v <= INT_MAX, "conv2d (cuda): " << what << " = " << v << " exceeds cuDNN's int range");
  return static_cast<int>(v);
}

ConvKey key_of(const Shape& x, const Shape& w, const Conv2dParams& p, DType dt, int device) {
  ConvKey k;
  std::memset(&k, 0, sizeof k);  // padding bytes take part in memcmp
  k.device = device;
  k.dtype = static_cast<int>(dt);
  k.n = x[0]; k.c = x[1]; k.h = x[2]; k.w = x[3];
  k.f = w[0]; k.kh = w[2]; k.kw = w[3];
  k.stride = p.stride; k.pad = p.padding;
  return k;
}

ConvPlan& plan_for(const Shape& x, const Shape& w, const Shape& y, const Conv2dParams& p, DType dtype, int device) {
  static std::mutex mu;
  static auto* plans = new std::unordered_map<ConvKey, std::unique_ptr<ConvPlan>, ConvKeyHash>;  // leaked on purpose
  const ConvKey key = key_of(x, w, p, dtype, device);
  std::lock_guard<std::mutex> lock(mu);
  auto it = plans->find(key);
  if (it != plans->end()) return *it->second;
  auto pl = std::make_unique<ConvPlan>();
  pl->dt = dtype == DType::Float64 ? CUDNN_DATA_DOUBLE : CUDNN_DATA_FLOAT;
  CUDNN_CHECK(cudnnCreateTensorDescriptor(&pl->x));
  CUDNN_CHECK(cudnnCreateTensorDescriptor(&pl->y));
  CUDNN_CHECK(cudnnCreateTensorDescriptor(&pl->bias));
  CUDNN_CHECK(cudnnCreateFilterDescriptor(&pl->w));
  CUDNN_CHECK(cudnnCreateConvolutionDescriptor(&pl->conv));
  CUDNN_CHECK(cudnnSetTensor4dDescriptor(pl->x, CUDNN_TENSOR_NCHW, pl->dt, to_int(x[0], "N"), to_int(x[1], "C"),
                                         to_int(x[2], "H"), to_int(x[3], "W")));
  CUDNN_CHECK(cudnnSetFilter4dDescriptor(pl->w, pl->dt, CUDNN_TENSOR_NCHW, to_int(w[0], "F"), to_int(w[1], "C"),
                                         to_int(w[2], "KH"), to_int(w[3], "KW")));
  CUDNN_CHECK(cudnnSetConvolution2dDescriptor(pl->conv, to_int(p.padding, "padding"), to_int(p.padding, "padding"),
                                              to_int(p.stride, "stride"), to_int(p.stride, "stride"), 1, 1,
                                              CUDNN_CROSS_CORRELATION, pl->dt));
  int on, of, oh, ow;
  CUDNN_CHECK(cudnnGetConvolution2dForwardOutputDim(pl->conv, pl->x, pl->w, &on, &of, &oh, &ow));
  JEBM_CHECK(on == y[0] && of == y[1] && oh == y[2] && ow == y[3],
             "conv2d (cuda): cuDNN computes output [" << on << ", " << of << ", " << oh << ", " << ow
                                                      << "] for x " << shape_str(x) << ", w " << shape_str(w)
                                                      << " but the op expects " << shape_str(y));
  CUDNN_CHECK(cudnnSetTensor4dDescriptor(pl->y, CUDNN_TENSOR_NCHW, pl->dt, on, of, oh, ow));
  CUDNN_CHECK(cudnnSetTensor4dDescriptor(pl->bias, CUDNN_TENSOR_NCHW, pl->dt, 1, of, 1, 1));
  CUDNN_CHECK(cudnnSetConvolutionMathType(pl->conv, CUDNN_FMA_MATH));
  ConvPlan& ref = *pl;
  plans->emplace(key, std::move(pl));
  return ref;
}

// Picks the first acceptable entry of cuDNN's ranked list (see the file comment); `fallback` is a deterministic
// FMA algorithm that supports every shape, used if the list has none.
template <typename Perf>
void choose(Algo& a, const Perf* perf, int count, int fallback, bool is_float) {
  const bool tf32_ok = is_float && allow_tf32();
  for (int i = 0; i < count; ++i) {
    const Perf& r = perf[i];
    if (r.status != CUDNN_STATUS_SUCCESS || r.determinism != CUDNN_DETERMINISTIC) continue;
    const bool tensor_op = r.mathType == CUDNN_TENSOR_OP_MATH || r.mathType == CUDNN_TENSOR_OP_MATH_ALLOW_CONVERSION;
    if (tensor_op && !tf32_ok) continue;
    a.algo = static_cast<int>(r.algo);
    a.math = tensor_op ? r.mathType : CUDNN_FMA_MATH;
    a.chosen = true;
    return;
  }
  a.algo = fallback;
  a.math = CUDNN_FMA_MATH;
  a.chosen = true;
}

// alpha/beta must have the data's precision (double for float64), per cuDNN's scaling-parameter rule.
struct Scale {
  float f;
  double d;
  const void* get(cudnnDataType_t dt) const { return dt == CUDNN_DATA_DOUBLE ? static_cast<const void*>(&d) : &f; }
};
const Scale kOne{1.0f, 1.0};
const Scale kZero{0.0f, 0.0};

// grad_y: [N, F, P] -> grad_b[f] = sum over N and P, in double; one block per f.
template <typename T>
__global__ void backward_bias_kernel(const T* __restrict__ gy, T* __restrict__ gb, int64_t n, int64_t f, int64_t p) {
  __shared__ double sh[kBlock];
  for (int64_t j = blockIdx.x; j < f; j += gridDim.x) {
    double s = 0.0;
    for (int64_t t = threadIdx.x; t < n * p; t += blockDim.x) {
      const int64_t i = t / p, k = t - i * p;
      s += static_cast<double>(gy[(i * f + j) * p + k]);
    }
    sh[threadIdx.x] = s;
    __syncthreads();
    for (int w = blockDim.x / 2; w > 0; w >>= 1) {
      if (static_cast<int>(threadIdx.x) < w) sh[threadIdx.x] += sh[threadIdx.x + w];
      __syncthreads();
    }
    if (threadIdx.x == 0) gb[j] = static_cast<T>(sh[0]);
    __syncthreads();
  }
}

}  // namespace

void conv2d_forward(const Tensor& x, const Tensor& w, const Tensor& bias, const Conv2dParams& p, Tensor& y) {
  if (y.numel() == 0) return;
  Context& ctx = context(x);
  cudnnHandle_t h = cudnn_handle(ctx);
  ConvPlan& pl = plan_for(x.shape(), w.shape(), y.shape(), p, x.dtype(), ctx.device);
  if (!pl.fwd.chosen) {
    cudnnConvolutionFwdAlgoPerf_t perf[CUDNN_CONVOLUTION_FWD_ALGO_COUNT];
    int count = 0;
    CUDNN_CHECK(cudnnGetConvolutionForwardAlgorithm_v7(h, pl.x, pl.w, pl.conv, pl.y, CUDNN_CONVOLUTION_FWD_ALGO_COUNT,
                                                       &count, perf));
    choose(pl.fwd, perf, count, CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_GEMM, x.dtype() == DType::Float32);
    CUDNN_CHECK(cudnnSetConvolutionMathType(pl.conv, pl.fwd.math));
    CUDNN_CHECK(cudnnGetConvolutionForwardWorkspaceSize(h, pl.x, pl.w, pl.conv, pl.y,
                                                        static_cast<cudnnConvolutionFwdAlgo_t>(pl.fwd.algo),
                                                        &pl.fwd.workspace));
  }
  CUDNN_CHECK(cudnnSetConvolutionMathType(pl.conv, pl.fwd.math));
  Workspace ws(pl.fwd.workspace);
  CUDNN_CHECK(cudnnConvolutionForward(h, kOne.get(pl.dt), pl.x, x.raw_data(), pl.w, w.raw_data(), pl.conv,
                                      static_cast<cudnnConvolutionFwdAlgo_t>(pl.fwd.algo), ws.get(), ws.size(),
                                      kZero.get(pl.dt), pl.y, y.raw_data()));
  if (bias.defined())
    CUDNN_CHECK(cudnnAddTensor(h, kOne.get(pl.dt), pl.bias, bias.raw_data(), kOne.get(pl.dt), pl.y, y.raw_data()));
}

void conv2d_backward_data(const Tensor& grad_y, const Tensor& w, const Conv2dParams& p, Tensor& grad_x) {
  if (grad_x.numel() == 0) return;
  if (grad_y.numel() == 0) {  // e.g. F == 0: nothing flows back
    fill(grad_x, 0.0);
    return;
  }
  Context& ctx = context(grad_y);
  cudnnHandle_t h = cudnn_handle(ctx);
  ConvPlan& pl = plan_for(grad_x.shape(), w.shape(), grad_y.shape(), p, grad_y.dtype(), ctx.device);
  if (!pl.bwd_data.chosen) {
    cudnnConvolutionBwdDataAlgoPerf_t perf[CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT];
    int count = 0;
    CUDNN_CHECK(cudnnGetConvolutionBackwardDataAlgorithm_v7(h, pl.w, pl.y, pl.conv, pl.x,
                                                            CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT, &count, perf));
    choose(pl.bwd_data, perf, count, CUDNN_CONVOLUTION_BWD_DATA_ALGO_1, grad_y.dtype() == DType::Float32);
    CUDNN_CHECK(cudnnSetConvolutionMathType(pl.conv, pl.bwd_data.math));
    CUDNN_CHECK(cudnnGetConvolutionBackwardDataWorkspaceSize(
        h, pl.w, pl.y, pl.conv, pl.x, static_cast<cudnnConvolutionBwdDataAlgo_t>(pl.bwd_data.algo),
        &pl.bwd_data.workspace));
  }
  CUDNN_CHECK(cudnnSetConvolutionMathType(pl.conv, pl.bwd_data.math));
  Workspace ws(pl.bwd_data.workspace);
  CUDNN_CHECK(cudnnConvolutionBackwardData(h, kOne.get(pl.dt), pl.w, w.raw_data(), pl.y, grad_y.raw_data(), pl.conv,
                                           static_cast<cudnnConvolutionBwdDataAlgo_t>(pl.bwd_data.algo), ws.get(),
                                           ws.size(), kZero.get(pl.dt), pl.x, grad_x.raw_data()));
}

void conv2d_backward_filter(const Tensor& grad_y, const Tensor& x, const Conv2dParams& p, Tensor& grad_w) {
  if (grad_w.numel() == 0) return;
  if (grad_y.numel() == 0) {  // N == 0: the gradient is an empty sum
    fill(grad_w, 0.0);
    return;
  }
  Context& ctx = context(grad_y);
  cudnnHandle_t h = cudnn_handle(ctx);
  ConvPlan& pl = plan_for(x.shape(), grad_w.shape(), grad_y.shape(), p, grad_y.dtype(), ctx.device);
  if (!pl.bwd_filter.chosen) {
    cudnnConvolutionBwdFilterAlgoPerf_t perf[CUDNN_CONVOLUTION_BWD_FILTER_ALGO_COUNT];
    int count = 0;
    CUDNN_CHECK(cudnnGetConvolutionBackwardFilterAlgorithm_v7(h, pl.x, pl.y, pl.conv, pl.w,
                                                              CUDNN_CONVOLUTION_BWD_FILTER_ALGO_COUNT, &count, perf));
    choose(pl.bwd_filter, perf, count, CUDNN_CONVOLUTION_BWD_FILTER_ALGO_1, grad_y.dtype() == DType::Float32);
    CUDNN_CHECK(cudnnSetConvolutionMathType(pl.conv, pl.bwd_filter.math));
    CUDNN_CHECK(cudnnGetConvolutionBackwardFilterWorkspaceSize(
        h, pl.x, pl.y, pl.conv, pl.w, static_cast<cudnnConvolutionBwdFilterAlgo_t>(pl.bwd_filter.algo),
        &pl.bwd_filter.workspace));
  }
  CUDNN_CHECK(cudnnSetConvolutionMathType(pl.conv, pl.bwd_filter.math));
  Workspace ws(pl.bwd_filter.workspace);
  CUDNN_CHECK(cudnnConvolutionBackwardFilter(h, kOne.get(pl.dt), pl.x, x.raw_data(), pl.y, grad_y.raw_data(),
                                             pl.conv, static_cast<cudnnConvolutionBwdFilterAlgo_t>(pl.bwd_filter.algo),
                                             ws.get(), ws.size(), kZero.get(pl.dt), pl.w, grad_w.raw_data()));
}

void conv2d_backward_bias(const Tensor& grad_y, Tensor& grad_b) {
  const int64_t n = grad_y.size(0), f = grad_y.size(1), p = grad_y.size(2) * grad_y.size(3);
  if (f == 0) return;
  cudaStream_t s = stream(grad_y);
  JEBM_DISPATCH_FLOAT(grad_y.dtype(), "conv2d_backward_bias (cuda)", [&] {
    backward_bias_kernel<<<static_cast<unsigned>(f < 65535 ? f : 65535), kBlock, 0, s>>>(
        grad_y.data<scalar_t>(), grad_b.data<scalar_t>(), n, f, p);
  });
  CUDA_CHECK_LAUNCH("backward_bias_kernel");
}

}  // namespace jebm::cuda
