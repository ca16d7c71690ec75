// Tests of experiments/cli.{hpp,cpp}: number lists and the numeric option ranges (Range text and membership,
// non-finite values outside every range, OptionRanges::check naming option, value and range, and refusing a
// numeric option that has no documented range) and option_error_text on values holding Boost's "%...%" tokens.
#include <boost/program_options.hpp>
#include <boost/test/unit_test.hpp>

#include <cmath>
#include <functional>
#include <limits>
#include <sstream>
#include <string>

#include "experiments/cli.hpp"
#include "runtime/check.hpp"

namespace po = boost::program_options;
using jebm::Range;

namespace {

bool error_has(const std::function<void()>& f, const std::string& part) {
  try {
    f();
  } catch (const jebm::Error& e) {
    BOOST_TEST_MESSAGE(e.what());
    return std::string(e.what()).find(part) != std::string::npos;
  }
  return false;
}

}  // namespace

BOOST_AUTO_TEST_CASE(range_text_and_membership) {
  BOOST_TEST(jebm::above(0).text() == "(> 0)");
  BOOST_TEST(jebm::at_least(1).text() == "(>= 1)");
  BOOST_TEST(jebm::within(0, 1).text() == "(in [0, 1])");
  BOOST_TEST(jebm::within(1, 1e6).text() == "(in [1, 1000000])");
  BOOST_TEST(jebm::within_upper_open(0, 1).text() == "(in [0, 1))");
  BOOST_TEST(jebm::any_value().text() == "");
  const double inf = std::numeric_limits<double>::infinity(), nan = std::nan("");
  for (const Range& r : {jebm::above(0), jebm::at_least(0), jebm::within(0, 1), jebm::any_value()}) {
    BOOST_TEST(!r.contains(nan));
    BOOST_TEST(!r.contains(inf));
    BOOST_TEST(!r.contains(-inf));
  }
  BOOST_TEST(!jebm::above(0).contains(0.0));
  BOOST_TEST(jebm::above(0).contains(1e-300));
  BOOST_TEST(jebm::at_least(0).contains(0.0));
  BOOST_TEST(!jebm::within_upper_open(0, 1).contains(1.0));
  BOOST_TEST(jebm::within(0, 1).contains(1.0));
  BOOST_TEST(jebm::any_value().contains(-1e300));
  BOOST_TEST(error_has([] { jebm::check_range("--x item", std::nan(""), jebm::above(0)); }, "--x item nan is outside its range (> 0)"));
}

BOOST_AUTO_TEST_CASE(option_ranges_check_every_numeric_option) {
  double h = 0;
  int64_t n = 0;
  uint64_t seed = 0;
  std::string name;
  const jebm::OptionRanges r = {{"h", jebm::above(0)}, {"n", jebm::at_least(1)}, {"seed", jebm::any_value()}};
  po::options_description d;
  d.add_options()("h", po::value(&h)->default_value(0.1), r.help("h", "step").c_str())
      ("n", po::value(&n)->default_value(4), r.help("n", "count").c_str())
      ("seed", po::value(&seed)->default_value(1), r.help("seed", "seed").c_str())
      ("name", po::value(&name), "a string: no range");
  BOOST_TEST(d.find("h", false).description() == "step (> 0)");
  BOOST_TEST(d.find("seed", false).description() == "seed");
  auto parse = [&](std::vector<std::string> args) {
    po::variables_map vm;
    po::store(po::command_line_parser(args).options(d).run(), vm);
    po::notify(vm);
    return vm;
  };
  r.check(parse({"--h", "2", "--name", "x"}));
  BOOST_TEST(error_has([&] { r.check(parse({"--h", "-inf"})); }, "--h -inf is outside its range (> 0)"));
  BOOST_TEST(error_has([&] { r.check(parse({"--n", "0"})); }, "--n 0 is outside its range (>= 1)"));
  // Integers are shown exactly.
  BOOST_TEST(error_has([&] { r.check(parse({"--n", "-4611686018427387904"})); }, "--n -4611686018427387904"));
  // A numeric option without a range is a programming error that names it.
  const jebm::OptionRanges partial = {{"h", jebm::above(0)}};
  BOOST_TEST(error_has([&] { partial.check(parse({})); }, "option --n has no documented range"));
  BOOST_TEST(error_has([&] { r.at("nope"); }, "--nope"));
}

// Boost's error messages loop forever on a value that holds one of their "%...%" tokens (found by fuzzing
// gmm --config): option_error_text must return, naming the option and showing the value.
BOOST_AUTO_TEST_CASE(option_error_text_survives_placeholder_tokens) {
  int64_t n = 0;
  po::options_description d;
  d.add_options()("n", po::value(&n), "count");
  for (const std::string v : {"%value%", "%canonical_option%", "%prefix%%option%", "%"}) {
    BOOST_TEST_CONTEXT(v) {
      try {
        po::variables_map vm;
        po::store(po::command_line_parser(std::vector<std::string>{"--n", v}).options(d).run(), vm);
        BOOST_ERROR("accepted");
      } catch (const po::error& e) {
        const std::string text = jebm::option_error_text(e);
        BOOST_TEST(text.find("'--n'") != std::string::npos, text);
        BOOST_TEST(text.find("% ") != std::string::npos, text);
      }
    }
  }
  // An unknown option's name is user text too (INI keys).
  std::istringstream ini("%option% = 1\n");
  try {
    po::parse_config_file(ini, d);
    BOOST_ERROR("accepted");
  } catch (const po::error& e) {
    BOOST_TEST(jebm::option_error_text(e).find("% option% ") != std::string::npos, jebm::option_error_text(e));
  }
}

BOOST_AUTO_TEST_CASE(number_lists) {
  BOOST_TEST(jebm::parse_double_list("0.25, 0.75", "--w") == (std::vector<double>{0.25, 0.75}),
             boost::test_tools::per_element());
  BOOST_TEST(error_has([] { jebm::parse_double_list("1,x", "--w"); }, "--w '1,x': 'x' is not a number"));
  BOOST_TEST(error_has([] { jebm::parse_int64_list("99999999999999999999", "--c"); }, "is not an integer"));
}
