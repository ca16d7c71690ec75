// Tests for models/checkpoint: bit-exact safetensors round trips, the byte layout, the JSON subset, every
// kind of corrupt file (each a jebm::UserError naming file and field), atomic replace, and Python interop: a
// stdlib-only (json + struct) reader/writer wherever python3 runs, and the real safetensors package (reported
// skipped, with the reason, where it is not installed).
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <limits>

#include <zlib.h>

#include "models/checkpoint.hpp"
#include "tests/helpers.hpp"

using namespace jebm;
using jebm::test::same_bits;
using jebm::test::slurp;
using jebm::test::TempDir;
namespace fs = std::filesystem;

namespace {

template <typename T>
Tensor tensor_of(const std::vector<T>& values, const Shape& shape) {
  Tensor t = Tensor::empty(shape, DTypeOf<T>::value);
  BOOST_REQUIRE_EQUAL(static_cast<int64_t>(values.size()), t.numel());
  if (!values.empty()) std::memcpy(t.raw_data(), values.data(), t.nbytes());
  return t;
}

void write_bytes(const fs::path& p, const std::string& bytes) {
  std::ofstream out(p, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

std::string le64(uint64_t v) {
  std::string s(8, '\0');
  for (int i = 0; i < 8; ++i) s[static_cast<size_t>(i)] = static_cast<char>(v >> (8 * i));
  return s;
}

// A hand-made file: length field (the header's own length unless overridden), header, data bytes.
std::string raw_file(const std::string& header, size_t data_bytes, int64_t length_override = -1) {
  const uint64_t len = length_override >= 0 ? static_cast<uint64_t>(length_override) : header.size();
  return le64(len) + header + std::string(data_bytes, '\x01');
}

// Loading `bytes` must throw a jebm::UserError (the file is at fault, not jebm: no source location) whose message
// contains the file name and every one of `needles`.
void expect_load_error(const TempDir& dir, const std::string& bytes, std::vector<std::string> needles) {
  const fs::path p = dir.path / "bad.safetensors";
  write_bytes(p, bytes);
  needles.push_back(p.string());
  jebm::test::expect_user_error([&] { load_safetensors(p.string()); }, needles);
}

std::vector<std::pair<std::string, Tensor>> sample_tensors() {
  const float fnan = std::numeric_limits<float>::quiet_NaN();
  const float finf = std::numeric_limits<float>::infinity();
  const float fden = std::numeric_limits<float>::denorm_min();
  return {
      {"layer.0.weight", tensor_of<float>({1.5f, -0.0f, fnan, finf, -finf, fden}, {2, 3})},
      {"bias64", tensor_of<double>({3.141592653589793, -1e-300, 1e300, 0.1}, {4})},
      {"indices", tensor_of<int64_t>({std::numeric_limits<int64_t>::min(), -1, 0, std::numeric_limits<int64_t>::max()},
                                     {2, 2})},
      {"scalar", tensor_of<float>({42.25f}, {})},
      {"empty", tensor_of<double>({}, {0})},
      {"empty3d", tensor_of<int64_t>({}, {2, 0, 3})},
      {"odd", tensor_of<float>({1, 2, 3}, {3})},  // 12 bytes: later tensors start unaligned; must still work
  };
}

}  // namespace

BOOST_AUTO_TEST_CASE(round_trip_is_bit_exact_with_metadata) {
  TempDir dir;
  const std::string path = (dir.path / "ckpt.safetensors").string();
  const auto tensors = sample_tensors();
  const std::map<std::string, std::string> meta = {
      {"seed", "1234"}, {"offset", "99"}, {"note", "quote \" backslash \\ newline \n tab \t bell \x07 utf8 \xc3\xa9"},
      {"", "empty key"}};
  save_safetensors(path, tensors, meta);
  BOOST_TEST(!fs::exists(path + ".tmp"));

  const SafeTensors st = load_safetensors(path);
  BOOST_TEST(st.path == path);
  BOOST_TEST(st.tensors.size() == tensors.size());
  for (const auto& [name, t] : tensors) {
    BOOST_REQUIRE_MESSAGE(st.tensors.count(name), "missing " << name);
    BOOST_CHECK_MESSAGE(same_bits(st.tensors.at(name), t), "tensor " << name << " differs after the round trip");
  }
  BOOST_TEST(st.tensors.at("scalar").dim() == 0);
  BOOST_TEST((st.metadata == meta));
}

BOOST_AUTO_TEST_CASE(byte_layout_follows_the_spec) {
  TempDir dir;
  const std::string path = (dir.path / "layout.safetensors").string();
  save_safetensors(path, {{"a", tensor_of<float>({1.0f, 2.0f}, {2})}, {"b", tensor_of<int64_t>({7}, {1})}},
                   {{"k", "v"}});
  const std::string bytes = slurp(path);
  uint64_t n = 0;
  for (int i = 7; i >= 0; --i) n = (n << 8) | static_cast<unsigned char>(bytes[static_cast<size_t>(i)]);
  BOOST_TEST(n % 8 == 0);  // data starts 8-byte aligned, like the reference writer
  BOOST_REQUIRE(8 + n + 16 == bytes.size());
  std::string header = bytes.substr(8, n);
  while (!header.empty() && header.back() == ' ') header.pop_back();
  // jebm adds each tensor's CRC-32 (zlib's) to the metadata (tests/test_checkpoint_integrity.cpp).
  const auto crc = [&](size_t begin, size_t len) {
    char buf[16];
    std::snprintf(buf, sizeof buf, "%08lx",
                  crc32(0L, reinterpret_cast<const Bytef*>(bytes.data() + 8 + n + begin), static_cast<uInt>(len)));
    return std::string(buf);
  };
  // ... and the CRC-32 of the metadata it was given: each key and value followed by a 0 byte, in key order.
  char meta_crc[16];
  std::snprintf(meta_crc, sizeof meta_crc, "%08lx", crc32(0L, reinterpret_cast<const Bytef*>("k\0v\0"), 4));
  BOOST_TEST(header == R"({"__metadata__":{"jebm.crc32:a":")" + crc(0, 8) + R"(","jebm.crc32:b":")" + crc(8, 8) +
                           R"(","jebm.metadata_crc32":")" + meta_crc +
                           R"(","k":"v"},"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
                           R"("b":{"dtype":"I64","shape":[1],"data_offsets":[8,16]}})");
  float f[2];
  std::memcpy(f, bytes.data() + 8 + n, 8);
  int64_t i64;
  std::memcpy(&i64, bytes.data() + 8 + n + 8, 8);
  BOOST_TEST(f[0] == 1.0f);
  BOOST_TEST(f[1] == 2.0f);
  BOOST_TEST(i64 == 7);
}

BOOST_AUTO_TEST_CASE(json_strings_and_integers) {
  std::string all;
  for (int c = 1; c < 128; ++c) all += static_cast<char>(c);
  all += "\xc3\xa9\xf0\x9f\x98\x80";
  std::string lit;
  json::write_string(lit, all);
  const json::Value v = json::parse("[" + lit + ", -9223372036854775808, 9223372036854775807, 0]", "t");
  BOOST_REQUIRE(v.kind == json::Value::Kind::Array);
  BOOST_TEST(v.array[0].string == all);
  BOOST_TEST(v.array[1].integer == std::numeric_limits<int64_t>::min());
  BOOST_TEST(v.array[2].integer == std::numeric_limits<int64_t>::max());
  // \u escapes, including a surrogate pair, decode to UTF-8.
  BOOST_TEST(json::parse(R"("\u00e9\ud83d\ude00\/")", "t").string == "\xc3\xa9\xf0\x9f\x98\x80/");
  for (const char* bad : {"9223372036854775808", "1.5", "1e3", "01", "true", "null", "\"\\ud800\"", "\"\\x\"",
                          "{\"a\":1,}", "[1 2]", "\"abc", "{\"a\":1,\"a\":2}", "\"tab\there\"", "{} x", ""}) {
    BOOST_CHECK_THROW(json::parse(bad, "t"), UserError);
  }
}

BOOST_AUTO_TEST_CASE(get_checks_shape_and_dtype_naming_file_and_tensor) {
  TempDir dir;
  const std::string path = (dir.path / "g.safetensors").string();
  save_safetensors(path, {{"w", tensor_of<float>({1, 2, 3, 4, 5, 6}, {2, 3})}});
  const SafeTensors st = load_safetensors(path);
  BOOST_TEST(get(st, "w", Shape{2, 3}, DType::Float32).numel() == 6);
  BOOST_TEST(get(st, "w").numel() == 6);
  auto expect = [&](auto&& fn, std::vector<std::string> needles) {
    needles.push_back(path);
    jebm::test::expect_user_error(fn, needles);  // the file does not hold what the caller needs: the file's fault
  };
  expect([&] { get(st, "w", Shape{3, 2}); }, {"\"w\"", "[2, 3]", "[3, 2]"});
  expect([&] { get(st, "w", std::nullopt, DType::Float64); }, {"\"w\"", "float32", "float64"});
  expect([&] { get(st, "v"); }, {"\"v\""});
}

BOOST_AUTO_TEST_CASE(corrupt_files_give_clear_errors) {
  TempDir dir;
  const std::string ok_entry = R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})";
  for (const std::string& p : {dir.path.string(), (dir.path / "missing.safetensors").string()})
    jebm::test::expect_user_error([&] { load_safetensors(p); }, {p, "no such file"});
  expect_load_error(dir, "", {"shorter than the 8-byte"});
  expect_load_error(dir, "abc", {"3 bytes", "shorter than the 8-byte"});
  expect_load_error(dir, raw_file("", 0, 0), {"header length 0"});
  expect_load_error(dir, le64(uint64_t{1} << 40) + "{}", {"header length 1099511627776", "exceeds the limit"});
  expect_load_error(dir, raw_file(ok_entry, 8, 5000), {"header length 5000", "larger than"});
  expect_load_error(dir, raw_file(R"({"a":{"dtype":"F32", )", 0), {"header JSON", "unexpected end"});
  expect_load_error(dir, raw_file(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}} xyz)", 8),
                    {"header JSON", "trailing"});
  expect_load_error(dir, raw_file(R"({"a":{"dtype":"F16","shape":[2],"data_offsets":[0,4]}})", 4),
                    {"\"a\"", "dtype \"F16\" is not supported"});
  expect_load_error(dir, raw_file(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})", 4),
                    {"\"a\"", "data_offsets [0, 8]", "past the end"});
  expect_load_error(dir, raw_file(R"({"a":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}})", 8),
                    {"\"a\"", "span 8 bytes", "[3] of F32 needs 12"});
  expect_load_error(dir, raw_file(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
                                  R"("b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})", 8),
                    {"\"b\"", "overlap"});
  expect_load_error(dir, raw_file(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})", 8),
                    {"bytes [0, 4)", "not covered"});
  expect_load_error(dir, raw_file(ok_entry, 12), {"bytes [8, 12)", "not covered"});
  expect_load_error(dir, raw_file(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
                                  R"("a":{"dtype":"F32","shape":[2],"data_offsets":[8,16]}})", 16),
                    {"duplicate key \"a\""});
  expect_load_error(dir, raw_file(R"({"a":{"dtype":"F32","shape":[-2],"data_offsets":[0,8]}})", 8),
                    {"\"a\"", "non-negative"});
  expect_load_error(dir, raw_file(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[8,0]}})", 8),
                    {"\"a\"", "begin > end"});
  expect_load_error(dir, raw_file(R"({"a":{"dtype":"F32","shape":[2]}})", 8), {"\"a\"", "missing field \"data_offsets\""});
  expect_load_error(dir, raw_file(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8],"x":1}})", 8),
                    {"\"a\"", "unknown field \"x\""});
  expect_load_error(dir, raw_file(R"({"a":{"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,8]}})", 8),
                    {"\"a\"", "needs more bytes"});
  expect_load_error(dir, raw_file(R"({"__metadata__":{"k":1}})", 0), {"__metadata__", "\"k\"", "not a string"});
  expect_load_error(dir, raw_file(R"([1,2])", 0), {"not an object"});
  expect_load_error(dir, raw_file(std::string(10000, '[') + std::string(10000, ']'), 0), {"nesting deeper"});
  expect_load_error(dir, raw_file(R"({"a":{"dtype":"F32","shape":[2.0],"data_offsets":[0,8]}})", 8),
                    {"non-integer"});
}

// Every truncation and every single-byte corruption of the header of a real file either loads or throws
// jebm::UserError (the file is at fault): nothing else escapes, nothing crashes (run under the sanitizer build to
// catch overreads).
BOOST_AUTO_TEST_CASE(truncated_and_mangled_files_never_crash) {
  TempDir dir;
  const std::string good = (dir.path / "good.safetensors").string();
  save_safetensors(good, sample_tensors(), {{"seed", "1"}});
  const std::string bytes = slurp(good);
  const std::string bad = (dir.path / "bad.safetensors").string();
  int errors = 0;
  for (size_t len = 0; len < bytes.size(); ++len) {
    write_bytes(bad, bytes.substr(0, len));
    try {
      load_safetensors(bad);
      BOOST_ERROR("truncated to " << len << " of " << bytes.size() << " bytes loaded without error");
    } catch (const UserError&) {
      ++errors;
    }
  }
  BOOST_TEST(errors == static_cast<int>(bytes.size()));

  uint64_t n = 0;
  for (int i = 7; i >= 0; --i) n = (n << 8) | static_cast<unsigned char>(bytes[static_cast<size_t>(i)]);
  int loaded = 0, rejected = 0;
  for (size_t pos = 0; pos < 8 + n; ++pos) {
    for (const unsigned char flip : {0x01, 0x80, 0xff}) {
      std::string m = bytes;
      m[pos] = static_cast<char>(static_cast<unsigned char>(m[pos]) ^ flip);
      write_bytes(bad, m);
      try {
        load_safetensors(bad);
        ++loaded;  // e.g. a changed letter inside a name or metadata value
      } catch (const UserError&) {
        ++rejected;
      }
    }
  }
  BOOST_TEST_MESSAGE("mangled headers: " << loaded << " loaded, " << rejected << " rejected");
  BOOST_TEST(rejected > 0);
  BOOST_TEST(loaded + rejected == static_cast<int>(3 * (8 + n)));
}

BOOST_AUTO_TEST_CASE(saving_replaces_atomically_and_leaves_no_tmp) {
  TempDir dir;
  const std::string path = (dir.path / "c.safetensors").string();
  save_safetensors(path, {{"x", tensor_of<float>({1, 2}, {2})}}, {{"step", "1"}});
  // A stale .tmp from an earlier crash must not get in the way.
  write_bytes(path + ".tmp", "garbage from a crashed run");
  save_safetensors(path, {{"y", tensor_of<double>({3, 4, 5}, {3})}}, {{"step", "2"}});
  BOOST_TEST(!fs::exists(path + ".tmp"));
  SafeTensors st = load_safetensors(path);
  BOOST_TEST(st.tensors.size() == 1u);
  BOOST_TEST(st.tensors.count("y") == 1u);
  BOOST_TEST(st.metadata.at("step") == "2");

  // A save that fails validation leaves the previous checkpoint untouched and no .tmp behind.
  const std::string before = slurp(path);
  BOOST_CHECK_THROW(save_safetensors(path, {{"z", Tensor()}}), Error);
  BOOST_CHECK_THROW(save_safetensors(path, {{"a", tensor_of<float>({1}, {1})}, {"a", tensor_of<float>({1}, {1})}}),
                    Error);
  BOOST_CHECK_THROW(save_safetensors(path, {{"__metadata__", tensor_of<float>({1}, {1})}}), Error);
  BOOST_TEST(slurp(path) == before);
  BOOST_TEST(!fs::exists(path + ".tmp"));

  // An unwritable destination is an error naming the path.
  const std::string nowhere = (dir.path / "no" / "such" / "dir" / "c.safetensors").string();
  try {
    save_safetensors(nowhere, {{"x", tensor_of<float>({1}, {1})}});
    BOOST_ERROR("saving into a missing directory succeeded");
  } catch (const Error& e) {
    BOOST_TEST(std::string(e.what()).find(nowhere) != std::string::npos);
  }
}

BOOST_AUTO_TEST_CASE(cuda_tensors_are_saved_from_the_host_copy, *boost::unit_test::precondition(test::CudaDevicePresent())) {
  TempDir dir;
  const std::string path = (dir.path / "cuda.safetensors").string();
  const Tensor host = tensor_of<float>({1, -2, 3.5f}, {3});
  save_safetensors(path, {{"w", host.to(Device::cuda())}});
  BOOST_TEST(same_bits(load_safetensors(path).tensors.at("w"), host));
}

namespace {

// --- Python interop: a stdlib-only reader/writer (json + struct) that runs wherever python3 does, and the real
// `safetensors` package where it is installed. Both read the same file of ours and write the same tensors back.

// Tensors of every dtype, an odd-sized one (padding), a 0-d one, and metadata with quotes and a non-ASCII char.
void write_ours(const std::string& path) {
  save_safetensors(path,
                   {{"w", tensor_of<float>({1.5f, -2.0f, 3.25f, 4.0f, 5.0f, 6.0f}, {2, 3})},
                    {"odd", tensor_of<float>({7, 8, 9}, {3})},
                    {"d", tensor_of<double>({0.1, 0.2}, {2})},
                    {"i", tensor_of<int64_t>({-5, 6}, {2})},
                    {"s", tensor_of<double>({2.5}, {})}},
                   {{"seed", "1234"}, {"note", "a \"quoted\" \xc3\xa9"}});
}

// What both Python writers wrote: b = arange(5) float64, a = [[1, 2], [3, 4]] float32, e = zeros((0, 2)) int64.
SafeTensors check_theirs(const std::string& path) {
  const SafeTensors st = load_safetensors(path);
  BOOST_TEST(st.metadata.at("from") == "python");
  BOOST_TEST(get(st, "b", Shape{5}, DType::Float64).to_vector() == std::vector<double>({0, 1, 2, 3, 4}),
             boost::test_tools::per_element());
  BOOST_TEST(get(st, "a", Shape{2, 2}, DType::Float32).to_vector() == std::vector<double>({1, 2, 3, 4}),
             boost::test_tools::per_element());
  BOOST_TEST(get(st, "e", Shape{0, 2}, DType::Int64).numel() == 0);
  return st;
}

// Runs `program` (written to a file) with our file and the path for theirs; true when it exits 0.
bool run_python(const TempDir& dir, const std::string& program, const std::string& ours, const std::string& theirs) {
  const std::string script = (dir.path / "check.py").string();
  std::ofstream(script) << program;
  const std::string cmd = "python3 '" + script + "' '" + ours + "' '" + theirs + "'";
  return std::system(cmd.c_str()) == 0;
}

// The format by hand, from the spec: u64 little-endian header length, JSON header (padded with spaces so the data
// starts 8-byte aligned), then the data; offsets are relative to the data start and must tile it exactly.
const char* const kStdlibSafetensors = R"PY(import json, struct, sys, zlib
FORMATS = {'F32': 'f', 'F64': 'd', 'I64': 'q'}

def read(path):
    data = open(path, 'rb').read()
    (n,) = struct.unpack('<Q', data[:8])
    assert n % 8 == 0, 'data start not 8-byte aligned: %d' % n
    header = json.loads(data[8:8 + n].decode('utf-8'))
    body = data[8 + n:]
    meta = header.pop('__metadata__', {})
    tensors, covered = {}, 0
    for name, t in header.items():
        code = FORMATS[t['dtype']]
        count = 1
        for d in t['shape']:
            count *= d
        begin, end = t['data_offsets']
        assert end - begin == count * struct.calcsize(code), (name, t)
        tensors[name] = (t['dtype'], t['shape'], list(struct.unpack('<%d%s' % (count, code), body[begin:end])))
        # jebm's per-tensor CRC-32 of the tensor's bytes (zlib's), in the metadata
        assert int(meta.pop('jebm.crc32:' + name), 16) == zlib.crc32(body[begin:end]), name
        covered += end - begin
    assert covered == len(body), 'data of %d bytes, tensors cover %d' % (len(body), covered)
    return tensors, meta

def write(path, tensors, meta):
    header, body = {'__metadata__': meta}, b''
    for name, (dtype, shape, values) in tensors.items():
        chunk = struct.pack('<%d%s' % (len(values), FORMATS[dtype]), *values)
        header[name] = {'dtype': dtype, 'shape': shape, 'data_offsets': [len(body), len(body) + len(chunk)]}
        body += chunk
    text = json.dumps(header).encode('utf-8')  # ensure_ascii: the reader must decode \u escapes
    text += b' ' * (-len(text) % 8)
    open(path, 'wb').write(struct.pack('<Q', len(text)) + text + body)

t, meta = read(sys.argv[1])
want = int(meta.pop('jebm.metadata_crc32'), 16)  # key and value, each with a 0 byte, in key order
assert want == zlib.crc32(b''.join(k.encode() + b'\0' + v.encode() + b'\0' for k, v in sorted(meta.items()))), meta
assert t['w'] == ('F32', [2, 3], [1.5, -2, 3.25, 4, 5, 6]), t['w']
assert t['odd'] == ('F32', [3], [7, 8, 9]), t['odd']
assert t['d'] == ('F64', [2], [0.1, 0.2]), t['d']
assert t['i'] == ('I64', [2], [-5, 6]), t['i']
assert t['s'] == ('F64', [], [2.5]), t['s']
assert meta == {'seed': '1234', 'note': 'a "quoted" \u00e9'}, meta
write(sys.argv[2], {'b': ('F64', [5], [0, 1, 2, 3, 4]), 'a': ('F32', [2, 2], [1, 2, 3, 4]), 'e': ('I64', [0, 2], [])},
      {'from': 'python', 'note': 'caf\u00e9'})
)PY";

// The real package, numpy flavour: alignment, padding and key order as the reference writer makes them.
const char* const kSafetensorsPackage = R"PY(import sys, zlib, numpy as np
from safetensors import safe_open
from safetensors.numpy import load_file, save_file
t = load_file(sys.argv[1])
assert t['w'].dtype == np.float32 and t['w'].shape == (2, 3), t['w']
assert (t['w'] == np.array([[1.5, -2, 3.25], [4, 5, 6]], np.float32)).all()
assert (t['odd'] == np.array([7, 8, 9], np.float32)).all()
assert t['d'].dtype == np.float64 and (t['d'] == np.array([0.1, 0.2])).all()
assert t['i'].dtype == np.int64 and (t['i'] == np.array([-5, 6])).all()
assert t['s'].shape == () and t['s'] == 2.5
with safe_open(sys.argv[1], framework='numpy') as f:
    md = f.metadata()
    sums = {k[len('jebm.crc32:'):]: int(v, 16) for k, v in md.items() if k.startswith('jebm.crc32:')}
    assert sums == {k: zlib.crc32(a.tobytes()) for k, a in t.items()}, sums
    md = {k: v for k, v in md.items() if not k.startswith('jebm.crc32:') and k != 'jebm.metadata_crc32'}
    assert md == {'seed': '1234', 'note': 'a "quoted" \u00e9'}, md
save_file({'b': np.arange(5, dtype=np.float64), 'a': np.array([[1, 2], [3, 4]], np.float32),
           'e': np.zeros((0, 2), np.int64)}, sys.argv[2], metadata={'from': 'python'})
)PY";

}  // namespace

BOOST_AUTO_TEST_CASE(python_stdlib_interop, *boost::unit_test::precondition(test::PythonModules{""})) {
  TempDir dir;
  const std::string ours = (dir.path / "ours.safetensors").string();
  const std::string theirs = (dir.path / "theirs.safetensors").string();
  write_ours(ours);
  BOOST_REQUIRE_MESSAGE(run_python(dir, kStdlibSafetensors, ours, theirs),
                        "the stdlib reader rejected our file, or its writer failed (its message is above)");
  const SafeTensors st = check_theirs(theirs);
  BOOST_TEST(st.metadata.at("note") == "caf\xc3\xa9");  // written as \u00e9 by json.dumps
}

BOOST_AUTO_TEST_CASE(python_safetensors_interop,
                     *boost::unit_test::precondition(test::PythonModules{"safetensors numpy"})) {
  TempDir dir;
  const std::string ours = (dir.path / "ours.safetensors").string();
  const std::string theirs = (dir.path / "theirs.safetensors").string();
  write_ours(ours);
  BOOST_REQUIRE_MESSAGE(run_python(dir, kSafetensorsPackage, ours, theirs),
                        "python's safetensors could not read our file (its message is above)");
  check_theirs(theirs);
}
