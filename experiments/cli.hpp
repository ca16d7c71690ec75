// Command-line helpers shared by the subcommands: comma-separated lists of numbers ("2,3,6", "0.25,0.75"), the
// documented valid range of every numeric option (shown in --help, checked at parse time), and option errors for
// users (unknown options with the nearest valid one). Tested by tests/test_cli.cpp, tests/test_image_ebm.cpp,
// tests/test_classifier_cmd.cpp and, through the jebm binary, tests/test_cli_binary.cpp.
#pragma once
#include <boost/program_options.hpp>

#include <cstdint>
#include <initializer_list>
#include <limits>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "runtime/user_error.hpp"

namespace jebm {

// "0.25,0.75" -> {0.25, 0.75}. Each item is one number (blanks around it allowed), the list is not empty;
// errors name `option`, the text and the bad item.
std::vector<double> parse_double_list(const std::string& text, const std::string& option);
// The int64 twin ("5600,2800,1400"); values outside int64 are errors too.
std::vector<int64_t> parse_int64_list(const std::string& text, const std::string& option);

// The message of a Boost.Program_options error, safe for any user text. Boost 1.74 fills an error's "%value%",
// "%canonical_option%", ... tokens in a loop until none is left, so a value that holds a token ("--dim %value%")
// made what() loop forever (found by the gmm_config fuzz target): here every '%' of the user's text is followed
// by a blank ("% value% ") so that no token can reappear. Use it instead of e.what() for every po::error.
std::string option_error_text(const boost::program_options::error& e);

// The option of desc nearest to `name` ("--iteratons" -> "iterations") by edit distance, or "" when none is within
// a typo's reach (2 edits, or a third of the name).
std::string nearest_option(const boost::program_options::options_description& desc, const std::string& name);
// option_error_text(e), and for an unknown option "; did you mean --NEAREST?" when one is near.
std::string option_error_text(const boost::program_options::error& e,
                              const boost::program_options::options_description& desc);
// Throws the UserError "<option_error_text(e, desc)> (see jebm COMMAND --help)".
[[noreturn]] void fail_option_error(const boost::program_options::error& e,
                                    const boost::program_options::options_description& desc,
                                    const std::string& command);

// What `jebm CMD` prints for an error: "jebm CMD: error RANK: WHAT" for a user's mistake (user), else "jebm CMD:
// internal error RANK: WHAT" (WHAT ends with the check's file:line) and a line saying it is a bug and where to
// report it. rank: "" or " on rank R".
std::string error_text(const std::string& cmd, const std::string& rank, const std::string& what, bool user);

// A numeric option's valid interval. NaN and +-inf are outside every range: no jebm option gives them a meaning.
// text() is what --help shows after the description: "(> 0)", "(>= 1)", "(in [0, 1))"; empty for any_value().
struct Range {
  double lo = -std::numeric_limits<double>::infinity();
  double hi = std::numeric_limits<double>::infinity();
  bool lo_open = false, hi_open = false;
  bool contains(double v) const;
  std::string text() const;
};
Range at_least(double lo);                      // [lo, inf)
Range above(double lo);                         // (lo, inf)
Range within(double lo, double hi);             // [lo, hi]
Range within_upper_open(double lo, double hi);  // [lo, hi)
Range any_value();                              // every finite value (a seed, a coordinate)

// Throws UserError "OPTION VALUE is outside its range (RANGE)" unless r contains v. `option` is the text shown
// ("--sigma", "--teacher-weights item").
void check_range(const std::string& option, double v, const Range& r);

// The ranges of one command's numeric options, by name (without "--"): the one place a range is written, so that
// --help and the check cannot disagree.
class OptionRanges {
 public:
  OptionRanges(std::initializer_list<std::pair<const std::string, Range>> ranges) : ranges_(ranges) {}
  void add(const OptionRanges& more) { ranges_.insert(more.ranges_.begin(), more.ranges_.end()); }
  const Range& at(const std::string& name) const;  // a programming error (Error) when `name` has no range
  // `help` followed by the range's text: the description for --help.
  std::string help(const std::string& name, const std::string& help) const;
  // Checks every numeric value (int, int64, uint64, double) in vm against its option's range. A numeric option
  // without a range is a programming error: the message names it, so a new option cannot skip its range.
  void check(const boost::program_options::variables_map& vm) const;

 private:
  std::map<std::string, Range> ranges_;
};

// Shortest round-tripping text of a double ("5e-05", not "5.0000000000000002e-05"): --help and options.txt.
std::string short_double(double v);

// Text of an option's value: a number in its shortest exact form (equal texts <=> equal values), a list of strings
// joined by ';'; "(not set)" for an option without a value or default.
std::string option_value_text(const boost::program_options::variable_value& v);

// Where option `name`'s value came from, for an error about it: "" for the command line (or its default), else
// " (from FILE)" naming the --config file or the resumed run's options.txt that gave it. `args`: the command
// line; vm: every source (its "config" and "resume" name the files); run: the resumed run's options.txt alone.
std::string option_source(const std::string& name, const std::vector<std::string>& args,
                          const boost::program_options::variables_map& vm,
                          const boost::program_options::variables_map& run);
// A named value's text turned into its enum by `from_name` (e.g. algorithm_from_name), whose error is prefixed
// with the option, its value and its source: "--algo 5 (from run/options.txt): unknown algorithm '5' (...)".
template <typename FromName>
auto parse_named_option(const std::string& name, const std::string& value, const std::string& source,
                        FromName from_name) -> decltype(from_name(value));

// --resume DIR: every option given on the command line or in --config (`given`) must equal the run's (`run`,
// parsed from DIR/options.txt), unless it is in may_change (options that extend the run or change how it is
// computed, not what) or not_saved (options that name the run). An option the run's options.txt lacks counts as its
// default. Fails naming the option, both values and the options that may change.
void check_resume_options(const boost::program_options::options_description& desc,
                          const boost::program_options::variables_map& given,
                          const boost::program_options::variables_map& run, const std::string& dir,
                          const std::vector<std::string>& may_change, const std::vector<std::string>& not_saved);

template <typename FromName>
auto parse_named_option(const std::string& name, const std::string& value, const std::string& source,
                        FromName from_name) -> decltype(from_name(value)) {
  try {
    return from_name(value);
  } catch (const Error& e) {
    throw UserError("--" + name + " " + value + source + ": " + e.what());
  }
}

}  // namespace jebm
