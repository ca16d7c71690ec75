// The jebm binary as a user meets it: what it prints for a user's mistake (the option, file or value and the fix,
// no source location; an unknown option with the nearest valid one) and for a failed check of its own (a bug,
// with file:line). Runs the built binary (JEBM_BINARY) in a shell and reads its exit code, stdout and stderr.
#include <boost/test/unit_test.hpp>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include "tests/std_regex.hpp"
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
  // The teacher's weights are counted against its modes, which the user may not have given.
  check_user_error(run_jebm({"gmm", "--teacher-weights", "0.5", "--iterations", "1"}),
                   "--teacher-weights has 1 weight(s) but the teacher has 2 mode(s), one per --teacher-mean");
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

namespace {

// One option as a command's --help shows it: its default ("" when none) and its description, blanks collapsed.
struct HelpOption {
  std::string default_value, text;
};

std::string collapse_blanks(const std::string& s) {
  std::string out;
  for (char c : s) {
    const bool blank = c == ' ' || c == '\t' || c == '\n';
    if (blank && (out.empty() || out.back() == ' ')) continue;
    out += blank ? ' ' : c;
  }
  while (!out.empty() && out.back() == ' ') out.pop_back();
  return out;
}

// Boost.Program_options' layout: "  --name arg (=default)   description", "  -h [ --help ]   description", the
// description wrapped onto lines that start with blanks.
std::map<std::string, HelpOption> parse_help(const std::string& help) {
  static const std::regex head(R"(^  (?:-\w \[ --([a-z0-9-]+) \]|--([a-z0-9-]+))( arg)?(?: \(=([^)]*)\))?(?:\s+(.*))?$)");
  std::map<std::string, HelpOption> options;
  std::string current;
  std::istringstream in(help);
  for (std::string line; std::getline(in, line);) {
    std::smatch m;
    if (std::regex_match(line, m, head)) {
      current = m[1].matched ? m[1].str() : m[2].str();
      options[current] = HelpOption{m[4].str(), m[5].str()};
    } else if (!current.empty() && line.rfind("   ", 0) == 0) {
      options[current].text += " " + line;
    } else {
      current.clear();
    }
  }
  for (auto& [name, o] : options) o.text = collapse_blanks(o.text);
  return options;
}

// The commands `jebm --help` lists.
std::vector<std::string> commands() {
  const Ran r = run_jebm({"--help"});
  std::vector<std::string> names;
  std::istringstream in(r.out);
  bool in_list = false;
  for (std::string line; std::getline(in, line);) {
    if (line == "commands:") in_list = true;
    else if (line.empty()) in_list = false;
    else if (in_list) names.push_back(line.substr(2, line.find(' ', 2) - 2));
  }
  return names;
}

struct TableRow {
  std::string option, default_value, meaning;
  std::vector<std::string> commands;  // empty: all
};

std::string cell(const std::string& s) {
  std::string t = collapse_blanks(s);
  t.erase(0, t.find_first_not_of(' '));
  for (size_t p; (p = t.find("\\|")) != std::string::npos;) t.replace(p, 2, "|");
  if (t.size() >= 2 && t.front() == '`' && t.back() == '`') t = t.substr(1, t.size() - 2);
  return t;
}

// docs/cli.md's table of shared options: "| `--name` | default | commands | meaning |".
std::vector<TableRow> shared_option_table() {
  std::ifstream f(std::string(JEBM_SOURCE_DIR) + "/docs/cli.md");
  BOOST_REQUIRE(f);
  std::vector<TableRow> rows;
  for (std::string line; std::getline(f, line);) {
    if (line.rfind("| `--", 0) != 0) continue;
    std::vector<std::string> cells;
    size_t start = 1;
    for (size_t p = 1; p < line.size(); ++p)
      if (line[p] == '|' && line[p - 1] != '\\') {
        cells.push_back(cell(line.substr(start, p - start)));
        start = p + 1;
      }
    BOOST_REQUIRE_EQUAL(cells.size(), 4u);
    // A meaning's "(then ...)" tells what each command adds after the shared text: not part of the shared text.
    std::string meaning = cells[3];
    const size_t then = meaning.find(" (then ");
    if (then != std::string::npos) meaning.erase(then);
    TableRow r{cells[0].substr(2), cells[1], meaning, {}};
    if (cells[2] != "all") {
      std::istringstream in(cells[2]);
      for (std::string c; std::getline(in, c, ',');) r.commands.push_back(collapse_blanks(c.substr(c.find_first_not_of(' '))));
    }
    rows.push_back(r);
  }
  return rows;
}

}  // namespace

// docs/cli.md's shared options are what every command's --help says: each listed command has the option with the
// table's default and a description that starts with the table's meaning, and no command that is not listed has it.
BOOST_AUTO_TEST_CASE(docs_cli_table_matches_every_help) {
  const std::vector<std::string> cmds = commands();
  BOOST_REQUIRE(cmds.size() >= 7u);
  const std::vector<TableRow> table = shared_option_table();
  BOOST_REQUIRE(table.size() >= 10u);
  for (const std::string& cmd : cmds) {
    const Ran r = run_jebm({cmd, "--help"});
    BOOST_TEST_REQUIRE(r.code == 0, cmd);
    const std::map<std::string, HelpOption> help = parse_help(r.out);
    BOOST_TEST_REQUIRE(help.count("help") == 1u, cmd << " --help parsed");
    for (const TableRow& row : table) {
      BOOST_TEST_CONTEXT("jebm " << cmd << " --" << row.option) {
        const bool listed = row.commands.empty() ||
                            std::find(row.commands.begin(), row.commands.end(), cmd) != row.commands.end();
        const auto it = help.find(row.option);
        BOOST_TEST((it != help.end()) == listed, (listed ? "listed in docs/cli.md but not in --help"
                                                          : "in --help but docs/cli.md does not list the command"));
        if (it == help.end() || !listed) continue;
        if (row.default_value != "(the command's)") BOOST_TEST(it->second.default_value == row.default_value);
        BOOST_TEST(it->second.text.rfind(row.meaning, 0) == 0u, "help: '" << it->second.text << "'");
      }
    }
  }
}

// Options that exist for tests parse but stay out of the user's --help.
BOOST_AUTO_TEST_CASE(testing_options_are_hidden) {
  for (const char* cmd : {"gmm", "mnist", "cifar10"}) {
    const Ran r = run_jebm({cmd, "--help"});
    BOOST_TEST(r.out.find("--interrupt-at") == std::string::npos, cmd);
    BOOST_TEST(r.out.find("testing:") == std::string::npos, cmd);
  }
  // ... and still parse (this one then fails on the missing --data, not on the option).
  check_user_error(run_jebm({"mnist", "--interrupt-at", "3", "--out", "x"}), "--data DIR is required");
}
