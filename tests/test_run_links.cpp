// No write of jebm follows a symbolic link (runtime/file_io, experiments/output's run directory, and `jebm gmm`
// end to end): a link planted at a final name, at a temporary's name or at a metrics CSV leaves its target as it
// was; a run directory holding a link is refused naming it, and --force removes the link, never its target.
#include "tests/helpers.hpp"

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <sstream>
#include <string>
#include <vector>

#include "experiments/output.hpp"
#include "experiments/png.hpp"
#include "models/checkpoint.hpp"
#include "runtime/file_io.hpp"
#include "tests/run_helpers.hpp"

namespace jebm {
int run_gmm(const std::vector<std::string>& args);  // experiments/gmm.cpp
}

using namespace jebm;
using jebm::test::slurp;
using jebm::test::expect_error;
using jebm::test::TempDir;
namespace fs = std::filesystem;

namespace {

const std::string kVictimText = "the victim's own words\n";

// A file outside the run directory that a link points at; it must keep its text whatever jebm does.
struct Victim {
  TempDir home;
  fs::path path = home.path / "victim.txt";
  Victim() { std::ofstream(path, std::ios::binary) << kVictimText; }
  void check_untouched() const { BOOST_TEST(slurp(path) == kVictimText, path << " was written through a link"); }
};

const std::vector<std::string> kTinyGmm = {"--dim", "2", "--samples", "64", "--walkers", "64", "--iterations", "3",
                                           "--log-every", "1", "--algo", "jarzynski", "--no-progress"};

}  // namespace

BOOST_AUTO_TEST_CASE(a_temporary_named_by_a_link_is_replaced_never_followed) {
  Victim v;
  TempDir run;
  const fs::path target = run.path / "options.txt";
  fs::create_symlink(v.path, target.string() + ".tmp");
  write_file_atomic(target.string(), "a = 1\n");
  v.check_untouched();
  BOOST_TEST(slurp(target) == "a = 1\n");
  BOOST_TEST(!fs::is_symlink(target));
  BOOST_TEST(!fs::exists(fs::symlink_status(target.string() + ".tmp")));

  // The same for a checkpoint, a PNG and an SVG (each writer goes through AtomicFile).
  const std::string ckpt = (run.path / "checkpoint_jarzynski.safetensors").string();
  fs::create_symlink(v.path, ckpt + ".tmp");
  save_safetensors(ckpt, {{"w", Tensor::ones({2})}});
  v.check_untouched();
  BOOST_TEST(load_safetensors(ckpt).tensors.count("w") == 1);
  const std::string png = (run.path / "grid.png").string();
  fs::create_symlink(v.path, png + ".tmp");
  write_png(png, std::vector<uint8_t>(4, 7), 2, 2, 1);
  v.check_untouched();
  const fs::path svg = run.path / "gmm.svg";
  fs::create_symlink(v.path, svg.string() + ".tmp");
  write_svg_plot(svg, {SvgPanel{"t", "x", "y", {SvgSeries{"s", {0, 1}, {0, 1}, "", false}}}});
  v.check_untouched();
}

BOOST_AUTO_TEST_CASE(a_final_file_that_is_a_link_is_replaced_by_rename_never_written_through) {
  Victim v;
  TempDir run;
  const fs::path target = run.path / "options.txt";
  fs::create_symlink(v.path, target);
  write_options(run.path, {{"a", "1"}});
  v.check_untouched();
  BOOST_TEST(!fs::is_symlink(target));
  const std::string text = slurp(target);  // the provenance comments, then the options
  BOOST_TEST(text.rfind("# What made this run", 0) == 0u);
  BOOST_TEST(text.size() >= 6u);
  BOOST_TEST(text.substr(text.size() - 6) == "a = 1\n");
}

BOOST_AUTO_TEST_CASE(appends_and_new_csvs_refuse_a_link) {
  Victim v;
  TempDir run;
  const fs::path csv = run.path / "metrics_jarzynski.csv";
  fs::create_symlink(v.path, csv);
  expect_error([&] { CsvWriter(csv, {"iteration", "a"}); }, {csv.string(), "symbolic link"});
  expect_error([&] { CsvWriter(csv, {"iteration", "a"}, /*append=*/true); }, {csv.string(), "symbolic link"});
  expect_error([&] { AppendFile(csv.string(), false).append("1,2\n"); }, {csv.string(), "symbolic link"});
  v.check_untouched();
  BOOST_TEST(fs::is_symlink(csv));  // refused, not removed: only --force removes a link
  // A new CSV over a hard link to someone's file makes a new file; the other name keeps its bytes.
  fs::remove(csv);
  fs::create_hard_link(v.path, csv);
  CsvWriter(csv, {"iteration", "a"}).row({0, 1});
  v.check_untouched();
  BOOST_TEST(slurp(csv) == "iteration,a\n0,1\n");
}

BOOST_AUTO_TEST_CASE(a_run_directory_holding_a_link_is_refused_unless_force_which_removes_the_link) {
  for (const char* name : {"metrics_jarzynski.csv", "options.txt", "options.txt.tmp", "checkpoint_jarzynski.safetensors.tmp",
                           "gmm.svg", "jebm.lock"}) {
    BOOST_TEST_CONTEXT(name) {
      Victim v;
      TempDir tmp;
      const fs::path out = tmp.path / "run";
      fs::create_directories(out);
      fs::create_symlink(v.path, out / name);
      std::vector<std::string> args = jebm::test::with(kTinyGmm, {"--out", out.string(), "--checkpoint-every", "1"});
      expect_error([&] { run_gmm(args); }, {name, "symbolic link", "--force"});
      v.check_untouched();
      BOOST_TEST(fs::is_symlink(out / name));  // left as it was
      BOOST_TEST(std::distance(fs::directory_iterator(out), fs::directory_iterator()) == 1);
      args.push_back("--force");
      std::ostringstream err;
      {
        jebm::test::CerrCapture capture(err);
        BOOST_TEST(run_gmm(args) == 0);
      }
      v.check_untouched();
      BOOST_TEST(err.str().find("removed the symbolic link") != std::string::npos, err.str());
      BOOST_TEST(!fs::is_symlink(out / name));
      BOOST_TEST(slurp(out / "metrics_jarzynski.csv").rfind("iteration,", 0) == 0);
    }
  }
}

BOOST_AUTO_TEST_CASE(resume_refuses_a_link_in_the_run_directory) {
  Victim v;
  TempDir tmp;
  const fs::path out = tmp.path / "run";
  BOOST_TEST(run_gmm(jebm::test::with(kTinyGmm, {"--out", out.string(), "--checkpoint-every", "1"})) == 0);
  fs::remove(out / "metrics_jarzynski.csv");
  fs::create_symlink(v.path, out / "metrics_jarzynski.csv");
  expect_error([&] { run_gmm({"--resume", out.string(), "--iterations", "5", "--no-progress"}); },
               {"metrics_jarzynski.csv", "symbolic link"});
  v.check_untouched();
}
