// Checkpoints in the safetensors format (8-byte little-endian header length, JSON header, raw little-endian
// data), readable by Python's `safetensors` package. The strict JSON of the header is models/json.hpp.
// Tested by tests/test_checkpoint.cpp (round trips, corrupt files, atomic replace, Python interop) and
// tests/test_checkpoint_integrity.cpp (per-tensor CRC-32, non-finite tensors).
#pragma once
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "models/json.hpp"
#include "runtime/tensor.hpp"

namespace jebm {

// Integrity: jebm writes the CRC-32 (zlib's, as Python's zlib.crc32 computes it) of each tensor's bytes into
// `__metadata__` under kChecksumPrefix + name, as 8 lowercase hex digits, and verifies it on load. Files written
// by other tools carry no such keys and load as before.
inline constexpr const char* kChecksumPrefix = "jebm.crc32:";
// The metadata's own CRC-32 (every other key and value; see metadata_crc32 in checkpoint.cpp), verified on load,
// so an edited iteration or seed is refused too. Files without it load as before.
inline constexpr const char* kMetadataChecksumKey = "jebm.metadata_crc32";

// What save/load check beyond the format.
struct CheckpointChecks {
  // Refuse a float tensor holding NaN or +-inf: save writes nothing (the previous file stays), load throws.
  // The experiments should pass {true} when saving and loading the parameters and optimiser state of a run, so
  // a diverged run never leaves (and a resume never loads) a checkpoint that cannot train; tensors that may
  // hold infinities by design (e.g. log-weights of -inf) belong in a separate call without it.
  bool require_finite = false;
};

// Writes `tensors` (any device; copied to host) and string `metadata` to `path`. The bytes go to
// `path + ".tmp"`, are fsync'ed, then renamed over `path`, so a crash or a full disk leaves either the old file
// or the new one, never a half-written one. Names must be unique, non-empty and not "__metadata__"; metadata
// keys must not start with kChecksumPrefix.
void save_safetensors(const std::string& path, const std::vector<std::pair<std::string, Tensor>>& tensors,
                      const std::map<std::string, std::string>& metadata = {}, const CheckpointChecks& checks = {});

struct SafeTensors {
  std::string path;  // where it was loaded from (for error messages)
  std::map<std::string, Tensor> tensors;  // host tensors
  std::map<std::string, std::string> metadata;  // without the checksum keys
  bool checksummed = false;  // every tensor's CRC-32 was in the file and matched (false: a file from another tool)
};

// Reads and fully validates a safetensors file (F32, F64, I64 only); every problem is a jebm::UserError naming
// the file and the tensor or field (no source location: the file is at fault), a checksum mismatch included.
SafeTensors load_safetensors(const std::string& path, const CheckpointChecks& checks = {});

// Throws a jebm::UserError naming `path`, `name` and the first offending element when float tensor `t` (any
// device) holds a NaN or an infinity; int64 tensors always pass.
void require_finite(const std::string& path, const std::string& name, const Tensor& t);

// The tensor `name`, checked against an expected shape and dtype when given; a UserError names file and tensor.
Tensor get(const SafeTensors& st, const std::string& name, const std::optional<Shape>& shape = std::nullopt,
           std::optional<DType> dtype = std::nullopt);

// safetensors dtype strings: "F32", "F64", "I64".
const char* safetensors_dtype_name(DType dtype);

}  // namespace jebm
