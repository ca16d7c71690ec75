// A run says what made it, through the jebm binary: --version (version, commit, build type, backends, BLAS); options.txt
// and checkpoints record version, commit, command line, UTC date and rank count; `--config RUN/options.txt --out
// NEW` repeats a gmm run and a tiny mnist run bit for bit (CSVs without their wall-time column, checkpoints);
// resuming a finished image run says there is nothing to do and exits 0.
#include <boost/test/unit_test.hpp>

#include <filesystem>
#include "tests/std_regex.hpp"
#include <string>
#include <vector>

#include "experiments/version.hpp"
#include "models/checkpoint.hpp"
#include "tests/binary_helpers.hpp"
#include "tests/run_helpers.hpp"

namespace fs = std::filesystem;
using jebm::test::Ran;
using jebm::test::run_jebm;
using jebm::test::slurp;

namespace {

const char* const kDate = R"(20[0-9][0-9]-[01][0-9]-[0-3][0-9]T[0-2][0-9]:[0-5][0-9]:[0-6][0-9]Z)";

std::vector<std::string> gmm_args(const fs::path& out) {
  return {"gmm", "--iterations", "30", "--walkers", "64", "--samples", "64", "--dim", "3", "--log-every", "5",
          "--checkpoint-every", "10", "--no-progress", "--threads", "1", "--out", out.string()};
}

// A tiny `jebm mnist` run on synthetic digits (2 updates per epoch, 2 epochs).
std::vector<std::string> mnist_args(const fs::path& data, const fs::path& out) {
  return {"mnist", "--data", data.string(), "--out", out.string(), "--counts", "4,2,1", "--walkers", "8",
          "--burn-in", "3", "--moving-subsets", "2", "--moving-batch", "3", "--moves-per-update", "2",
          "--gradient-batch", "4", "--data-batch", "3", "--epochs", "2", "--h", "0.01", "--noise", "0.05",
          "--lr", "0.01", "--resample-after-epoch", "0", "--resample-cv", "0.01", "--grid-count", "4",
          "--no-progress", "--threads", "1"};
}

void check_ran(const Ran& r) {
  BOOST_TEST_INFO("stderr: " << r.err);
  BOOST_REQUIRE_EQUAL(r.code, 0);
}

// Both CSVs hold the same rows, bit for bit, but for their wall-time column.
void check_same_csv(const fs::path& a, const fs::path& b) {
  BOOST_TEST_CONTEXT(a.filename().string()) {
    BOOST_REQUIRE(fs::is_regular_file(a));
    BOOST_REQUIRE(fs::is_regular_file(b));
    const auto x = jebm::test::csv_rows(a), y = jebm::test::csv_rows(b);
    BOOST_TEST(!x.empty());
    BOOST_TEST(jebm::test::same_bits(x, y));
  }
}

}  // namespace

BOOST_AUTO_TEST_CASE(version_names_commit_build_and_backends) {
  for (const std::vector<std::string>& args : {std::vector<std::string>{"--version"}, {"mnist", "--version"}}) {
    const Ran r = run_jebm(args);
    BOOST_TEST(r.code == 0);
    const jebm::BuildInfo b = jebm::build_info();
    const std::string first = r.out.substr(0, r.out.find('\n') + 1);
    BOOST_TEST(first == "jebm " + b.version + " (commit " + b.commit + ", " + b.build_type + " build, backends: " +
                            b.backends + ")\n");
    BOOST_TEST(std::regex_search(r.out, std::regex(R"(\nblas: .* \(core [A-Za-z0-9]+\)(, set by jebm .*)?\n)")));
    BOOST_TEST(std::regex_search(r.out, std::regex(R"(\ncpus: [1-9][0-9]* usable by this process .*\n)")));
    BOOST_TEST(std::regex_search(r.out, std::regex(R"(\nopenmp wait: .+\n$)")));
    BOOST_TEST(std::regex_search(r.out, std::regex(R"(commit ([0-9a-f]{12}(-dirty)?|unknown),)")));
    BOOST_TEST(r.out.find("backends: CPU") != std::string::npos);
  }
}

BOOST_AUTO_TEST_CASE(gmm_options_txt_records_the_run_and_repeats_it) {
  const jebm::test::TempDir tmp;
  const fs::path a = tmp.path / "a", b = tmp.path / "b";
  check_ran(run_jebm(gmm_args(a)));
  const std::string opts = slurp(a / "options.txt");
  const jebm::BuildInfo info = jebm::build_info();
  BOOST_TEST(opts.find("# jebm.version = " + info.version + "\n") != std::string::npos);
  BOOST_TEST(opts.find("# jebm.commit = " + info.commit + "\n") != std::string::npos);
  BOOST_TEST(opts.find("# jebm.command = jebm gmm --iterations 30 --walkers 64") != std::string::npos);
  BOOST_TEST(std::regex_search(opts, std::regex(std::string("# jebm.date = ") + kDate + "\n")));
  BOOST_TEST(opts.find("# jebm.ranks = 1\n") != std::string::npos);
  check_ran(run_jebm({"gmm", "--config", (a / "options.txt").string(), "--out", b.string(), "--no-progress"}));
  for (const char* algo : {"jarzynski", "pcd", "cd"}) {
    check_same_csv(a / ("metrics_" + std::string(algo) + ".csv"), b / ("metrics_" + std::string(algo) + ".csv"));
    // Each algorithm's checkpoint says what made it, like the image runs' (test below).
    const jebm::SafeTensors st = jebm::load_safetensors((a / ("checkpoint_" + std::string(algo) + ".safetensors")).string());
    BOOST_TEST(st.metadata.at("jebm.version") == info.version);
    BOOST_TEST(st.metadata.at("jebm.commit") == info.commit);
    BOOST_TEST(st.metadata.at("jebm.command").rfind("jebm gmm --iterations 30 --walkers 64", 0) == 0u);
    BOOST_TEST(std::regex_match(st.metadata.at("jebm.date"), std::regex(kDate)));
    BOOST_TEST(st.metadata.at("jebm.ranks") == "1");
  }
}

BOOST_AUTO_TEST_CASE(mnist_config_round_trip_and_finished_resume) {
  const jebm::test::TempDir tmp;
  const fs::path data = tmp.path / "data", a = tmp.path / "a", b = tmp.path / "b";
  fs::create_directories(data);
  jebm::test::write_mnist_split(data, "train", 4, 7, {7, 2, 3, 6}, 2, 40);
  check_ran(run_jebm(mnist_args(data, a)));
  check_ran(run_jebm({"mnist", "--config", (a / "options.txt").string(), "--out", b.string(), "--no-progress"}));
  check_same_csv(a / "metrics.csv", b / "metrics.csv");
  const std::string ca = (a / "checkpoint.safetensors").string(), cb = (b / "checkpoint.safetensors").string();
  jebm::test::check_identical_checkpoints(ca, cb);
  // The checkpoint says what made it.
  const jebm::SafeTensors st = jebm::load_safetensors(ca);
  BOOST_TEST(st.metadata.at("jebm.version") == jebm::build_info().version);
  BOOST_TEST(st.metadata.at("jebm.commit") == jebm::build_info().commit);
  BOOST_TEST(st.metadata.at("jebm.command").rfind("jebm mnist --data ", 0) == 0u);
  BOOST_TEST(std::regex_match(st.metadata.at("jebm.date"), std::regex(kDate)));
  BOOST_TEST(st.metadata.at("jebm.ranks") == "1");
  // Resuming the finished run: nothing to do, exit 0, no rate, no summary, the metrics untouched.
  const std::string csv_before = slurp(a / "metrics.csv");
  const Ran r = run_jebm({"mnist", "--resume", a.string(), "--no-progress"});
  check_ran(r);
  BOOST_TEST(r.out.find("nothing to do") != std::string::npos);
  BOOST_TEST(r.out.find("it/s") == std::string::npos);
  BOOST_TEST(r.out.find("timing") == std::string::npos);
  BOOST_TEST(r.out.find("class weights") == std::string::npos);
  BOOST_TEST(slurp(a / "metrics.csv") == csv_before);
  // options.txt keeps the run's own command and adds the resume.
  const std::string opts = slurp(a / "options.txt");
  BOOST_TEST(opts.find("# jebm.command = jebm mnist --data ") != std::string::npos);
  BOOST_TEST(opts.find("# jebm.resumed = ") != std::string::npos);
}
