// samplers/distributed: weight statistics, column sums and global resampling (plan and row exchange) over walkers
// sharded across the ranks of world() (CTest runs this at np 1, and with mpirun at np 2 and 3: uneven shards,
// blocks straddling shards, shards inside one block). Every rank regenerates the whole population from Philox and
// computes the one-process answer with the single-process communicator; the sharded answer must equal it bit for
// bit. The one-process answer is checked against samplers/walkers.hpp and samplers/resampling.hpp too.
#include <cmath>
#include <cstring>
#include <numeric>

#include "runtime/comm/communicator.hpp"
#include "runtime/philox.hpp"
#include "samplers/distributed.hpp"
#include "samplers/resampling.hpp"
#include "samplers/walkers.hpp"
#include "tests/helpers.hpp"

using namespace jebm;

namespace {

// Global log-weights with a wide spread (exp underflows for many of them without the max shift).
std::vector<double> global_log_weights(int64_t n, double spread, uint64_t seed) {
  std::vector<double> a(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) {
    double z0, z1;
    philox_normal2(seed, static_cast<uint64_t>(i), 0, &z0, &z1);
    a[static_cast<size_t>(i)] = spread * z0;
  }
  return a;
}

bool same_bits(double a, double b) { return std::memcmp(&a, &b, sizeof a) == 0; }

bool same_bits(const std::vector<double>& a, const std::vector<double>& b) {
  return a.size() == b.size() && (a.empty() || std::memcmp(a.data(), b.data(), a.size() * sizeof(double)) == 0);
}

// This rank's shard of n walkers, and the one-process layout of all of them.
struct Setup {
  Communicator& comm = world();
  std::unique_ptr<Communicator> single = make_single_process_communicator();
  Shard shard;
  ShardLayout layout, whole;
  explicit Setup(int64_t n) {
    shard = shard_of(n, comm.rank(), comm.size(), "walkers");
    layout = gather_shard_layout(comm, shard.offset, shard.count);
    whole = gather_shard_layout(*single, 0, n);
  }
};

// The sizes: straddling blocks at np 2/3 (1000, 4096 + 17), shards inside one block (5), one walker per rank (3).
const int64_t kSizes[] = {3, 5, 1000, 4096 + 17};

}  // namespace

BOOST_AUTO_TEST_CASE(weight_stats_equal_one_process_bit_for_bit) {
  for (int64_t n : kSizes) {
    for (double spread : {0.0, 1.0, 40.0}) {
      Setup s(n);
      const std::vector<double> a = global_log_weights(n, spread, 11);
      const WeightStats got = distributed_weight_stats(s.comm, s.layout, a.data() + s.shard.offset);
      const WeightStats ref = distributed_weight_stats(*s.single, s.whole, a.data());
      BOOST_TEST_CONTEXT("n " << n << " spread " << spread << " rank " << s.comm.rank() << " of " << s.comm.size()) {
        BOOST_TEST(same_bits(got.log_sum, ref.log_sum));
        BOOST_TEST(same_bits(got.log_mean, ref.log_mean));
        BOOST_TEST(same_bits(got.ess, ref.ess));
        BOOST_TEST(same_bits(got.cv2, ref.cv2));
        // The one-process answer is the sequential one of walkers.cpp up to the summation order.
        const WeightStats seq = weight_stats(a.data(), n);
        BOOST_TEST(test::all_close({ref.log_sum, ref.log_mean, ref.ess, ref.cv2 + 1.0},
                                   {seq.log_sum, seq.log_mean, seq.ess, seq.cv2 + 1.0}, 0.0, 1e-12, "stats"));
      }
    }
  }
}

BOOST_AUTO_TEST_CASE(column_sums_equal_one_process_bit_for_bit) {
  for (int64_t n : kSizes) {
    Setup s(n);
    const int64_t k = 3;
    std::vector<double> f(static_cast<size_t>(n * k));
    for (int64_t i = 0; i < n; ++i)
      for (int64_t c = 0; c < k; ++c)
        f[static_cast<size_t>(i * k + c)] = std::sin(0.1 * static_cast<double>(i + 7 * c));
    const std::vector<double> got =
        distributed_sums(s.comm, s.layout, f.data() + static_cast<size_t>(s.shard.offset * k), k);
    const std::vector<double> ref = distributed_sums(*s.single, s.whole, f.data(), k);
    BOOST_TEST(same_bits(got, ref), "column sums, n " << n);
    std::vector<double> direct(static_cast<size_t>(k), 0.0);
    for (int64_t i = 0; i < n; ++i)
      for (int64_t c = 0; c < k; ++c) direct[static_cast<size_t>(c)] += f[static_cast<size_t>(i * k + c)];
    BOOST_TEST(test::all_close(ref, direct, 1e-12, 1e-12, "column sums vs direct"));
  }
}

BOOST_AUTO_TEST_CASE(resampling_plans_equal_one_process) {
  for (int64_t n : kSizes) {
    for (ResampleScheme scheme : {ResampleScheme::Systematic, ResampleScheme::Multinomial}) {
      Setup s(n);
      const std::vector<double> a = global_log_weights(n, 2.0, 13);
      const double u = 0.37;
      const ResamplePlan got =
          plan_resampling(s.comm, s.layout, a.data() + s.shard.offset, scheme, u, 99, 5);
      const ResamplePlan ref = plan_resampling(*s.single, s.whole, a.data(), scheme, u, 99, 5);
      BOOST_TEST_CONTEXT("n " << n << " " << resample_scheme_name(scheme) << " rank " << s.comm.rank()) {
        const std::vector<int64_t> mine(ref.ancestors.begin() + s.shard.offset,
                                        ref.ancestors.begin() + s.shard.offset + s.shard.count);
        BOOST_TEST(got.ancestors == mine, boost::test_tools::per_element());
        BOOST_TEST(s.comm.allreduce_value(static_cast<int64_t>(got.send_rows.size()), CommReduce::Sum) == n);
        BOOST_TEST(ref.rows_moved == 0);
        // The one-process draw of samplers/resampling.hpp: same rule, sums in another order.
        const std::vector<double> w = normalized_weights(a);
        const std::vector<int64_t> seq = scheme == ResampleScheme::Systematic ? systematic_ancestors(w, u)
                                                                                : multinomial_ancestors(w, 99, 5);
        BOOST_TEST(ref.ancestors == seq, boost::test_tools::per_element());
      }
    }
  }
}

// The sharded resampling of the GMM runs (samplers/gmm_step.cpp): plan_population_resampling, then each walker's
// row travels from its ancestor's rank by exchange_rows.
BOOST_AUTO_TEST_CASE(resampled_rows_equal_one_process) {
  for (int64_t n : kSizes) {
    for (ResampleScheme scheme : {ResampleScheme::Systematic, ResampleScheme::Multinomial}) {
      Setup s(n);
      const std::vector<double> a = global_log_weights(n, 1.5, 14);
      // Positions [n, 2]: (i, -i / 3) for global walker i, so every row says where it came from.
      auto population = [&](int64_t lo, int64_t count) {
        std::vector<double> x;
        for (int64_t i = lo; i < lo + count; ++i) x.insert(x.end(), {static_cast<double>(i), -static_cast<double>(i) / 3});
        WalkerPopulation p = WalkerPopulation::create(Tensor::from_vector(x, {count, 2}, DType::Float64), 21, 0.25);
        std::copy(a.begin() + lo, a.begin() + lo + count, p.log_w.data<double>());
        p.resamplings = 3;
        p.first_index = lo;
        return p;
      };
      const WalkerPopulation local = population(s.shard.offset, s.shard.count);
      double log_mean = 0.0;
      const ResamplePlan plan = plan_population_resampling(s.comm, s.layout, local, scheme, &log_mean);
      Tensor moved = Tensor::empty({s.shard.count, 2}, DType::Float64);
      exchange_rows(s.comm, plan, local.x.raw_data(), 2 * sizeof(double), moved.raw_data());
      BOOST_TEST_CONTEXT("n " << n << " " << resample_scheme_name(scheme) << " rank " << s.comm.rank() << " of "
                              << s.comm.size()) {
        const std::vector<double> xl = moved.to_vector();
        for (int64_t i = 0; i < s.shard.count; ++i)
          BOOST_TEST(xl[static_cast<size_t>(2 * i)] == static_cast<double>(plan.ancestors[static_cast<size_t>(i)]));
        // The one-process population resampler draws the same ancestors (same Philox key and offset) and folds
        // the same log mean exp(A) into the offset.
        WalkerPopulation seq = population(0, n);
        const double offset_before = seq.log_z_offset;
        resample_population(seq, draw_population_ancestors(seq, scheme));
        const std::vector<double> xs = seq.x.to_vector();
        BOOST_TEST(same_bits(xl, std::vector<double>(xs.begin() + 2 * s.shard.offset,
                                                     xs.begin() + 2 * (s.shard.offset + s.shard.count))));
        BOOST_TEST(std::fabs(offset_before + log_mean - seq.log_z_offset) <= 1e-12 * std::fabs(seq.log_z_offset));
      }
    }
  }
}

BOOST_AUTO_TEST_CASE(sharded_resampling_refuses_device_walkers, *boost::unit_test::precondition(test::CudaDevicePresent())) {
  Setup s(4);
  WalkerPopulation p = WalkerPopulation::create(Tensor::zeros({s.shard.count, 2}, DType::Float64, Device::cuda(0)), 1);
  p.first_index = s.shard.offset;
  test::expect_error([&] { plan_population_resampling(s.comm, s.layout, p, ResampleScheme::Systematic, nullptr); },
                     {"distributed resampling: the population is on cuda:0", "sharded walkers live on the CPU"});
}

BOOST_AUTO_TEST_CASE(layouts_that_are_not_contiguous_fail_on_every_rank) {
  Communicator& c = world();
  const Shard sh = shard_of(10, c.rank(), c.size(), "walkers");
  test::expect_error([&] { gather_shard_layout(c, sh.offset + 1, sh.count); },
                     {"shard layout: rank 0 holds [1, ", "contiguous in rank order"});
}
