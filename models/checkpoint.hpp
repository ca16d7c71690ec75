// Checkpoints in the safetensors format (8-byte little-endian header length, JSON header, raw little-endian
// data), readable by Python's `safetensors` package; includes the small strict JSON reader/writer it needs.
// Tested by tests/test_checkpoint.cpp (round trips, corrupt files, atomic replace, Python interop).
#pragma once
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "runtime/tensor.hpp"

namespace jebm {

// Writes `tensors` (any device; copied to host) and string `metadata` to `path`. The bytes go to
// `path + ".tmp"`, are fsync'ed, then renamed over `path`, so a crash leaves either the old file or the new
// one, never a half-written one. Names must be unique, non-empty and not "__metadata__".
void save_safetensors(const std::string& path, const std::vector<std::pair<std::string, Tensor>>& tensors,
                      const std::map<std::string, std::string>& metadata = {});

struct SafeTensors {
  std::string path;  // where it was loaded from (for error messages)
  std::map<std::string, Tensor> tensors;  // host tensors
  std::map<std::string, std::string> metadata;
};

// Reads and fully validates a safetensors file (F32, F64, I64 only); every problem is a jebm::Error naming
// the file and the tensor or field.
SafeTensors load_safetensors(const std::string& path);

// The tensor `name`, checked against an expected shape and dtype when given; errors name file and tensor.
Tensor get(const SafeTensors& st, const std::string& name, const std::optional<Shape>& shape = std::nullopt,
           std::optional<DType> dtype = std::nullopt);

// safetensors dtype strings: "F32", "F64", "I64".
const char* safetensors_dtype_name(DType dtype);

// --- the JSON subset safetensors needs: objects, arrays, strings (with escapes), integers -------------------
namespace json {

struct Value {
  enum class Kind { Object, Array, String, Integer };
  Kind kind = Kind::Object;
  std::vector<std::pair<std::string, Value>> object;  // in file order; keys unique
  std::vector<Value> array;
  std::string string;  // UTF-8
  int64_t integer = 0;
};

// Parses exactly one value followed only by whitespace; throws jebm::Error "<what>: ... at byte N" on
// anything else (floats, true/false/null, duplicate keys, nesting deeper than 64, raw control characters).
Value parse(const std::string& text, const std::string& what);

// Writes `s` as a JSON string literal (quotes included), escaping quotes, backslashes and control characters.
void write_string(std::string& out, const std::string& s);

}  // namespace json
}  // namespace jebm
