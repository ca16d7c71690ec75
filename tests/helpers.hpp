// Shared test helpers: closeness checks that print the first mismatches (llm.c style), bit-for-bit tensor
// comparison, an OpenMP thread count for a scope, float64 finite differences, temporary directories, a text's lines, and the preconditions that report a test skipped with its
// reason (no CUDA device, no python3 module, no real data).
#pragma once
#include <boost/test/unit_test.hpp>
#include <omp.h>

#include <cmath>
#include <cstring>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iostream>
#include <iterator>
#include <sstream>
#include <string>
#include <vector>

#include "runtime/cuda_api.hpp"
#include "runtime/tensor.hpp"
#include "runtime/user_error.hpp"

namespace jebm::test {

// |got - want| <= atol + rtol * |want| elementwise; prints up to 10 mismatches. Returns true when all close.
inline bool all_close(const std::vector<double>& got, const std::vector<double>& want, double atol, double rtol,
                      const std::string& what = "") {
  if (got.size() != want.size()) {
    BOOST_TEST_MESSAGE(what << ": size " << got.size() << " vs " << want.size());
    return false;
  }
  int bad = 0;
  for (size_t i = 0; i < got.size(); ++i) {
    const double tol = atol + rtol * std::fabs(want[i]);
    if (!(std::fabs(got[i] - want[i]) <= tol)) {  // NaN fails
      if (bad < 10)
        std::cerr << what << ": element " << i << " got " << got[i] << " want " << want[i] << " (tol " << tol << ")\n";
      ++bad;
    }
  }
  if (bad) std::cerr << what << ": " << bad << " of " << got.size() << " elements differ\n";
  return bad == 0;
}

inline bool all_close(const Tensor& got, const Tensor& want, double atol, double rtol, const std::string& what = "") {
  if (got.shape() != want.shape()) {
    std::cerr << what << ": shape " << shape_str(got.shape()) << " vs " << shape_str(want.shape()) << "\n";
    return false;
  }
  return all_close(got.to_vector(), want.to_vector(), atol, rtol, what);
}

// The message of an expected error: logged at test_suite level, and it must mention every needle.
// Same shape, dtype and bytes (host tensors; views are compared through contiguous copies, and an empty tensor,
// which has no storage, through its shape alone).
inline bool same_bits(const Tensor& a, const Tensor& b) {
  return a.shape() == b.shape() && a.dtype() == b.dtype() &&
         (a.nbytes() == 0 || std::memcmp(a.clone().raw_data(), b.clone().raw_data(), a.nbytes()) == 0);
}

// omp_set_num_threads(n) for the scope's lifetime; the previous count is restored on leaving it.
struct ThreadCount {
  int saved = omp_get_max_threads();
  explicit ThreadCount(int n) { omp_set_num_threads(n); }
  ~ThreadCount() { omp_set_num_threads(saved); }
  ThreadCount(const ThreadCount&) = delete;
  ThreadCount& operator=(const ThreadCount&) = delete;
};

inline void check_error_message(const std::string& msg, const std::vector<std::string>& needles) {
  BOOST_TEST_MESSAGE("error: " << msg);
  for (const auto& n : needles)
    BOOST_CHECK_MESSAGE(msg.find(n) != std::string::npos, "message lacks '" << n << "': " << msg);
}

// `fn` must throw jebm::Error whose message mentions every needle.
template <typename F>
void expect_error(F&& fn, const std::vector<std::string>& needles) {
  try {
    fn();
    BOOST_ERROR("no error; expected one mentioning '" << needles.front() << "'");
  } catch (const Error& e) {
    check_error_message(e.what(), needles);
  }
}

// `fn` must throw a jebm::UserError (the user's option, value or file at fault) whose message mentions every needle
// and carries no source location; any other jebm::Error (an internal one, reported as a bug) fails the test.
template <typename F>
void expect_user_error(F&& fn, const std::vector<std::string>& needles) {
  try {
    fn();
    BOOST_ERROR("no error; expected one mentioning '" << needles.front() << "'");
  } catch (const UserError& e) {
    check_error_message(e.what(), needles);
    BOOST_CHECK_MESSAGE(!has_source_location(e.what()), "a source location in a user error: " << e.what());
  } catch (const Error& e) {
    BOOST_ERROR("an internal error where the user is at fault: " << e.what());
  }
}

// A fresh empty directory under the system temp dir, removed when the object dies.
struct TempDir {
  std::filesystem::path path;
  TempDir() {
    std::string tmpl = (std::filesystem::temp_directory_path() / "jebm-test-XXXXXX").string();
    std::vector<char> buf(tmpl.begin(), tmpl.end());
    buf.push_back('\0');
    path = ::mkdtemp(buf.data());
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path, ec);
  }
};

// A file's whole content, bytes as they are ("" when it cannot be read: tests compare it with what they expect).
inline std::string slurp(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

// The lines of `text`, without their newlines (what a command printed, a CSV file).
inline std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  for (std::string l; std::getline(in, l);) lines.push_back(l);
  return lines;
}

// True when the test runs under the sanitizer build (tests may shrink their sizes, never their assertions).
inline bool sanitized() {
  const char* s = std::getenv("JEBM_SANITIZED");
  return s && std::string(s) == "1";
}

// A Boost.Test precondition's answer: true, or false with the reason, which Boost.Test reports as "skipped" (the
// reason is echoed to stderr too, so a plain `ctest` log shows it).
inline boost::test_tools::assertion_result skip_unless(bool ok, const std::string& why) {
  if (ok) return true;
  std::cerr << "skipped: " << why << "\n";
  boost::test_tools::assertion_result r(false);
  r.message() << "skipped: " << why;
  return r;
}

// Boost.Test precondition: CUDA tests are reported as skipped, with the reason, where no device is present.
struct CudaDevicePresent {
  boost::test_tools::assertion_result operator()(boost::unit_test::test_unit_id) const {
    return skip_unless(cuda_api::available(), cuda_api::built() ? "no CUDA device" : "CUDA backend not built");
  }
};

// Boost.Test precondition: python3 is on PATH and imports every module in `modules` (space-separated; empty for
// python3 alone).
struct PythonModules {
  std::string modules;
  boost::test_tools::assertion_result operator()(boost::unit_test::test_unit_id) const {
    std::string probe = "python3 -c 'import sys", listed;
    for (size_t a = 0, b; a < modules.size(); a = b + 1) {
      b = modules.find(' ', a);
      if (b == std::string::npos) b = modules.size();
      if (b == a) continue;
      probe += ", " + modules.substr(a, b - a);
      listed += (listed.empty() ? "" : ", ") + modules.substr(a, b - a);
    }
    probe += "' >/dev/null 2>&1";
    const bool ok = std::system(probe.c_str()) == 0;
    return skip_unless(ok, listed.empty() ? "python3 not found on PATH"
                                          : "python3 cannot import " + listed + " (pip install " + modules + ")");
  }
};

// The directory `sub` of the shared data (JEBM_SHARED_DATA, set by CTest to ../shared/data), or "" when absent.
inline std::string shared_data_dir(const std::string& sub) {
  const char* root = std::getenv("JEBM_SHARED_DATA");
  if (!root) return "";
  const std::filesystem::path p = std::filesystem::path(root) / sub;
  return std::filesystem::is_directory(p) ? p.string() : "";
}

// Boost.Test precondition: shared_data_dir(sub) exists.
struct SharedDataPresent {
  std::string sub;
  boost::test_tools::assertion_result operator()(boost::unit_test::test_unit_id) const {
    return skip_unless(!shared_data_dir(sub).empty(), "JEBM_SHARED_DATA is unset or has no " + sub + "/ (real data)");
  }
};

}  // namespace jebm::test
