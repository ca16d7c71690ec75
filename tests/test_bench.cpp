// Tests for experiments/bench/ (`jebm bench`): a quick section runs end to end and prints the peak it measured
// and, per case, its work, rate and share of that peak; the timer takes the median; bad options are clear errors.
// The heavy sections (energy CNNs at full batch, Trainer::step) are not run here: they take minutes on a CPU.
#include <cmath>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <iterator>
#include <sstream>
#include <string>
#include <vector>

#include <omp.h>

#include "experiments/bench/bench_models.hpp"
#include "experiments/bench/fma_peak.hpp"
#include "experiments/bench/timing.hpp"
#include "runtime/cpu_features.hpp"
#include "tests/helpers.hpp"

namespace jebm {
int run_bench(const std::vector<std::string>& args);
}  // namespace jebm

using jebm::test::expect_error;

namespace {

// std::cout into a string while it lives.
struct CoutCapture {
  std::ostringstream text;
  std::streambuf* old = std::cout.rdbuf(text.rdbuf());
  ~CoutCapture() { std::cout.rdbuf(old); }
};

}  // namespace

BOOST_AUTO_TEST_CASE(gemm_section_reports_work_rate_and_share_of_the_measured_peak) {
  std::string out;
  {
    CoutCapture cap;
    BOOST_REQUIRE_EQUAL(jebm::run_bench({"--only", "gemm", "--repeat", "1"}), 0);
    out = cap.text.str();
  }
  BOOST_TEST_MESSAGE(out);
  BOOST_TEST(out.find("peak = measured on this cpu") != std::string::npos);
  BOOST_TEST(out.find("FMA chains in registers") != std::string::npos);
  BOOST_TEST(out.find("jebm's 1024^3 GEMM") != std::string::npos);
  BOOST_TEST(out.find("% peak") != std::string::npos);
  BOOST_TEST(out.find("1024^3") != std::string::npos);
  BOOST_TEST(out.find("GFLOP/s") != std::string::npos);
  BOOST_TEST(out.find("0.0336 GFLOP") != std::string::npos);  // the work of 256^3: 2 * 256^3 FLOPs
  BOOST_TEST(out.find("2.15 GFLOP") != std::string::npos);    // 1024^3
}

BOOST_AUTO_TEST_CASE(fma_peak_names_the_widest_isa_and_counts_every_thread) {
  // Which ISA the CPU offers decides the loop; the rate itself is not asserted (no timed tests), only that the
  // measurement ran on the team's threads and produced a finite, positive figure for both dtypes.
  const jebm::CpuFeatures& cpu = jebm::cpu_features();
  const std::string widest = cpu.avx512f ? "AVX-512" : cpu.avx2_fma ? "AVX2+FMA" : "SSE2";
  for (jebm::DType dt : {jebm::DType::Float32, jebm::DType::Float64}) {
    const jebm::FmaPeak p = jebm::measure_fma_peak(dt, 1);
    BOOST_TEST(p.isa == widest);
    BOOST_TEST(p.threads == omp_get_max_threads());
    BOOST_TEST(std::isfinite(p.gflops));
    BOOST_TEST(p.gflops > 0.0);
  }
}

BOOST_AUTO_TEST_CASE(compare_pairs_jebm_rows_with_the_reference_scripts_medians) {
  // A stand-in for torch_reference.py that prints the script's JSON lines, and records the arguments it was given:
  // the comparison must pass jebm's sizes and thread count, and divide the two medians.
  jebm::test::TempDir dir;
  const std::string script = dir.path.string() + "/fake_torch.sh", args = dir.path.string() + "/args";
  {
    std::ofstream f(script);
    f << "echo \"$@\" > " << args << "\n"
      << "echo '{\"workload\": \"gmm/fused step\", \"batch\": 10000, \"median_ms\": 1e6, \"device\": \"cpu\"}'\n"
      << "echo 'a plain line'\n";
  }
  std::string out;
  {
    CoutCapture cap;
    BOOST_REQUIRE_EQUAL(jebm::run_bench({"--only", "gmm", "--repeat", "1", "--compare", "--python", "/bin/sh",
                                          "--torch-script", script}),
                        0);
    out = cap.text.str();
  }
  BOOST_TEST_MESSAGE(out);
  std::ifstream a(args);
  const std::string given((std::istreambuf_iterator<char>(a)), std::istreambuf_iterator<char>());
  BOOST_TEST(given.find("--only gmm") != std::string::npos);
  BOOST_TEST(given.find("--repeat 1") != std::string::npos);
  BOOST_TEST(given.find("--threads " + std::to_string(omp_get_max_threads())) != std::string::npos);
  BOOST_TEST(out.find("jebm vs PyTorch") != std::string::npos);
  // The fused step took 1e6 ms "in PyTorch": its ratio is 1e6 / jebm's median, printed with an x; the full
  // iteration has no PyTorch row here, so it shows '-'.
  const size_t fused = out.find("gmm/fused step");
  BOOST_REQUIRE(fused != std::string::npos);
  const std::string fused_line = out.substr(fused, out.find('\n', fused) - fused);
  BOOST_TEST(fused_line.find("1000000.000") != std::string::npos);
  BOOST_TEST(fused_line.find('x') != std::string::npos);
  const size_t full = out.find("gmm/full iteration");
  BOOST_REQUIRE(full != std::string::npos);
  BOOST_TEST(out.substr(full, out.find('\n', full) - full).find(" - ") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(compare_says_why_when_the_reference_cannot_run) {
  jebm::test::TempDir dir;
  const std::string script = dir.path.string() + "/no_torch.sh";
  std::ofstream(script) << "echo \"ModuleNotFoundError: No module named 'torch'\"\nexit 3\n";
  CoutCapture cap;
  expect_error([&] { jebm::run_bench({"--only", "gmm", "--repeat", "1", "--compare", "--python", "/bin/sh",
                                      "--torch-script", script}); },
               {"--compare", "exit status 3", "No module named 'torch'", "--python"});
}

BOOST_AUTO_TEST_CASE(compare_against_pytorch_when_it_is_installed,
                     *boost::unit_test::precondition([](boost::unit_test::test_unit_id) {
                       return jebm::test::skip_unless(std::system("python3 -c 'import torch' > /dev/null 2>&1") == 0,
                                                      "python3 has no PyTorch (pip install torch)");
                     })) {
  // The real script, on the fused step only (small): both medians and a ratio are printed.
  CoutCapture cap;
  BOOST_REQUIRE_EQUAL(jebm::run_bench({"--only", "gmm", "--repeat", "1", "--compare"}), 0);
  const std::string out = cap.text.str();
  const size_t fused = out.find("gmm/fused step");
  BOOST_REQUIRE(fused != std::string::npos);
  BOOST_TEST(out.substr(fused, out.find('\n', fused) - fused).find('x') != std::string::npos);
}

BOOST_AUTO_TEST_CASE(median_ms_is_the_median_of_the_timed_calls) {
  // Calls 2..4 are timed (the first is the warm-up); only the call count is checked, not a duration.
  int calls = 0;
  const double ms = jebm::median_ms([&] { ++calls; }, 3);
  BOOST_TEST(calls == 4);
  BOOST_TEST(ms >= 0.0);
  expect_error([] { jebm::median_ms([] {}, 0); }, {"repeat 0"});
}

BOOST_AUTO_TEST_CASE(energy_cnn_times_the_nets_that_net_names) {
  // One image per pass: the MNIST CNN alone takes milliseconds, so --net mnist must not build the CIFAR-10 one.
  const auto mnist = jebm::bench_energy_cnn(1, 1, jebm::Device::cpu(), "mnist");
  BOOST_REQUIRE(mnist.size() == 1);
  BOOST_TEST(mnist[0].model == "mnist_energy_cnn");
  BOOST_TEST(mnist[0].batch == 1);
  BOOST_TEST(mnist[0].flops > 0.0);
}

BOOST_AUTO_TEST_CASE(bad_options_are_clear_errors) {
  expect_error([] { jebm::run_bench({"--only", "nope", "--repeat", "1"}); }, {"--only", "nope"});
  expect_error([] { jebm::run_bench({"--repeat", "0"}); }, {"--repeat 0", "(in [1, 1000000])"});
  expect_error([] { jebm::run_bench({"--batch", "0"}); }, {"--batch 0", "(in [1, 65536])"});
  expect_error([] { jebm::run_bench({"--moves", "-1"}); }, {"--moves -1", "(in [0, 1000000])"});
  expect_error([] { jebm::run_bench({"--repeat", "x"}); }, {"--repeat", "jebm bench --help"});
}
