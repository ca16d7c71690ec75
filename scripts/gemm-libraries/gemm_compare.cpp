// Times float32 sgemm in one CBLAS library (OpenBLAS or BLIS, chosen at compile time by USE_OPENBLAS / USE_BLIS)
// on the products jebm's im2col convolution issues (runtime/cpu/conv.cpp: its sample groups, their GEMM shapes and
// transposes, one single-threaded BLAS call per group with groups spread over the OpenMP threads) for the MNIST
// energy CNN's layers and the CIFAR-10 CNN's wide layers, and on one 1024^3 product threaded by the library itself.
// Only the GEMMs are timed (no im2col, col2im or bias). Usage: gemm_compare THREADS [REPS]; run.sh builds and runs it.
#include <omp.h>

#include <cmath>
#include <cstdlib>
#include <memory>

#include "timing.hpp"

#if defined(USE_OPENBLAS)
#include <cblas.h>
static std::string library() { return std::string("OpenBLAS ") + openblas_get_corename(); }
static void library_threads(int t) { openblas_set_num_threads(t); }
#elif defined(USE_BLIS)
#include <blis.h>
static std::string library() { return std::string("BLIS ") + bli_arch_string(bli_arch_query_id()); }
static void library_threads(int t) { bli_thread_set_num_threads(t); }
#else
#error "define USE_OPENBLAS or USE_BLIS"
#endif

namespace {

// jebm's constants (runtime/cpu/conv.cpp, runtime/cpu/gemm.cpp, runtime/cpu/parallel.hpp).
constexpr int64_t kGroupBudget = int64_t{1} << 16, kGroupMinCols = 256, kFilterSlots = 8;
constexpr int64_t kFilterSlotBudget = int64_t{1} << 21, kParallelMin = 1 << 15;
constexpr int64_t kGemmSerialFlops = int64_t{1} << 21, kGemmMinBlock = 64, kGemmMaxBlocks = 16;

void sgemm(bool ta, bool tb, int64_t m, int64_t n, int64_t k, const float* a, int64_t lda, const float* b,
           int64_t ldb, float beta, float* c, int64_t ldc) {
  cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, int(m), int(n), int(k),
              1.0f, a, int(lda), b, int(ldb), beta, c, int(ldc));
}

// jebm's gemm_blocked: the longer of M and N cut into fixed blocks run on the OpenMP threads.
void sgemm_blocked(bool ta, bool tb, int64_t m, int64_t n, int64_t k, const float* a, int64_t lda, const float* b,
                   int64_t ldb, float beta, float* c, int64_t ldc) {
  const bool rows = m >= n;
  const int64_t len = rows ? m : n;
  const int64_t blocks =
      2 * m * n * k < kGemmSerialFlops ? 1 : std::clamp<int64_t>(len / kGemmMinBlock, 1, kGemmMaxBlocks);
  const int64_t step = (len + blocks - 1) / blocks;
#pragma omp parallel for schedule(dynamic, 1)
  for (int64_t blk = 0; blk < blocks; ++blk) {
    const int64_t lo = blk * step, hi = std::min(len, lo + step);
    if (lo >= hi) continue;
    if (rows) sgemm(ta, tb, hi - lo, n, k, a + (ta ? lo : lo * lda), lda, b, ldb, beta, c + lo * ldc, ldc);
    else sgemm(ta, tb, m, hi - lo, k, a, lda, b + (tb ? lo * ldb : lo), ldb, beta, c + lo, ldc);
  }
}

struct Buffer {
  std::unique_ptr<float[]> p;
  explicit Buffer(int64_t n) : p(new float[size_t(n)]) {
    for (int64_t i = 0; i < n; ++i) p[size_t(i)] = float(std::rand()) / RAND_MAX - 0.5f;
  }
  float* get() const { return p.get(); }
};

// One layer's three passes as conv.cpp issues them: G samples per group, groups one per thread.
struct LayerGemms {
  Layer l;
  int64_t p, ckk, g, groups;
  bool parallel;
  std::vector<Buffer> col, out;  // per thread: the patches [G*P, CKK] and grad_y / output [F, G*P]
  Buffer w;                       // [F, CKK], also the filter-gradient accumulators of every slot
  LayerGemms(const Layer& layer, int threads)
      : l(layer), p(l.ohw() * l.ohw()), ckk(l.c * l.k * l.k),
        g(std::clamp<int64_t>(std::max(kGroupBudget / (ckk * p), (kGroupMinCols + p - 1) / p), 1, l.n)),
        groups((l.n + g - 1) / g), parallel(groups > 1 && l.n * ckk * p >= kParallelMin),
        w(l.f * ckk * kFilterSlots) {
    for (int t = 0; t < threads; ++t) {
      col.emplace_back(g * p * ckk);
      out.emplace_back(l.f * g * p);
    }
  }
  int64_t gn(int64_t gi) const { return std::min(g, l.n - gi * g); }
  template <typename F>
  void for_groups(F f) {
    if (parallel) {
#pragma omp parallel for schedule(dynamic, 1)
      for (int64_t gi = 0; gi < groups; ++gi) f(gi, omp_get_thread_num(), true);
    } else {
      for (int64_t gi = 0; gi < groups; ++gi) f(gi, 0, false);
    }
  }
  void forward() {  // y_g [F, gn*P] = w [F, CKK] x col^T
    for_groups([&](int64_t gi, int t, bool serial) {
      auto* run = serial ? sgemm : sgemm_blocked;
      run(false, true, l.f, gn(gi) * p, ckk, w.get(), ckk, col[t].get(), ckk, 0.0f, out[t].get(), gn(gi) * p);
    });
  }
  void backward_data() {  // col [gn*P, CKK] = gy_g^T x w
    for_groups([&](int64_t gi, int t, bool serial) {
      auto* run = serial ? sgemm : sgemm_blocked;
      run(true, false, gn(gi) * p, ckk, l.f, out[t].get(), gn(gi) * p, w.get(), ckk, 0.0f, col[t].get(), ckk);
    });
  }
  void backward_filter() {  // slot s: sum over groups s, s+S, ... of gy_g [F, gn*P] x col [gn*P, CKK]
    const int64_t fk = l.f * ckk;
    const int64_t slots = std::clamp<int64_t>(kFilterSlotBudget / fk, 1, std::min(groups, kFilterSlots));
    if (slots > 1 && l.n * ckk * p >= kParallelMin) {
#pragma omp parallel for schedule(dynamic, 1)
      for (int64_t s = 0; s < slots; ++s)
        for (int64_t gi = s; gi < groups; gi += slots) {
          const int t = omp_get_thread_num();
          sgemm(false, false, l.f, ckk, gn(gi) * p, out[t].get(), gn(gi) * p, col[t].get(), ckk,
                gi == s ? 0.0f : 1.0f, w.get() + s * fk, ckk);
        }
    } else {
      for (int64_t gi = 0; gi < groups; ++gi)
        sgemm_blocked(false, false, l.f, ckk, gn(gi) * p, out[0].get(), gn(gi) * p, col[0].get(), ckk,
                      gi == 0 ? 0.0f : 1.0f, w.get(), ckk);
    }
  }
};

// The library against a triple loop on the transposes used, so a broken link cannot pass for a fast one.
bool library_agrees() {
  const int64_t m = 37, n = 29, k = 23;
  Buffer a(m * k), b(k * n), c(m * n);
  for (int tr = 0; tr < 4; ++tr) {
    const bool ta = tr & 1, tb = tr & 2;
    sgemm(ta, tb, m, n, k, a.get(), ta ? m : k, b.get(), tb ? k : n, 0.0f, c.get(), n);
    for (int64_t i = 0; i < m; ++i)
      for (int64_t j = 0; j < n; ++j) {
        double s = 0;
        for (int64_t q = 0; q < k; ++q)
          s += double(a.get()[ta ? q * m + i : i * k + q]) * b.get()[tb ? j * k + q : q * n + j];
        if (std::fabs(s - c.get()[i * n + j]) > 1e-4) return false;
      }
  }
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  int threads = 1, reps = 11;
  if (!parse_threads_reps(argc, argv, threads, reps)) return 2;
  library_threads(1);
  if (!library_agrees()) {
    std::fprintf(stderr, "gemm_compare: %s disagrees with a triple loop\n", library().c_str());
    return 1;
  }
  std::printf("# sgemm, %s, %d thread(s), median of %d after 2 warm-ups\n", library().c_str(), threads, reps);
  std::vector<std::unique_ptr<LayerGemms>> layers;
  std::vector<Case> cases;
  for (const Layer& l : measured_layers()) {
    layers.push_back(std::make_unique<LayerGemms>(l, threads));
    LayerGemms* g = layers.back().get();
    const long mm = l.f, nn = g->g * g->p, kk = g->ckk;  // M x N x K of a full group's products
    std::printf("# %s: %ld groups of %ld; fwd NT %ldx%ldx%ld, bwd-data TN %ldx%ldx%ld, bwd-filter NN %ldx%ldx%ld\n",
                l.name, long(g->groups), long(g->g), mm, nn, kk, nn, kk, mm, mm, kk, nn);
    cases.push_back({std::string(l.name) + " fwd", 2 * l.macs(), [g] { g->forward(); }, {}});
    cases.push_back({std::string(l.name) + " bwd-data", 2 * l.macs(), [g] { g->backward_data(); }, {}});
    cases.push_back({std::string(l.name) + " bwd-filter", 2 * l.macs(), [g] { g->backward_filter(); }, {}});
  }
  run_round_robin(cases, 2, reps);

  // 1024^3, threaded by the library (jebm would cut it into 16 blocks of rows instead).
  const int64_t n = 1024;
  Buffer a(n * n), b(n * n), c(n * n);
  library_threads(threads);
  std::vector<Case> square = {{"1024^3 (library threads)", 2.0 * n * n * n,
                               [&] { sgemm(false, false, n, n, n, a.get(), n, b.get(), n, 0.0f, c.get(), n); }, {}}};
  run_round_robin(square, 2, reps);

  print_header();
  const std::string prefix = std::to_string(threads) + "T ";
  double mnist = 0;
  for (const Case& c : cases) {
    const double t = print_case(prefix, c, threads);
    if (c.name.rfind("mnist", 0) == 0) mnist += t;
  }
  print_case(prefix, square[0], threads);
  std::printf("%-56s %9.3f  (sum of the 12 MNIST medians above)\n", (prefix + "mnist all layers, all passes").c_str(),
              mnist);
  return 0;
}
