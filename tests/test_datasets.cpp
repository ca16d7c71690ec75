// Tests for experiments/datasets: IDX and CIFAR-10 files written here (plain and gzip) round-trip, every
// corrupt case is an error naming file and field, pixel scaling, digit subsets; plus the real MNIST train set
// and CIFAR-10 test batch when JEBM_SHARED_DATA points at shared/data (reported skipped, with the reason, otherwise).
#include <zlib.h>

#include <cstdlib>
#include <fstream>
#include <numeric>

#include "experiments/datasets.hpp"
#include "tests/helpers.hpp"

using namespace jebm;
using jebm::test::TempDir;
namespace fs = std::filesystem;

using jebm::test::expect_error;

namespace {

using Bytes = std::vector<uint8_t>;

void put_be32(Bytes& b, uint32_t v) {
  for (int s = 24; s >= 0; s -= 8) b.push_back(static_cast<uint8_t>(v >> s));
}

Bytes idx_images(uint32_t count, uint32_t rows, uint32_t cols, const Bytes& pixels, uint32_t magic = 0x803) {
  Bytes b;
  put_be32(b, magic);
  put_be32(b, count);
  put_be32(b, rows);
  put_be32(b, cols);
  b.insert(b.end(), pixels.begin(), pixels.end());
  return b;
}

Bytes idx_labels(const Bytes& labels, uint32_t magic = 0x801, int64_t count = -1) {
  Bytes b;
  put_be32(b, magic);
  put_be32(b, count >= 0 ? static_cast<uint32_t>(count) : static_cast<uint32_t>(labels.size()));
  b.insert(b.end(), labels.begin(), labels.end());
  return b;
}

// Writes plain bytes, or gzip when the name ends in .gz.
std::string write_file(const fs::path& p, const Bytes& bytes) {
  const std::string s = p.string();
  if (s.size() > 3 && s.compare(s.size() - 3, 3, ".gz") == 0) {
    gzFile f = gzopen(s.c_str(), "wb");
    BOOST_REQUIRE(f);
    if (!bytes.empty()) BOOST_REQUIRE(gzwrite(f, bytes.data(), static_cast<unsigned>(bytes.size())) > 0);
    BOOST_REQUIRE(gzclose(f) == Z_OK);
  } else {
    std::ofstream out(p, std::ios::binary | std::ios::trunc);
    out.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
  }
  return s;
}

Bytes ramp(size_t n, int start = 0) {
  Bytes b(n);
  for (size_t i = 0; i < n; ++i) b[i] = static_cast<uint8_t>((start + static_cast<int>(i) * 7) % 256);
  return b;
}

Bytes cifar_records(const Bytes& labels, int seed) {
  Bytes b;
  for (size_t r = 0; r < labels.size(); ++r) {
    b.push_back(labels[r]);
    const Bytes px = ramp(3072, seed + static_cast<int>(r));
    b.insert(b.end(), px.begin(), px.end());
  }
  return b;
}

}  // namespace

BOOST_AUTO_TEST_CASE(idx_round_trip_plain_and_gzip) {
  TempDir dir;
  const Bytes pixels = ramp(3 * 4 * 5);
  for (const char* suffix : {"", ".gz"}) {
    const std::string ip = write_file(dir.path / (std::string("img") + suffix), idx_images(3, 4, 5, pixels));
    const IdxImages im = read_idx_images(ip);
    BOOST_TEST(im.count == 3);
    BOOST_TEST(im.rows == 4);
    BOOST_TEST(im.cols == 5);
    BOOST_TEST(im.pixels == pixels, boost::test_tools::per_element());
    const std::string lp = write_file(dir.path / (std::string("lab") + suffix), idx_labels({7, 0, 9}));
    BOOST_TEST(read_idx_labels(lp) == Bytes({7, 0, 9}), boost::test_tools::per_element());
  }
  // Zero images is a valid (if useless) file.
  BOOST_TEST(read_idx_images(write_file(dir.path / "none", idx_images(0, 28, 28, {}))).count == 0);
}

BOOST_AUTO_TEST_CASE(idx_corrupt_files_name_file_and_field) {
  TempDir dir;
  const std::string lp = write_file(dir.path / "train-labels-idx1-ubyte.gz", idx_images(1, 1, 1, {3}));
  expect_error([&] { read_idx_labels(lp); },
               {"train-labels-idx1-ubyte.gz: magic 0x00000803, expected 0x00000801 (labels)"});
  const std::string ip = write_file(dir.path / "imgs", idx_labels({1, 2}));
  expect_error([&] { read_idx_images(ip); }, {ip, "magic 0x00000801, expected 0x00000803 (images)"});

  Bytes short_px = ramp(59);
  const std::string tp = write_file(dir.path / "trunc.gz", idx_images(3, 4, 5, short_px));
  expect_error([&] { read_idx_images(tp); }, {tp, "truncated: header says 3 images of 4x5 = 60 bytes, file has 59"});
  const std::string op = write_file(dir.path / "over", idx_images(3, 4, 5, ramp(61)));
  expect_error([&] { read_idx_images(op); }, {op, "oversized", "= 60 bytes, file has 61"});
  const std::string lo = write_file(dir.path / "lab-over", idx_labels({1, 2, 3}, 0x801, 2));
  expect_error([&] { read_idx_labels(lo); }, {lo, "oversized", "2 labels = 2 bytes, file has 3"});
  const std::string hp = write_file(dir.path / "hdr", Bytes{0, 0, 8, 3, 0});
  expect_error([&] { read_idx_images(hp); }, {hp, "truncated: file has 5 bytes", "header needs 16"});
  // A huge count in the header must not be trusted for an allocation.
  const std::string hc = write_file(dir.path / "huge", idx_images(0xffffffffu, 0xffffffu, 0xffffu, ramp(10)));
  expect_error([&] { read_idx_images(hc); }, {hc});
  expect_error([&] { read_idx_images((dir.path / "missing").string()); }, {"missing", "no such file"});

  // A gzip stream cut in the middle is a damaged file, not a silently short one.
  const std::string full = write_file(dir.path / "full.gz", idx_images(50, 10, 10, ramp(5000)));
  std::ifstream in(full, std::ios::binary);
  std::string gz((std::istreambuf_iterator<char>(in)), {});
  const fs::path cut = dir.path / "cut.gz";
  std::ofstream(cut, std::ios::binary).write(gz.data(), static_cast<std::streamsize>(gz.size() / 2));
  expect_error([&] { read_idx_images(cut.string()); }, {cut.string()});
}

BOOST_AUTO_TEST_CASE(load_mnist_finds_files_and_checks_counts) {
  TempDir dir;
  const Bytes px = ramp(4 * 2 * 3);
  write_file(dir.path / "train-images-idx3-ubyte", idx_images(4, 2, 3, px));
  write_file(dir.path / "train-labels-idx1-ubyte", idx_labels({5, 0, 4, 1}));
  write_file(dir.path / "t10k-images-idx3-ubyte.gz", idx_images(2, 2, 3, ramp(12, 3)));
  write_file(dir.path / "t10k-labels-idx1-ubyte.gz", idx_labels({7, 2}));
  const MnistSplit tr = load_mnist(dir.path.string(), true);
  BOOST_TEST(tr.count == 4);
  BOOST_TEST(tr.rows == 2);
  BOOST_TEST(tr.cols == 3);
  BOOST_TEST(tr.pixels == px, boost::test_tools::per_element());
  BOOST_TEST(tr.labels == Bytes({5, 0, 4, 1}), boost::test_tools::per_element());
  const MnistSplit te = load_mnist(dir.path.string(), false);
  BOOST_TEST(te.count == 2);
  BOOST_TEST(te.labels == Bytes({7, 2}), boost::test_tools::per_element());

  write_file(dir.path / "t10k-labels-idx1-ubyte.gz", idx_labels({7, 2, 1}));
  expect_error([&] { load_mnist(dir.path.string(), false); }, {"t10k-labels-idx1-ubyte.gz", "count 3 labels", "2 images"});
  write_file(dir.path / "t10k-labels-idx1-ubyte.gz", idx_labels({7, 10}));
  expect_error([&] { load_mnist(dir.path.string(), false); },
               {"t10k-labels-idx1-ubyte.gz", "label 10 at index 1", "0..9"});
  fs::remove(dir.path / "train-labels-idx1-ubyte");
  expect_error([&] { load_mnist(dir.path.string(), true); }, {"neither train-labels-idx1-ubyte nor train-labels-idx1-ubyte.gz", "scripts/fetch-data.sh DIR mnist"});
}

BOOST_AUTO_TEST_CASE(cifar_round_trip_and_errors) {
  TempDir dir;
  const std::vector<Bytes> labels = {{0, 9}, {3, 4, 5}, {1}, {2}, {8, 7}};
  for (int b = 0; b < 5; ++b)
    write_file(dir.path / ("data_batch_" + std::to_string(b + 1) + ".bin" + (b % 2 ? ".gz" : "")),
               cifar_records(labels[static_cast<size_t>(b)], 100 * b));
  write_file(dir.path / "test_batch.bin.gz", cifar_records({6, 6, 1}, 1000));
  const CifarSplit tr = load_cifar10(dir.path.string(), true);
  BOOST_TEST(tr.count == 9);
  BOOST_TEST(tr.labels == Bytes({0, 9, 3, 4, 5, 1, 2, 8, 7}), boost::test_tools::per_element());
  BOOST_REQUIRE(tr.pixels.size() == 9u * 3072u);
  // Record 3 of the split is record 1 of data_batch_2: its pixels are ramp(3072, 100 + 1), CHW as stored.
  const Bytes want = ramp(3072, 101);
  BOOST_TEST(Bytes(tr.pixels.begin() + 3 * 3072, tr.pixels.begin() + 4 * 3072) == want, boost::test_tools::per_element());
  const CifarSplit te = load_cifar10(dir.path.string(), false);
  BOOST_TEST(te.count == 3);
  BOOST_TEST(te.labels == Bytes({6, 6, 1}), boost::test_tools::per_element());

  Bytes odd = cifar_records({1, 2}, 0);
  odd.pop_back();
  const std::string op = write_file(dir.path / "test_batch.bin.gz", odd);
  expect_error([&] { load_cifar10(dir.path.string(), false); },
               {op, "size 6145 bytes is not a multiple of the 3073-byte record"});
  const std::string lp = write_file(dir.path / "test_batch.bin.gz", cifar_records({1, 10}, 0));
  expect_error([&] { load_cifar10(dir.path.string(), false); }, {lp, "record 1: label 10, expected 0..9"});
  const std::string ep = write_file(dir.path / "test_batch.bin.gz", {});
  expect_error([&] { load_cifar10(dir.path.string(), false); }, {ep, "size 0 bytes"});
  fs::remove(dir.path / "data_batch_4.bin.gz");  // batch 4 was written plain
  fs::remove(dir.path / "data_batch_4.bin");
  expect_error([&] { load_cifar10(dir.path.string(), true); }, {"neither data_batch_4.bin nor data_batch_4.bin.gz", "scripts/fetch-data.sh DIR cifar10"});
}

BOOST_AUTO_TEST_CASE(images_to_tensor_scales_to_minus_one_one) {
  const Bytes px = {0, 255, 51, 204, 127, 128};
  const Tensor t = images_to_tensor(px, 2, 1, 1, 3, DType::Float64);
  BOOST_TEST((t.shape() == Shape{2, 1, 1, 3}));
  BOOST_TEST((t.dtype() == DType::Float64));
  BOOST_TEST(test::all_close(t.to_vector(), {-1.0, 1.0, -0.6, 0.6, 127 / 127.5 - 1, 128 / 127.5 - 1}, 1e-15, 0));
  const Tensor f = images_to_tensor(px, 1, 3, 2, 1, DType::Float32);
  BOOST_TEST((f.dtype() == DType::Float32));
  BOOST_TEST(test::all_close(f.to_vector(), t.to_vector(), 1e-7, 0));
  expect_error([&] { images_to_tensor(px, 2, 1, 2, 2); }, {"6 pixels", "[2, 1, 2, 2]"});
  expect_error([&] { images_to_tensor(px, 2, 1, 1, 3, DType::Int64); }, {"images_to_tensor", "int64"});
}

BOOST_AUTO_TEST_CASE(select_digits_counts_and_order) {
  const Bytes labels = {2, 3, 6, 2, 1, 6, 3, 2, 2, 6, 3};
  const auto idx = select_digits(labels, {2, 3, 6}, {3, 1, 2});
  BOOST_TEST(idx == std::vector<int64_t>({0, 1, 2, 3, 5, 7}), boost::test_tools::per_element());
  BOOST_TEST(select_digits(labels, {6}, {0}).empty());
  expect_error([&] { select_digits(labels, {2, 3, 6}, {3, 1, 4}); }, {"digit 6", "asked for 4", "only 3"});
  expect_error([&] { select_digits(labels, {2, 3}, {1}); }, {"2 digits but 1 counts"});
  // A huge count is the same clear error, not a std::bad_alloc from reserving it (`mnist --counts 100000000000,1,1`).
  expect_error([&] { select_digits(labels, {2, 3, 6}, {100000000000, 1, 1}); }, {"digit 2", "asked for 100000000000"});
  expect_error([&] { select_digits(labels, {2, 3}, {INT64_MAX, INT64_MAX}); }, {"more than 2^63 - 1"});
  expect_error([&] { select_digits(labels, {2, 2}, {1, 1}); }, {"digit 2 listed twice"});
  const Bytes rec = take_records({1, 2, 3, 4, 5, 6}, 2, {2, 0});
  BOOST_TEST(rec == Bytes({5, 6, 1, 2}), boost::test_tools::per_element());
  expect_error([&] { take_records({1, 2, 3, 4}, 2, {2}); }, {"index 2 out of range for 2 records"});
}

BOOST_AUTO_TEST_CASE(real_mnist_train_set, *boost::unit_test::precondition(test::SharedDataPresent{"mnist"})) {
  const MnistSplit tr = load_mnist(test::shared_data_dir("mnist"), true);
  BOOST_TEST(tr.count == 60000);
  BOOST_TEST(tr.rows == 28);
  BOOST_TEST(tr.cols == 28);
  BOOST_TEST(Bytes(tr.labels.begin(), tr.labels.begin() + 10) == Bytes({5, 0, 4, 1, 9, 2, 1, 3, 1, 4}),
             boost::test_tools::per_element());
  const double mean = std::accumulate(tr.pixels.begin(), tr.pixels.end(), 0.0) / 255.0 / tr.pixels.size();
  BOOST_TEST(std::abs(mean - 0.1307) < 5e-4);
  const auto idx = select_digits(tr.labels, {2, 3, 6}, {5600, 2800, 1400});
  BOOST_REQUIRE(idx.size() == 9800u);
  int per[10] = {};
  for (const int64_t i : idx) ++per[tr.labels[static_cast<size_t>(i)]];
  BOOST_TEST(per[2] == 5600);
  BOOST_TEST(per[3] == 2800);
  BOOST_TEST(per[6] == 1400);
  BOOST_TEST(std::is_sorted(idx.begin(), idx.end()));
}

BOOST_AUTO_TEST_CASE(real_cifar10_test_batch, *boost::unit_test::precondition(test::SharedDataPresent{"cifar10"})) {
  const CifarSplit te = load_cifar10(test::shared_data_dir("cifar10"), false);
  BOOST_TEST(te.count == 10000);
  int hist[10] = {};
  for (const uint8_t l : te.labels) ++hist[l];
  for (int c = 0; c < 10; ++c) BOOST_TEST(hist[c] == 1000);
}
