// runtime/comm: every collective of the process's communicator (single process under plain ctest, MPI when
// CTest launches it with mpirun -np 2 / -np 3), the option-hash check naming the ranks that differ, sharding and
// its errors, the collective watchdog, and NCCL on a device buffer (skipped without NCCL or a GPU). The CTest
// cases test_comm_timeout and test_comm_dead_rank run `hung_rank_ends_the_job` under mpirun (a rank that hangs,
// a rank that exits) and expect the job to end with the watchdog's or mpirun's message.
// GCC 12 at -O3 reports a false "used uninitialized" inside boost::function when utf::precondition is inlined into
// this translation unit (boost/function/function_template.hpp); the warning is about Boost's code, not ours.
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdlib>
#include <numeric>
#include <string>
#include <thread>

#include "runtime/comm/communicator.hpp"
#include "runtime/comm/watchdog.hpp"
#include "runtime/cuda_api.hpp"
#include "runtime/tensor.hpp"
#include "tests/helpers.hpp"

using namespace jebm;
namespace utf = boost::unit_test;

namespace {

// Preconditions that report "skipped" with the reason.
struct EnvSet {
  const char* var;
  boost::test_tools::assertion_result operator()(utf::test_unit_id) const {
    if (std::getenv(var)) return true;
    std::cerr << "skipped: " << var << " is not set (the test_comm_timeout/_dead_rank CTest cases set it)\n";
    boost::test_tools::assertion_result r(false);
    r.message() << "skipped: " << var << " is not set";
    return r;
  }
};
struct NcclUsable {
  boost::test_tools::assertion_result operator()(utf::test_unit_id) const {
    // NCCL refuses two ranks on one GPU ("Duplicate GPU detected"): mpirun -np 2 on a one-GPU machine skips.
    const int ranks = world().size(), gpus = cuda_api::device_count();
    if (comm_nccl_built() && gpus >= ranks) return true;
    const std::string why = !comm_nccl_built() ? "skipped: NCCL not built"
                            : gpus == 0      ? "skipped: no CUDA device"
                                             : "skipped: " + std::to_string(ranks) + " ranks but " +
                                                   std::to_string(gpus) + " GPU(s); NCCL needs one GPU per rank";
    std::cerr << why << "\n";
    boost::test_tools::assertion_result r(false);
    r.message() << why;
    return r;
  }
};
// Checks that need ranks to compare: skipped under plain ctest (one process), run by the _np2/_np3 CTest cases.
struct SeveralRanks {
  boost::test_tools::assertion_result operator()(utf::test_unit_id) const {
    return test::skip_unless(world().size() >= 2, "one rank cannot differ from itself (run under mpirun -np 2 or 3)");
  }
};

}  // namespace

BOOST_AUTO_TEST_CASE(world_matches_the_launcher) {
  Communicator& c = world();
  BOOST_TEST_MESSAGE("backend " << c.backend() << ", rank " << c.rank() << " of " << c.size());
  BOOST_TEST(c.size() >= 1);
  BOOST_TEST((c.rank() >= 0 && c.rank() < c.size()));
  if (const char* n = std::getenv("OMPI_COMM_WORLD_SIZE")) {
    BOOST_TEST(std::string(c.backend()) == "mpi");
    BOOST_TEST(c.size() == std::atoi(n));
    BOOST_TEST(c.rank() == std::atoi(std::getenv("OMPI_COMM_WORLD_RANK")));
  } else {
    BOOST_TEST(std::string(c.backend()) == "single");
  }
}

// Integer-valued floats: their sums are exact, so the expected values do not depend on the reduction order.
BOOST_AUTO_TEST_CASE(allreduce_sum_and_max_every_type) {
  Communicator& c = world();
  const int64_t r = c.rank(), n = c.size();
  int64_t i[2] = {r + 1, 10 * r};
  float f[2] = {static_cast<float>(r + 1), -static_cast<float>(r)};
  double d[2] = {0.5 * static_cast<double>(r), 1e300 * static_cast<double>(r % 2)};
  c.allreduce(i, 2, CommReduce::Sum);
  c.allreduce(f, 2, CommReduce::Max);
  c.allreduce(d, 2, CommReduce::Sum);
  BOOST_TEST(i[0] == n * (n + 1) / 2);
  BOOST_TEST(i[1] == 10 * n * (n - 1) / 2);
  BOOST_TEST(f[0] == static_cast<float>(n));
  BOOST_TEST(f[1] == 0.0f);
  BOOST_TEST(d[0] == 0.25 * static_cast<double>(n * (n - 1)));
  BOOST_TEST(c.allreduce_value(static_cast<double>(r), CommReduce::Max) == static_cast<double>(n - 1));
  BOOST_TEST(d[1] == 1e300 * static_cast<double>(n / 2));
}

BOOST_AUTO_TEST_CASE(gathers_broadcast_alltoallv_barrier) {
  Communicator& c = world();
  const int r = c.rank(), n = c.size();
  const std::vector<int64_t> ranks = c.allgather_value(static_cast<int64_t>(r));
  for (int q = 0; q < n; ++q) BOOST_TEST(ranks[static_cast<size_t>(q)] == q);

  // Uneven: rank q sends q + 1 doubles q, q + 0.5, ...
  std::vector<int64_t> counts(static_cast<size_t>(n));
  std::iota(counts.begin(), counts.end(), int64_t{1});
  std::vector<double> mine(static_cast<size_t>(r + 1));
  for (size_t j = 0; j < mine.size(); ++j) mine[j] = r + 0.5 * static_cast<double>(j);
  std::vector<double> all(static_cast<size_t>(std::accumulate(counts.begin(), counts.end(), int64_t{0})));
  c.allgatherv(mine.data(), all.data(), counts, CommType::Float64);
  size_t at = 0;
  for (int q = 0; q < n; ++q)
    for (int j = 0; j <= q; ++j) BOOST_TEST(all[at++] == q + 0.5 * j);
  // In place: the same parts, each rank writing only its own (the others' places hold -1 until the gather).
  std::vector<double> in_place(all.size(), -1.0);
  std::copy(mine.begin(), mine.end(), in_place.begin() + r * (r + 1) / 2);
  c.allgatherv_in_place(in_place.data(), counts, CommType::Float64);
  BOOST_TEST(in_place == all, boost::test_tools::per_element());

  uint8_t bytes[3] = {0, 0, 0};
  if (r == n - 1) bytes[0] = 7, bytes[1] = 8, bytes[2] = 9;
  c.broadcast(bytes, 3, CommType::Byte, n - 1);
  BOOST_TEST((bytes[0] == 7 && bytes[1] == 8 && bytes[2] == 9));

  // alltoallv: rank r sends d + 1 values (1000 r + d) to rank d; rank r receives q... from each q, r + 1 of them.
  std::vector<int64_t> sc(static_cast<size_t>(n)), rc(static_cast<size_t>(n), r + 1), send, recv;
  for (int d = 0; d < n; ++d) {
    sc[static_cast<size_t>(d)] = d + 1;
    for (int j = 0; j <= d; ++j) send.push_back(1000 * r + d);
  }
  recv.resize(static_cast<size_t>(n) * static_cast<size_t>(r + 1));
  c.alltoallv(send.data(), sc, recv.data(), rc, CommType::Int64);
  for (int q = 0; q < n; ++q)
    for (int j = 0; j <= r; ++j) BOOST_TEST(recv[static_cast<size_t>(q * (r + 1) + j)] == 1000 * q + r);
  c.barrier();
}

BOOST_AUTO_TEST_CASE(option_hash_check_passes_equal_options) {
  check_same_on_all_ranks(world(), "options", "--walkers 4096 --seed 1 | jebm 0.1.0");  // same everywhere
  BOOST_TEST(comm_hash("a") != comm_hash("b"));
}

BOOST_AUTO_TEST_CASE(option_hash_check_names_the_ranks_that_differ, *utf::precondition(SeveralRanks())) {
  Communicator& c = world();
  const std::string text = c.rank() == 1 ? "--seed 2" : "--seed 1";
  test::expect_error([&] { check_same_on_all_ranks(c, "resolved options", text); },
                     {"resolved options differ", "rank(s) 1 of " + std::to_string(c.size())});
}

BOOST_AUTO_TEST_CASE(shards_cover_evenly_and_refuse_too_many_ranks) {
  for (int size : {1, 2, 3, 7}) {
    for (int64_t n : {int64_t{7}, int64_t{10}, int64_t{4096}}) {
      if (n < size) continue;
      int64_t next = 0;
      for (int r = 0; r < size; ++r) {
        const Shard s = shard_of(n, r, size, "walkers");
        BOOST_TEST(s.offset == next);
        BOOST_TEST((s.count == n / size || s.count == n / size + 1));
        next += s.count;
      }
      BOOST_TEST(next == n);
    }
  }
  test::expect_error([] { shard_of(2, 0, 3, "walkers"); }, {"walkers: 2 cannot be shared by 3 ranks", "mpirun -np"});
}

// split_starts: contiguous ranges covering [0, n) in rank order, sizes differing by at most one, empty ones allowed.
BOOST_AUTO_TEST_CASE(split_starts_cover_the_items_and_allow_empty_ranks) {
  for (int size : {1, 2, 3, 7}) {
    for (int64_t n : {int64_t{0}, int64_t{2}, int64_t{7}, int64_t{4096}}) {
      const std::vector<int64_t> s = split_starts(n, size);
      BOOST_REQUIRE_EQUAL(s.size(), static_cast<size_t>(size) + 1);
      BOOST_TEST(s.front() == 0);
      BOOST_TEST(s.back() == n);
      for (int r = 0; r < size; ++r) {
        const int64_t c = s[static_cast<size_t>(r) + 1] - s[static_cast<size_t>(r)];
        BOOST_TEST((c == n / size || c == n / size + 1), "n " << n << " size " << size << " rank " << r);
      }
    }
  }
  test::expect_error([] { split_starts(5, 0); }, {"split_starts: 5 items over 0 ranks"});
}

BOOST_AUTO_TEST_CASE(watchdog_fires_once_for_a_stuck_call_only) {
  std::atomic<int> fired{0};
  std::string what;
  {
    CollectiveWatchdog w(0.05, [&](const std::string& call, double waited) {
      what = call;
      BOOST_CHECK(waited >= 0.05);
      ++fired;
    });
    for (int i = 0; i < 20; ++i) CollectiveWatchdog::Scope quick(w, "quick");  // never near the timeout
    BOOST_TEST(fired.load() == 0);
    CollectiveWatchdog::Scope stuck(w, "MPI_Allreduce");
    for (int i = 0; i < 200 && fired.load() == 0; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(10));
    std::this_thread::sleep_for(std::chrono::milliseconds(150));  // a second report would come within this
  }
  BOOST_TEST(fired.load() == 1);
  BOOST_TEST(what == "MPI_Allreduce");
}

// Under mpirun with JEBM_TEST_HANG_RANK=k: rank k stops making calls while the others wait in a barrier.
// JEBM_COMM_TIMEOUT_S=2 (CTest test_comm_timeout): their watchdog must end them with its message, and mpirun
// then ends rank k. With JEBM_TEST_DIE=1 too (CTest test_comm_dead_rank), rank k exits with status 3 instead and
// mpirun must end the waiting ranks at once (the launcher's own behaviour, well before the watchdog's 600 s).
BOOST_AUTO_TEST_CASE(hung_rank_ends_the_job, *utf::precondition(EnvSet{"JEBM_TEST_HANG_RANK"})) {
  Communicator& c = world();
  BOOST_TEST_REQUIRE(c.size() >= 2);
  if (c.rank() == std::atoi(std::getenv("JEBM_TEST_HANG_RANK"))) {
    if (std::getenv("JEBM_TEST_DIE")) std::_Exit(3);
    std::this_thread::sleep_for(std::chrono::seconds(120));
    BOOST_ERROR("the hung rank was not ended by the launcher within 120 s");
  } else {
    c.barrier();
    BOOST_ERROR("the barrier returned although one rank never entered it");
  }
}

// The image runs' choice of NCCL (no GPU needed: the ranks of a CTest job share one machine and name device 0).
BOOST_AUTO_TEST_CASE(nccl_is_not_used_by_one_rank_or_by_ranks_that_share_a_gpu) {
  Communicator& c = world();
  std::string why;
  BOOST_TEST(!make_nccl_communicator_if_usable(c, 0, &why));
  BOOST_TEST(why == (c.size() == 1 ? "one rank" : "ranks share a GPU (NCCL needs one GPU per rank)"));
}

BOOST_AUTO_TEST_CASE(nccl_collectives_on_device_buffers, *utf::precondition(NcclUsable())) {
  Communicator& host = world();
  const int n = host.size(), r = host.rank();
  std::unique_ptr<Communicator> nccl = make_nccl_communicator(host, r);  // one GPU per rank (the precondition)
  BOOST_TEST(nccl->device_buffers());
  BOOST_TEST(nccl->size() == host.size());
  Tensor x = Tensor::from_vector(std::vector<double>{1.0 + r, 2.0 * r}, {2}, DType::Float64, Device::cuda(r));
  nccl->allreduce(x.raw_data(), 2, CommType::Float64, CommReduce::Sum);
  Tensor g = Tensor::empty({n}, DType::Float64, Device::cuda(r));
  Tensor mine = Tensor::full({1}, static_cast<double>(r), DType::Float64, Device::cuda(r));
  nccl->allgather(mine.raw_data(), 1, g.raw_data(), CommType::Float64);
  // In place, uneven: rank q's q + 1 values 10 q + j at their place; the other places start at -1.
  std::vector<int64_t> counts(static_cast<size_t>(n));
  std::iota(counts.begin(), counts.end(), int64_t{1});
  std::vector<double> parts(static_cast<size_t>(n * (n + 1) / 2), -1.0), expect;
  for (int q = 0; q < n; ++q)
    for (int j = 0; j <= q; ++j) {
      expect.push_back(10.0 * q + j);
      if (q == r) parts[static_cast<size_t>(q * (q + 1) / 2 + j)] = 10.0 * q + j;
    }
  Tensor v = Tensor::from_vector(parts, {static_cast<int64_t>(parts.size())}, DType::Float64, Device::cuda(r));
  nccl->allgatherv_in_place(v.raw_data(), counts, CommType::Float64);
  nccl->barrier();
  BOOST_TEST(v.to_vector() == expect, boost::test_tools::per_element());
  const std::vector<double> xs = x.to_vector(), gs = g.to_vector();
  BOOST_TEST(xs[0] == 0.5 * n * (n + 1));
  BOOST_TEST(xs[1] == static_cast<double>(n * (n - 1)));
  for (int q = 0; q < n; ++q) BOOST_TEST(gs[static_cast<size_t>(q)] == static_cast<double>(q));
}
