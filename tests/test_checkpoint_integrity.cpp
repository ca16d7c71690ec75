// Checkpoint integrity (models/checkpoint.cpp): the per-tensor CRC-32 in __metadata__ catches a
// flipped bit in any weight and names the tensor; files without checksums (other tools) still load; non-finite
// tensors can be refused on save (nothing written, the previous file kept) and on load.
#include "tests/helpers.hpp"

#include <cmath>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <limits>
#include <map>
#include <string>
#include <vector>

#include "models/checkpoint.hpp"

using namespace jebm;
using jebm::test::slurp;
using jebm::test::expect_error;
using jebm::test::expect_user_error;
using jebm::test::TempDir;

namespace {

void write_bytes(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

// A safetensors file as another tool writes it: `header` JSON, padded to 8, then `data`.
std::string raw_file(std::string header, const std::string& data) {
  while (header.size() % 8) header += ' ';
  std::string out(8, '\0');
  for (int i = 0; i < 8; ++i) out[static_cast<size_t>(i)] = static_cast<char>((header.size() >> (8 * i)) & 0xff);
  return out + header + data;
}

uint64_t header_length(const std::string& bytes) {
  uint64_t n = 0;
  for (int i = 7; i >= 0; --i) n = (n << 8) | static_cast<unsigned char>(bytes[static_cast<size_t>(i)]);
  return n;
}

std::vector<std::pair<std::string, Tensor>> weights() {
  return {{"w", Tensor::from_vector(std::vector<float>{0.5f, -1.25f, 3.0f, 4.5f, 1e-3f, 7.0f}, {2, 3})},
          {"b", Tensor::from_vector(std::vector<double>{0.1, -0.2}, {2}, DType::Float64)},
          {"step", Tensor::from_vector(std::vector<int64_t>{12345}, {1})}};
}

}  // namespace

BOOST_AUTO_TEST_CASE(round_trip_verifies_and_hides_the_checksums) {
  TempDir dir;
  const std::string path = (dir.path / "c.safetensors").string();
  const std::map<std::string, std::string> meta = {{"seed", "7"}};
  save_safetensors(path, weights(), meta);
  const std::string bytes = slurp(path);
  BOOST_TEST(bytes.find("\"jebm.crc32:w\"") != std::string::npos);
  const SafeTensors st = load_safetensors(path);
  BOOST_TEST(st.checksummed);
  BOOST_TEST((st.metadata == meta));  // the checksums are jebm's business, not the caller's
  BOOST_TEST(st.tensors.at("w").to_vector() == weights()[0].second.to_vector(), boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(every_flipped_data_bit_is_detected_and_names_the_tensor) {
  TempDir dir;
  const std::string path = (dir.path / "c.safetensors").string();
  save_safetensors(path, weights());
  const std::string good = slurp(path);
  const size_t data_begin = 8 + header_length(good);
  // Data layout in save order: w (24 bytes), b (16), step (8).
  const auto owner = [&](size_t pos) { return pos < data_begin + 24 ? "w" : (pos < data_begin + 40 ? "b" : "step"); };
  const std::string bad = (dir.path / "bad.safetensors").string();
  int detected = 0, total = 0;
  for (size_t pos = data_begin; pos < good.size(); ++pos) {
    for (int bit = 0; bit < 8; ++bit) {
      std::string m = good;
      m[pos] = static_cast<char>(static_cast<unsigned char>(m[pos]) ^ (1u << bit));
      write_bytes(bad, m);
      ++total;
      try {
        load_safetensors(bad);
      } catch (const UserError& e) {  // the file is at fault, not jebm
        const std::string msg = e.what();
        const bool named = msg.find(std::string("tensor \"") + owner(pos) + "\"") != std::string::npos &&
                           msg.find("CRC-32") != std::string::npos;
        BOOST_CHECK_MESSAGE(named, "byte " << pos << " bit " << bit << ": " << msg);
        detected += named;
      }
    }
  }
  BOOST_TEST(total == 8 * 48);
  BOOST_TEST(detected == total);  // before checksums, every one of these loaded silently
}

BOOST_AUTO_TEST_CASE(files_without_checksums_still_load) {
  TempDir dir;
  const std::string path = (dir.path / "theirs.safetensors").string();
  float v[2] = {1.5f, -2.0f};
  std::string data(reinterpret_cast<const char*>(v), sizeof v);
  write_bytes(path, raw_file(R"({"__metadata__":{"from":"python"},"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})",
                             data));
  const SafeTensors st = load_safetensors(path);
  BOOST_TEST(!st.checksummed);
  BOOST_TEST(st.metadata.at("from") == "python");
  BOOST_TEST(st.tensors.at("a").to_vector() == std::vector<double>({1.5, -2.0}), boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(malformed_or_partial_checksums_are_errors) {
  TempDir dir;
  const std::string path = (dir.path / "c.safetensors").string();
  float v[2] = {1.5f, -2.0f};
  const std::string data(reinterpret_cast<const char*>(v), sizeof v);
  const std::string a = R"("a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]})";
  const std::string b = R"("b":{"dtype":"F32","shape":[0],"data_offsets":[8,8]})";
  write_bytes(path, raw_file(R"({"__metadata__":{"jebm.crc32:a":"xyz"},)" + a + "}", data));
  expect_user_error([&] { load_safetensors(path); }, {path, "tensor \"a\"", "8 hex digits"});
  write_bytes(path, raw_file(R"({"__metadata__":{"jebm.crc32:zz":"00000000"},)" + a + "}", data));
  expect_user_error([&] { load_safetensors(path); }, {path, "\"zz\"", "does not hold"});
  // A real checksum for "a" (taken from a jebm save of the same tensor), none for "b": a stripped key is noticed.
  const std::string ref = (dir.path / "ref.safetensors").string();
  save_safetensors(ref, {{"a", Tensor::from_vector(std::vector<float>{1.5f, -2.0f}, {2})}});
  const std::string ref_bytes = slurp(ref);
  const size_t at = ref_bytes.find("\"jebm.crc32:a\":\"") + std::strlen("\"jebm.crc32:a\":\"");
  const std::string sum = ref_bytes.substr(at, 8);
  write_bytes(path, raw_file(R"({"__metadata__":{"jebm.crc32:a":")" + sum + "\"}," + a + "," + b + "}", data));
  expect_user_error([&] { load_safetensors(path); }, {path, "tensor \"b\"", "no checksum"});
  expect_error([&] { save_safetensors(path, weights(), {{"jebm.crc32:w", "00000000"}}); }, {"reserved prefix"});
}

BOOST_AUTO_TEST_CASE(non_finite_tensors_are_refused_when_asked) {
  TempDir dir;
  const std::string path = (dir.path / "c.safetensors").string();
  save_safetensors(path, weights(), {}, {true});
  const std::string before = slurp(path);
  for (const double bad : {std::nan(""), std::numeric_limits<double>::infinity(), -std::numeric_limits<double>::infinity()}) {
    auto t = weights();
    t[1].second = Tensor::from_vector(std::vector<double>{0.1, bad}, {2}, DType::Float64);
    expect_error([&] { save_safetensors(path, t, {}, {true}); }, {path, "tensor \"b\"", "non-finite", "index 1"});
    BOOST_TEST(slurp(path) == before);  // the last good checkpoint is untouched
    BOOST_TEST(!std::filesystem::exists(path + ".tmp"));
  }
  // Without the check the same tensors save (callers decide), and a load that asks for finiteness refuses them.
  auto t = weights();
  t[0].second = Tensor::from_vector(std::vector<float>{0, 0, 0, 0, 0, std::nanf("")}, {2, 3});
  save_safetensors(path, t);
  BOOST_TEST(load_safetensors(path).checksummed);
  expect_user_error([&] { load_safetensors(path, {true}); }, {path, "tensor \"w\"", "index 5"});
  expect_user_error([&] { require_finite("x.safetensors", "w", t[0].second); }, {"x.safetensors", "\"w\""});
  BOOST_CHECK_NO_THROW(require_finite("x.safetensors", "step", weights()[2].second));  // int64 tensors have no non-finite values
}

BOOST_AUTO_TEST_CASE(edited_metadata_is_refused_and_metadata_without_its_checksum_loads) {
  TempDir dir;
  const std::string path = (dir.path / "c.safetensors").string();
  save_safetensors(path, weights(), {{"gmm.iteration", "30"}, {"walkers.seed", "7"}});
  BOOST_TEST(load_safetensors(path).metadata.count(kMetadataChecksumKey) == 0);  // hidden, like the tensors' CRCs
  const std::string good = slurp(path);
  for (const auto& [from, to] : std::vector<std::pair<std::string, std::string>>{
           {"\"gmm.iteration\":\"30\"", "\"gmm.iteration\":\"31\""}, {"\"walkers.seed\":\"7\"", "\"walkers.seed\":\"8\""}}) {
    std::string bad = good;
    const size_t at = bad.find(from);
    BOOST_REQUIRE(at != std::string::npos && at < 8 + header_length(bad));
    bad.replace(at, from.size(), to);
    write_bytes(path, bad);
    expect_user_error([&] { load_safetensors(path); }, {path, "CRC-32 of its metadata", "changed after jebm wrote it"});
  }
  // A file of another tool, or of a jebm that wrote no metadata checksum, loads as before.
  write_bytes(path, raw_file(R"({"__metadata__":{"gmm.iteration":"31"},"b":{"dtype":"F64","shape":[1],"data_offsets":[0,8]}})",
                             std::string(8, '\0')));
  BOOST_TEST(load_safetensors(path).metadata.at("gmm.iteration") == "31");
}
