// safetensors save/load and the strict JSON subset behind its header. Loading trusts nothing in the file:
// sizes are checked before anything is allocated, and the data offsets must tile the data exactly.
// Tested by tests/test_checkpoint.cpp.
#include "models/checkpoint.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <set>

namespace jebm {

// The format is little-endian and we copy tensor bytes as they are in memory.
static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "checkpoint.cpp assumes a little-endian host");

namespace {

constexpr uint64_t kMaxHeaderBytes = 100ull << 20;  // safetensors' own limit is 100 MB
constexpr int kMaxJsonDepth = 64;                   // deep nesting is always corruption; bounds the recursion
const char* const kMetadataKey = "__metadata__";

}  // namespace

// --- JSON -----------------------------------------------------------------------------------------------

namespace json {
namespace {

class Parser {
 public:
  Parser(const std::string& text, const std::string& what) : s_(text), what_(what) {}

  Value parse_document() {
    Value v = parse_value(0);
    skip_ws();
    if (pos_ != s_.size()) fail("unexpected trailing character '" + printable(s_[pos_]) + "'");
    return v;
  }

 private:
  const std::string& s_;
  const std::string& what_;
  size_t pos_ = 0;

  [[noreturn]] void fail(const std::string& msg) const {
    JEBM_FAIL(what_ << ": header JSON: " << msg << " at byte " << pos_);
  }
  static std::string printable(char c) {
    const auto u = static_cast<unsigned char>(c);
    if (u >= 0x20 && u < 0x7f) return std::string(1, c);
    char buf[8];
    std::snprintf(buf, sizeof buf, "\\x%02x", u);
    return buf;
  }
  void skip_ws() {
    while (pos_ < s_.size() && (s_[pos_] == ' ' || s_[pos_] == '\t' || s_[pos_] == '\n' || s_[pos_] == '\r')) ++pos_;
  }
  char peek() {
    skip_ws();
    if (pos_ >= s_.size()) fail("unexpected end of header");
    return s_[pos_];
  }
  void expect(char c) {
    if (peek() != c) fail(std::string("expected '") + c + "', found '" + printable(s_[pos_]) + "'");
    ++pos_;
  }

  Value parse_value(int depth) {
    if (depth > kMaxJsonDepth) fail("nesting deeper than " + std::to_string(kMaxJsonDepth));
    const char c = peek();
    Value v;
    if (c == '{') {
      v.kind = Value::Kind::Object;
      ++pos_;
      std::set<std::string> seen;
      if (peek() == '}') { ++pos_; return v; }
      for (;;) {
        if (peek() != '"') fail("expected a string key");
        const size_t key_pos = pos_;
        std::string key = parse_string();
        if (!seen.insert(key).second) {
          pos_ = key_pos;
          fail("duplicate key \"" + key + "\"");
        }
        expect(':');
        Value child = parse_value(depth + 1);
        v.object.emplace_back(std::move(key), std::move(child));
        if (peek() == ',') { ++pos_; continue; }
        expect('}');
        return v;
      }
    }
    if (c == '[') {
      v.kind = Value::Kind::Array;
      ++pos_;
      if (peek() == ']') { ++pos_; return v; }
      for (;;) {
        v.array.push_back(parse_value(depth + 1));
        if (peek() == ',') { ++pos_; continue; }
        expect(']');
        return v;
      }
    }
    if (c == '"') {
      v.kind = Value::Kind::String;
      v.string = parse_string();
      return v;
    }
    if (c == '-' || (c >= '0' && c <= '9')) {
      v.kind = Value::Kind::Integer;
      v.integer = parse_integer();
      return v;
    }
    fail("unexpected character '" + printable(c) + "' (only objects, arrays, strings and integers are allowed)");
  }

  int64_t parse_integer() {
    const bool negative = s_[pos_] == '-';
    if (negative) ++pos_;
    if (pos_ >= s_.size() || s_[pos_] < '0' || s_[pos_] > '9') fail("expected a digit");
    if (s_[pos_] == '0' && pos_ + 1 < s_.size() && s_[pos_ + 1] >= '0' && s_[pos_ + 1] <= '9')
      fail("leading zero in a number");
    // Accumulate as a negative number so INT64_MIN fits; overflow is an error, not a wrap.
    int64_t acc = 0;
    while (pos_ < s_.size() && s_[pos_] >= '0' && s_[pos_] <= '9') {
      const int d = s_[pos_] - '0';
      if (acc < (INT64_MIN + d) / 10) fail("integer out of range");
      acc = acc * 10 - d;
      ++pos_;
    }
    if (pos_ < s_.size() && (s_[pos_] == '.' || s_[pos_] == 'e' || s_[pos_] == 'E'))
      fail("non-integer number");
    if (negative) return acc;
    if (acc == INT64_MIN) fail("integer out of range");
    return -acc;
  }

  unsigned hex4() {
    if (pos_ + 4 > s_.size()) fail("truncated \\u escape");
    unsigned v = 0;
    for (int i = 0; i < 4; ++i) {
      const char h = s_[pos_++];
      v <<= 4;
      if (h >= '0' && h <= '9') v |= static_cast<unsigned>(h - '0');
      else if (h >= 'a' && h <= 'f') v |= static_cast<unsigned>(h - 'a' + 10);
      else if (h >= 'A' && h <= 'F') v |= static_cast<unsigned>(h - 'A' + 10);
      else { --pos_; fail("bad hex digit in \\u escape"); }
    }
    return v;
  }

  static void append_utf8(std::string& out, unsigned cp) {
    if (cp < 0x80) {
      out += static_cast<char>(cp);
    } else if (cp < 0x800) {
      out += static_cast<char>(0xc0 | (cp >> 6));
      out += static_cast<char>(0x80 | (cp & 0x3f));
    } else if (cp < 0x10000) {
      out += static_cast<char>(0xe0 | (cp >> 12));
      out += static_cast<char>(0x80 | ((cp >> 6) & 0x3f));
      out += static_cast<char>(0x80 | (cp & 0x3f));
    } else {
      out += static_cast<char>(0xf0 | (cp >> 18));
      out += static_cast<char>(0x80 | ((cp >> 12) & 0x3f));
      out += static_cast<char>(0x80 | ((cp >> 6) & 0x3f));
      out += static_cast<char>(0x80 | (cp & 0x3f));
    }
  }

  std::string parse_string() {
    ++pos_;  // opening quote
    std::string out;
    for (;;) {
      if (pos_ >= s_.size()) fail("unterminated string");
      const char c = s_[pos_];
      if (c == '"') { ++pos_; return out; }
      if (static_cast<unsigned char>(c) < 0x20) fail("raw control character in a string");
      if (c != '\\') { out += c; ++pos_; continue; }
      ++pos_;
      if (pos_ >= s_.size()) fail("unterminated escape");
      const char e = s_[pos_++];
      switch (e) {
        case '"': out += '"'; break;
        case '\\': out += '\\'; break;
        case '/': out += '/'; break;
        case 'b': out += '\b'; break;
        case 'f': out += '\f'; break;
        case 'n': out += '\n'; break;
        case 'r': out += '\r'; break;
        case 't': out += '\t'; break;
        case 'u': {
          unsigned cp = hex4();
          if (cp >= 0xd800 && cp < 0xdc00) {  // high surrogate: a low one must follow
            if (pos_ + 2 > s_.size() || s_[pos_] != '\\' || s_[pos_ + 1] != 'u') fail("unpaired surrogate");
            pos_ += 2;
            const unsigned lo = hex4();
            if (lo < 0xdc00 || lo >= 0xe000) fail("unpaired surrogate");
            cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
          } else if (cp >= 0xdc00 && cp < 0xe000) {
            fail("unpaired surrogate");
          }
          append_utf8(out, cp);
          break;
        }
        default: --pos_; fail("bad escape '\\" + printable(e) + "'");
      }
    }
  }
};

}  // namespace

Value parse(const std::string& text, const std::string& what) { return Parser(text, what).parse_document(); }

void write_string(std::string& out, const std::string& s) {
  out += '"';
  for (const char c : s) {
    const auto u = static_cast<unsigned char>(c);
    if (c == '"') out += "\\\"";
    else if (c == '\\') out += "\\\\";
    else if (u < 0x20) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\u%04x", u);
      out += buf;
    } else {
      out += c;  // UTF-8 bytes pass through unchanged
    }
  }
  out += '"';
}

}  // namespace json

// --- dtypes ---------------------------------------------------------------------------------------------

const char* safetensors_dtype_name(DType dtype) {
  switch (dtype) {
    case DType::Float32: return "F32";
    case DType::Float64: return "F64";
    case DType::Int64: return "I64";
  }
  JEBM_FAIL("safetensors_dtype_name: unknown dtype " << static_cast<int>(dtype));
}

namespace {

std::optional<DType> dtype_from_safetensors(const std::string& s) {
  if (s == "F32") return DType::Float32;
  if (s == "F64") return DType::Float64;
  if (s == "I64") return DType::Int64;
  return std::nullopt;
}

std::string errno_str() { return std::strerror(errno); }

// --- save -----------------------------------------------------------------------------------------------

void write_all(int fd, const void* data, size_t n, const std::string& tmp) {
  const char* p = static_cast<const char*>(data);
  while (n > 0) {
    const ssize_t w = ::write(fd, p, n);
    if (w < 0 && errno == EINTR) continue;
    JEBM_CHECK(w > 0, "save_safetensors: " << tmp << ": write failed: " << errno_str());
    p += w;
    n -= static_cast<size_t>(w);
  }
}

// Makes the rename itself durable. Best effort: some filesystems refuse fsync on directories.
void fsync_parent_dir(const std::string& path) {
  std::filesystem::path parent = std::filesystem::path(path).parent_path();
  if (parent.empty()) parent = ".";
  const int fd = ::open(parent.c_str(), O_RDONLY | O_DIRECTORY);
  if (fd < 0) return;
  (void)::fsync(fd);
  ::close(fd);
}

}  // namespace

void save_safetensors(const std::string& path, const std::vector<std::pair<std::string, Tensor>>& tensors,
                      const std::map<std::string, std::string>& metadata) {
  // Host copies first: a device->host failure must not leave a .tmp behind.
  std::vector<Tensor> host;
  host.reserve(tensors.size());
  std::set<std::string> names;
  for (const auto& [name, t] : tensors) {
    JEBM_CHECK(!name.empty(), "save_safetensors: " << path << ": empty tensor name");
    JEBM_CHECK(name != kMetadataKey, "save_safetensors: " << path << ": tensor name \"" << name << "\" is reserved");
    JEBM_CHECK(names.insert(name).second, "save_safetensors: " << path << ": duplicate tensor name \"" << name << "\"");
    JEBM_CHECK(t.defined(), "save_safetensors: " << path << ": tensor \"" << name << "\" is undefined");
    host.push_back(t.to(Device::cpu()));
  }

  std::string header = "{";
  if (!metadata.empty()) {
    json::write_string(header, kMetadataKey);
    header += ":{";
    bool first = true;
    for (const auto& [k, v] : metadata) {
      if (!first) header += ',';
      first = false;
      json::write_string(header, k);
      header += ':';
      json::write_string(header, v);
    }
    header += '}';
  }
  uint64_t offset = 0;
  for (size_t i = 0; i < tensors.size(); ++i) {
    if (header.size() > 1) header += ',';
    json::write_string(header, tensors[i].first);
    header += ":{\"dtype\":\"";
    header += safetensors_dtype_name(host[i].dtype());
    header += "\",\"shape\":[";
    for (size_t d = 0; d < host[i].shape().size(); ++d) {
      if (d) header += ',';
      header += std::to_string(host[i].shape()[d]);
    }
    const uint64_t end = offset + host[i].nbytes();
    header += "],\"data_offsets\":[" + std::to_string(offset) + "," + std::to_string(end) + "]}";
    offset = end;
  }
  header += '}';
  // Like the reference writer, pad with spaces so the data starts 8-byte aligned (zero-copy loaders need it).
  while (header.size() % 8 != 0) header += ' ';
  const uint64_t header_len = header.size();
  unsigned char len_bytes[8];
  for (int i = 0; i < 8; ++i) len_bytes[i] = static_cast<unsigned char>(header_len >> (8 * i));

  const std::string tmp = path + ".tmp";
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  JEBM_CHECK(fd >= 0, "save_safetensors: cannot create " << tmp << ": " << errno_str());
  try {
    write_all(fd, len_bytes, 8, tmp);
    write_all(fd, header.data(), header.size(), tmp);
    for (const Tensor& t : host)
      if (t.nbytes() > 0) write_all(fd, t.raw_data(), t.nbytes(), tmp);
    JEBM_CHECK(::fsync(fd) == 0, "save_safetensors: " << tmp << ": fsync failed: " << errno_str());
    const int rc = ::close(fd);
    JEBM_CHECK(rc == 0, "save_safetensors: " << tmp << ": close failed: " << errno_str());
  } catch (...) {
    ::close(fd);  // harmless EBADF if already closed
    ::unlink(tmp.c_str());
    throw;
  }
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    const std::string why = errno_str();
    ::unlink(tmp.c_str());
    JEBM_FAIL("save_safetensors: cannot rename " << tmp << " to " << path << ": " << why);
  }
  fsync_parent_dir(path);
}

// --- load -----------------------------------------------------------------------------------------------

namespace {

struct Entry {
  std::string name;
  DType dtype;
  Shape shape;
  uint64_t begin, end;
};

const json::Value* field(const json::Value& obj, const char* key) {
  for (const auto& [k, v] : obj.object)
    if (k == key) return &v;
  return nullptr;
}

Entry parse_entry(const std::string& path, const std::string& name, const json::Value& v, uint64_t data_bytes) {
  const std::string where = path + ": tensor \"" + name + "\"";
  JEBM_CHECK(v.kind == json::Value::Kind::Object, where << ": entry is not a JSON object");
  for (const auto& [k, _] : v.object)
    JEBM_CHECK(k == "dtype" || k == "shape" || k == "data_offsets", where << ": unknown field \"" << k << "\"");
  const json::Value* dt = field(v, "dtype");
  const json::Value* sh = field(v, "shape");
  const json::Value* off = field(v, "data_offsets");
  JEBM_CHECK(dt, where << ": missing field \"dtype\"");
  JEBM_CHECK(sh, where << ": missing field \"shape\"");
  JEBM_CHECK(off, where << ": missing field \"data_offsets\"");

  Entry e;
  e.name = name;
  JEBM_CHECK(dt->kind == json::Value::Kind::String, where << ": dtype is not a string");
  const auto dtype = dtype_from_safetensors(dt->string);
  JEBM_CHECK(dtype, where << ": dtype \"" << dt->string << "\" is not supported (F32, F64, I64)");
  e.dtype = *dtype;

  JEBM_CHECK(sh->kind == json::Value::Kind::Array, where << ": shape is not an array");
  // numel * dtype size must fit the data we have, so bound the product as it grows (no overflow possible).
  uint64_t numel = 1;
  bool zero = false;
  for (const json::Value& d : sh->array) {
    JEBM_CHECK(d.kind == json::Value::Kind::Integer && d.integer >= 0,
               where << ": shape entries must be non-negative integers");
    e.shape.push_back(d.integer);
    if (d.integer == 0) zero = true;
    if (!zero) {
      const auto dim = static_cast<uint64_t>(d.integer);
      JEBM_CHECK(numel <= data_bytes / dim, where << ": shape " << shape_str(e.shape)
                                                  << "... needs more bytes than the " << data_bytes
                                                  << " of data in the file");
      numel *= dim;
    }
  }
  if (zero) numel = 0;

  JEBM_CHECK(off->kind == json::Value::Kind::Array && off->array.size() == 2 &&
                 off->array[0].kind == json::Value::Kind::Integer && off->array[1].kind == json::Value::Kind::Integer &&
                 off->array[0].integer >= 0 && off->array[1].integer >= 0,
             where << ": data_offsets must be two non-negative integers [begin, end]");
  e.begin = static_cast<uint64_t>(off->array[0].integer);
  e.end = static_cast<uint64_t>(off->array[1].integer);
  JEBM_CHECK(e.begin <= e.end, where << ": data_offsets [" << e.begin << ", " << e.end << "] has begin > end");
  JEBM_CHECK(e.end <= data_bytes, where << ": data_offsets [" << e.begin << ", " << e.end
                                        << "] run past the end of the " << data_bytes << " data bytes");
  const uint64_t need = numel * dtype_size(e.dtype);
  JEBM_CHECK(e.end - e.begin == need, where << ": data_offsets [" << e.begin << ", " << e.end << "] span "
                                            << (e.end - e.begin) << " bytes, but shape " << shape_str(e.shape) << " of "
                                            << dt->string << " needs " << need);
  return e;
}

}  // namespace

SafeTensors load_safetensors(const std::string& path) {
  std::error_code ec;
  JEBM_CHECK(std::filesystem::is_regular_file(path, ec),
             "load_safetensors: " << path << ": no such file (or not a regular file)");
  std::ifstream in(path, std::ios::binary);
  JEBM_CHECK(in, "load_safetensors: cannot open " << path << ": " << errno_str());
  in.seekg(0, std::ios::end);
  const auto file_size_signed = static_cast<int64_t>(in.tellg());
  JEBM_CHECK(file_size_signed >= 0, "load_safetensors: " << path << ": cannot determine file size");
  const auto file_size = static_cast<uint64_t>(file_size_signed);
  in.seekg(0, std::ios::beg);
  JEBM_CHECK(file_size >= 8, path << ": file is " << file_size << " bytes, shorter than the 8-byte header length");

  unsigned char len_bytes[8];
  in.read(reinterpret_cast<char*>(len_bytes), 8);
  JEBM_CHECK(in.gcount() == 8, path << ": cannot read the header length");
  uint64_t header_len = 0;
  for (int i = 7; i >= 0; --i) header_len = (header_len << 8) | len_bytes[i];
  JEBM_CHECK(header_len > 0, path << ": header length 0 (no JSON header)");
  JEBM_CHECK(header_len <= kMaxHeaderBytes, path << ": header length " << header_len << " exceeds the limit of "
                                                  << kMaxHeaderBytes << " bytes");
  JEBM_CHECK(header_len <= file_size - 8, path << ": header length " << header_len << " is larger than the "
                                               << (file_size - 8) << " bytes after the length field (truncated?)");
  std::string header(header_len, '\0');
  in.read(header.data(), static_cast<std::streamsize>(header_len));
  JEBM_CHECK(static_cast<uint64_t>(in.gcount()) == header_len,
             path << ": cannot read the " << header_len << "-byte header");
  const uint64_t data_bytes = file_size - 8 - header_len;

  const json::Value root = json::parse(header, path);
  JEBM_CHECK(root.kind == json::Value::Kind::Object, path << ": header JSON is not an object");

  SafeTensors st;
  st.path = path;
  std::vector<Entry> entries;
  for (const auto& [name, v] : root.object) {  // the parser already rejected duplicate names
    if (name == kMetadataKey) {
      JEBM_CHECK(v.kind == json::Value::Kind::Object, path << ": " << kMetadataKey << " is not an object");
      for (const auto& [k, mv] : v.object) {
        JEBM_CHECK(mv.kind == json::Value::Kind::String,
                   path << ": " << kMetadataKey << " entry \"" << k << "\" is not a string");
        st.metadata[k] = mv.string;
      }
      continue;
    }
    JEBM_CHECK(!name.empty(), path << ": empty tensor name");
    entries.push_back(parse_entry(path, name, v, data_bytes));
  }

  // The offsets must tile [0, data_bytes) exactly: no overlap, no gap, nothing left over.
  std::vector<const Entry*> order;
  for (const Entry& e : entries) order.push_back(&e);
  std::stable_sort(order.begin(), order.end(), [](const Entry* a, const Entry* b) {
    return a->begin != b->begin ? a->begin < b->begin : a->end < b->end;
  });
  uint64_t covered = 0;
  const Entry* prev = nullptr;
  for (const Entry* e : order) {
    JEBM_CHECK(e->begin >= covered, path << ": tensor \"" << e->name << "\" data_offsets [" << e->begin << ", "
                                         << e->end << "] overlap tensor \"" << (prev ? prev->name : "") << "\"");
    JEBM_CHECK(e->begin == covered, path << ": data bytes [" << covered << ", " << e->begin
                                         << ") are not covered by any tensor (before tensor \"" << e->name << "\")");
    covered = e->end;
    prev = e;
  }
  JEBM_CHECK(covered == data_bytes, path << ": data bytes [" << covered << ", " << data_bytes
                                         << ") at the end of the file are not covered by any tensor");

  // Sequential reads in offset order: the file position always equals the next tensor's begin.
  for (const Entry* e : order) {
    Tensor t = Tensor::empty(e->shape, e->dtype, Device::cpu());
    if (t.nbytes() > 0) {
      in.read(static_cast<char*>(t.raw_data()), static_cast<std::streamsize>(t.nbytes()));
      JEBM_CHECK(static_cast<uint64_t>(in.gcount()) == t.nbytes(),
                 path << ": tensor \"" << e->name << "\": short read (file changed while loading?)");
    }
    st.tensors.emplace(e->name, std::move(t));
  }
  return st;
}

Tensor get(const SafeTensors& st, const std::string& name, const std::optional<Shape>& shape,
           std::optional<DType> dtype) {
  const auto it = st.tensors.find(name);
  JEBM_CHECK(it != st.tensors.end(), st.path << ": no tensor \"" << name << "\" (the file has " << st.tensors.size()
                                             << " tensors)");
  const Tensor& t = it->second;
  JEBM_CHECK(!shape || t.shape() == *shape, st.path << ": tensor \"" << name << "\" has shape " << shape_str(t.shape())
                                                    << ", expected " << shape_str(*shape));
  JEBM_CHECK(!dtype || t.dtype() == *dtype, st.path << ": tensor \"" << name << "\" has dtype " << dtype_name(t.dtype())
                                                    << ", expected " << dtype_name(*dtype));
  return t;
}

}  // namespace jebm
