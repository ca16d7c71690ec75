// CUDA conv2d (NCHW) through cuDNN's convolution API: forward (+ bias via cudnnAddTensor), backward-data,
// backward-filter, and backward-bias (a small kernel, summed in double like the CPU). CPU reference:
// runtime/cpu/conv.cpp (im2col + GEMM). Tested by tests/test_cuda_ops.cpp (CUDA vs CPU in strict FP32/FP64).
//
// Per (device, dtype, shape, stride, padding) the tensor/filter descriptors are built once and kept, and each
// direction (forward, backward-data, backward-filter) has its own convolution descriptor whose math type is set
// once, so a call does no descriptor work, no host round trip and no synchronisation: it takes the cached plan,
// a workspace from the caching allocator, and launches. The algorithm of each direction is chosen once, on its
// first call (this first call synchronises, since timing needs it), by these environment switches:
//   JEBM_CUDNN_BENCHMARK     1 (default): time the candidates with cudnnFind*AlgorithmEx on the call's own
//                            buffers and a workspace of at most kFindWorkspaceLimit (like PyTorch's
//                            cudnn.benchmark=True); falls back to the heuristic if Find fails.
//                            0: cuDNN's heuristic ranking (cudnnGet*Algorithm_v7), no timing.
//   JEBM_CUDNN_DETERMINISTIC 0 (default): any candidate, including the backward algorithms that accumulate with
//                            atomics (results vary in the last bits from run to run, like PyTorch's default).
//                            1: deterministic algorithms only. With JEBM_CUDNN_BENCHMARK=0 too, the choice itself
//                            no longer depends on timing, so runs are bitwise repeatable on one GPU + cuDNN.
//   JEBM_ALLOW_TF32          0 (default): float32 uses plain FP32 FMA math (descriptor CUDNN_FMA_MATH) and only
//                            the GEMM/direct algorithm families, whose results differ from the CPU's only by
//                            summation order (FFT and Winograd transforms add their own rounding error).
//                            1: float32 may use TF32 tensor cores (CUDNN_DEFAULT_MATH, every algorithm family),
//                            ~1e-3 relative error, like PyTorch's allow_tf32; cuBLAS follows the same switch
//                            (runtime/cuda/context.cu). float64 is always FMA math.
//   JEBM_CUDNN_VERBOSE       1: print each choice to stderr (shape, direction, algorithm, math, time, workspace).
// CUDNN_TENSOR_OP_MATH_ALLOW_CONVERSION is never used: for float32 data it permits FP16 down-conversion.
// cuDNN 9 still ships this (legacy) API; moving to the graph API would change only this file.
#include <atomic>
#include <climits>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <iostream>
#include <memory>
#include <mutex>
#include <sstream>
#include <string>
#include <unordered_map>

#include "runtime/backend.hpp"
#include "runtime/cuda/context.hpp"

namespace jebm::cuda {
namespace {

// Find may try algorithms that need up to this much scratch; more is skipped (PyTorch caps at what it can get).
constexpr size_t kFindWorkspaceLimit = size_t(256) << 20;

bool env_flag(const char* name, bool fallback) {
  const char* e = std::getenv(name);
  if (!e || !*e) return fallback;
  return std::string(e) != "0";
}
bool cudnn_benchmark() {
  static const bool on = env_flag("JEBM_CUDNN_BENCHMARK", true);
  return on;
}
bool cudnn_deterministic() {
  static const bool on = env_flag("JEBM_CUDNN_DETERMINISTIC", false);
  return on;
}
bool cudnn_verbose() {
  static const bool on = env_flag("JEBM_CUDNN_VERBOSE", false);
  return on;
}

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

enum class Dir { Forward, BackwardData, BackwardFilter };
const char* dir_name(Dir d) {
  return d == Dir::Forward ? "forward" : d == Dir::BackwardData ? "backward-data" : "backward-filter";
}

// One direction's convolution descriptor (its own, so its math type is set once) and its chosen algorithm.
struct Direction {
  cudnnConvolutionDescriptor_t conv = nullptr;
  std::atomic<bool> chosen{false};  // set (release) after algo and workspace are final
  int algo = 0;                     // the direction's cudnnConvolution*Algo_t
  size_t workspace = 0;
};

// Descriptors live as long as the process (their shapes recur every iteration).
struct ConvPlan {
  cudnnDataType_t dt;
  cudnnTensorDescriptor_t x = nullptr, y = nullptr, bias = nullptr;
  cudnnFilterDescriptor_t w = nullptr;
  Direction fwd, bwd_data, bwd_filter;
  std::string what;  // "x [..] w [..] stride s pad p float32", for messages
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

// The math type a direction's descriptor starts with: FMA unless TF32 is allowed for float32 data.
bool tf32_for(cudnnDataType_t dt) { return dt == CUDNN_DATA_FLOAT && allow_tf32(); }
cudnnMathType_t initial_math(cudnnDataType_t dt) { return tf32_for(dt) ? CUDNN_DEFAULT_MATH : CUDNN_FMA_MATH; }

ConvPlan& plan_for(const Shape& x, const Shape& w, const Shape& y, const Conv2dParams& p, DType dtype, int device) {
  static std::mutex mu;
  static auto* plans = new std::unordered_map<ConvKey, std::unique_ptr<ConvPlan>, ConvKeyHash>;  // leaked on purpose
  const ConvKey key = key_of(x, w, p, dtype, device);
  std::lock_guard<std::mutex> lock(mu);
  auto it = plans->find(key);
  if (it != plans->end()) return *it->second;
  auto pl = std::make_unique<ConvPlan>();
  pl->dt = dtype == DType::Float64 ? CUDNN_DATA_DOUBLE : CUDNN_DATA_FLOAT;
  std::ostringstream what;
  what << "x " << shape_str(x) << " w " << shape_str(w) << " stride " << p.stride << " pad " << p.padding << " "
       << dtype_name(dtype);
  pl->what = what.str();
  CUDNN_CHECK(cudnnCreateTensorDescriptor(&pl->x));
  CUDNN_CHECK(cudnnCreateTensorDescriptor(&pl->y));
  CUDNN_CHECK(cudnnCreateTensorDescriptor(&pl->bias));
  CUDNN_CHECK(cudnnCreateFilterDescriptor(&pl->w));
  CUDNN_CHECK(cudnnSetTensor4dDescriptor(pl->x, CUDNN_TENSOR_NCHW, pl->dt, to_int(x[0], "N"), to_int(x[1], "C"),
                                         to_int(x[2], "H"), to_int(x[3], "W")));
  CUDNN_CHECK(cudnnSetFilter4dDescriptor(pl->w, pl->dt, CUDNN_TENSOR_NCHW, to_int(w[0], "F"), to_int(w[1], "C"),
                                         to_int(w[2], "KH"), to_int(w[3], "KW")));
  for (Direction* d : {&pl->fwd, &pl->bwd_data, &pl->bwd_filter}) {
    CUDNN_CHECK(cudnnCreateConvolutionDescriptor(&d->conv));
    CUDNN_CHECK(cudnnSetConvolution2dDescriptor(d->conv, to_int(p.padding, "padding"), to_int(p.padding, "padding"),
                                                to_int(p.stride, "stride"), to_int(p.stride, "stride"), 1, 1,
                                                CUDNN_CROSS_CORRELATION, pl->dt));
    CUDNN_CHECK(cudnnSetConvolutionMathType(d->conv, initial_math(pl->dt)));
  }
  int on, of, oh, ow;
  CUDNN_CHECK(cudnnGetConvolution2dForwardOutputDim(pl->fwd.conv, pl->x, pl->w, &on, &of, &oh, &ow));
  JEBM_CHECK(on == y[0] && of == y[1] && oh == y[2] && ow == y[3],
             "conv2d (cuda): cuDNN computes output [" << on << ", " << of << ", " << oh << ", " << ow
                                                      << "] for x " << shape_str(x) << ", w " << shape_str(w)
                                                      << " but the op expects " << shape_str(y));
  CUDNN_CHECK(cudnnSetTensor4dDescriptor(pl->y, CUDNN_TENSOR_NCHW, pl->dt, on, of, oh, ow));
  CUDNN_CHECK(cudnnSetTensor4dDescriptor(pl->bias, CUDNN_TENSOR_NCHW, pl->dt, 1, of, 1, 1));
  ConvPlan& ref = *pl;
  plans->emplace(key, std::move(pl));
  return ref;
}

// The GEMM and direct families compute each output as a plain dot product (in some order); FFT and Winograd
// go through transforms whose rounding error is not bounded by the summation-order argument the tests use.
bool summation_only(Dir d, int algo) {
  switch (d) {
    case Dir::Forward:
      return algo == CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_GEMM || algo == CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_PRECOMP_GEMM ||
             algo == CUDNN_CONVOLUTION_FWD_ALGO_GEMM || algo == CUDNN_CONVOLUTION_FWD_ALGO_DIRECT;
    case Dir::BackwardData:
      return algo == CUDNN_CONVOLUTION_BWD_DATA_ALGO_0 || algo == CUDNN_CONVOLUTION_BWD_DATA_ALGO_1;
    case Dir::BackwardFilter:
      return algo == CUDNN_CONVOLUTION_BWD_FILTER_ALGO_0 || algo == CUDNN_CONVOLUTION_BWD_FILTER_ALGO_1 ||
             algo == CUDNN_CONVOLUTION_BWD_FILTER_ALGO_3;
  }
  return false;
}

const char* algo_name(Dir d, int a) {
  static const char* const fwd[] = {"IMPLICIT_GEMM", "IMPLICIT_PRECOMP_GEMM", "GEMM", "DIRECT",
                                    "FFT", "FFT_TILING", "WINOGRAD", "WINOGRAD_NONFUSED"};
  static const char* const bwd_data[] = {"ALGO_0", "ALGO_1", "FFT", "FFT_TILING", "WINOGRAD", "WINOGRAD_NONFUSED"};
  static const char* const bwd_filter[] = {"ALGO_0", "ALGO_1", "FFT", "ALGO_3", "WINOGRAD", "WINOGRAD_NONFUSED",
                                           "FFT_TILING"};
  if (a < 0) return "?";
  switch (d) {
    case Dir::Forward: return a < 8 ? fwd[a] : "?";
    case Dir::BackwardData: return a < 6 ? bwd_data[a] : "?";
    case Dir::BackwardFilter: return a < 7 ? bwd_filter[a] : "?";
  }
  return "?";
}

const char* math_name(cudnnMathType_t m) {
  switch (m) {
    case CUDNN_DEFAULT_MATH: return "DEFAULT(TF32 allowed)";
    case CUDNN_TENSOR_OP_MATH: return "TENSOR_OP";
    case CUDNN_TENSOR_OP_MATH_ALLOW_CONVERSION: return "TENSOR_OP_ALLOW_CONVERSION";
    case CUDNN_FMA_MATH: return "FMA";
  }
  return "?";
}

template <typename Perf>
bool acceptable(const Perf& r, Dir d, bool tf32) {
  if (r.status != CUDNN_STATUS_SUCCESS) return false;
  if (cudnn_deterministic() && r.determinism != CUDNN_DETERMINISTIC) return false;
  if (r.mathType == CUDNN_TENSOR_OP_MATH_ALLOW_CONVERSION) return false;  // FP16 down-conversion of float32 data
  if (tf32) return true;
  const bool tensor_op = r.mathType == CUDNN_TENSOR_OP_MATH;
  return !tensor_op && summation_only(d, static_cast<int>(r.algo));
}

// What the three directions differ in: the cuDNN calls. Each returns cuDNN's status (checked by the caller).
template <typename Perf>
struct DirCalls {
  std::function<cudnnStatus_t(int cap, int* count, Perf* perf)> heuristic;
  std::function<cudnnStatus_t(int cap, int* count, Perf* perf, void* ws, size_t bytes)> find;
  std::function<cudnnStatus_t(int algo, size_t* bytes)> workspace_size;
};

// Chooses `dir`'s algorithm once (see the file comment) and sets its descriptor's final math type. `fallback`
// is a deterministic FMA algorithm that supports every shape, used when no candidate is acceptable.
template <typename Perf, int kCount>
void choose(cudnnHandle_t h, ConvPlan& pl, Direction& d, Dir dir, int fallback, const DirCalls<Perf>& calls) {
  static std::mutex mu;  // one choice at a time: Find measures, and a concurrent Find would disturb it
  std::lock_guard<std::mutex> lock(mu);
  if (d.chosen.load(std::memory_order_acquire)) return;
  const bool tf32 = tf32_for(pl.dt);
  CUDNN_CHECK(cudnnSetConvolutionMathType(d.conv, initial_math(pl.dt)));

  // Room for each algorithm twice: with TF32 allowed, cuDNN may list an algorithm once per math type.
  constexpr int kCap = 2 * kCount;
  Perf ranked[kCap];
  int count = 0;
  CUDNN_CHECK(calls.heuristic(kCap, &count, ranked));
  const Perf* pick = nullptr;
  for (int i = 0; i < count && !pick; ++i)
    if (acceptable(ranked[i], dir, tf32)) pick = &ranked[i];
  const char* how = "heuristic";
  bool by_find = false;

  Perf timed[kCap];
  if (cudnn_benchmark()) {
    // Enough scratch for every acceptable candidate the heuristic knows of, within the limit.
    size_t need = 0;
    for (int i = 0; i < count; ++i) {
      if (!acceptable(ranked[i], dir, tf32)) continue;
      size_t bytes = ranked[i].memory;
      size_t queried = 0;
      if (calls.workspace_size(static_cast<int>(ranked[i].algo), &queried) == CUDNN_STATUS_SUCCESS && queried > bytes)
        bytes = queried;
      if (bytes <= kFindWorkspaceLimit && bytes > need) need = bytes;
    }
    std::unique_ptr<Workspace> ws;
    try {
      ws = std::make_unique<Workspace>(need);
    } catch (const std::exception& e) {  // out of memory: time what fits in no scratch at all
      if (cudnn_verbose()) std::cerr << "jebm: cudnn find workspace of " << need << " bytes failed: " << e.what() << "\n";
      ws = std::make_unique<Workspace>(0);
    }
    // Find times each candidate on the handle's stream: let the work queued before it finish first, so that the
    // first candidate's time does not include it.
    cudaStream_t stream = nullptr;
    CUDNN_CHECK(cudnnGetStream(h, &stream));
    CUDA_CHECK(cudaStreamSynchronize(stream));
    int found = 0;
    const cudnnStatus_t st = calls.find(kCap, &found, timed, ws->get(), ws->size());
    if (st == CUDNN_STATUS_SUCCESS) {
      for (int i = 0; i < found; ++i) {  // sorted by time, fastest first
        if (acceptable(timed[i], dir, tf32) && timed[i].memory <= ws->size()) {
          pick = &timed[i];
          how = "find";
          by_find = true;
          break;
        }
      }
    } else if (cudnn_verbose()) {
      std::cerr << "jebm: cudnn find failed (" << cudnnGetErrorString(st) << ") for " << pl.what << " "
                << dir_name(dir) << "; using the heuristic\n";
    }
  }

  cudnnMathType_t math = CUDNN_FMA_MATH;
  if (pick) {
    d.algo = static_cast<int>(pick->algo);
    // Strict mode runs FMA math whatever the entry says; TF32 mode runs the math type the entry was timed with.
    if (tf32) math = pick->mathType;
  } else {
    d.algo = fallback;
    how = "fallback";
  }
  CUDNN_CHECK(cudnnSetConvolutionMathType(d.conv, math));
  size_t bytes = 0;
  CUDNN_CHECK(calls.workspace_size(d.algo, &bytes));
  d.workspace = bytes;
  if (pick && pick->memory > d.workspace) d.workspace = pick->memory;
  if (cudnn_verbose()) {
    std::ostringstream line;
    line << "jebm: cudnn " << dir_name(dir) << " " << pl.what << ": " << algo_name(dir, d.algo) << ", "
         << math_name(math) << ", by " << how;
    if (by_find) line << " (" << pick->time << " ms)";
    line << ", workspace " << d.workspace << " B\n";
    std::cerr << line.str();
  }
  d.chosen.store(true, std::memory_order_release);
}

// alpha/beta must have the data's precision (double for float64), per cuDNN's scaling-parameter rule.
struct Scale {
  float f;
  double d;
  const void* get(cudnnDataType_t dt) const { return dt == CUDNN_DATA_DOUBLE ? static_cast<const void*>(&d) : &f; }
};
const Scale kOne{1.0f, 1.0};
const Scale kZero{0.0f, 0.0};

// grad_y: [N, F, P] -> grad_b[f] = sum over N and P, in double; one block per f. Index is int32 when N * P fits
// (64-bit division is emulated, ~3x slower), else int64; the summation order is the same either way.
template <typename T, typename Index>
__global__ void backward_bias_kernel(const T* __restrict__ gy, T* __restrict__ gb, Index n, Index f, Index p) {
  __shared__ double sh[kBlock];
  const Index np = n * p, step = static_cast<Index>(blockDim.x);
  for (Index j = static_cast<Index>(blockIdx.x); j < f; j += static_cast<Index>(gridDim.x)) {
    double s = 0.0;
    for (Index t = static_cast<Index>(threadIdx.x); t < np; t += step) {
      const Index i = t / p, k = t - i * p;
      s += static_cast<double>(gy[(static_cast<int64_t>(i) * f + j) * p + k]);
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
  Direction& d = pl.fwd;
  if (!d.chosen.load(std::memory_order_acquire)) {
    DirCalls<cudnnConvolutionFwdAlgoPerf_t> calls;
    calls.heuristic = [&](int cap, int* count, cudnnConvolutionFwdAlgoPerf_t* perf) {
      return cudnnGetConvolutionForwardAlgorithm_v7(h, pl.x, pl.w, d.conv, pl.y, cap, count, perf);
    };
    calls.find = [&](int cap, int* count, cudnnConvolutionFwdAlgoPerf_t* perf, void* ws, size_t bytes) {
      return cudnnFindConvolutionForwardAlgorithmEx(h, pl.x, x.raw_data(), pl.w, w.raw_data(), d.conv, pl.y,
                                                    y.raw_data(), cap, count, perf, ws, bytes);
    };
    calls.workspace_size = [&](int algo, size_t* bytes) {
      return cudnnGetConvolutionForwardWorkspaceSize(h, pl.x, pl.w, d.conv, pl.y,
                                                     static_cast<cudnnConvolutionFwdAlgo_t>(algo), bytes);
    };
    choose<cudnnConvolutionFwdAlgoPerf_t, CUDNN_CONVOLUTION_FWD_ALGO_COUNT>(
        h, pl, d, Dir::Forward, CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_GEMM, calls);
  }
  Workspace ws(d.workspace);
  CUDNN_CHECK(cudnnConvolutionForward(h, kOne.get(pl.dt), pl.x, x.raw_data(), pl.w, w.raw_data(), d.conv,
                                      static_cast<cudnnConvolutionFwdAlgo_t>(d.algo), ws.get(), ws.size(),
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
  Direction& d = pl.bwd_data;
  if (!d.chosen.load(std::memory_order_acquire)) {
    DirCalls<cudnnConvolutionBwdDataAlgoPerf_t> calls;
    calls.heuristic = [&](int cap, int* count, cudnnConvolutionBwdDataAlgoPerf_t* perf) {
      return cudnnGetConvolutionBackwardDataAlgorithm_v7(h, pl.w, pl.y, d.conv, pl.x, cap, count, perf);
    };
    calls.find = [&](int cap, int* count, cudnnConvolutionBwdDataAlgoPerf_t* perf, void* ws, size_t bytes) {
      return cudnnFindConvolutionBackwardDataAlgorithmEx(h, pl.w, w.raw_data(), pl.y, grad_y.raw_data(), d.conv,
                                                         pl.x, grad_x.raw_data(), cap, count, perf, ws, bytes);
    };
    calls.workspace_size = [&](int algo, size_t* bytes) {
      return cudnnGetConvolutionBackwardDataWorkspaceSize(h, pl.w, pl.y, d.conv, pl.x,
                                                          static_cast<cudnnConvolutionBwdDataAlgo_t>(algo), bytes);
    };
    choose<cudnnConvolutionBwdDataAlgoPerf_t, CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT>(
        h, pl, d, Dir::BackwardData, CUDNN_CONVOLUTION_BWD_DATA_ALGO_1, calls);
  }
  Workspace ws(d.workspace);
  CUDNN_CHECK(cudnnConvolutionBackwardData(h, kOne.get(pl.dt), pl.w, w.raw_data(), pl.y, grad_y.raw_data(), d.conv,
                                           static_cast<cudnnConvolutionBwdDataAlgo_t>(d.algo), ws.get(), ws.size(),
                                           kZero.get(pl.dt), pl.x, grad_x.raw_data()));
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
  Direction& d = pl.bwd_filter;
  if (!d.chosen.load(std::memory_order_acquire)) {
    DirCalls<cudnnConvolutionBwdFilterAlgoPerf_t> calls;
    calls.heuristic = [&](int cap, int* count, cudnnConvolutionBwdFilterAlgoPerf_t* perf) {
      return cudnnGetConvolutionBackwardFilterAlgorithm_v7(h, pl.x, pl.y, d.conv, pl.w, cap, count, perf);
    };
    calls.find = [&](int cap, int* count, cudnnConvolutionBwdFilterAlgoPerf_t* perf, void* ws, size_t bytes) {
      return cudnnFindConvolutionBackwardFilterAlgorithmEx(h, pl.x, x.raw_data(), pl.y, grad_y.raw_data(), d.conv,
                                                           pl.w, grad_w.raw_data(), cap, count, perf, ws, bytes);
    };
    calls.workspace_size = [&](int algo, size_t* bytes) {
      return cudnnGetConvolutionBackwardFilterWorkspaceSize(
          h, pl.x, pl.y, d.conv, pl.w, static_cast<cudnnConvolutionBwdFilterAlgo_t>(algo), bytes);
    };
    choose<cudnnConvolutionBwdFilterAlgoPerf_t, CUDNN_CONVOLUTION_BWD_FILTER_ALGO_COUNT>(
        h, pl, d, Dir::BackwardFilter, CUDNN_CONVOLUTION_BWD_FILTER_ALGO_1, calls);
  }
  Workspace ws(d.workspace);
  CUDNN_CHECK(cudnnConvolutionBackwardFilter(h, kOne.get(pl.dt), pl.x, x.raw_data(), pl.y, grad_y.raw_data(), d.conv,
                                             static_cast<cudnnConvolutionBwdFilterAlgo_t>(d.algo), ws.get(),
                                             ws.size(), kZero.get(pl.dt), pl.w, grad_w.raw_data()));
}

void conv2d_backward_bias(const Tensor& grad_y, Tensor& grad_b) {
  const int64_t n = grad_y.size(0), f = grad_y.size(1), p = grad_y.size(2) * grad_y.size(3);
  if (f == 0) return;
  cudaStream_t s = stream(grad_y);
  const unsigned grid = static_cast<unsigned>(f < 65535 ? f : 65535);
  // int32 indices need n * p + blockDim to stay below 2^31 (t steps past n * p once) and f below 2^31.
  const bool small = n * p <= INT_MAX - kBlock && f <= INT_MAX;
  JEBM_DISPATCH_FLOAT(grad_y.dtype(), "conv2d_backward_bias (cuda)", [&] {
    if (small)
      backward_bias_kernel<scalar_t, int32_t><<<grid, kBlock, 0, s>>>(
          grad_y.device_data<scalar_t>(), grad_b.device_data<scalar_t>(), static_cast<int32_t>(n), static_cast<int32_t>(f),
          static_cast<int32_t>(p));
    else
      backward_bias_kernel<scalar_t, int64_t><<<grid, kBlock, 0, s>>>(grad_y.device_data<scalar_t>(),
                                                                     grad_b.device_data<scalar_t>(), n, f, p);
  });
  CUDA_CHECK_LAUNCH("backward_bias_kernel");
}

}  // namespace jebm::cuda
