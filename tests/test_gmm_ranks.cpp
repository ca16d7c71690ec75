// GCC 12 at -O3: a false "used uninitialized" inside boost::function when utf::precondition is inlined (as in
// tests/test_comm.cpp).
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
// `jebm gmm` sharded over ranks: GmmTrainer on world() against GmmTrainer on a single-process
// communicator in the same process, bit for bit. CTest runs this suite alone (world() of one rank: the sharded
// code against itself, and the shard helpers' errors) and under mpirun at 2 and 3 ranks (uneven shards, a short
// last block, resampling that moves walkers between ranks, all three algorithms, held-out blocks split over the
// ranks, one rank without any).
#include <cmath>
#include <cstring>
#include <string>

#include "runtime/comm/communicator.hpp"
#include "samplers/distributed.hpp"
#include "samplers/gmm_training.hpp"
#include "tests/helpers.hpp"

using namespace jebm;

namespace {

bool same_bits(double a, double b) { return std::memcmp(&a, &b, sizeof a) == 0; }

bool same_bits(const std::vector<double>& a, const std::vector<double>& b) {
  return a.size() == b.size() && (a.empty() || std::memcmp(a.data(), b.data(), a.size() * sizeof(double)) == 0);
}

// Every number a record carries, in a fixed order (NaN fields compare by their bits too).
std::vector<double> fields(const GmmRecord& r) {
  std::vector<double> v = {static_cast<double>(r.iteration), r.exact_ce, r.log_z_exact, r.ess, r.jarzynski_ce,
                           r.log_z_estimate, r.jarzynski_ce_raw, r.log_z_estimate_raw, r.log_z_correction,
                           r.jarzynski_ce_var, r.log_z_correction_var, r.holdout_ce, r.holdout_log_z, r.holdout_se,
                           r.holdout_ess, static_cast<double>(r.holdout_resamplings),
                           static_cast<double>(r.resamplings), r.resampled ? 1.0 : 0.0};
  v.insert(v.end(), r.weights.begin(), r.weights.end());
  v.insert(v.end(), r.mean_errors.begin(), r.mean_errors.end());
  return v;
}

// A small run whose weights spread fast (large learning rates, low resampling threshold): 700 walkers are 11
// blocks of 64, the last one short; 900 data rows are 4 blocks of 256.
GmmConfig small_config(ResampleScheme scheme) {
  GmmConfig c;
  c.dim = 5;
  c.data = 900;
  c.walkers = 700;
  c.iterations = 60;
  c.lr_means = 2.0;
  c.lr_z = 5.0;
  c.resample_rule.scheme = scheme;
  c.resample_rule.cv2_max = 0.02;
  return c;
}

}  // namespace

BOOST_AUTO_TEST_CASE(sharded_runs_equal_one_process_bit_for_bit) {
  Communicator& comm = world();
  struct Case {
    Algorithm algo;
    ResampleScheme scheme;
    int64_t holdout, blocks;  // held-out walkers in blocks (2 blocks on 3 ranks: a rank holds none)
  };
  const Case cases[] = {{Algorithm::Jarzynski, ResampleScheme::Systematic, 40, 4},
                        {Algorithm::Jarzynski, ResampleScheme::Multinomial, 20, 2},
                        {Algorithm::Pcd, ResampleScheme::Systematic, 0, 1},
                        {Algorithm::Cd, ResampleScheme::Systematic, 0, 1}};
  for (const Case& k : cases) {
    GmmConfig c = small_config(k.scheme);
    c.holdout_walkers = k.holdout;
    c.holdout_blocks = k.blocks;
    const GmmParams teacher = gmm_teacher(c);
    const Tensor data = gmm_teacher_data(c, teacher);
    std::unique_ptr<Communicator> single = make_single_process_communicator();
    GmmTrainer sharded(c, k.algo, data, teacher, &comm), whole(c, k.algo, data, teacher, single.get());
    BOOST_TEST_CONTEXT(algorithm_name(k.algo) << " " << resample_scheme_name(k.scheme) << ", rank " << comm.rank()
                                              << " of " << comm.size()) {
      int64_t resampled = 0, mismatched = 0;
      for (int64_t it = 0; it < c.iterations; ++it) {
        const GmmRecord a = sharded.iterate(), b = whole.iterate();
        resampled += a.resampled;
        if (!same_bits(fields(a), fields(b)) && mismatched++ == 0)
          BOOST_ERROR("records differ first at iteration " << it);
      }
      BOOST_TEST(mismatched == 0);
      BOOST_TEST(same_bits(fields(sharded.final_record()), fields(whole.final_record())));
      if (k.algo == Algorithm::Jarzynski) BOOST_TEST(resampled > 3);
      BOOST_TEST(same_bits(sharded.params().a, whole.params().a));
      BOOST_TEST(same_bits(sharded.params().z, whole.params().z));
      // This rank's walkers are the one-process walkers [first_index, first_index + count).
      const WalkerPopulation& mine = sharded.walkers();
      const Shard expect = chunk_shard(c.walkers, kGmmWalkerChunk, comm.rank(), comm.size(), "walkers");
      BOOST_TEST(mine.first_index == expect.offset);
      BOOST_TEST(mine.size() == expect.count);
      const std::vector<double> all_x = whole.walkers().x.to_vector(), all_a = whole.walkers().log_w.to_vector();
      const size_t o = static_cast<size_t>(mine.first_index), n = static_cast<size_t>(mine.size()), d = 5;
      BOOST_TEST(same_bits(mine.x.to_vector(), std::vector<double>(all_x.begin() + static_cast<std::ptrdiff_t>(o * d),
                                                                   all_x.begin() + static_cast<std::ptrdiff_t>((o + n) * d))));
      BOOST_TEST(same_bits(mine.log_w.to_vector(), std::vector<double>(all_a.begin() + static_cast<std::ptrdiff_t>(o),
                                                                       all_a.begin() + static_cast<std::ptrdiff_t>(o + n))));
      BOOST_TEST(same_bits(mine.log_z_offset, whole.walkers().log_z_offset));
    }
  }
}

BOOST_AUTO_TEST_CASE(chunk_shards_cover_the_items_in_whole_blocks) {
  for (int size : {1, 2, 3, 5}) {
    for (int64_t n : {int64_t{700}, int64_t{64 * 5}, int64_t{64 * 5 + 1}, int64_t{10000}}) {
      int64_t at = 0;
      for (int r = 0; r < size; ++r) {
        const Shard s = chunk_shard(n, 64, r, size, "walkers");
        BOOST_TEST(s.offset == at);
        BOOST_TEST(s.offset % 64 == 0);
        BOOST_TEST(s.count > 0);
        at += s.count;
      }
      BOOST_TEST(at == n, "n " << n << " size " << size);
    }
  }
}

BOOST_AUTO_TEST_CASE(too_many_ranks_for_the_blocks_is_a_clear_error) {
  // 130 walkers are 3 blocks of 64: 4 ranks cannot each get one.
  BOOST_CHECK_EXCEPTION(chunk_shard(130, 64, 0, 4, "walkers"), Error, [](const Error& e) {
    const std::string m = e.what();
    return m.find("walkers: 130 make 3 block(s) of 64, fewer than the 4 ranks") != std::string::npos &&
           m.find("at least 193 walkers") != std::string::npos;
  });
}

// Boost.Test precondition: the process is one of several MPI ranks (CTest's mpirun runs of this suite).
struct SeveralRanks {
  boost::test_tools::assertion_result operator()(boost::unit_test::test_unit_id) const {
    return test::skip_unless(world().size() > 1, "one rank: the refusal needs several (the _np2/_np3 runs)");
  }
};

BOOST_AUTO_TEST_CASE(autograd_path_refuses_several_ranks, *boost::unit_test::precondition(SeveralRanks())) {
  Communicator& comm = world();
  GmmConfig c = small_config(ResampleScheme::Systematic);
  c.autograd = true;
  const GmmParams teacher = gmm_teacher(c);
  const Tensor data = gmm_teacher_data(c, teacher);
  BOOST_CHECK_EXCEPTION(GmmTrainer(c, Algorithm::Jarzynski, data, teacher, &comm), Error, [](const Error& e) {
    return std::string(e.what()).find("--autograd runs on one rank only") != std::string::npos;
  });
}

namespace {

// What a checkpoint file would give back: the saved tensors (host copies) and metadata.
SafeTensors in_memory(const CheckpointTensors& tensors, const CheckpointMetadata& metadata) {
  SafeTensors st;
  st.path = "(in memory)";
  for (const auto& [name, t] : tensors) st.tensors[name] = t.clone();
  st.metadata = metadata;
  return st;
}

}  // namespace

// A checkpoint taken on this run's ranks resumes on one process and on the same ranks, and both continue exactly
// as the uninterrupted one-process run (walkers, lag state of the CE correction and held-out blocks gathered).
BOOST_AUTO_TEST_CASE(checkpoints_resume_on_any_rank_count_bit_for_bit) {
  Communicator& comm = world();
  for (Algorithm algo : {Algorithm::Jarzynski, Algorithm::Cd}) {
    GmmConfig c = small_config(ResampleScheme::Systematic);
    if (algo == Algorithm::Jarzynski) {
      c.holdout_walkers = 60;
      c.holdout_blocks = 3;
    }
    const GmmParams teacher = gmm_teacher(c);
    const Tensor data = gmm_teacher_data(c, teacher);
    std::unique_ptr<Communicator> single = make_single_process_communicator();
    GmmTrainer saved(c, algo, data, teacher, &comm), straight(c, algo, data, teacher, single.get());
    const int64_t half = 30;
    for (int64_t it = 0; it < half; ++it) {
      saved.iterate();
      straight.iterate();
    }
    CheckpointTensors tensors;
    CheckpointMetadata metadata;
    saved.save_state(tensors, metadata);
    const SafeTensors st = in_memory(tensors, metadata);
    GmmTrainer on_one(c, algo, data, teacher, single.get()), on_these(c, algo, data, teacher, &comm);
    on_one.load_state(st);
    on_these.load_state(st);
    BOOST_TEST_CONTEXT(algorithm_name(algo) << ", saved on " << comm.size() << " rank(s), rank " << comm.rank()) {
      BOOST_TEST(on_one.iteration() == half);
      int64_t mismatched = 0, resampled = 0;
      for (int64_t it = half; it < c.iterations; ++it) {
        const GmmRecord a = straight.iterate(), b = on_one.iterate(), d = on_these.iterate();
        resampled += a.resampled;
        if ((!same_bits(fields(a), fields(b)) || !same_bits(fields(a), fields(d))) && mismatched++ == 0)
          BOOST_ERROR("resumed records differ first at iteration " << it);
      }
      BOOST_TEST(mismatched == 0);
      if (algo == Algorithm::Jarzynski) BOOST_TEST(resampled > 0);
      BOOST_TEST(same_bits(fields(straight.final_record()), fields(on_one.final_record())));
      BOOST_TEST(same_bits(fields(straight.final_record()), fields(on_these.final_record())));
      BOOST_TEST(same_bits(straight.params().a, on_these.params().a));
    }
  }
}

BOOST_AUTO_TEST_CASE(a_checkpoint_of_another_run_is_refused) {
  GmmConfig c = small_config(ResampleScheme::Systematic);
  const GmmParams teacher = gmm_teacher(c);
  const Tensor data = gmm_teacher_data(c, teacher);
  std::unique_ptr<Communicator> single = make_single_process_communicator();
  GmmTrainer pcd(c, Algorithm::Pcd, data, teacher, single.get());
  CheckpointTensors tensors;
  CheckpointMetadata metadata;
  pcd.save_state(tensors, metadata);
  GmmTrainer jar(c, Algorithm::Jarzynski, data, teacher, single.get());
  BOOST_CHECK_EXCEPTION(jar.load_state(in_memory(tensors, metadata)), Error, [](const Error& e) {
    return std::string(e.what()).find("a checkpoint of the pcd run, not of jarzynski") != std::string::npos;
  });
  GmmConfig bigger = c;
  bigger.walkers = 900;
  GmmTrainer other(bigger, Algorithm::Pcd, data, teacher, single.get());
  BOOST_CHECK_EXCEPTION(other.load_state(in_memory(tensors, metadata)), Error, [](const Error& e) {
    return std::string(e.what()).find("700 walkers and 0 held-out blocks, the run has 900") != std::string::npos;
  });
}
