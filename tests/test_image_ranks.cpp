// `jebm mnist` under mpirun: the walkers and the data are replicated, the evaluation blocks
// (--shard-block) shared out over the ranks. CTest runs this suite in a chain over one directory
// (JEBM_RANKS_DIR): at 1 rank (the reference runs), at 3 ranks (the same runs, plus one stopped by Ctrl-C after
// update 4) and at 2 ranks (resumes the 3-rank run that stopped). Each sharded run must equal the one-rank run bit
// for bit: every metrics.csv column but the wall time, and every checkpoint tensor. Plain `ctest` without mpirun
// runs the one-rank part only when JEBM_RANKS_DIR is not set (a temporary directory, nothing to compare).
// GCC 12 at -O3: a false "used uninitialized" inside boost::function when utf::precondition is inlined (as in
// tests/test_comm.cpp).
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <cstdlib>
#include <filesystem>
#include <string>

#include "runtime/comm/communicator.hpp"
#include "tests/helpers.hpp"
#include "tests/run_helpers.hpp"

namespace jebm {
int run_mnist(const std::vector<std::string>& args);
}

namespace fs = std::filesystem;
using namespace jebm;

namespace {

// The tiny run of tests/test_image_ebm.cpp (8 walkers, subsets of 3 moving walkers, 4 gradient walkers, batches
// of 2 images, resampling that fires), in blocks of 2 rows: 4 blocks of walkers (at 3 ranks: 2, 1, 1), a moving
// subset in 2 (moved by two ranks, none by the third), 1 block of data and 2 of gradient walkers.
std::vector<std::string> tiny_args(const fs::path& data, const fs::path& out, const std::string& algo) {
  return {"--data", data.string(), "--out", out.string(), "--algo", algo, "--counts", "4,2,1",
          "--walkers", "8", "--burn-in", "3", "--moving-subsets", "2", "--moving-batch", "3",
          "--moves-per-update", "2", "--gradient-batch", "4", "--data-batch", "2", "--epochs", "3",
          "--h", "0.01", "--noise", "0.05", "--lr", "0.01", "--resample-after-epoch", "0", "--resample-cv", "0.01",
          "--data-noise", "0.03", "--grid-every", "1", "--grid-count", "6", "--no-progress", "--threads", "1",
          "--shard-block", "2", "--force"};
}

fs::path ranks_dir() {
  const char* d = std::getenv("JEBM_RANKS_DIR");
  static test::TempDir tmp;  // plain ctest: a private directory
  return d ? fs::path(d) : tmp.path;
}

// The same directory on every rank; rank 0 writes the data set once.
fs::path data_dir(Communicator& comm) {
  const fs::path d = ranks_dir() / "data";
  run_on_rank0(comm, [&] {
    if (!fs::exists(d / "train-labels-idx1-ubyte")) {
      fs::create_directories(d);
      test::write_mnist_split(d, "train", 5, 7, {7, 2, 3, 6}, 2, 40);
    }
  });
  return d;
}

fs::path run_dir(int ranks, const std::string& algo) { return ranks_dir() / ("np" + std::to_string(ranks) + "-" + algo); }

// Rank 0: this run's files against the one-rank run's.
void compare_with_one_rank(const fs::path& run, const std::string& algo) {
  const fs::path ref = run_dir(1, algo);
  BOOST_REQUIRE_MESSAGE(fs::exists(ref / "metrics.csv"),
                        ref << " is missing: CTest runs the one-rank case (test_image_ranks) first");
  BOOST_TEST(test::same_bits(test::csv_rows(ref / "metrics.csv"), test::csv_rows(run / "metrics.csv")),
             run << "/metrics.csv differs from " << ref);
  test::check_identical_checkpoints((ref / "checkpoint.safetensors").string(), (run / "checkpoint.safetensors").string());
}

}  // namespace

BOOST_AUTO_TEST_CASE(mnist_runs_equal_the_one_rank_run_bit_for_bit) {
  Communicator& comm = world();
  const fs::path data = data_dir(comm);
  // "all": every walker moves each update (the first move reuses part 1's gradients), held-out walkers too.
  // "rejuvenate": after each resampling (training and held-out walkers) 2 warm moves, split over the ranks too;
  // "all-rejuvenate": the same after updates that moved every walker (the first warm move reuses part 1's
  // gradients, carried through the resampling), with fewer blocks of held-out walkers than ranks at 3 ranks.
  for (const std::string name : {"jarzynski", "pcd", "all", "rejuvenate", "all-rejuvenate"}) {
    BOOST_TEST_CONTEXT(name << ", " << comm.size() << " rank(s), rank " << comm.rank()) {
      const fs::path run = run_dir(comm.size(), name);
      std::vector<std::string> args = tiny_args(data, run, name == "pcd" ? "pcd" : "jarzynski");
      const bool all = name.rfind("all", 0) == 0, rejuvenates = name.find("rejuvenate") != std::string::npos;
      for (size_t k = 0; all && k + 1 < args.size(); ++k) {
        if (args[k] == "--moving-subsets") args[k + 1] = "1";
        if (args[k] == "--moving-batch") args[k + 1] = "0";
      }
      // all-rejuvenate: 4 held-out walkers, 2 blocks: at 3 ranks one rank has no held-out rows.
      if (all || rejuvenates) args.insert(args.end(), {"--holdout-walkers", name == "all-rejuvenate" ? "4" : "6"});
      if (rejuvenates) args.insert(args.end(), {"--rejuvenation-moves", "2"});
      BOOST_REQUIRE_EQUAL(run_mnist(args), 0);
      if (comm.rank() != 0) continue;  // rank 0 alone writes
      BOOST_TEST(fs::exists(run / "samples_final.png"));
      if (rejuvenates) BOOST_TEST(test::csv_last(run / "metrics.csv", "resamplings") > 0.0);
      if (comm.size() > 1) compare_with_one_rank(run, name);
    }
  }
  comm.barrier();
}

// Boost.Test precondition: 2 or 3 ranks (CTest's test_image_ranks_np3 and _np2).
struct TwoOrThreeRanks {
  boost::test_tools::assertion_result operator()(boost::unit_test::test_unit_id) const {
    const int k = world().size();
    return test::skip_unless(k == 2 || k == 3, "runs under mpirun -np 3 (the stop) and -np 2 (the resume) only");
  }
};

// At 3 ranks: a run stopped by Ctrl-C after update 4 (all ranks stop together, rank 0 saves the checkpoint).
// At 2 ranks: that run resumed, which must end where the one-rank run ended.
BOOST_AUTO_TEST_CASE(a_run_stopped_on_three_ranks_resumes_on_two, *boost::unit_test::precondition(TwoOrThreeRanks())) {
  Communicator& comm = world();
  const fs::path data = data_dir(comm), cut = ranks_dir() / "cut-jarzynski";
  if (comm.size() == 3) {
    std::vector<std::string> args = tiny_args(data, cut, "jarzynski");
    args.insert(args.end(), {"--interrupt-at", "4"});
    BOOST_TEST(run_mnist(args) == 130);
    if (comm.rank() == 0) BOOST_TEST(fs::exists(cut / "checkpoint.safetensors"));
  } else {
    BOOST_REQUIRE_MESSAGE(fs::exists(cut / "checkpoint.safetensors"),
                          cut << " is missing: CTest runs the 3-rank case (test_image_ranks_np3) first");
    BOOST_TEST(run_mnist({"--resume", cut.string(), "--no-progress"}) == 0);
    if (comm.rank() == 0) compare_with_one_rank(cut, "jarzynski");
  }
  comm.barrier();
}
