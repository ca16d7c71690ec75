// The fuzz targets of tests/fuzz/fuzz_targets.hpp: each writes the input where its loader expects a file (a
// private temporary directory) and calls the loader exactly as the experiments do.
#include "tests/fuzz/fuzz_targets.hpp"

#include <omp.h>
#include <unistd.h>
#include <zlib.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <stdexcept>

#include <boost/program_options.hpp>

#include "experiments/datasets.hpp"
#include "experiments/gmm.hpp"
#include "experiments/image_ebm.hpp"
#include "experiments/output.hpp"
#include "experiments/png.hpp"
#include "models/checkpoint.hpp"
#include "models/json.hpp"

namespace jebm::fuzz {

namespace fs = std::filesystem;

namespace {

// One scratch directory per process, removed at exit.
const fs::path& scratch() {
  static const fs::path dir = [] {
    std::string tmpl = (fs::temp_directory_path() / "jebm-fuzz-XXXXXX").string();
    if (!::mkdtemp(tmpl.data())) throw std::runtime_error("fuzz: cannot create a scratch directory in " + tmpl);
    return fs::path(tmpl);
  }();
  static const struct Cleanup {
    ~Cleanup() {
      std::error_code ec;
      fs::remove_all(dir, ec);
    }
  } cleanup;
  return dir;
}

void put(const fs::path& p, const uint8_t* data, size_t size) {
  std::ofstream out(p, std::ios::binary | std::ios::trunc);
  out.write(reinterpret_cast<const char*>(data), static_cast<std::streamsize>(size));
  if (!out) throw std::runtime_error("fuzz: cannot write " + p.string());
}

Bytes get(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

Bytes gzip(const Bytes& plain) {
  const fs::path p = scratch() / "seed.gz";
  gzFile f = gzopen(p.c_str(), "wb");
  if (!f) throw std::runtime_error("fuzz: cannot write " + p.string());
  if (!plain.empty()) gzwrite(f, plain.data(), static_cast<unsigned>(plain.size()));
  gzclose(f);
  return get(p);
}

Bytes text(const std::string& s) { return Bytes(s.begin(), s.end()); }

void be32(Bytes& b, uint32_t v) {
  for (int s = 24; s >= 0; s -= 8) b.push_back(static_cast<uint8_t>(v >> s));
}

// A jebm::Error is the loader's correct answer to a bad input: rejected, not a finding.
template <typename F>
bool accepts(F&& f) {
  try {
    f();
    return true;
  } catch (const Error&) {
    return false;
  }
}

// --- loaders ------------------------------------------------------------------------------------------------

bool run_safetensors(const uint8_t* d, size_t n) {
  const fs::path p = scratch() / "input.safetensors";
  put(p, d, n);
  return accepts([&] { load_safetensors(p.string(), {true}); });
}

std::vector<Bytes> seeds_safetensors() {
  const fs::path p = scratch() / "seed.safetensors";
  std::vector<Bytes> out;
  save_safetensors(p.string(), {{"w", Tensor::from_vector(std::vector<float>{1, -2, 3, 4.5f, 0, 6}, {2, 3})},
                                {"b", Tensor::from_vector(std::vector<double>{0.5, -0.25}, {2}, DType::Float64)},
                                {"step", Tensor::from_vector(std::vector<int64_t>{7}, {})}},
                   {{"format", "jebm.seed"}, {"note", "quote \" and \\u00e9"}});
  out.push_back(get(p));
  save_safetensors(p.string(), {{"empty", Tensor::zeros({0, 3})}, {"x", Tensor::ones({1, 1, 2})}});
  out.push_back(get(p));
  // As another tool writes it: no checksums.
  const std::string header = R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})";
  Bytes raw(8, 0);
  raw[0] = static_cast<uint8_t>(header.size());
  raw.insert(raw.end(), header.begin(), header.end());
  for (int i = 0; i < 8; ++i) raw.push_back(static_cast<uint8_t>(i * 17));
  out.push_back(raw);
  return out;
}

bool run_idx_images(const uint8_t* d, size_t n) {
  const fs::path p = scratch() / "images-idx3-ubyte";
  put(p, d, n);
  return accepts([&] { read_idx_images(p.string()); });
}

Bytes idx_images(uint32_t count, uint32_t rows, uint32_t cols) {
  Bytes b;
  be32(b, 0x803);
  be32(b, count);
  be32(b, rows);
  be32(b, cols);
  for (uint32_t i = 0; i < count * rows * cols; ++i) b.push_back(static_cast<uint8_t>(i * 37));
  return b;
}

std::vector<Bytes> seeds_idx_images() {
  const Bytes a = idx_images(3, 4, 5), b = idx_images(1, 28, 28), e = idx_images(0, 28, 28);
  return {a, b, e, gzip(a), gzip(b)};
}

bool run_idx_labels(const uint8_t* d, size_t n) {
  const fs::path p = scratch() / "labels-idx1-ubyte";
  put(p, d, n);
  return accepts([&] { read_idx_labels(p.string()); });
}

std::vector<Bytes> seeds_idx_labels() {
  Bytes b;
  be32(b, 0x801);
  be32(b, 10);
  for (uint8_t i = 0; i < 10; ++i) b.push_back(i);
  return {b, gzip(b)};
}

bool run_cifar10(const uint8_t* d, size_t n) {
  const fs::path dir = scratch() / "cifar";
  fs::create_directories(dir);
  put(dir / "test_batch.bin", d, n);
  return accepts([&] { load_cifar10(dir.string(), false); });
}

std::vector<Bytes> seeds_cifar10() {
  Bytes b;
  for (int r = 0; r < 2; ++r) {
    b.push_back(static_cast<uint8_t>(r * 7));
    for (int i = 0; i < 3072; ++i) b.push_back(static_cast<uint8_t>(i + r));
  }
  return {b, gzip(b)};
}

bool run_png(const uint8_t* d, size_t n) {
  const fs::path p = scratch() / "input.png";
  put(p, d, n);
  return accepts([&] { read_png(p.string()); });
}

std::vector<Bytes> seeds_png() {
  const fs::path p = scratch() / "seed.png";
  std::vector<Bytes> out;
  for (int channels = 1; channels <= 4; ++channels) {
    std::vector<uint8_t> px(static_cast<size_t>(5 * 3 * channels));
    for (size_t i = 0; i < px.size(); ++i) px[i] = static_cast<uint8_t>(i * 29);
    write_png(p.string(), px, 5, 3, channels);
    out.push_back(get(p));
  }
  return out;
}

// --- text parsers -------------------------------------------------------------------------------------------

bool run_json(const uint8_t* d, size_t n) {
  const std::string s(reinterpret_cast<const char*>(d), n);
  return accepts([&] { json::parse(s, "fuzz"); });
}

std::vector<Bytes> seeds_json() {
  return {text(R"({"__metadata__":{"k":"v","u":"\u00e9\ud83d\ude00"},"a":{"dtype":"F32","shape":[2,3],"data_offsets":[0,24]}})"),
          text(R"([-9223372036854775808, 9223372036854775807, 0, "a\"b\\c\/\b\f\n\r\t", [], {}])")};
}

bool run_options(const uint8_t* d, size_t n) {
  const fs::path p = scratch() / "options.txt";
  put(p, d, n);
  return accepts([&] { read_options(p); });
}

std::vector<Bytes> seeds_options() {
  return {text("walkers = 256\nh = 0.01\n# comment\n\nalgo = jarzynski\ndigits = 2,3,6\n")};
}

// `jebm mnist/cifar10 --config FILE`: the INI parser and every option check, without running anything.
bool run_image_ebm_config(const uint8_t* d, size_t n) {
  const fs::path p = scratch() / "config.ini";
  put(p, d, n);
  const int threads = omp_get_max_threads();  // a parsed --threads must not leak into the next input
  // mnist's defaults, as `jebm mnist` registers them: a default-constructed config (data-batch 0, ...) made every
  // input that does not set all of them fail the first range check, so the later checks were never reached.
  ImageEbmConfig c = mnist_defaults();
  ImageEbmOptionStrings s;
  boost::program_options::options_description desc("fuzz");
  register_image_ebm_options(desc, c, s, "fuzz");
  std::vector<std::pair<std::string, std::string>> saved;
  const std::vector<std::string> args = {"--config", p.string(), "--out", (scratch() / "run").string()};
  const bool ok = accepts([&] { parse_image_ebm_args(args, desc, "fuzz", c, s, saved); });
  omp_set_num_threads(threads);
  return ok;
}

std::vector<Bytes> seeds_image_ebm_config() {
  return {text("walkers = 64\nburn-in = 10\nh = 0.01\nnoise = 0.005\nmoving-subsets = 1\nmoving-batch = 32\n"
               "moves-per-update = 5\ngradient-batch = 32\ndata-batch = 16\nepochs = 2\nlr = 3e-4\nalgo = pcd\n"
               "resample = systematic\n"),
          text("seed = 3\nbeta2 = 0.999\ngrad-clip = 1\nlog-every = 5\n")};
}

// `jebm gmm --config FILE`: the INI parser, every range and list check, nothing run or written.
bool run_gmm_config(const uint8_t* d, size_t n) {
  const fs::path p = scratch() / "gmm.ini";
  put(p, d, n);
  GmmCommandLine cl;
  return accepts([&] { parse_gmm_args({"--config", p.string()}, cl); });
}

std::vector<Bytes> seeds_gmm_config() {
  return {text("dim = 2\nteacher-mean = -4,1\nteacher-mean = 3\nteacher-weights = 0.2,0.8\nstudent-modes = 2\n"
               "iterations = 5\ndata = 100\nwalkers = 50\nalgo = jarzynski\nresample = multinomial\n"),
          text("quick = true\nh = 0.05\nsigma = 0.3\nlr-z = 0.5\nresample-cv2 = 0\nresample-ess = 0.5\n"
               "holdout-walkers = 20\nholdout-blocks = 4\nseed = 7\n")};
}

}  // namespace

const std::vector<FuzzTarget>& fuzz_targets() {
  static const std::vector<FuzzTarget> targets = {
      {"safetensors", true, run_safetensors, seeds_safetensors,
       {"__metadata__", "\"dtype\"", "\"shape\"", "\"data_offsets\"", "\"F32\"", "\"F64\"", "\"I64\"", "jebm.crc32:",
        "9223372036854775807", "18446744073709551616", "-1", "[]", "{}", "\\u"}},
      {"idx_images", true, run_idx_images, seeds_idx_images, {}},
      {"idx_labels", true, run_idx_labels, seeds_idx_labels, {}},
      {"cifar10", true, run_cifar10, seeds_cifar10, {}},
      {"png", true, run_png, seeds_png, {"IHDR", "IDAT", "IEND", "PLTE", "tRNS"}},
      {"json", false, run_json, seeds_json, {"{", "}", "[", "]", ",", ":", "\"", "\\u", "\\ud800", "-0", "1e5"}},
      {"options", false, run_options, seeds_options, {"=", "\n", "#", " = ", "\r\n"}},
      {"image_ebm_config", false, run_image_ebm_config, seeds_image_ebm_config,
       {"=", "\n", "walkers", "epochs", "data-batch", "threads", "lr", "h", "noise", "resume", "device = cuda",
        "9223372036854775807", "4611686018427387904", "1e308", "inf", "nan", "-1", "[", "]"}},
      {"gmm_config", false, run_gmm_config, seeds_gmm_config,
       {"=", "\n", "teacher-mean", "teacher-weights", "student-modes", "dim", "walkers", "lr-z", "sigma", "quick",
        "algo", "config", "9223372036854775807", "1e308", "inf", "nan", "-1", ",", "[", "]"}},
  };
  return targets;
}

const FuzzTarget& fuzz_target(const std::string& name) {
  std::string names;
  for (const auto& t : fuzz_targets()) {
    if (t.name == name) return t;
    names += (names.empty() ? "" : ", ") + t.name;
  }
  throw std::invalid_argument("unknown fuzz target '" + name + "' (targets: " + names + ")");
}

}  // namespace jebm::fuzz
