// The version line and a run's provenance (see version.hpp). Tested by tests/test_cli_binary.cpp.
#include "experiments/version.hpp"

#include <cstdlib>
#include <ctime>

#include "runtime/blas_core.hpp"

namespace jebm {

namespace {

std::string& stored_command_line() {
  static std::string text;
  return text;
}

// A word as a POSIX shell reads it back: unchanged when it holds only safe characters, else in single quotes.
std::string shell_word(const std::string& s) {
  const bool plain = !s.empty() && s.find_first_not_of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                                       "0123456789-_./=:,+@%") == std::string::npos;
  if (plain) return s;
  std::string q = "'";
  for (char c : s) q += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return q + "'";
}

}  // namespace

std::string version_line() {
  const BuildInfo b = build_info();
  return "jebm " + b.version + " (commit " + b.commit + ", " + (b.build_type.empty() ? "unknown" : b.build_type) +
         " build, backends: " + b.backends + ")";
}

std::string blas_line() {
  std::string text = blas_description();
  if (const char* detected = std::getenv("JEBM_BLAS_DETECTED"))
    text += ", set by jebm through OPENBLAS_CORETYPE (OpenBLAS detected " + std::string(detected) + ")";
  return text;
}

std::string openmp_wait_line() {
  const char* policy = std::getenv("OMP_WAIT_POLICY");
  const char* spin = std::getenv("GOMP_SPINCOUNT");
  if (std::getenv("JEBM_SET_SPINCOUNT") && spin)
    return "GOMP_SPINCOUNT=" + std::string(spin) + " (set by jebm): idle threads spin briefly, then sleep";
  if (!policy && !spin) return "libgomp's default";
  std::string text;
  if (policy) text = "OMP_WAIT_POLICY=" + std::string(policy);
  if (spin) text += (text.empty() ? "" : ", ") + std::string("GOMP_SPINCOUNT=") + spin;
  return text + " (yours)";
}

void set_command_line(int argc, char** argv) {
  std::string text = "jebm";
  for (int i = 1; i < argc; ++i) text += " " + shell_word(argv[i]);
  stored_command_line() = text;
}

const std::string& command_line() { return stored_command_line(); }

std::string utc_now_iso8601() {
  const std::time_t now = std::time(nullptr);
  std::tm utc{};
  gmtime_r(&now, &utc);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &utc);
  return buf;
}

std::vector<std::pair<std::string, std::string>> run_provenance(int ranks) {
  const BuildInfo b = build_info();
  return {{"jebm.version", b.version},       {"jebm.commit", b.commit},
          {"jebm.build", b.build_type},      {"jebm.backends", b.backends},
          {"jebm.command", command_line()},  {"jebm.date", utc_now_iso8601()},
          {"jebm.ranks", std::to_string(ranks)},  {"jebm.blas", blas_line()}};
}

}  // namespace jebm
