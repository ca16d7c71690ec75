// Every integer option of every command at its limits, read from the binary itself so that it cannot go stale:
// `jebm --help` lists the commands, each command's --help its options; an option is an integer one when "0.5"
// is refused as its value. Each runs at its documented maximum (when --help gives one), at 2^62 and at 2^63-1,
// with the smallest other sizes, as a real process: never ended by a signal, no sanitizer report, and a refusal
// names the option. At 2^62 and 2^63-1 it must end by itself: refused at validation, or (a seed, a period, a
// loop count) a tiny run that the testing hooks --interrupt-at 0 and --interrupt-at-burn-in 1 stop after its
// first update or burn-in step (exit 130).
// A run at a documented maximum is a legitimate run and may be long: it is stopped after a few seconds.
#include "tests/helpers.hpp"

#include <algorithm>
#include <filesystem>
#include <map>
#include "tests/std_regex.hpp"
#include <string>
#include <vector>

#include "experiments/image_ebm.hpp"
#include "tests/jebm_process.hpp"
#include "tests/run_helpers.hpp"

using jebm::test::Finished;
using jebm::test::lines_of;
using jebm::test::run_jebm;
using jebm::test::start_jebm;
using jebm::test::wait_jebm;
using jebm::test::with;
namespace fs = std::filesystem;

namespace {

std::string collapse_blanks(const std::string& s) {
  std::string out;
  for (char c : s)
    if (!(c == ' ' && !out.empty() && out.back() == ' ')) out += c;
  return out;
}

// The commands `jebm --help` lists (the first word of each line under "commands:").
std::vector<std::string> commands(const fs::path& tmp) {
  const Finished f = run_jebm({"--help"}, tmp / "help.log");
  std::vector<std::string> cmds;
  bool in = false;
  for (const std::string& l : lines_of(f.output)) {
    if (l == "commands:") in = true;
    else if (in && l.empty()) break;
    else if (in) cmds.push_back(l.substr(2, l.find(' ', 2) - 2));
  }
  return cmds;
}

// Each option of `jebm CMD --help` that takes a value, with its whole description on one line.
std::map<std::string, std::string> options_of(const std::string& cmd, const fs::path& tmp) {
  const Finished f = run_jebm({cmd, "--help"}, tmp / "help.log");
  static const std::regex option_line(R"(^  (?:-\w \[ )?--([a-z0-9-]+)(?: \])? arg\b(.*)$)");
  std::map<std::string, std::string> opts;
  std::string current;
  for (const std::string& l : lines_of(f.output)) {
    std::smatch m;
    if (std::regex_search(l, m, option_line)) {
      current = m[1];
      opts[current] = m[2];
    } else if (l.rfind("  -", 0) == 0 || l.empty()) {
      current.clear();
    } else if (!current.empty()) {
      opts[current] += " " + l;
    }
  }
  for (auto& [name, text] : opts) text = collapse_blanks(text);
  return opts;
}

// The largest value --help documents: "(in [a, b])" or "(<= b)"; empty when it gives none.
std::string documented_max(const std::string& text) {
  static const std::regex in_range(R"(\(in \[-?[0-9]+, ([0-9]+)\]\))"), at_most(R"(\(<= ([0-9]+)\))");
  std::smatch m;
  if (std::regex_search(text, m, in_range) || std::regex_search(text, m, at_most)) return m[1];
  return "";
}

// The smallest run of each command; the option under test replaces its value here.
struct Fixture {
  jebm::test::TempDir tmp;
  fs::path mnist = tmp.path / "mnist", cifar = tmp.path / "cifar", checkpoint;
  Fixture() {
    fs::create_directories(mnist);
    fs::create_directories(cifar);
    jebm::test::write_mnist_split(mnist, "train", 2, 1, {2, 3, 6}, 0, 0);
    jebm::test::write_mnist_split(mnist, "t10k", 1, 2, {2, 3, 6}, 0, 0);
    jebm::test::write_cifar(cifar, 1, 2);
    const fs::path run = tmp.path / "mnist-run";
    const Finished f = run_jebm(with(base("mnist", run), {"--interrupt-at", "-1"}), tmp.path / "mnist-run.log");
    BOOST_REQUIRE_MESSAGE(WIFEXITED(f.status) && WEXITSTATUS(f.status) == 0, f.output);
    checkpoint = jebm::image_ebm_checkpoint_path(run.string());
  }
  std::vector<std::string> base(const std::string& cmd, const fs::path& out) const {
    const std::vector<std::string> image = {"--walkers", "2", "--burn-in", "0", "--moving-subsets", "1",
                                            "--moving-batch", "0", "--moves-per-update", "1", "--gradient-batch", "0",
                                            "--data-batch", "1", "--epochs", "1", "--grid-every", "1",
                                            "--grid-count", "1", "--resample-batch-ess", "0", "--threads", "1",
                                            "--interrupt-at", "0", "--interrupt-at-burn-in", "1", "--no-progress",
                                            "--out", out.string()};
    const std::vector<std::string> classifier = {"--epochs", "1", "--limit", "2", "--batch-size", "2",
                                                 "--threads", "1", "--out", out.string()};
    std::vector<std::string> a;
    if (cmd == "gmm")
      a = {"--dim", "1", "--samples", "1", "--walkers", "1", "--iterations", "1", "--algo", "jarzynski",
           "--log-every", "1", "--checkpoint-every", "1", "--no-progress", "--threads", "1", "--interrupt-at", "0",
           "--out", out.string()};
    else if (cmd == "mnist") a = with(image, {"--data", mnist.string(), "--counts", "1,1,1"});
    else if (cmd == "cifar10")
      a = with(image, {"--data", cifar.string(), "--train-images", "2", "--fid-every", "1", "--fid-test-images", "2"});
    else if (cmd == "mnist-classifier") a = with(classifier, {"--data", mnist.string()});
    else if (cmd == "cifar10-classifier") a = with(classifier, {"--data", cifar.string()});
    else if (cmd == "sample")
      a = {"--checkpoint", checkpoint.string(), "--steps", "1", "--n", "1", "--threads", "1", "--no-progress",
           "--out", out.string()};
    else if (cmd == "bench") a = {"--only", "energy_cnn", "--repeat", "1", "--batch", "1", "--moves", "1"};
    else BOOST_FAIL("no smallest run for the command " << cmd << ": add one here");
    a.insert(a.begin(), cmd);
    return a;
  }
};

bool has(const std::string& text, const std::string& what) { return text.find(what) != std::string::npos; }

}  // namespace

BOOST_AUTO_TEST_CASE(every_integer_option_at_its_limits_ends_cleanly_and_a_refusal_names_it) {
  Fixture fx;
  const double limit_s = jebm::test::sanitized() ? 300 : 120, max_limit_s = jebm::test::sanitized() ? 20 : 5;
  int cases = 0;
  for (const std::string& cmd : commands(fx.tmp.path)) {
    const std::map<std::string, std::string> opts = options_of(cmd, fx.tmp.path);
    BOOST_TEST(!opts.empty(), cmd);
    for (const auto& [name, text] : opts) {
      const std::string opt = "--" + name;
      // An integer option refuses 0.5 (its parse error names it); --help after it is never reached then.
      const Finished probe = run_jebm({cmd, opt, "0.5", "--help"}, fx.tmp.path / "probe.log");
      if (!(WIFEXITED(probe.status) && WEXITSTATUS(probe.status) != 0 && has(probe.output, "invalid"))) continue;
      std::vector<std::string> values = {"4611686018427387904", "9223372036854775807"};
      const std::string max = documented_max(text);
      if (!max.empty()) values.insert(values.begin(), max);
      // The cases of one option run side by side.
      std::vector<std::pair<pid_t, fs::path>> running;
      for (size_t i = 0; i < values.size(); ++i) {
        const fs::path out = fx.tmp.path / (cmd + "-" + name + "-" + std::to_string(i));
        running.emplace_back(start_jebm(with(fx.base(cmd, out), {opt, values[i]}), out.string() + ".log"), out);
      }
      for (size_t i = 0; i < values.size(); ++i) {
        const bool at_max = values[i] == max;
        const Finished f = wait_jebm(running[i].first, running[i].second.string() + ".log", at_max ? max_limit_s : limit_s);
        ++cases;
        BOOST_TEST_CONTEXT("jebm " << cmd << " " << opt << " " << values[i] << ":\n" << f.output) {
          BOOST_TEST((at_max || !f.killed_at_limit), "still running after " << limit_s << " s: not refused at validation");
          BOOST_TEST((f.killed_at_limit || !WIFSIGNALED(f.status)), "ended by signal " << WTERMSIG(f.status));
          for (const char* report : {"runtime error:", "AddressSanitizer", "LeakSanitizer", "UndefinedBehaviorSanitizer"})
            BOOST_TEST(!has(f.output, report), "sanitizer report: " << report);
          BOOST_TEST(!has(f.output, "internal error"), "a refusal reported as a bug");
          if (WIFEXITED(f.status) && WEXITSTATUS(f.status) != 0 && WEXITSTATUS(f.status) != 130)
            BOOST_TEST(has(f.output, opt), "the error does not name " << opt);
        }
      }
    }
  }
  BOOST_TEST_MESSAGE(cases << " cases");
  BOOST_TEST(cases > 50);
}
