// Comma-separated number lists for the command lines (see cli.hpp). Tested by tests/test_image_ebm.cpp and
// tests/test_classifier_cmd.cpp.
#include "experiments/cli.hpp"

#include <exception>
#include <sstream>

#include "runtime/check.hpp"

namespace jebm {

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
    JEBM_CHECK(used > 0 && blank_after,
               option << " '" << text << "': '" << item << "' is not " << kind);
    out.push_back(v);
  }
  JEBM_CHECK(!out.empty(), option << " '" << text << "': empty list");
  return out;
}

}  // namespace

std::vector<double> parse_double_list(const std::string& text, const std::string& option) {
  return parse_list<double>(text, option, "a number",
                            [](const std::string& s, size_t* used) { return std::stod(s, used); });
}

std::vector<int64_t> parse_int64_list(const std::string& text, const std::string& option) {
  return parse_list<int64_t>(text, option, "an integer", [](const std::string& s, size_t* used) {
    return static_cast<int64_t>(std::stoll(s, used));
  });
}

}  // namespace jebm
