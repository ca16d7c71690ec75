// CPU reductions over one axis of x viewed as [outer, n, inner] (sum, mean, max, stable log-sum-exp) and sum_to,
// the inverse of broadcasting. Accumulates in double; parallel work is split into fixed chunks combined in a fixed
// order, so results do not depend on the thread count. Tested by tests/test_ops.cpp.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

#include "runtime/backend.hpp"
#include "runtime/cpu/parallel.hpp"

namespace jebm::cpu {
namespace {

constexpr double kNegInf = -std::numeric_limits<double>::infinity();
constexpr int64_t kInnerBlock = 256;  // columns handled by one task when inner > 1

template <typename F>
void for_tasks(int64_t tasks, int64_t work, F f) {
  if (work >= kParallelMin && tasks > 1) {
#pragma omp parallel for schedule(static)
    for (int64_t t = 0; t < tasks; ++t) f(t);
  } else {
    for (int64_t t = 0; t < tasks; ++t) f(t);
  }
}

// Finishes one output from its max m (Max/LogSumExp) and sum s (Sum/Mean: of x; LogSumExp: of exp(x - m)).
inline double finish(ReduceOp op, double m, double s, int64_t n) {
  switch (op) {
    case ReduceOp::Sum: return s;
    case ReduceOp::Mean: return s / static_cast<double>(n);
    case ReduceOp::Max: return m;
    case ReduceOp::LogSumExp: return std::isfinite(m) ? m + std::log(s) : m;  // all -inf -> -inf; +inf -> +inf
  }
  return s;
}

// inner == 1: each output reduces n contiguous values. Long rows are cut into kReduceChunk pieces whose partial
// results are combined in chunk order (a full reduction of a big vector still uses every core).
template <typename T>
void reduce_rows(ReduceOp op, const T* x, int64_t outer, int64_t n, T* y) {
  const int64_t nchunk = std::max<int64_t>(1, (n + kReduceChunk - 1) / kReduceChunk);
  const int64_t tasks = outer * nchunk;
  std::vector<double> part(static_cast<size_t>(tasks));
  std::vector<double> m(static_cast<size_t>(outer), 0.0);
  auto range = [&](int64_t t, int64_t& o, int64_t& b, int64_t& e) {
    o = t / nchunk;
    b = (t % nchunk) * kReduceChunk;
    e = std::min(n, b + kReduceChunk);
  };
  const bool need_max = op == ReduceOp::Max || op == ReduceOp::LogSumExp;
  if (need_max) {
    for_tasks(tasks, outer * n, [&](int64_t t) {
      int64_t o, b, e;
      range(t, o, b, e);
      const T* r = x + o * n;
      double mx = kNegInf;
      for (int64_t j = b; j < e; ++j) mx = std::max(mx, static_cast<double>(r[j]));
      part[static_cast<size_t>(t)] = mx;
    });
    for (int64_t o = 0; o < outer; ++o) {
      double mx = kNegInf;
      for (int64_t c = 0; c < nchunk; ++c) mx = std::max(mx, part[static_cast<size_t>(o * nchunk + c)]);
      m[static_cast<size_t>(o)] = mx;
    }
  }
  if (op != ReduceOp::Max) {
    const bool lse = op == ReduceOp::LogSumExp;
    for_tasks(tasks, outer * n, [&](int64_t t) {
      int64_t o, b, e;
      range(t, o, b, e);
      const T* r = x + o * n;
      double s = 0.0;
      if (lse) {
        const double mo = m[static_cast<size_t>(o)];
        if (std::isfinite(mo))
          for (int64_t j = b; j < e; ++j) s += std::exp(static_cast<double>(r[j]) - mo);
      } else {
        for (int64_t j = b; j < e; ++j) s += static_cast<double>(r[j]);
      }
      part[static_cast<size_t>(t)] = s;
    });
  }
  for (int64_t o = 0; o < outer; ++o) {
    double s = 0.0;
    if (op != ReduceOp::Max)
      for (int64_t c = 0; c < nchunk; ++c) s += part[static_cast<size_t>(o * nchunk + c)];
    y[o] = static_cast<T>(finish(op, m[static_cast<size_t>(o)], s, n));
  }
}

// inner > 1: a task owns (o, a block of up to kInnerBlock columns) and walks the n rows in order, so each output
// is summed sequentially while memory is read row by row.
template <typename T>
void reduce_columns(ReduceOp op, const T* x, int64_t outer, int64_t n, int64_t inner, T* y) {
  const int64_t nblk = (inner + kInnerBlock - 1) / kInnerBlock;
  for_tasks(outer * nblk, outer * n * inner, [&](int64_t t) {
    const int64_t o = t / nblk, k0 = (t % nblk) * kInnerBlock, k1 = std::min(inner, k0 + kInnerBlock);
    const int64_t w = k1 - k0;
    double mx[kInnerBlock], s[kInnerBlock];
    for (int64_t k = 0; k < w; ++k) {
      mx[k] = kNegInf;
      s[k] = 0.0;
    }
    const T* base = x + o * n * inner + k0;
    if (op == ReduceOp::Max || op == ReduceOp::LogSumExp)
      for (int64_t j = 0; j < n; ++j)
        for (int64_t k = 0; k < w; ++k) mx[k] = std::max(mx[k], static_cast<double>(base[j * inner + k]));
    if (op == ReduceOp::LogSumExp) {
      for (int64_t j = 0; j < n; ++j)
        for (int64_t k = 0; k < w; ++k)
          if (std::isfinite(mx[k])) s[k] += std::exp(static_cast<double>(base[j * inner + k]) - mx[k]);
    } else if (op != ReduceOp::Max) {
      for (int64_t j = 0; j < n; ++j)
        for (int64_t k = 0; k < w; ++k) s[k] += static_cast<double>(base[j * inner + k]);
    }
    for (int64_t k = 0; k < w; ++k) y[o * inner + k0 + k] = static_cast<T>(finish(op, mx[k], s[k], n));
  });
}

}  // namespace

void reduce(ReduceOp op, const Tensor& x, int64_t outer, int64_t n, int64_t inner, Tensor& y) {
  JEBM_DISPATCH_FLOAT(x.dtype(), "reduce", [&] {
    const scalar_t* xp = x.data<scalar_t>();
    scalar_t* yp = y.data<scalar_t>();
    if (outer * inner == 0) return;
    if (inner == 1) reduce_rows(op, xp, outer, n, yp);
    else reduce_columns(op, xp, outer, n, inner, yp);
  });
}

void sum_to(const Tensor& g, Tensor& out) {
  JEBM_DISPATCH_FLOAT(g.dtype(), "sum_to", [&] {
    const scalar_t* gp = g.data<scalar_t>();
    scalar_t* op = out.data<scalar_t>();
    const Shape& gs = g.shape();
    const size_t r = gs.size(), off = r - out.shape().size();
    Shape os(r, 1);  // out's shape right-aligned to g's rank
    for (size_t k = 0; k < out.shape().size(); ++k) os[off + k] = out.shape()[k];
    if (out.numel() == 0) return;
    // Common cases are one reduction: broadcast over leading dims (bias gradients: [N, D] -> [D]) or over
    // trailing dims ([N, D] -> [N, 1]).
    size_t lead = 0;
    while (lead < r && os[lead] == 1) ++lead;
    if (std::equal(os.begin() + static_cast<std::ptrdiff_t>(lead), os.end(), gs.begin() + static_cast<std::ptrdiff_t>(lead))) {
      const int64_t inner = out.numel();
      if (inner == 1) reduce_rows(ReduceOp::Sum, gp, 1, g.numel(), op);
      else reduce_columns(ReduceOp::Sum, gp, 1, g.numel() / inner, inner, op);
      return;
    }
    size_t trail = r;
    while (trail > 0 && os[trail - 1] == 1) --trail;
    if (std::equal(os.begin(), os.begin() + static_cast<std::ptrdiff_t>(trail), gs.begin())) {
      reduce_rows(ReduceOp::Sum, gp, out.numel(), g.numel() / out.numel(), op);
      return;
    }
    // General pattern: one serial pass over g in memory order, accumulating in double.
    std::vector<int64_t> ostride(r, 0);
    int64_t run = 1;
    for (size_t k = r; k-- > 0;) {
      ostride[k] = os[k] == 1 ? 0 : run;
      run *= os[k];
    }
    std::vector<double> acc(static_cast<size_t>(out.numel()), 0.0);
    std::vector<int64_t> idx(r, 0);
    int64_t o = 0;
    for (int64_t i = 0; i < g.numel(); ++i) {
      acc[static_cast<size_t>(o)] += static_cast<double>(gp[i]);
      for (size_t k = r; k-- > 0;) {  // odometer increment of the g index, tracking the out offset
        o += ostride[k];
        if (++idx[k] < gs[k]) break;
        o -= ostride[k] * gs[k];
        idx[k] = 0;
      }
    }
    for (int64_t j = 0; j < out.numel(); ++j) op[j] = static_cast<scalar_t>(acc[static_cast<size_t>(j)]);
  });
}

}  // namespace jebm::cpu
