// MNIST (IDX) and CIFAR-10 (binary) loaders over zlib's gz* API, which reads gzip and plain files alike.
// Nothing is allocated from a header's word alone: data is read in chunks, so a corrupt count cannot ask for
// gigabytes. Tested by tests/test_datasets.cpp.
#include "experiments/datasets.hpp"

#include <zlib.h>

#include <algorithm>
#include <limits>
#include <cstdio>
#include <filesystem>
#include <sstream>

#include "runtime/user_error.hpp"

namespace jebm {

namespace {

constexpr uint32_t kIdxImagesMagic = 0x00000803;  // ubyte data, 3 dimensions
constexpr uint32_t kIdxLabelsMagic = 0x00000801;  // ubyte data, 1 dimension
constexpr size_t kChunk = 1 << 20;

std::string hex32(uint32_t v) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "0x%08x", v);
  return buf;
}

// A gzip-or-plain input file; every failure names the path.
class GzFile {
 public:
  explicit GzFile(const std::string& path) : path_(path) {
    JEBM_USER_CHECK(std::filesystem::is_regular_file(path), path << ": no such file");
    f_ = gzopen(path.c_str(), "rb");
    JEBM_USER_CHECK(f_ != nullptr, path << ": cannot open");
    gzbuffer(f_, 1 << 17);
  }
  ~GzFile() {
    if (f_) gzclose(f_);
  }
  GzFile(const GzFile&) = delete;
  GzFile& operator=(const GzFile&) = delete;

  // Reads up to n bytes; fewer only at the end of the data. A damaged gzip stream is an error.
  size_t read(void* dst, size_t n) {
    size_t got = 0;
    while (got < n) {
      const unsigned ask = static_cast<unsigned>(std::min<size_t>(n - got, kChunk));
      const int r = gzread(f_, static_cast<char*>(dst) + got, ask);
      check_error();  // zlib reports a truncated gzip stream as Z_BUF_ERROR with a short (not negative) read
      JEBM_USER_CHECK(r >= 0, path_ << ": read failed");
      if (r == 0) break;
      got += static_cast<size_t>(r);
    }
    return got;
  }

  // Appends up to `limit` bytes to `out`, in chunks; returns how many were appended.
  uint64_t append(std::vector<uint8_t>& out, uint64_t limit) {
    uint64_t total = 0;
    while (total < limit) {
      const size_t want = static_cast<size_t>(std::min<uint64_t>(limit - total, kChunk));
      const size_t old = out.size();
      out.resize(old + want);
      const size_t got = read(out.data() + old, want);
      out.resize(old + got);
      total += got;
      if (got < want) break;
    }
    return total;
  }

  // Counts the bytes left (for the "more data than the header says" message).
  uint64_t count_rest() {
    std::vector<uint8_t> scratch(kChunk);
    uint64_t total = 0;
    for (;;) {
      const size_t got = read(scratch.data(), scratch.size());
      total += got;
      if (got < scratch.size()) return total;
    }
  }

 private:
  void check_error() {
    int errnum = Z_OK;
    const char* msg = gzerror(f_, &errnum);
    JEBM_USER_CHECK(errnum == Z_OK, path_ << ": damaged file (zlib: " << (msg ? msg : "unknown error") << ")");
  }
  std::string path_;
  gzFile f_ = nullptr;
};

uint32_t be32(const uint8_t* p) {
  return (uint32_t{p[0]} << 24) | (uint32_t{p[1]} << 16) | (uint32_t{p[2]} << 8) | uint32_t{p[3]};
}

// Reads the header words of an IDX file. The magic comes first, so a labels file passed as images (or any
// wrong file) is reported as such rather than as a short header.
std::vector<uint32_t> read_idx_header(GzFile& f, const std::string& path, uint32_t magic, int words,
                                      const char* kind) {
  uint8_t buf[16];
  const size_t need = static_cast<size_t>(words) * 4;
  size_t got = f.read(buf, 4);
  if (got == 4) {
    const uint32_t m = be32(buf);
    JEBM_USER_CHECK(m == magic, path << ": magic " << hex32(m) << ", expected " << hex32(magic) << " (" << kind << ")");
    got += f.read(buf + 4, need - 4);
  }
  JEBM_USER_CHECK(got == need, path << ": truncated: file has " << got << " bytes, the IDX " << kind << " header needs "
                               << need);
  std::vector<uint32_t> w;
  for (int i = 0; i < words; ++i) w.push_back(be32(buf + 4 * i));
  return w;
}

// Reads exactly `expected` payload bytes; short and long files are both errors. `what` describes the size.
std::vector<uint8_t> read_idx_payload(GzFile& f, const std::string& path, uint64_t expected, const std::string& what,
                                      size_t header_bytes) {
  std::vector<uint8_t> data;
  const uint64_t got = f.append(data, expected);
  JEBM_USER_CHECK(got == expected, path << ": truncated: header says " << what << " = " << expected << " bytes, file has "
                                   << got << " after the " << header_bytes << "-byte header");
  const uint64_t extra = f.count_rest();
  JEBM_USER_CHECK(extra == 0, path << ": oversized: header says " << what << " = " << expected << " bytes, file has "
                              << (expected + extra) << " after the " << header_bytes << "-byte header");
  return data;
}

std::string find_data_file(const std::string& dir, const std::string& name) {
  const std::filesystem::path plain = std::filesystem::path(dir) / name;
  if (std::filesystem::is_regular_file(plain)) return plain.string();
  const std::filesystem::path gz = std::filesystem::path(dir) / (name + ".gz");
  if (std::filesystem::is_regular_file(gz)) return gz.string();
  const char* set = name.find("_batch") != std::string::npos ? "cifar10" : "mnist";
  JEBM_USER_FAIL(dir << ": neither " << name << " nor " << name << ".gz found (--data should point at the folder "
                     << "holding them; scripts/fetch-data.sh DIR " << set << " downloads them into DIR/" << set << ")");
}

}  // namespace

IdxImages read_idx_images(const std::string& path) {
  GzFile f(path);
  const auto w = read_idx_header(f, path, kIdxImagesMagic, 4, "images");
  IdxImages out;
  out.count = w[1];
  out.rows = w[2];
  out.cols = w[3];
  uint64_t expected = 0;
  JEBM_USER_CHECK(!__builtin_mul_overflow(uint64_t{w[1]}, uint64_t{w[2]} * uint64_t{w[3]}, &expected),
             path << ": header count/rows/cols " << w[1] << "/" << w[2] << "/" << w[3] << " overflow");
  std::ostringstream what;
  what << w[1] << " images of " << w[2] << "x" << w[3];
  out.pixels = read_idx_payload(f, path, expected, what.str(), 16);
  return out;
}

std::vector<uint8_t> read_idx_labels(const std::string& path) {
  GzFile f(path);
  const auto w = read_idx_header(f, path, kIdxLabelsMagic, 2, "labels");
  return read_idx_payload(f, path, w[1], std::to_string(w[1]) + " labels", 8);
}

MnistSplit load_mnist(const std::string& dir, bool train) {
  const std::string prefix = train ? "train" : "t10k";
  const std::string images_path = find_data_file(dir, prefix + "-images-idx3-ubyte");
  const std::string labels_path = find_data_file(dir, prefix + "-labels-idx1-ubyte");
  IdxImages images = read_idx_images(images_path);
  MnistSplit s;
  s.labels = read_idx_labels(labels_path);
  JEBM_USER_CHECK(static_cast<int64_t>(s.labels.size()) == images.count,
             labels_path << ": count " << s.labels.size() << " labels, but " << images_path << " has " << images.count
                         << " images");
  for (size_t i = 0; i < s.labels.size(); ++i)
    JEBM_USER_CHECK(s.labels[i] <= 9, labels_path << ": label " << int{s.labels[i]} << " at index " << i
                                             << " is not a digit 0..9");
  s.count = images.count;
  s.rows = images.rows;
  s.cols = images.cols;
  s.pixels = std::move(images.pixels);
  return s;
}

CifarSplit load_cifar10(const std::string& dir, bool train) {
  std::vector<std::string> names;
  if (train)
    for (int i = 1; i <= 5; ++i) names.push_back("data_batch_" + std::to_string(i) + ".bin");
  else
    names.push_back("test_batch.bin");
  constexpr int64_t kPixels = CifarSplit::kRecordBytes - 1;
  CifarSplit s;
  std::vector<uint8_t> raw;
  for (const std::string& name : names) {
    const std::string path = find_data_file(dir, name);
    raw.clear();
    GzFile f(path);
    // 4 GiB cap: far above a real batch (30.7 MB), it only stops a runaway read of a wrong file.
    f.append(raw, uint64_t{4} << 30);
    const uint64_t size = raw.size();
    JEBM_USER_CHECK(size > 0, path << ": size 0 bytes, expected records of " << CifarSplit::kRecordBytes << " bytes");
    JEBM_USER_CHECK(size % CifarSplit::kRecordBytes == 0,
               path << ": size " << size << " bytes is not a multiple of the " << CifarSplit::kRecordBytes
                    << "-byte record (label + 3x32x32)");
    const int64_t records = static_cast<int64_t>(size) / CifarSplit::kRecordBytes;
    s.labels.reserve(s.labels.size() + static_cast<size_t>(records));
    s.pixels.reserve(s.pixels.size() + static_cast<size_t>(records * kPixels));
    for (int64_t r = 0; r < records; ++r) {
      const uint8_t* rec = raw.data() + r * CifarSplit::kRecordBytes;
      JEBM_USER_CHECK(rec[0] <= 9, path << ": record " << r << ": label " << int{rec[0]} << ", expected 0..9");
      s.labels.push_back(rec[0]);
      s.pixels.insert(s.pixels.end(), rec + 1, rec + CifarSplit::kRecordBytes);
    }
    s.count += records;
  }
  return s;
}

Tensor images_to_tensor(const std::vector<uint8_t>& pixels, int64_t n, int64_t c, int64_t h, int64_t w, DType dtype) {
  JEBM_CHECK(n >= 0 && c > 0 && h > 0 && w > 0,
             "images_to_tensor: shape [" << n << ", " << c << ", " << h << ", " << w << "] must be positive");
  const int64_t numel = n * c * h * w;
  JEBM_CHECK(static_cast<int64_t>(pixels.size()) == numel,
             "images_to_tensor: " << pixels.size() << " pixels for shape [" << n << ", " << c << ", " << h << ", " << w
                                  << "] (" << numel << ")");
  Tensor t = Tensor::empty({n, c, h, w}, dtype, Device::cpu());
  // 0 -> -1, 255 -> 1: the energies see data in the same range as the Gaussian walker initialisation.
  JEBM_DISPATCH_FLOAT(dtype, "images_to_tensor", [&] {
    scalar_t* p = t.data<scalar_t>();
    for (int64_t i = 0; i < numel; ++i)
      p[i] = static_cast<scalar_t>(pixels[static_cast<size_t>(i)]) / scalar_t(127.5) - scalar_t(1);
  });
  return t;
}

std::vector<int64_t> select_digits(const std::vector<uint8_t>& labels, const std::vector<int>& digits,
                                   const std::vector<int64_t>& counts) {
  JEBM_USER_CHECK(digits.size() == counts.size(),
             "select_digits: " << digits.size() << " digits but " << counts.size() << " counts");
  std::vector<int64_t> remaining(256, 0);
  std::vector<bool> chosen(256, false);
  int64_t total = 0;
  for (size_t k = 0; k < digits.size(); ++k) {
    JEBM_USER_CHECK(digits[k] >= 0 && digits[k] <= 255, "select_digits: digit " << digits[k] << " is not a label value");
    JEBM_USER_CHECK(!chosen[static_cast<size_t>(digits[k])], "select_digits: digit " << digits[k] << " listed twice");
    JEBM_USER_CHECK(counts[k] >= 0, "select_digits: count " << counts[k] << " for digit " << digits[k] << " is negative");
    chosen[static_cast<size_t>(digits[k])] = true;
    remaining[static_cast<size_t>(digits[k])] = counts[k];
    JEBM_USER_CHECK(counts[k] <= std::numeric_limits<int64_t>::max() - total,
               "select_digits: the counts sum to more than 2^63 - 1 (count " << counts[k] << " for digit " << digits[k] << ")");
    total += counts[k];
  }
  std::vector<int64_t> out;
  // At most every label is chosen: a huge count (--counts 10^11) must reach the "asked for" error below, not a
  // std::bad_alloc here.
  out.reserve(static_cast<size_t>(std::min<int64_t>(total, static_cast<int64_t>(labels.size()))));
  for (size_t i = 0; i < labels.size() && static_cast<int64_t>(out.size()) < total; ++i) {
    int64_t& r = remaining[labels[i]];
    if (r > 0) {
      out.push_back(static_cast<int64_t>(i));
      --r;
    }
  }
  for (size_t k = 0; k < digits.size(); ++k) {
    const int64_t missing = remaining[static_cast<size_t>(digits[k])];
    JEBM_USER_CHECK(missing == 0, "select_digits: digit " << digits[k] << ": asked for " << counts[k]
                                                     << " examples, the labels have only " << (counts[k] - missing));
  }
  return out;
}

std::vector<uint8_t> take_records(const std::vector<uint8_t>& data, int64_t record_bytes,
                                  const std::vector<int64_t>& indices) {
  JEBM_CHECK(record_bytes > 0, "take_records: record size " << record_bytes << " must be positive");
  JEBM_CHECK(static_cast<int64_t>(data.size()) % record_bytes == 0,
             "take_records: " << data.size() << " bytes is not a multiple of the record size " << record_bytes);
  const int64_t n = static_cast<int64_t>(data.size()) / record_bytes;
  std::vector<uint8_t> out;
  out.reserve(indices.size() * static_cast<size_t>(record_bytes));
  for (const int64_t i : indices) {
    JEBM_CHECK(i >= 0 && i < n, "take_records: index " << i << " out of range for " << n << " records");
    const auto* p = data.data() + i * record_bytes;
    out.insert(out.end(), p, p + record_bytes);
  }
  return out;
}

}  // namespace jebm
