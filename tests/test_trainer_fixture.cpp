// A checkpoint written by an earlier release still resumes: tests/fixtures/image-run-correction holds a tiny `jebm
// mnist` run (Jarzynski with held-out walkers, the log Z correction, warm moves and moving subsets: every field
// of the trainer's state) stopped after update 4 of 9 by the release of 2026-12-08 (its checkpoint, options.txt
// and metrics.csv; the model and its Adam moments make most of its 950 KB; rewritten that day, when the CNN's conv3
// and conv4 left the GEMM for jebm's own kernels and their results changed in the last bits). Resumed here, it must end bit for bit
// like an uninterrupted run of today's code: the old walker tracks load, and the step computes what it did.
// JEBM_WRITE_FIXTURE=DIR writes the fixture into DIR/image-run-correction instead (how it was made).
// GEMM results differ in their last bits from one OpenBLAS kernel set to another, and so would the trajectories, so
// the fixture was written with OpenBLAS's generic "Prescott" kernels, which every x86-64 CPU runs the same way:
// CTest sets OPENBLAS_CORETYPE=Prescott for this test (tests/CMakeLists.txt); elsewhere it is skipped.
#include <cstdlib>
#include <filesystem>

#include "experiments/image_ebm.hpp"
#include "models/checkpoint.hpp"
#include "runtime/blas_core.hpp"
#include "tests/helpers.hpp"
#include "tests/run_helpers.hpp"

namespace jebm {
int run_mnist(const std::vector<std::string>& args);
}

namespace fs = std::filesystem;
using jebm::test::TempDir;
using jebm::test::with;

namespace {

// 20 synthetic digits (5 each of 7, 2, 3, 6); 7 images are used, batch 2: 3 updates per epoch, 3 epochs.
void write_data(const fs::path& dir) { jebm::test::write_mnist_split(dir, "train", 5, 7, {7, 2, 3, 6}, 2, 40); }

std::vector<std::string> run_args(const fs::path& data, const fs::path& out) {
  return {"--data", data.string(), "--out", out.string(), "--algo", "jarzynski", "--counts", "4,2,1",
          "--downsample", "2", "--walkers", "8", "--burn-in", "3", "--moving-subsets", "2", "--moving-batch", "3",
          "--moves-per-update", "2", "--gradient-batch", "4", "--data-batch", "2", "--epochs", "3",
          "--h", "0.01", "--noise", "0.05", "--lr", "0.01", "--resample-after-epoch", "0", "--resample-cv", "0.01",
          "--data-noise", "0.03", "--holdout-walkers", "4", "--correction-groups", "2",
          "--rejuvenation-moves", "1", "--grid-every", "0", "--no-progress", "--threads", "1"};
}

const fs::path kFixture = fs::path(JEBM_SOURCE_DIR) / "tests" / "fixtures" / "image-run-correction";

// The kernel set the fixture was written with, as a Boost.Test precondition.
boost::test_tools::assertion_result fixture_kernels(boost::unit_test::test_unit_id) {
  boost::test_tools::assertion_result r(jebm::blas_core() == "Prescott");
  if (!r) r.message() << "the fixture was written with OpenBLAS's Prescott kernels and this process runs "
                      << jebm::blas_core() << " (run it with OPENBLAS_CORETYPE=Prescott, as CTest does)";
  return r;
}

}  // namespace

BOOST_AUTO_TEST_CASE(an_old_release_checkpoint_resumes_like_an_uninterrupted_run,
                     *boost::unit_test::precondition(fixture_kernels)) {
  TempDir data, out;
  write_data(data.path);
  if (const char* dir = std::getenv("JEBM_WRITE_FIXTURE")) {
    const fs::path to = fs::path(dir) / kFixture.filename();
    BOOST_REQUIRE_EQUAL(jebm::run_mnist(with(run_args(data.path, to), {"--interrupt-at", "4"})), 130);
    return;
  }
  BOOST_REQUIRE(fs::is_regular_file(kFixture / "options.txt"));
  const fs::path full = out.path / "full", cut = out.path / "cut";
  BOOST_REQUIRE_EQUAL(jebm::run_mnist(run_args(data.path, full)), 0);
  fs::copy(kFixture, cut);
  for (const auto& e : fs::directory_iterator(cut))  // the source tree's files may be read-only
    fs::permissions(e.path(), fs::perms::owner_write, fs::perm_options::add);
  const jebm::SafeTensors mid = jebm::load_safetensors(jebm::image_ebm_checkpoint_path(cut.string()));
  BOOST_TEST(mid.metadata.at("iteration") == "5");
  BOOST_TEST(mid.metadata.at("trainer.holdout_last_moved_count") != "0");
  BOOST_TEST(mid.tensors.count("trainer.log_z_correction") == 1u);
  // --data may name a moved copy of the same data on resume.
  BOOST_REQUIRE_EQUAL(jebm::run_mnist({"--resume", cut.string(), "--data", data.path.string(), "--no-progress"}), 0);
  jebm::test::check_identical_checkpoints(jebm::image_ebm_checkpoint_path(full.string()),
                                          jebm::image_ebm_checkpoint_path(cut.string()));
  BOOST_TEST(
      jebm::test::same_bits(jebm::test::csv_rows(full / "metrics.csv"), jebm::test::csv_rows(cut / "metrics.csv")));
}
