// Times float32 convolutions of the MNIST energy CNN and the CIFAR-10 CNN's wide layers three ways in one process,
// alternating call by call: jebm's own conv2d (runtime/ops.hpp: direct for thin layers, else im2col + OpenBLAS),
// oneDNN's convolution primitive on NCHW tensors, oneDNN on the blocked layouts it prefers (format "any"; reorders
// not timed: "dnnl-blocked"), and the same with NCHW tensors reordered into and out of those layouts at every call
// ("dnnl-reorder"). Forward with bias, backward-data, backward-weights with bias.
// Usage: conv_compare THREADS [REPS]; run.sh builds it against jebm_runtime and oneDNN and runs it.
#include <omp.h>

#include <cmath>
#include <cstdlib>
#include <cstring>
#include <unordered_map>
#include <oneapi/dnnl/dnnl.hpp>

#include "runtime/blas_core.hpp"
#include "runtime/ops.hpp"
#include "timing.hpp"

namespace {

using dnnl::memory;
using Tag = memory::format_tag;

// oneDNN's name for a layout ("abcd" = NCHW, "aBcd16b" = N, C/16, H, W, 16 c): dimensions outermost first by stride,
// upper case where blocked, then the inner blocks.
std::string format_of(const memory::desc& md) {
  const dnnl_memory_desc_t& d = md.data;
  if (d.format_kind != dnnl_blocked) return "?";
  const dnnl_blocking_desc_t& b = d.format_desc.blocking;
  std::vector<int> order(d.ndims);
  for (int i = 0; i < d.ndims; ++i) order[i] = i;
  std::stable_sort(order.begin(), order.end(), [&](int x, int y) { return b.strides[x] > b.strides[y]; });
  std::string s;
  for (int i : order) {
    bool blocked = false;
    for (int k = 0; k < b.inner_nblks; ++k) blocked |= b.inner_idxs[k] == i;
    s += char((blocked ? 'A' : 'a') + i);
  }
  for (int k = 0; k < b.inner_nblks; ++k) s += std::to_string(b.inner_blks[k]) + char('a' + b.inner_idxs[k]);
  return s;
}

// FNV-1a over a buffer's bytes, continuing from h: outputs are compared across thread counts this way (jebm's are the
// same bits at any thread count).
uint32_t bits_hash(const void* p, size_t bytes, uint32_t h = 2166136261u) {
  const unsigned char* b = static_cast<const unsigned char*>(p);
  for (size_t i = 0; i < bytes; ++i) h = (h ^ b[i]) * 16777619u;
  return h;
}

// A memory of the primitive's own layout, filled with small pseudo-random values (no denormals, no zeros).
memory filled(const memory::desc& md, const dnnl::engine& eng) {
  memory m(md, eng);
  float* p = static_cast<float*>(m.get_data_handle());
  for (size_t i = 0; i < md.get_size() / sizeof(float); ++i) p[i] = float(std::rand()) / RAND_MAX - 0.5f;
  return m;
}

// oneDNN's three passes of one layer on one layout (NCHW / OIHW, or Tag::any: the primitives choose).
struct DnnlConv {
  dnnl::engine eng{dnnl::engine::kind::cpu, 0};
  dnnl::stream strm{eng};
  dnnl::convolution_forward fwd;
  dnnl::convolution_backward_data bwd_data;
  dnnl::convolution_backward_weights bwd_weights;
  std::unordered_map<int, memory> fwd_args, data_args, weights_args;
  std::string impl, formats;
  // Blocked only: NCHW / OIHW twins of each pass's tensors and the reorders into its inputs and out of its outputs,
  // for the cost of keeping jebm's tensors NCHW and converting at every call.
  struct Reorder {
    dnnl::reorder r;
    memory from, to;
  };
  std::vector<Reorder> fwd_in, fwd_out, data_in, data_out, weights_in, weights_out;

  DnnlConv(const Layer& l, bool blocked) {
    const memory::dims x{l.n, l.c, l.hw, l.hw}, w{l.f, l.c, l.k, l.k}, b{l.f}, y{l.n, l.f, l.ohw(), l.ohw()};
    const memory::dims strides{l.stride, l.stride}, pad{l.pad, l.pad};
    const auto f32 = memory::data_type::f32;
    const memory::desc xd(x, f32, blocked ? Tag::any : Tag::nchw), wd(w, f32, blocked ? Tag::any : Tag::oihw),
        bd(b, f32, Tag::x), yd(y, f32, blocked ? Tag::any : Tag::nchw);
    const auto direct = dnnl::algorithm::convolution_direct;
    dnnl::convolution_forward::primitive_desc fpd(
        {dnnl::prop_kind::forward_training, direct, xd, wd, bd, yd, strides, pad, pad}, eng);
    dnnl::convolution_backward_data::primitive_desc dpd({direct, xd, wd, yd, strides, pad, pad}, eng, fpd);
    dnnl::convolution_backward_weights::primitive_desc wpd({direct, xd, wd, bd, yd, strides, pad, pad}, eng, fpd);
    fwd = dnnl::convolution_forward(fpd);
    bwd_data = dnnl::convolution_backward_data(dpd);
    bwd_weights = dnnl::convolution_backward_weights(wpd);
    fwd_args = {{DNNL_ARG_SRC, filled(fpd.src_desc(), eng)}, {DNNL_ARG_WEIGHTS, filled(fpd.weights_desc(), eng)},
                {DNNL_ARG_BIAS, filled(fpd.bias_desc(), eng)}, {DNNL_ARG_DST, filled(fpd.dst_desc(), eng)}};
    data_args = {{DNNL_ARG_DIFF_SRC, filled(dpd.diff_src_desc(), eng)},
                 {DNNL_ARG_WEIGHTS, filled(dpd.weights_desc(), eng)},
                 {DNNL_ARG_DIFF_DST, filled(dpd.diff_dst_desc(), eng)}};
    weights_args = {{DNNL_ARG_SRC, filled(wpd.src_desc(), eng)},
                    {DNNL_ARG_DIFF_WEIGHTS, filled(wpd.diff_weights_desc(), eng)},
                    {DNNL_ARG_DIFF_BIAS, filled(wpd.diff_bias_desc(), eng)},
                    {DNNL_ARG_DIFF_DST, filled(wpd.diff_dst_desc(), eng)}};
    if (blocked) {
      fwd_in = {twin(fwd_args[DNNL_ARG_SRC], true), twin(fwd_args[DNNL_ARG_WEIGHTS], true)};
      fwd_out = {twin(fwd_args[DNNL_ARG_DST], false)};
      data_in = {twin(data_args[DNNL_ARG_WEIGHTS], true), twin(data_args[DNNL_ARG_DIFF_DST], true)};
      data_out = {twin(data_args[DNNL_ARG_DIFF_SRC], false)};
      weights_in = {twin(weights_args[DNNL_ARG_SRC], true), twin(weights_args[DNNL_ARG_DIFF_DST], true)};
      weights_out = {twin(weights_args[DNNL_ARG_DIFF_WEIGHTS], false)};
    }
    impl = std::string(fpd.impl_info_str()) + " / " + dpd.impl_info_str() + " / " + wpd.impl_info_str();
    // x, w, y of each pass: where they differ, a network kept in one layout would need reorders between passes.
    formats = format_of(fpd.src_desc()) + " " + format_of(fpd.weights_desc()) + " " + format_of(fpd.dst_desc()) +
              " / " + format_of(dpd.diff_src_desc()) + " " + format_of(dpd.weights_desc()) + " " +
              format_of(dpd.diff_dst_desc()) + " / " + format_of(wpd.src_desc()) + " " +
              format_of(wpd.diff_weights_desc()) + " " + format_of(wpd.diff_dst_desc());
  }
  Reorder twin(const memory& blocked, bool input) {
    const memory::desc md = blocked.get_desc();
    const memory plain = filled(memory::desc(md.dims(), md.data_type(), Tag::abcd), eng);
    return input ? Reorder{dnnl::reorder(plain, blocked), plain, blocked}
                 : Reorder{dnnl::reorder(blocked, plain), blocked, plain};
  }
  void forward() { run(fwd, fwd_args); }
  void backward_data() { run(bwd_data, data_args); }
  void backward_weights() { run(bwd_weights, weights_args); }
  void forward_nchw() { run(fwd, fwd_args, fwd_in, fwd_out); }
  void backward_data_nchw() { run(bwd_data, data_args, data_in, data_out); }
  void backward_weights_nchw() { run(bwd_weights, weights_args, weights_in, weights_out); }
  void run(dnnl::primitive& p, std::unordered_map<int, memory>& args, std::vector<Reorder> in = {},
           std::vector<Reorder> out = {}) {
    for (Reorder& r : in) r.r.execute(strm, r.from, r.to);
    p.execute(strm, args);
    for (Reorder& r : out) r.r.execute(strm, r.from, r.to);
    strm.wait();
  }
  static uint32_t hash(const memory& m, uint32_t h = 2166136261u) {
    return bits_hash(m.get_data_handle(), m.get_desc().get_size(), h);
  }
  std::string output_hashes() {  // y, grad_x, grad_w + grad_b
    forward();
    backward_data();
    backward_weights();
    char s[64];
    std::snprintf(s, sizeof s, "%08x %08x %08x", hash(fwd_args[DNNL_ARG_DST]), hash(data_args[DNNL_ARG_DIFF_SRC]),
                  hash(weights_args[DNNL_ARG_DIFF_BIAS], hash(weights_args[DNNL_ARG_DIFF_WEIGHTS])));
    return s;
  }
};

// jebm's three passes of one layer, as its autograd calls them.
struct JebmConv {
  jebm::Tensor x, w, b, gy;
  jebm::Conv2dParams p;
  explicit JebmConv(const Layer& l) : p{l.stride, l.pad} {
    jebm::Generator gen{2, 0};
    x = jebm::rand_uniform({l.n, l.c, l.hw, l.hw}, -1, 1, gen);
    w = jebm::rand_uniform({l.f, l.c, l.k, l.k}, -0.1, 0.1, gen);
    b = jebm::rand_uniform({l.f}, -0.1, 0.1, gen);
    gy = jebm::rand_uniform({l.n, l.f, l.ohw(), l.ohw()}, -1, 1, gen);
  }
  void forward() { jebm::conv2d(x, w, b, p); }
  void backward_data() { jebm::conv2d_backward_data(gy, w, x.shape(), p); }
  void backward_weights() {
    jebm::conv2d_backward_filter(gy, x, w.shape(), p);
    jebm::conv2d_backward_bias(gy);
  }
  std::string output_hashes() {  // y, grad_x, grad_w + grad_b
    const jebm::Tensor y = jebm::conv2d(x, w, b, p), gx = jebm::conv2d_backward_data(gy, w, x.shape(), p),
                       gw = jebm::conv2d_backward_filter(gy, x, w.shape(), p), gb = jebm::conv2d_backward_bias(gy);
    char s[64];
    std::snprintf(s, sizeof s, "%08x %08x %08x", bits_hash(y.data<float>(), y.nbytes()),
                  bits_hash(gx.data<float>(), gx.nbytes()),
                  bits_hash(gb.data<float>(), gb.nbytes(), bits_hash(gw.data<float>(), gw.nbytes())));
    return s;
  }
};

// oneDNN's NCHW forward against jebm's on the same inputs: the two compute the same convolution.
double forward_difference(JebmConv& j, DnnlConv& d) {
  std::memcpy(d.fwd_args[DNNL_ARG_SRC].get_data_handle(), j.x.data<float>(), j.x.numel() * sizeof(float));
  std::memcpy(d.fwd_args[DNNL_ARG_WEIGHTS].get_data_handle(), j.w.data<float>(), j.w.numel() * sizeof(float));
  std::memcpy(d.fwd_args[DNNL_ARG_BIAS].get_data_handle(), j.b.data<float>(), j.b.numel() * sizeof(float));
  d.forward();
  const jebm::Tensor y = jebm::conv2d(j.x, j.w, j.b, j.p);
  const float* dy = static_cast<const float*>(d.fwd_args[DNNL_ARG_DST].get_data_handle());
  double worst = 0;
  for (int64_t i = 0; i < y.numel(); ++i) worst = std::max(worst, double(std::fabs(dy[i] - y.data<float>()[i])));
  return worst;
}

}  // namespace

int main(int argc, char** argv) {
  int threads = 1, reps = 11;
  if (!parse_threads_reps(argc, argv, threads, reps)) return 2;
  const dnnl_version_t* v = dnnl_version();
  std::printf("# conv2d float32, %d thread(s), median of %d after 2 warm-ups; jebm with OpenBLAS %s; oneDNN %d.%d.%d\n",
              threads, reps, jebm::blas_core().c_str(), v->major, v->minor, v->patch);
  std::vector<std::unique_ptr<JebmConv>> jebms;
  std::vector<std::unique_ptr<DnnlConv>> dnnls;
  std::vector<Case> cases;
  for (const Layer& l : measured_layers()) {
    jebms.push_back(std::make_unique<JebmConv>(l));
    JebmConv* j = jebms.back().get();
    const double flops = 2 * l.macs();
    cases.push_back({std::string(l.name) + " fwd jebm", flops, [j] { j->forward(); }, {}});
    for (bool blocked : {false, true}) {
      dnnls.push_back(std::make_unique<DnnlConv>(l, blocked));
      DnnlConv* d = dnnls.back().get();
      const std::string tag = blocked ? " dnnl-blocked" : " dnnl-nchw";
      std::printf("# %s%s: %s; x w y: %s\n", l.name, tag.c_str(), d->impl.c_str(), d->formats.c_str());
      if (!blocked) {
        const double diff = forward_difference(*j, *d);
        if (!(diff < 1e-3)) {
          std::fprintf(stderr, "conv_compare: %s: oneDNN and jebm differ by %g\n", l.name, diff);
          return 1;
        }
      }
      cases.push_back({std::string(l.name) + " fwd" + tag, flops, [d] { d->forward(); }, {}});
    }
    // The backward passes of this layer, jebm then oneDNN's two layouts (the last two entries of dnnls).
    DnnlConv* nchw = dnnls[dnnls.size() - 2].get();
    DnnlConv* blk = dnnls.back().get();
    cases.push_back({std::string(l.name) + " fwd dnnl-reorder", flops, [blk] { blk->forward_nchw(); }, {}});
    cases.push_back({std::string(l.name) + " bwd-data jebm", flops, [j] { j->backward_data(); }, {}});
    cases.push_back({std::string(l.name) + " bwd-data dnnl-nchw", flops, [nchw] { nchw->backward_data(); }, {}});
    cases.push_back({std::string(l.name) + " bwd-data dnnl-blocked", flops, [blk] { blk->backward_data(); }, {}});
    cases.push_back({std::string(l.name) + " bwd-data dnnl-reorder", flops, [blk] { blk->backward_data_nchw(); }, {}});
    cases.push_back({std::string(l.name) + " bwd-filter jebm", flops, [j] { j->backward_weights(); }, {}});
    cases.push_back({std::string(l.name) + " bwd-filter dnnl-nchw", flops, [nchw] { nchw->backward_weights(); }, {}});
    cases.push_back({std::string(l.name) + " bwd-filter dnnl-blocked", flops, [blk] { blk->backward_weights(); }, {}});
    cases.push_back(
        {std::string(l.name) + " bwd-filter dnnl-reorder", flops, [blk] { blk->backward_weights_nchw(); }, {}});
  }
  run_round_robin(cases, 2, reps);
  // The same inputs give the same bits at every thread count in jebm; compare these lines between runs.
  for (size_t i = 0; i < jebms.size(); ++i)
    std::printf("# output bits, %d thread(s), %s: jebm %s, dnnl-nchw %s, dnnl-blocked %s\n", threads,
                measured_layers()[i].name, jebms[i]->output_hashes().c_str(), dnnls[2 * i]->output_hashes().c_str(),
                dnnls[2 * i + 1]->output_hashes().c_str());

  print_header();
  const std::string prefix = std::to_string(threads) + "T ";
  const char* ways[4] = {"jebm", "dnnl-nchw", "dnnl-blocked", "dnnl-reorder"};
  double mnist[4] = {0, 0, 0, 0};
  for (const Case& c : cases) {
    const double t = print_case(prefix, c, threads);
    for (int i = 0; i < 4; ++i)
      if (c.name.rfind("mnist", 0) == 0 && c.name.substr(c.name.rfind(' ') + 1) == ways[i]) mnist[i] += t;
  }
  std::printf("%smnist all layers, all passes:", prefix.c_str());
  for (int i = 0; i < 4; ++i) std::printf(" %s %.3f ms%s", ways[i], mnist[i], i < 3 ? "," : "\n");
  return 0;
}
