// broadcast_layout: see runtime/broadcast.hpp.
#include "runtime/broadcast.hpp"

namespace jebm {
namespace {

std::vector<int64_t> aligned_strides(const Shape& s, const Shape& out) {
  const size_t r = out.size(), off = r - s.size();
  std::vector<int64_t> st(r, 0);
  int64_t run = 1;
  for (size_t k = s.size(); k-- > 0;) {
    st[off + k] = s[k] == 1 ? 0 : run;
    run *= s[k];
  }
  return st;
}

}  // namespace

BroadcastLayout broadcast_layout(const Shape& a, const Shape& b, const Shape& out) {
  const auto sa = aligned_strides(a, out), sb = aligned_strides(b, out);
  BroadcastLayout p;
  for (size_t k = 0; k < out.size(); ++k) {
    if (out[k] == 1) continue;  // size-1 dims contribute nothing
    const int64_t n = out[k];
    if (!p.shape.empty() && p.stride_a.back() == sa[k] * n && p.stride_b.back() == sb[k] * n) {
      p.shape.back() *= n;
      p.stride_a.back() = sa[k];
      p.stride_b.back() = sb[k];
      continue;
    }
    p.shape.push_back(n);
    p.stride_a.push_back(sa[k]);
    p.stride_b.push_back(sb[k]);
  }
  if (p.shape.empty()) {
    p.shape = {1};
    p.stride_a = {0};
    p.stride_b = {0};
  }
  return p;
}

}  // namespace jebm
