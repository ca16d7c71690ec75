// A checkpoint whose contents are wrong is the user's file at fault, not a jebm bug: through the jebm binary, a
// resumed gmm or mnist run whose checkpoint is truncated, has a broken header, an unknown dtype, a CRC mismatch, a
// tensor of the wrong shape or dtype, or a missing or malformed metadata entry ends with "jebm CMD: error: ..."
// naming the file and the field or tensor, never "internal error" nor a source location (exit code 2).
#include <boost/test/unit_test.hpp>

#include <filesystem>
#include <fstream>
#include <functional>
#include <string>
#include <vector>

#include "models/checkpoint.hpp"
#include "tests/binary_helpers.hpp"
#include "tests/run_helpers.hpp"
#include "tests/std_regex.hpp"

namespace fs = std::filesystem;
using jebm::test::Ran;
using jebm::test::run_jebm;
using jebm::test::slurp;

namespace {

void write_bytes(const fs::path& p, const std::string& bytes) {
  std::ofstream(p, std::ios::binary | std::ios::trunc).write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

// The checkpoint saved again (valid checksums) after `edit` changed its tensors or metadata.
void resave(const fs::path& ckpt, const std::function<void(jebm::SafeTensors&)>& edit) {
  jebm::SafeTensors st = jebm::load_safetensors(ckpt.string());
  edit(st);
  std::vector<std::pair<std::string, jebm::Tensor>> tensors(st.tensors.begin(), st.tensors.end());
  jebm::save_safetensors(ckpt.string(), tensors, st.metadata);
}

// The checkpoint's bytes with the first `from` replaced by `to` (same length, so the header stays consistent).
void replace_bytes(const fs::path& ckpt, const std::string& from, const std::string& to) {
  std::string bytes = slurp(ckpt);
  const size_t at = bytes.find(from);
  BOOST_REQUIRE_MESSAGE(at != std::string::npos, ckpt << " has no " << from);
  bytes.replace(at, from.size(), to);
  write_bytes(ckpt, bytes);
}

// A corruption of the checkpoint, how to resume, and what the message must say besides the file's path.
struct Case {
  std::string what;
  std::function<void(const fs::path&)> corrupt;
  std::vector<std::string> resume_args;  // after `CMD --resume DIR`
  std::vector<std::string> needles;
};

// Each case on a fresh copy of the finished run `run`: `jebm CMD --resume COPY ...` is refused as a user error that
// names the checkpoint and every needle.
void check_cases(const std::string& cmd, const fs::path& run, const std::string& ckpt_name,
                 const std::vector<Case>& cases) {
  int n = 0;
  for (const Case& c : cases) {
    BOOST_TEST_CONTEXT(cmd << ": " << c.what) {
      const fs::path copy = run.string() + "-" + std::to_string(n++);
      fs::copy(run, copy, fs::copy_options::recursive);
      const fs::path ckpt = copy / ckpt_name;
      c.corrupt(ckpt);
      std::vector<std::string> args = {cmd, "--resume", copy.string()};
      args.insert(args.end(), c.resume_args.begin(), c.resume_args.end());
      const Ran r = run_jebm(args);
      BOOST_TEST_MESSAGE("stderr: " << r.err);
      BOOST_TEST(r.code == 2, r.err);
      BOOST_TEST(("\n" + r.err).find("\njebm " + cmd + ": error: ") != std::string::npos, r.err);  // a line of its own
      BOOST_TEST(r.err.find("internal error") == std::string::npos);
      BOOST_TEST(!std::regex_search(r.err, std::regex(R"(\.(cpp|hpp|cu|h):[0-9]+\))")), "a source location");
      BOOST_TEST(r.err.find(ckpt.string()) != std::string::npos, "the message does not name " << ckpt);
      for (const std::string& needle : c.needles) BOOST_TEST(r.err.find(needle) != std::string::npos, needle);
    }
  }
}

}  // namespace

BOOST_AUTO_TEST_CASE(a_gmm_checkpoint_with_bad_contents_is_a_user_error) {
  const jebm::test::TempDir tmp;
  const fs::path run = tmp.path / "run";
  const Ran made = run_jebm({"gmm", "--dim", "2", "--samples", "50", "--walkers", "40", "--iterations", "10",
                             "--checkpoint-every", "5", "--log-every", "5", "--algo", "jarzynski", "--no-progress",
                             "--threads", "1", "--out", run.string()});
  BOOST_TEST_INFO(made.err);
  BOOST_REQUIRE_EQUAL(made.code, 0);
  const std::vector<std::string> finished = {};  // the run is complete: --resume reads the checkpoints first
  const std::vector<std::string> longer = {"--iterations", "20"};
  const std::vector<Case> cases = {
      {"truncated", [](const fs::path& p) { write_bytes(p, slurp(p).substr(0, 100)); }, finished,
       {"header length", "truncated?"}},
      {"header JSON", [](const fs::path& p) { replace_bytes(p, "{\"", "x\""); }, finished, {"header JSON"}},
      {"dtype", [](const fs::path& p) { replace_bytes(p, "\"dtype\":\"F64\"", "\"dtype\":\"F16\""); }, finished,
       {"tensor \"", "dtype \"F16\" is not supported"}},
      {"CRC", [](const fs::path& p) {
         std::string b = slurp(p);
         b.back() = static_cast<char>(b.back() ^ 0x40);
         write_bytes(p, b);
       },
       finished, {"tensor \"", "CRC-32 of its"}},
      {"shape", [](const fs::path& p) {
         resave(p, [](jebm::SafeTensors& st) {
           st.tensors["walkers.x"] = jebm::Tensor::zeros({40, 3}, jebm::DType::Float64);
         });
       },
       longer, {"tensor \"walkers.x\" is [40, 3]", "expects [40, 2]"}},
      {"malformed metadata", [](const fs::path& p) {
         resave(p, [](jebm::SafeTensors& st) { st.metadata["gmm.seconds"] = "soon"; });
       },
       longer, {"\"gmm.seconds\" = \"soon\" is not a finite number"}},
      {"missing metadata", [](const fs::path& p) {
         resave(p, [](jebm::SafeTensors& st) { st.metadata.erase("walkers.resamplings"); });
       },
       longer, {"no \"walkers.resamplings\""}},
  };
  check_cases("gmm", run, "checkpoint_jarzynski.safetensors", cases);
}

BOOST_AUTO_TEST_CASE(an_image_checkpoint_with_bad_contents_is_a_user_error) {
  const jebm::test::TempDir tmp;
  const fs::path data = tmp.path / "data", run = tmp.path / "run";
  fs::create_directories(data);
  jebm::test::write_mnist_split(data, "train", 4, 1, {2, 3, 6}, 0, 0);
  jebm::test::write_mnist_split(data, "t10k", 2, 2, {2, 3, 6}, 0, 0);
  const Ran made = run_jebm({"mnist", "--data", data.string(), "--out", run.string(), "--counts", "1,1,1",
                             "--walkers", "4", "--burn-in", "1", "--moving-subsets", "1", "--moving-batch", "2",
                             "--moves-per-update", "1", "--gradient-batch", "2", "--data-batch", "2", "--epochs", "1",
                             "--grid-count", "1", "--no-progress", "--threads", "1"});
  BOOST_TEST_INFO(made.err);
  BOOST_REQUIRE_EQUAL(made.code, 0);
  const std::vector<std::string> longer = {"--epochs", "2", "--no-progress"};
  const std::vector<Case> cases = {
      {"walkers dtype", [](const fs::path& p) {
         resave(p, [](jebm::SafeTensors& st) {
           st.tensors["walkers.x"] = st.tensors.at("walkers.x").to(jebm::DType::Float64);
         });
       },
       longer, {"tensor \"walkers.x\"", "float64", "expects"}},
      {"malformed metadata", [](const fs::path& p) {
         resave(p, [](jebm::SafeTensors& st) { st.metadata["elapsed_s"] = "later"; });
       },
       longer, {"\"elapsed_s\" = \"later\" is not a finite number"}},
      {"missing metadata", [](const fs::path& p) {
         resave(p, [](jebm::SafeTensors& st) { st.metadata.erase("walkers.seed"); });
       },
       longer, {"no \"walkers.seed\""}},
  };
  check_cases("mnist", run, "checkpoint.safetensors", cases);
}
