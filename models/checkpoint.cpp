// safetensors save/load with per-tensor CRC-32s. Loading trusts nothing in the file: sizes are checked before
// anything is allocated, the data offsets must tile the data exactly, and the tensors' bytes must match their
// checksums. What is wrong with a file's contents is the file's fault, not jebm's: a UserError naming the file, the
// field or tensor and the value, without a source location. Tested by tests/test_checkpoint.cpp and
// tests/test_checkpoint_integrity.cpp.
#include "models/checkpoint.hpp"

#include <zlib.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <set>

#include "runtime/file_io.hpp"
#include "runtime/user_error.hpp"

namespace jebm {

// The format is little-endian and we copy tensor bytes as they are in memory.
static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "checkpoint.cpp assumes a little-endian host");

namespace {

constexpr uint64_t kMaxHeaderBytes = 100ull << 20;  // safetensors' own limit is 100 MB
const char* const kMetadataKey = "__metadata__";

}  // namespace

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

uint32_t crc32_of(const Tensor& host) {
  // zlib's crc32 takes a 32-bit length: feed large tensors in chunks.
  uLong crc = crc32(0L, Z_NULL, 0);
  const auto* p = static_cast<const Bytef*>(host.raw_data());
  size_t left = host.nbytes();
  while (left > 0) {
    const size_t n = std::min<size_t>(left, size_t{1} << 30);
    crc = crc32(crc, p, static_cast<uInt>(n));
    p += n;
    left -= n;
  }
  return static_cast<uint32_t>(crc);
}

std::string hex8(uint32_t v) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "%08x", v);
  return buf;
}

// The CRC-32 of the metadata (key, value pairs in key order, each string followed by a 0 byte): an edited
// iteration or seed changes it, as an edited tensor changes the tensor's.
uint32_t metadata_crc32(const std::map<std::string, std::string>& metadata) {
  uLong crc = crc32(0L, Z_NULL, 0);
  for (const auto& [k, v] : metadata)
    for (const std::string* s : {&k, &v})
      crc = crc32(crc, reinterpret_cast<const Bytef*>(s->c_str()), static_cast<uInt>(s->size() + 1));
  return static_cast<uint32_t>(crc);
}

bool starts_with(const std::string& s, const char* prefix) { return s.rfind(prefix, 0) == 0; }

template <typename T>
void check_finite_values(const std::string& path, const std::string& name, const Tensor& host) {
  const T* p = host.data<T>();
  for (int64_t i = 0; i < host.numel(); ++i)
    JEBM_USER_CHECK(std::isfinite(p[i]), path << ": tensor \"" << name << "\" " << shape_str(host.shape())
                                              << " holds a non-finite value (" << p[i] << " at flat index " << i
                                              << "): refusing a checkpoint that cannot train");
}

// --- save -----------------------------------------------------------------------------------------------

}  // namespace

void require_finite(const std::string& path, const std::string& name, const Tensor& t) {
  if (!t.defined() || t.dtype() == DType::Int64) return;
  const Tensor host = t.to(Device::cpu());
  if (host.dtype() == DType::Float32) check_finite_values<float>(path, name, host);
  else check_finite_values<double>(path, name, host);
}

void save_safetensors(const std::string& path, const std::vector<std::pair<std::string, Tensor>>& tensors,
                      const std::map<std::string, std::string>& user_metadata, const CheckpointChecks& checks) {
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
    if (checks.require_finite) require_finite(path, name, host.back());
  }
  std::map<std::string, std::string> metadata = user_metadata;
  for (const auto& [k, v] : user_metadata)
    JEBM_CHECK(!starts_with(k, kChecksumPrefix),
               "save_safetensors: " << path << ": metadata key \"" << k << "\" uses the reserved prefix " << kChecksumPrefix);
  JEBM_CHECK(!user_metadata.count(kMetadataChecksumKey),
             "save_safetensors: " << path << ": metadata key \"" << kMetadataChecksumKey << "\" is reserved");
  for (size_t i = 0; i < host.size(); ++i) metadata[kChecksumPrefix + tensors[i].first] = hex8(crc32_of(host[i]));
  metadata[kMetadataChecksumKey] = hex8(metadata_crc32(user_metadata));

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

  AtomicFile f(path);  // a failure anywhere below leaves the previous checkpoint as it was
  f.write(len_bytes, 8);
  f.write(header);
  for (const Tensor& t : host)
    if (t.nbytes() > 0) f.write(t.raw_data(), t.nbytes());
  f.commit();
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
  JEBM_USER_CHECK(v.kind == json::Value::Kind::Object, where << ": entry is not a JSON object");
  for (const auto& [k, _] : v.object)
    JEBM_USER_CHECK(k == "dtype" || k == "shape" || k == "data_offsets", where << ": unknown field \"" << k << "\"");
  const json::Value* dt = field(v, "dtype");
  const json::Value* sh = field(v, "shape");
  const json::Value* off = field(v, "data_offsets");
  JEBM_USER_CHECK(dt, where << ": missing field \"dtype\"");
  JEBM_USER_CHECK(sh, where << ": missing field \"shape\"");
  JEBM_USER_CHECK(off, where << ": missing field \"data_offsets\"");

  Entry e;
  e.name = name;
  JEBM_USER_CHECK(dt->kind == json::Value::Kind::String, where << ": dtype is not a string");
  const auto dtype = dtype_from_safetensors(dt->string);
  JEBM_USER_CHECK(dtype, where << ": dtype \"" << dt->string << "\" is not supported (F32, F64, I64)");
  e.dtype = *dtype;

  JEBM_USER_CHECK(sh->kind == json::Value::Kind::Array, where << ": shape is not an array");
  // numel * dtype size must fit the data we have, so bound the product as it grows (no overflow possible).
  uint64_t numel = 1;
  bool zero = false;
  for (const json::Value& d : sh->array) {
    JEBM_USER_CHECK(d.kind == json::Value::Kind::Integer && d.integer >= 0,
                    where << ": shape entries must be non-negative integers");
    e.shape.push_back(d.integer);
    if (d.integer == 0) zero = true;
    if (!zero) {
      const auto dim = static_cast<uint64_t>(d.integer);
      JEBM_USER_CHECK(numel <= data_bytes / dim, where << ": shape " << shape_str(e.shape)
                                                       << "... needs more bytes than the " << data_bytes
                                                       << " of data in the file");
      numel *= dim;
    }
  }
  if (zero) numel = 0;

  JEBM_USER_CHECK(off->kind == json::Value::Kind::Array && off->array.size() == 2 &&
                      off->array[0].kind == json::Value::Kind::Integer &&
                      off->array[1].kind == json::Value::Kind::Integer && off->array[0].integer >= 0 &&
                      off->array[1].integer >= 0,
                  where << ": data_offsets must be two non-negative integers [begin, end]");
  e.begin = static_cast<uint64_t>(off->array[0].integer);
  e.end = static_cast<uint64_t>(off->array[1].integer);
  JEBM_USER_CHECK(e.begin <= e.end, where << ": data_offsets [" << e.begin << ", " << e.end << "] has begin > end");
  JEBM_USER_CHECK(e.end <= data_bytes, where << ": data_offsets [" << e.begin << ", " << e.end
                                             << "] run past the end of the " << data_bytes << " data bytes");
  const uint64_t need = numel * dtype_size(e.dtype);
  JEBM_USER_CHECK(e.end - e.begin == need, where << ": data_offsets [" << e.begin << ", " << e.end << "] span "
                                                 << (e.end - e.begin) << " bytes, but shape " << shape_str(e.shape)
                                                 << " of " << dt->string << " needs " << need);
  return e;
}

// Moves the metadata checksum out of st.metadata and checks it against the rest (files without one, written by
// other tools or by an older jebm, pass).
void verify_metadata_checksum(SafeTensors& st) {
  const auto it = st.metadata.find(kMetadataChecksumKey);
  if (it == st.metadata.end()) return;
  const std::string want = it->second;
  st.metadata.erase(it);
  const std::string got = hex8(metadata_crc32(st.metadata));
  JEBM_USER_CHECK(got == want,
                  st.path << ": CRC-32 of its metadata (" << st.metadata.size() << " entries) is " << got
                          << ", the header says " << want
                          << " (the metadata was changed after jebm wrote it: restore the file from a copy)");
}

// Moves the checksum keys out of st.metadata and checks each against its tensor's bytes. A file with no such key
// comes from another tool and passes; a jebm file must have one per tensor, so a dropped key is noticed too.
void verify_checksums(SafeTensors& st) {
  std::map<std::string, std::string> sums;
  for (auto it = st.metadata.begin(); it != st.metadata.end();) {
    if (starts_with(it->first, kChecksumPrefix)) {
      sums[it->first.substr(std::strlen(kChecksumPrefix))] = it->second;
      it = st.metadata.erase(it);
    } else {
      ++it;
    }
  }
  if (sums.empty()) return;
  for (const auto& [name, want] : sums) {
    const auto t = st.tensors.find(name);
    JEBM_USER_CHECK(t != st.tensors.end(), st.path << ": " << kChecksumPrefix << name << ": checksum of tensor \""
                                                   << name << "\", which the file does not hold");
    const bool hex = want.size() == 8 && want.find_first_not_of("0123456789abcdef") == std::string::npos;
    JEBM_USER_CHECK(hex, st.path << ": tensor \"" << name << "\": checksum \"" << want << "\" is not 8 hex digits");
    const std::string got = hex8(crc32_of(t->second));
    JEBM_USER_CHECK(got == want, st.path << ": tensor \"" << name << "\": CRC-32 of its " << t->second.nbytes()
                                         << " bytes is " << got << ", the header says " << want
                                         << " (the data is corrupt: restore the file from a copy)");
  }
  for (const auto& [name, t] : st.tensors)
    JEBM_USER_CHECK(sums.count(name), st.path << ": tensor \"" << name << "\" has no checksum although the others do "
                                              << "(the file was changed after jebm wrote it)");
  st.checksummed = true;
}

}  // namespace

SafeTensors load_safetensors(const std::string& path, const CheckpointChecks& checks) {
  std::error_code ec;
  JEBM_USER_CHECK(std::filesystem::is_regular_file(path, ec), path << ": no such file (or not a regular file)");
  std::ifstream in(path, std::ios::binary);
  JEBM_USER_CHECK(in, path << ": cannot open: " << errno_str());
  in.seekg(0, std::ios::end);
  const auto file_size_signed = static_cast<int64_t>(in.tellg());
  JEBM_USER_CHECK(file_size_signed >= 0, path << ": cannot determine the file size");
  const auto file_size = static_cast<uint64_t>(file_size_signed);
  in.seekg(0, std::ios::beg);
  JEBM_USER_CHECK(file_size >= 8, path << ": file is " << file_size << " bytes, shorter than the 8-byte header length");

  unsigned char len_bytes[8];
  in.read(reinterpret_cast<char*>(len_bytes), 8);
  JEBM_USER_CHECK(in.gcount() == 8, path << ": cannot read the header length");
  uint64_t header_len = 0;
  for (int i = 7; i >= 0; --i) header_len = (header_len << 8) | len_bytes[i];
  JEBM_USER_CHECK(header_len > 0, path << ": header length 0 (no JSON header)");
  JEBM_USER_CHECK(header_len <= kMaxHeaderBytes,
                  path << ": header length " << header_len << " exceeds the limit of " << kMaxHeaderBytes << " bytes");
  JEBM_USER_CHECK(header_len <= file_size - 8, path << ": header length " << header_len << " is larger than the "
                                                    << (file_size - 8) << " bytes after the length field (truncated?)");
  std::string header(header_len, '\0');
  in.read(header.data(), static_cast<std::streamsize>(header_len));
  JEBM_USER_CHECK(static_cast<uint64_t>(in.gcount()) == header_len,
                  path << ": cannot read the " << header_len << "-byte header");
  const uint64_t data_bytes = file_size - 8 - header_len;

  const json::Value root = json::parse(header, path);
  JEBM_USER_CHECK(root.kind == json::Value::Kind::Object, path << ": header JSON is not an object");

  SafeTensors st;
  st.path = path;
  std::vector<Entry> entries;
  for (const auto& [name, v] : root.object) {  // the parser already rejected duplicate names
    if (name == kMetadataKey) {
      JEBM_USER_CHECK(v.kind == json::Value::Kind::Object, path << ": " << kMetadataKey << " is not an object");
      for (const auto& [k, mv] : v.object) {
        JEBM_USER_CHECK(mv.kind == json::Value::Kind::String,
                        path << ": " << kMetadataKey << " entry \"" << k << "\" is not a string");
        st.metadata[k] = mv.string;
      }
      continue;
    }
    JEBM_USER_CHECK(!name.empty(), path << ": empty tensor name");
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
    JEBM_USER_CHECK(e->begin >= covered, path << ": tensor \"" << e->name << "\" data_offsets [" << e->begin << ", "
                                              << e->end << "] overlap tensor \"" << (prev ? prev->name : "") << "\"");
    JEBM_USER_CHECK(e->begin == covered, path << ": data bytes [" << covered << ", " << e->begin
                                              << ") are not covered by any tensor (before tensor \"" << e->name
                                              << "\")");
    covered = e->end;
    prev = e;
  }
  JEBM_USER_CHECK(covered == data_bytes, path << ": data bytes [" << covered << ", " << data_bytes
                                              << ") at the end of the file are not covered by any tensor");

  // Sequential reads in offset order: the file position always equals the next tensor's begin.
  for (const Entry* e : order) {
    Tensor t = Tensor::empty(e->shape, e->dtype, Device::cpu());
    if (t.nbytes() > 0) {
      in.read(static_cast<char*>(t.raw_data()), static_cast<std::streamsize>(t.nbytes()));
      JEBM_USER_CHECK(static_cast<uint64_t>(in.gcount()) == t.nbytes(),
                      path << ": tensor \"" << e->name << "\": short read (file changed while loading?)");
    }
    st.tensors.emplace(e->name, std::move(t));
  }
  verify_checksums(st);
  verify_metadata_checksum(st);
  if (checks.require_finite)
    for (const auto& [name, t] : st.tensors) require_finite(path, name, t);
  return st;
}

Tensor get(const SafeTensors& st, const std::string& name, const std::optional<Shape>& shape,
           std::optional<DType> dtype) {
  const auto it = st.tensors.find(name);
  JEBM_USER_CHECK(it != st.tensors.end(),
                  st.path << ": no tensor \"" << name << "\" (the file has " << st.tensors.size() << " tensors)");
  const Tensor& t = it->second;
  JEBM_USER_CHECK(!shape || t.shape() == *shape, st.path << ": tensor \"" << name << "\" has shape "
                                                         << shape_str(t.shape()) << ", expected " << shape_str(*shape));
  JEBM_USER_CHECK(!dtype || t.dtype() == *dtype, st.path << ": tensor \"" << name << "\" has dtype "
                                                         << dtype_name(t.dtype()) << ", expected "
                                                         << dtype_name(*dtype));
  return t;
}

}  // namespace jebm
