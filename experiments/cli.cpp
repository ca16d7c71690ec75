// Comma-separated number lists and numeric option ranges for the command lines (see cli.hpp). Tested by
// tests/test_cli.cpp, tests/test_image_ebm.cpp and tests/test_classifier_cmd.cpp.
#include "experiments/cli.hpp"

#include <algorithm>
#include <cmath>
#include <exception>
#include <filesystem>
#include <iomanip>
#include <sstream>

#include "experiments/output.hpp"
#include "runtime/check.hpp"
#include "runtime/user_error.hpp"

namespace jebm {

namespace po = boost::program_options;

namespace {

// Splits on ',' and converts each item with `convert(item, &used)` (std::stod/std::stoll); an item must be
// consumed whole but for blanks around it ("0.25, 0.75").
template <typename T, typename Convert>
std::vector<T> parse_list(const std::string& text, const std::string& option, const char* kind, Convert convert) {
  std::vector<T> out;
  std::stringstream ss(text);
  std::string item;
  while (std::getline(ss, item, ',')) {
    size_t used = 0;
    T v{};
    try {
      v = convert(item, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    const bool blank_after = item.find_first_not_of(" \t", used) == std::string::npos;
    JEBM_USER_CHECK(used > 0 && blank_after,
               option << " '" << text << "': '" << item << "' is not " << kind);
    out.push_back(v);
  }
  JEBM_USER_CHECK(!out.empty(), option << " '" << text << "': empty list");
  return out;
}

// Whole numbers in full ("1000000", not "1e+06"); others in the shortest default form.
std::string num(double v) {
  std::ostringstream os;
  if (v == std::floor(v) && std::fabs(v) < 1e15) os << static_cast<int64_t>(v);
  else os << v;
  return os.str();
}

// An option error whose substitutions (the user's option name and value) have every '%' followed by a blank.
// Built by copying: the substitutions are protected members of the Boost class.
struct SafeOptionError : boost::program_options::error_with_option_name {
  explicit SafeOptionError(const boost::program_options::error_with_option_name& e) : error_with_option_name(e) {
    for (auto& kv : m_substitutions) {
      std::string safe;
      for (char ch : kv.second) safe += ch == '%' ? std::string("% ") : std::string(1, ch);
      kv.second = safe;
    }
  }
};

}  // namespace

std::string option_error_text(const boost::program_options::error& e) {
  if (const auto* o = dynamic_cast<const boost::program_options::error_with_option_name*>(&e))
    return SafeOptionError(*o).what();
  return e.what();
}

namespace {

// Levenshtein distance (insertions, deletions, substitutions): how far a mistyped option is from a real one.
size_t edit_distance(const std::string& a, const std::string& b) {
  std::vector<size_t> row(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    size_t diag = row[0];
    row[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      const size_t up = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diag + (a[i - 1] == b[j - 1] ? 0 : 1)});
      diag = up;
    }
  }
  return row[b.size()];
}

}  // namespace

std::string nearest_option(const po::options_description& desc, const std::string& name) {
  const std::string bare = name.substr(name.find_first_not_of('-') == std::string::npos ? name.size()
                                                                                         : name.find_first_not_of('-'));
  std::string best;
  size_t best_d = std::max<size_t>(2, bare.size() / 3) + 1;  // farther than this is not a typo
  for (const auto& od : desc.options()) {
    const std::string& cand = od->long_name();
    if (cand.empty()) continue;
    const size_t d = edit_distance(bare, cand);
    if (d < best_d) best_d = d, best = cand;
  }
  return best;
}

std::string option_error_text(const po::error& e, const po::options_description& desc) {
  std::string text = option_error_text(e);
  if (const auto* u = dynamic_cast<const po::unknown_option*>(&e)) {
    const std::string near = nearest_option(desc, u->get_option_name());
    if (!near.empty()) text += "; did you mean --" + near + "?";
  }
  return text;
}

void fail_option_error(const po::error& e, const po::options_description& desc, const std::string& command) {
  JEBM_USER_FAIL(option_error_text(e, desc) << " (see jebm " << command << " --help)");
}

std::string error_text(const std::string& cmd, const std::string& rank, const std::string& what, bool user) {
  if (user) return "jebm " + cmd + ": error" + rank + ": " + what + "\n";
  return "jebm " + cmd + ": internal error" + rank + ": " + what + "\n" +
         "this is a bug in jebm (one of its own checks failed); please report it on the jebm issue tracker with the "
         "command line, this message and the output of jebm --version\n";
}

std::vector<double> parse_double_list(const std::string& text, const std::string& option) {
  return parse_list<double>(text, option, "a number",
                            [](const std::string& s, size_t* used) { return std::stod(s, used); });
}

std::vector<int64_t> parse_int64_list(const std::string& text, const std::string& option) {
  return parse_list<int64_t>(text, option, "an integer", [](const std::string& s, size_t* used) {
    return static_cast<int64_t>(std::stoll(s, used));
  });
}

bool Range::contains(double v) const {
  if (!std::isfinite(v)) return false;
  if (lo_open ? !(v > lo) : !(v >= lo)) return false;
  return hi_open ? v < hi : v <= hi;
}

std::string Range::text() const {
  const bool has_lo = std::isfinite(lo), has_hi = std::isfinite(hi);
  if (has_lo && has_hi) return std::string("(in ") + (lo_open ? "(" : "[") + num(lo) + ", " + num(hi) + (hi_open ? "))" : "])");
  if (has_lo) return std::string("(") + (lo_open ? "> " : ">= ") + num(lo) + ")";
  if (has_hi) return std::string("(") + (hi_open ? "< " : "<= ") + num(hi) + ")";
  return "";
}

Range at_least(double lo) { return Range{lo, std::numeric_limits<double>::infinity(), false, false}; }
Range above(double lo) { return Range{lo, std::numeric_limits<double>::infinity(), true, false}; }
Range within(double lo, double hi) { return Range{lo, hi, false, false}; }
Range within_upper_open(double lo, double hi) { return Range{lo, hi, false, true}; }
Range any_value() { return Range{}; }

void check_range(const std::string& option, double v, const Range& r) {
  const std::string t = r.text();
  JEBM_USER_CHECK(r.contains(v), option << " " << v << " is outside its range " << (t.empty() ? "(finite)" : t));
}

const Range& OptionRanges::at(const std::string& name) const {
  const auto it = ranges_.find(name);
  JEBM_CHECK(it != ranges_.end(), "option --" << name << " has no documented range (add it to its command's "
                                                    "OptionRanges, experiments/cli.hpp)");
  return it->second;
}

std::string OptionRanges::help(const std::string& name, const std::string& help) const {
  const std::string t = at(name).text();
  return t.empty() ? help : help + " " + t;
}

void OptionRanges::check(const boost::program_options::variables_map& vm) const {
  for (const auto& [name, val] : vm) {
    const auto& a = val.value();
    double v = 0.0;
    if (a.type() == typeid(double)) v = val.as<double>();
    else if (a.type() == typeid(int)) v = val.as<int>();
    else if (a.type() == typeid(int64_t)) v = static_cast<double>(val.as<int64_t>());
    else if (a.type() == typeid(uint64_t)) v = static_cast<double>(val.as<uint64_t>());
    else continue;
    // Integers are shown exactly (a double would print 2^62 as 4.61169e+18).
    const Range& r = at(name);
    if (r.contains(v)) continue;
    std::ostringstream shown;
    if (a.type() == typeid(double)) shown << v;
    else if (a.type() == typeid(int)) shown << val.as<int>();
    else if (a.type() == typeid(int64_t)) shown << val.as<int64_t>();
    else shown << val.as<uint64_t>();
    JEBM_USER_FAIL("--" << name << " " << shown.str() << " is outside its range " << (r.text().empty() ? "(finite)" : r.text()));
  }
}

std::string short_double(double v) {
  for (int prec = 6; prec <= 17; ++prec) {
    std::ostringstream os;
    os << std::setprecision(prec) << v;
    if (std::stod(os.str()) == v) return os.str();
  }
  return std::to_string(v);
}

std::string option_value_text(const po::variable_value& v) {
  if (v.empty()) return "(not set)";
  if (v.value().type() == typeid(double)) return short_double(v.as<double>());
  if (v.value().type() == typeid(std::vector<std::string>)) {
    std::string joined;
    for (const auto& s : v.as<std::vector<std::string>>()) joined += s + ";";
    return joined;
  }
  const auto t = option_value_string(v);
  return t ? *t : "(not comparable)";
}

void check_resume_options(const po::options_description& desc, const po::variables_map& given,
                          const po::variables_map& run, const std::string& dir,
                          const std::vector<std::string>& may_change, const std::vector<std::string>& not_saved) {
  auto listed = [](const std::vector<std::string>& l, const std::string& n) {
    return std::find(l.begin(), l.end(), n) != l.end();
  };
  std::string may;
  for (const auto& n : may_change) may += (may.empty() ? "--" : ", --") + n;
  for (const auto& [name, val] : given) {
    if (val.defaulted() || listed(not_saved, name) || listed(may_change, name)) continue;
    const std::string now = option_value_text(val);
    std::string was, source = "its options.txt";
    if (run.count(name) && !run[name].defaulted()) {  // po::store fills in defaults: those are not the file's
      was = option_value_text(run[name]);
    } else {
      boost::any def;
      const auto* od = desc.find_nothrow(name, false);
      was = od && od->semantic()->apply_default(def) ? option_value_text(po::variable_value(def, true)) : "(not set)";
      source = "its options.txt does not name it";
    }
    JEBM_USER_CHECK(now == was, "--resume " << dir << ": the run was made with --" << name << " " << was << " (" << source
                                       << "), the options say --" << name << " " << now << "; only " << may
                                       << " may change on resume");
  }
}

std::string option_source(const std::string& name, const std::vector<std::string>& args, const po::variables_map& vm,
                          const po::variables_map& run) {
  const std::string flag = "--" + name;
  for (const std::string& a : args)
    if (a == flag || a.rfind(flag + "=", 0) == 0) return "";
  // po::store keeps the first value: the command line, then the resumed run's options.txt, then --config.
  if (run.count(name) && !run[name].defaulted() && vm.count("resume"))
    return " (from " + (std::filesystem::path(vm["resume"].as<std::string>()) / "options.txt").string() + ")";
  if (vm.count(name) && !vm[name].defaulted() && vm.count("config"))
    return " (from " + vm["config"].as<std::string>() + ")";
  return "";
}

}  // namespace jebm
