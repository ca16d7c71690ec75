// CUDA vs CPU through the ops layer: every comparable row of the shared op-case table (tests/op_cases.cpp, the table
// test_ops and test_autograd read) on identical inputs, float32 and float64, within the row's CUDA tolerance (first
// mismatches printed); each CUDA run's outputs start as NaN (the caching allocator's blocks of their sizes are
// filled with NaN first), so an element a kernel forgets to write fails. Then what the table cannot hold: the unary
// ops and the reductions at special values (CUDA vs CPU), and the CUDA context, which has no CPU twin: transfers,
// the caching allocator's steady state, deferred index errors, and the "no CUDA" messages. Every GPU case has the
// CudaDevicePresent precondition, so machines without a GPU report them skipped.
#include "tests/helpers.hpp"

#include <cmath>
#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include "runtime/backend.hpp"
#include "runtime/ops.hpp"
#include "tests/op_cases.hpp"
#ifdef JEBM_WITH_CUDA
#include "runtime/cuda/context.hpp"
#endif

using namespace jebm;
using jebm::test::all_close;
using jebm::test::eps_of;
using jebm::test::Tol;
namespace utf = boost::unit_test;

namespace {

// all_close, except that equal infinities and NaN against NaN count as equal (log-sum-exp of an all -inf row is
// -inf on both backends, NaN inputs give NaN).
bool matches(const Tensor& got, const Tensor& want, const Tol& t, const std::string& what) {
  if (got.shape() != want.shape()) return all_close(got, want, t.atol, t.rtol, what);
  std::vector<double> g = got.to_vector(), w = want.to_vector();
  for (size_t i = 0; i < g.size(); ++i)
    if (g[i] == w[i] || (std::isnan(g[i]) && std::isnan(w[i]))) g[i] = w[i] = 0.0;
  return all_close(g, w, t.atol, t.rtol, what);
}

// Frees, into the caching allocator, a few NaN-filled (int64: -7) blocks of each tensor's size and dtype: the next
// allocations of those sizes reuse them, so outputs of a run made after this start as NaN.
void poison_allocator(const std::vector<Tensor>& like) {
  std::vector<Tensor> blocks;
  for (const Tensor& t : like)
    for (int k = 0; k < 4; ++k)
      blocks.push_back(Tensor::full(t.shape(), t.dtype() == DType::Int64 ? -7.0 : std::nan(""), t.dtype(), t.device()));
}

// Every comparable row, on identical inputs: CPU ops vs CUDA ops, within the row's CUDA tolerance.
void run_table_cases() {
  int compared = 0;
  for (const test::OpCase& c : test::op_cases()) {
    if (!c.cuda_comparable) continue;
    for (DType dt : {DType::Float32, DType::Float64}) {
      const std::string what = c.family + " " + c.name + " [" + dtype_name(dt) + "]";
      std::vector<Tensor> cpu_in, gpu_in;
      for (size_t k = 0; k < c.shapes.size(); ++k) {
        cpu_in.push_back(Tensor::from_vector(test::op_case_input(c, k), c.shapes[k], dt));
        gpu_in.push_back(cpu_in.back().to(Device::cuda()));
      }
      std::vector<Tensor> want, got;
      try {
        want = c.run(cpu_in);
        poison_allocator(c.run(gpu_in));
        got = c.run(gpu_in);
      } catch (const std::exception& e) {
        BOOST_ERROR(what << " threw: " << e.what());
        continue;
      }
      BOOST_REQUIRE_EQUAL(want.size(), got.size());
      const Tol t = dt == DType::Float32 ? c.cuda32 : c.cuda64;
      for (size_t k = 0; k < want.size(); ++k) {
        const std::string w = what + " output " + std::to_string(k);
        BOOST_CHECK_MESSAGE(got[k].device().is_cuda(), w << ": CUDA output is not on the GPU");
        BOOST_CHECK_MESSAGE(matches(got[k], want[k], t, w),
                            w << ": CUDA differs from CPU beyond atol " << t.atol << ", rtol " << t.rtol);
      }
    }
    ++compared;
  }
  BOOST_TEST(compared > 100);
}

// Every unary op and its derivative at NaN, +-inf, huge, denormal and +-0 inputs: NaN where the CPU gives NaN, the
// same infinities, and finite values within a few ulps plus an absolute term: the smallest normal for values
// (float32's shared exp flushes below it, and FMA contraction may move a result across), one epsilon for the
// derivatives (1 - tanh^2 and s (1 - s) subtract from 1). Max and log-sum-exp with infinities: an all -inf row gives
// -inf, a +inf entry +inf.
void run_special_values() {
  for (DType dt : {DType::Float32, DType::Float64}) {
    const std::vector<double> xv = test::special_values(dt);
    const Shape shape{static_cast<int64_t>(xv.size())};
    const Tensor x = Tensor::from_vector(xv, shape, dt), ones = Tensor::ones(shape, dt);
    const Tensor xg = x.to(Device::cuda()), ones_g = ones.to(Device::cuda());
    const double tiny = dt == DType::Float32 ? std::numeric_limits<float>::min() : std::numeric_limits<double>::min();
    for (UnaryOp op : test::all_unary_ops()) {
      const std::string what = std::string(unary_op_name(op)) + " at special values [" + dtype_name(dt) + "]";
      BOOST_CHECK_MESSAGE(matches(unary(op, xg, 0.1), unary(op, x, 0.1), Tol{tiny, 8 * eps_of(dt)}, what),
                          what << ": CUDA differs from CPU");
      BOOST_CHECK_MESSAGE(matches(unary_backward(op, xg, ones_g, 0.1), unary_backward(op, x, ones, 0.1),
                                  Tol{eps_of(dt), 16 * eps_of(dt)}, what + " backward"),
                          what << " backward: CUDA differs from CPU");
      Tensor dg, d;
      const Tensor yg = unary_with_derivative(op, xg, dg, 0.1), y = unary_with_derivative(op, x, d, 0.1);
      BOOST_CHECK_MESSAGE(matches(yg, y, Tol{tiny, 8 * eps_of(dt)}, what + " with derivative") &&
                              matches(dg, d, Tol{eps_of(dt), 16 * eps_of(dt)}, what + " with derivative"),
                          what << " with derivative: CUDA differs from CPU");
    }
    const double inf = std::numeric_limits<double>::infinity();
    const Tensor r = Tensor::from_vector(std::vector<double>{-inf, -inf, -inf, 1.0, -inf, 2.0, 0.5, inf, -3.0}, {3, 3},
                                         dt);
    for (ReduceOp op : {ReduceOp::Max, ReduceOp::LogSumExp}) {
      const std::string what = std::string(reduce_op_name(op)) + " at special values [" + dtype_name(dt) + "]";
      BOOST_CHECK_MESSAGE(matches(reduce(op, r.to(Device::cuda()), 1), reduce(op, r, 1), Tol{0, 2 * eps_of(dt)}, what),
                          what << ": CUDA differs from CPU");
    }
  }
}

}  // namespace

// ---------------------------------------------------------------------------------------------------------

BOOST_AUTO_TEST_SUITE(cuda_vs_cpu)

BOOST_AUTO_TEST_CASE(op_table, *utf::precondition(jebm::test::CudaDevicePresent())) { run_table_cases(); }
BOOST_AUTO_TEST_CASE(special_values, *utf::precondition(jebm::test::CudaDevicePresent())) { run_special_values(); }

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(cuda_context)

BOOST_AUTO_TEST_CASE(transfers_round_trip, *utf::precondition(jebm::test::CudaDevicePresent())) {
  std::vector<double> v(1000);
  for (size_t i = 0; i < v.size(); ++i) v[i] = std::sin(static_cast<double>(i)) * 1e3;
  for (DType dt : {DType::Float32, DType::Float64, DType::Int64}) {
    Tensor h = Tensor::from_vector(v, {10, 100}, dt);
    Tensor d = h.to(Device::cuda());
    BOOST_TEST(d.device().is_cuda());
    BOOST_TEST(all_close(d.to(Device::cpu()), h, 0, 0, "round trip"));
    // A row view of a device tensor copies from its offset.
    BOOST_TEST(all_close(d.rows(3, 5).to(Device::cpu()), h.rows(3, 5), 0, 0, "rows view"));
    Tensor c = d.clone();
    BOOST_TEST(!c.same_storage(d));
    BOOST_TEST(all_close(c, h, 0, 0, "clone"));
  }
}

BOOST_AUTO_TEST_CASE(ops_layer_dispatches_to_cuda, *utf::precondition(jebm::test::CudaDevicePresent())) {
  Tensor a = Tensor::from_vector(std::vector<double>{1, 2, 3, 4, 5, 6}, {2, 3}, DType::Float64);
  Tensor b = Tensor::from_vector(std::vector<double>{1, 0, -1, 2, 0.5, 1}, {3, 2}, DType::Float64);
  const Device gpu = Device::cuda();
  Tensor c = matmul(a.to(gpu), b.to(gpu));
  BOOST_TEST(c.device().is_cuda());
  BOOST_TEST(all_close(c.to(Device::cpu()), matmul(a, b), 0, 0, "matmul"));
  Tensor s = sum_all(exp(a.to(gpu)));
  BOOST_TEST(all_close(s.to(Device::cpu()), sum_all(exp(a)), 1e-13, 1e-15, "sum(exp)"));
  Generator g1{5, 0}, g2{5, 0};
  Tensor r = rand_normal({1000}, 0.0, 1.0, g1, DType::Float64, gpu);
  BOOST_TEST(all_close(r.to(Device::cpu()), rand_normal({1000}, 0.0, 1.0, g2, DType::Float64), 1e-14, 1e-14, "rand"));
}

#ifdef JEBM_WITH_CUDA
BOOST_AUTO_TEST_CASE(allocator_steady_state, *utf::precondition(jebm::test::CudaDevicePresent())) {
  // A training-loop-like pattern: after one warm-up iteration, no cudaMalloc and never a cudaFree.
  auto iteration = [] {
    Tensor x = Tensor::ones({512, 300}, DType::Float32, Device::cuda());
    Tensor y = add(x, x);
    Tensor z = matmul(y, y, false, true);
    return sum_all(z).item();
  };
  const double first = iteration();
  const auto before = jebm::cuda::allocator_stats();
  for (int i = 0; i < 20; ++i) BOOST_TEST(iteration() == first);
  const auto after = jebm::cuda::allocator_stats();
  BOOST_TEST(after.malloc_calls == before.malloc_calls);
  BOOST_TEST(after.free_calls == before.free_calls);
  BOOST_TEST(after.bytes_in_use == before.bytes_in_use);
}

BOOST_AUTO_TEST_CASE(bad_index_reported_at_next_sync, *utf::precondition(jebm::test::CudaDevicePresent())) {
  Tensor x = Tensor::zeros({4, 3}, DType::Float32, Device::cuda());
  Tensor idx = Tensor::from_vector(std::vector<int64_t>{0, 9, 1}, {3}, Device::cuda());
  Tensor y = Tensor::empty({3, 3}, DType::Float32, Device::cuda());
  jebm::cuda::gather_rows(x, idx, y);
  bool thrown = false;
  try {
    (void)y.to_vector();
  } catch (const jebm::Error& e) {
    thrown = true;
    const std::string msg = e.what();
    BOOST_TEST_MESSAGE(msg);
    BOOST_TEST(msg.find("gather_rows") != std::string::npos);
    BOOST_TEST(msg.find("index 9 at position 1") != std::string::npos);
  }
  BOOST_TEST(thrown);
  BOOST_TEST(y.to_vector().size() == 9u);  // reported once, then cleared
}
#endif

BOOST_AUTO_TEST_CASE(require_names_the_reason) {
  // Runs everywhere: without a device, asking for one says why instead of crashing.
  if (cuda_api::available()) {
    BOOST_TEST(cuda_api::device_count() > 0);
    BOOST_TEST(cuda_api::device_name(0) != "none");
    return;
  }
  BOOST_TEST(cuda_api::device_count() == 0);
  try {
    Tensor::zeros({2}, DType::Float32, Device::cuda());
    BOOST_ERROR("allocating a CUDA tensor without a device did not throw");
  } catch (const jebm::Error& e) {
    const std::string msg = e.what();
    BOOST_TEST_MESSAGE(msg);
    BOOST_TEST((msg.find("no CUDA device") != std::string::npos || msg.find("without the CUDA backend") != std::string::npos));
  }
}

BOOST_AUTO_TEST_SUITE_END()
