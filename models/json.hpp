// The strict JSON subset a safetensors header needs (objects, arrays, strings with escapes, integers): a
// reader that trusts nothing (depth, duplicates, ranges) and a string writer. Used by models/checkpoint.cpp.
// Tested by tests/test_checkpoint.cpp (json_strings_and_integers) and tests/fuzz (target json).
#pragma once
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace jebm {
namespace json {

struct Value {
  enum class Kind { Object, Array, String, Integer };
  Kind kind = Kind::Object;
  std::vector<std::pair<std::string, Value>> object;  // in file order; keys unique
  std::vector<Value> array;
  std::string string;  // UTF-8
  int64_t integer = 0;
};

// Parses exactly one value followed only by whitespace; throws jebm::UserError "<what>: ... at byte N" on
// anything else (floats, true/false/null, duplicate keys, nesting deeper than 64, raw control characters).
Value parse(const std::string& text, const std::string& what);

// Writes `s` as a JSON string literal (quotes included), escaping quotes, backslashes and control characters.
void write_string(std::string& out, const std::string& s);

}  // namespace json
}  // namespace jebm
