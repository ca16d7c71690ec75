// Helpers shared by the tests that run whole subcommands (mnist, cifar10, the classifiers): synthetic MNIST-like
// IDX files and CIFAR-10 batches, option-list editing, capturing stderr, bit-exact comparison of two runs' CSVs
// and checkpoints, and the checks of a run the DivergenceGuard stopped.
#pragma once
#include <zlib.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <initializer_list>
#include <iostream>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "experiments/image_ebm.hpp"
#include "models/checkpoint.hpp"
#include "tests/helpers.hpp"

namespace jebm::test {

inline void put_u32(std::ofstream& os, uint32_t v) {
  const unsigned char b[4] = {static_cast<unsigned char>(v >> 24), static_cast<unsigned char>(v >> 16),
                              static_cast<unsigned char>(v >> 8), static_cast<unsigned char>(v)};
  os.write(reinterpret_cast<const char*>(b), 4);
}

// 28x28 stand-ins for digits: 2 = horizontal bar, 3 = vertical bar, 6 = hollow square, anything else = a diagonal
// (to check that other digits are skipped), shifted by up to +-max_shift pixels, with noise up to max_noise.
inline std::vector<uint8_t> digit_pattern(int digit, std::mt19937_64& rng, int max_shift, int max_noise) {
  std::uniform_int_distribution<int> shift(-max_shift, max_shift), noise(0, max_noise);
  const int dx = shift(rng), dy = shift(rng);
  std::vector<uint8_t> img(28 * 28);
  for (int y = 0; y < 28; ++y)
    for (int x = 0; x < 28; ++x) {
      const int u = x - dx, v = y - dy;
      bool on = false;
      if (digit == 2) on = v >= 12 && v < 16 && u >= 4 && u < 24;
      else if (digit == 3) on = u >= 12 && u < 16 && v >= 4 && v < 24;
      else if (digit == 6) on = u >= 7 && u < 21 && v >= 7 && v < 21 && !(u >= 10 && u < 18 && v >= 10 && v < 18);
      else on = std::abs(u - v) < 2;
      img[static_cast<size_t>(y * 28 + x)] = static_cast<uint8_t>(on ? 255 - noise(rng) : noise(rng));
    }
  return img;
}

// {prefix}-images-idx3-ubyte and {prefix}-labels-idx1-ubyte with `per_digit` images of each digit of `order`,
// interleaved in that order.
inline void write_mnist_split(const std::filesystem::path& dir, const std::string& prefix, int per_digit,
                              uint64_t seed, std::initializer_list<int> order, int max_shift, int max_noise) {
  std::mt19937_64 rng(seed);
  std::vector<uint8_t> pixels, labels;
  for (int i = 0; i < per_digit; ++i)
    for (int d : order) {
      const std::vector<uint8_t> img = digit_pattern(d, rng, max_shift, max_noise);
      pixels.insert(pixels.end(), img.begin(), img.end());
      labels.push_back(static_cast<uint8_t>(d));
    }
  std::ofstream im(dir / (prefix + "-images-idx3-ubyte"), std::ios::binary);
  put_u32(im, 0x00000803u);
  put_u32(im, static_cast<uint32_t>(labels.size()));
  put_u32(im, 28);
  put_u32(im, 28);
  im.write(reinterpret_cast<const char*>(pixels.data()), static_cast<std::streamsize>(pixels.size()));
  std::ofstream lb(dir / (prefix + "-labels-idx1-ubyte"), std::ios::binary);
  put_u32(lb, 0x00000801u);
  put_u32(lb, static_cast<uint32_t>(labels.size()));
  lb.write(reinterpret_cast<const char*>(labels.data()), static_cast<std::streamsize>(labels.size()));
}

using Bytes = std::vector<uint8_t>;

// Writes plain bytes, or gzip when the name ends in .gz.
inline void write_maybe_gz(const std::filesystem::path& p, const Bytes& bytes) {
  const std::string s = p.string();
  if (s.size() > 3 && s.compare(s.size() - 3, 3, ".gz") == 0) {
    gzFile f = gzopen(s.c_str(), "wb");
    BOOST_REQUIRE(f != nullptr);
    BOOST_REQUIRE(gzwrite(f, bytes.data(), static_cast<unsigned>(bytes.size())) > 0);
    BOOST_REQUIRE(gzclose(f) == Z_OK);
  } else {
    std::ofstream os(p, std::ios::binary);
    os.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
  }
}

// `count` CIFAR records (label + R, G, B planes of 32x32): class k is a vertical colour stripe at column 3k;
// the pixel values also encode (first, i) so tests can tell images apart.
inline Bytes cifar_records(int64_t first, int64_t count) {
  Bytes b;
  for (int64_t i = first; i < first + count; ++i) {
    const int label = static_cast<int>(i % 10);
    b.push_back(static_cast<uint8_t>(label));
    for (int ch = 0; ch < 3; ++ch)
      for (int y = 0; y < 32; ++y)
        for (int x = 0; x < 32; ++x) {
          const bool stripe = x >= 3 * label && x < 3 * label + 3;
          b.push_back(static_cast<uint8_t>(stripe ? 200 + 20 * ((ch + label) % 3) : (i * 7 + y + ch * 11) % 60));
        }
  }
  return b;
}

// data_batch_1..5 (batches 2 and 4 gzip) with `per_batch` records each, and a gzip test_batch of `test` records.
inline void write_cifar(const std::filesystem::path& dir, int64_t per_batch, int64_t test) {
  for (int k = 1; k <= 5; ++k) {
    const std::string name = "data_batch_" + std::to_string(k) + (k % 2 == 0 ? ".bin.gz" : ".bin");
    write_maybe_gz(dir / name, cifar_records((k - 1) * per_batch, per_batch));
  }
  write_maybe_gz(dir / "test_batch.bin.gz", cifar_records(1000, test));
}

// Sends std::cerr to `sink` while it lives (to check what a subcommand reports there).
class CerrCapture {
 public:
  explicit CerrCapture(std::ostream& sink) : old_(std::cerr.rdbuf(sink.rdbuf())) {}
  ~CerrCapture() { std::cerr.rdbuf(old_); }
  CerrCapture(const CerrCapture&) = delete;
  CerrCapture& operator=(const CerrCapture&) = delete;

 private:
  std::streambuf* old_;
};

// a with the options of `more` added; an option already in a gets more's value instead.
inline std::vector<std::string> with(std::vector<std::string> a, const std::vector<std::string>& more) {
  for (size_t i = 0; i < more.size(); ++i) {
    const bool has_value = i + 1 < more.size() && more[i + 1].rfind("--", 0) != 0;
    const auto it = std::find(a.begin(), a.end(), more[i]);
    if (it == a.end()) {
      a.push_back(more[i]);
      if (has_value) a.push_back(more[i + 1]);
    } else if (has_value) {
      *(it + 1) = more[i + 1];
    }
    if (has_value) ++i;
  }
  return a;
}

// CSV rows as numbers (header dropped), with the time_s column removed.
inline std::vector<std::vector<double>> csv_rows(const std::filesystem::path& path,
                                                 std::vector<std::string>* header = nullptr) {
  std::ifstream in(path);
  std::string line;
  std::vector<std::vector<double>> rows;
  std::getline(in, line);
  std::vector<std::string> cols;
  {
    std::stringstream ss(line);
    std::string c;
    while (std::getline(ss, c, ',')) cols.push_back(c);
  }
  if (header) *header = cols;
  while (std::getline(in, line)) {
    std::stringstream ss(line);
    std::string c;
    std::vector<double> r;
    for (size_t k = 0; std::getline(ss, c, ','); ++k)
      if (cols[k] != "time_s") r.push_back(std::strtod(c.c_str(), nullptr));
    rows.push_back(r);
  }
  return rows;
}

// Where `column` (named in `header`, the file's; not time_s) is in csv_rows' rows, which drop time_s; fails,
// naming `path`, when the header has no such column.
inline size_t csv_index(const std::vector<std::string>& header, const std::string& column,
                        const std::filesystem::path& path) {
  size_t k = 0;
  for (const std::string& c : header) {
    if (c == "time_s") continue;
    if (c == column) return k;
    ++k;
  }
  BOOST_FAIL(path << " has no column " << column);
  return 0;
}

// The last row's value of `column`; fails when the file has no such column or no row.
inline double csv_last(const std::filesystem::path& path, const std::string& column) {
  std::vector<std::string> header;
  const std::vector<std::vector<double>> rows = csv_rows(path, &header);
  const size_t k = csv_index(header, column, path);
  BOOST_REQUIRE_MESSAGE(!rows.empty(), path << " has no row");
  return rows.back().at(k);
}

// Equal to the bit (NaN equals NaN).
inline bool same_bits(const std::vector<std::vector<double>>& a, const std::vector<std::vector<double>>& b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (a[i].size() != b[i].size()) return false;
    for (size_t k = 0; k < a[i].size(); ++k)
      if (!(a[i][k] == b[i][k] || (std::isnan(a[i][k]) && std::isnan(b[i][k])))) return false;
  }
  return true;
}

// Every tensor bit-identical, and the metadata equal but for the wall time and what made the run (jebm.date,
// jebm.command, ...).
inline void check_identical_checkpoints(const std::string& a, const std::string& b) {
  const SafeTensors x = load_safetensors(a), y = load_safetensors(b);
  BOOST_REQUIRE_EQUAL(x.tensors.size(), y.tensors.size());
  for (const auto& [name, t] : x.tensors) {
    BOOST_TEST_CONTEXT("tensor " << name) {
      BOOST_REQUIRE(y.tensors.count(name));
      const Tensor& u = y.tensors.at(name);
      BOOST_REQUIRE(t.shape() == u.shape());
      BOOST_REQUIRE(t.dtype() == u.dtype());
      BOOST_TEST(std::memcmp(t.raw_data(), u.raw_data(), t.nbytes()) == 0);
    }
  }
  for (const auto& [k, v] : x.metadata)
    if (k != "elapsed_s" && k.rfind("jebm.", 0) != 0) BOOST_TEST(y.metadata.at(k) == v, "metadata " << k);
}

// Every float tensor of a checkpoint holds finite values only (one assertion per tensor).
inline void check_all_finite(const SafeTensors& st) {
  for (const auto& [name, t] : st.tensors) {
    if (t.dtype() == DType::Int64) continue;
    const std::vector<double> v = t.to_vector();
    BOOST_TEST(std::all_of(v.begin(), v.end(), [](double e) { return std::isfinite(e); }),
               name << " holds a non-finite value");
  }
}

// A run the DivergenceGuard stopped: exit code 3, a message naming the update and the non-finite value, and the
// last good checkpoint in `out` written at the last epoch boundary (updates_per_epoch) before that update, with
// finite values only. Returns the update the guard named.
inline int64_t check_diverged_run(const ImageEbmResult& r, const std::string& out, int64_t updates_per_epoch) {
  BOOST_REQUIRE(r.diverged);
  BOOST_TEST(r.exit_code() == 3);
  BOOST_TEST_MESSAGE(r.message);
  const std::string tag = "diverged at update ";
  const size_t at = r.message.find(tag);
  BOOST_REQUIRE(at != std::string::npos);
  const int64_t bad = std::stoll(r.message.substr(at + tag.size()));
  BOOST_TEST(r.message.find("non-finite") != std::string::npos);
  BOOST_TEST(r.message.find("last good checkpoint") != std::string::npos);
  const SafeTensors st = load_safetensors(image_ebm_checkpoint_path(out));
  BOOST_TEST(std::stoll(st.metadata.at("iteration")) == bad / updates_per_epoch * updates_per_epoch);
  check_all_finite(st);
  return bad;
}

}  // namespace jebm::test
