// The jebm binary as a user meets it: what it prints for a user's mistake (the option, file or value and the fix,
// no source location; an unknown option with the nearest valid one) and for a failed check of its own (a bug,
// with file:line). Runs the built binary (JEBM_BINARY) in a shell and reads its exit code, stdout and stderr.
#include <boost/test/unit_test.hpp>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <regex>
#include <sstream>
#include <string>
#include <vector>

#include "experiments/cli.hpp"
#include "tests/binary_helpers.hpp"

namespace fs = std::filesystem;
using jebm::test::Ran;
using jebm::test::run_jebm;

namespace {

// A source location as throw_error formats it: "(name.cpp:123)" or "(name.hpp:12)".
bool has_source_location(const std::string& text) {
  return std::regex_search(text, std::regex(R"(\.(cpp|hpp|cu|h):[0-9]+\))"));
}

void check_user_error(const Ran& r, const std::string& want) {
  BOOST_TEST_INFO("stderr: " << r.err);
  BOOST_TEST(r.code == 2);
  BOOST_TEST(r.err.find(want) != std::string::npos);
  BOOST_TEST(r.err.find(": error: ") != std::string::npos);
  BOOST_TEST(!has_source_location(r.err));
  BOOST_TEST(r.err.find("internal error") == std::string::npos);
}

}  // namespace

BOOST_AUTO_TEST_CASE(unknown_option_suggests_the_nearest) {
  const jebm::test::TempDir tmp;
  check_user_error(run_jebm({"mnist", "--walkrs", "5", "--out", (tmp.path / "r").string()}),
                   "unrecognised option '--walkrs'; did you mean --walkers? (see jebm mnist --help)");
  check_user_error(run_jebm({"sample", "--stesp", "5"}), "did you mean --steps?");
  check_user_error(run_jebm({"bench", "--repeatz", "2"}), "did you mean --repeat?");
  check_user_error(run_jebm({"mnist-classifier", "--epohcs", "2"}), "did you mean --epochs?");
  // Nothing near: no guess.
  const Ran far = run_jebm({"mnist", "--zzzzzzzzzz"});
  check_user_error(far, "unrecognised option '--zzzzzzzzzz'");
  BOOST_TEST(far.err.find("did you mean") == std::string::npos);
  // The same in a --config file, which names the file.
  const fs::path ini = tmp.path / "c.ini";
  std::ofstream(ini) << "walkrs = 5\n";
  check_user_error(run_jebm({"cifar10", "--config", ini.string(), "--out", (tmp.path / "r").string()}),
                   "did you mean --walkers?");
}

BOOST_AUTO_TEST_CASE(bad_values_and_files_name_what_and_how) {
  const jebm::test::TempDir tmp;
  const std::string out = (tmp.path / "r").string();
  check_user_error(run_jebm({"mnist", "--walkers", "0", "--data", tmp.path.string(), "--out", out}),
                   "--walkers 0 is outside its range (>= 1)");
  check_user_error(run_jebm({"mnist", "--algo", "cd", "--data", tmp.path.string(), "--out", out}),
                   "--algo cd: the image experiments offer jarzynski and pcd");
  check_user_error(run_jebm({"mnist", "--algo", "xyz", "--data", tmp.path.string(), "--out", out}),
                   "unknown algorithm 'xyz' (expected jarzynski, pcd or cd)");
  check_user_error(run_jebm({"mnist", "--data", (tmp.path / "nowhere").string(), "--out", out}),
                   "nowhere' is not a directory");
  check_user_error(run_jebm({"mnist", "--data", tmp.path.string(), "--out", out}), "train-images-idx3-ubyte");
  check_user_error(run_jebm({"mnist", "--device", "tpu", "--data", tmp.path.string(), "--out", out}),
                   "--device tpu: expected cpu or cuda");
  // A file that is not a checkpoint.
  const fs::path junk = tmp.path / "junk.safetensors";
  std::ofstream(junk) << "not a checkpoint";
  check_user_error(run_jebm({"sample", "--checkpoint", junk.string(), "--steps", "1", "--out", out}),
                   junk.string());
}

// A failed check of jebm's own reads as a bug: its file:line, and where to report it.
BOOST_AUTO_TEST_CASE(internal_errors_say_they_are_bugs) {
  const std::string text = jebm::error_text("gmm", "", "shapes [2] vs [3] (ops.cpp:12)", false);
  BOOST_TEST(text.find("jebm gmm: internal error: shapes [2] vs [3] (ops.cpp:12)") == 0u);
  BOOST_TEST(text.find("this is a bug in jebm") != std::string::npos);
  BOOST_TEST(text.find("issue tracker") != std::string::npos);
  BOOST_TEST(jebm::error_text("gmm", " on rank 1", "--walkers 0: must be >= 1", true) ==
             "jebm gmm: error on rank 1: --walkers 0: must be >= 1\n");
}

BOOST_AUTO_TEST_CASE(classifier_epochs_help_names_its_own_data_set) {
  const Ran mnist = run_jebm({"mnist-classifier", "--help"});
  BOOST_TEST(mnist.code == 0);
  BOOST_TEST(mnist.out.find("CIFAR") == std::string::npos);
  const Ran cifar = run_jebm({"cifar10-classifier", "--help"});
  BOOST_TEST(cifar.code == 0);
  BOOST_TEST(cifar.out.find("MNIST") == std::string::npos);
}
