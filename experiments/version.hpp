// What made this jebm: version, git commit at build time, build type and backends (generated at build time by
// cmake/build_info.cmake), and what a run records about how it was made (command line, date, ranks).
// Tested by tests/test_cli_binary.cpp (--version, options.txt) and tests/test_run_provenance.cpp.
#pragma once
#include <string>
#include <utility>
#include <vector>

namespace jebm {

struct BuildInfo {
  std::string version;     // "0.1.0"
  std::string commit;      // short git hash, "-dirty" with local changes; "unknown" outside git
  std::string build_type;  // Release, Debug, ...
  std::string backends;    // "CPU CUDA MPI NCCL", as built
};
BuildInfo build_info();  // defined in the generated jebm_build_info.cpp

// `jebm --version`: "jebm 0.1.0 (commit abc, Release build, backends: CPU MPI)".
std::string version_line();

// The BLAS that runs the CPU GEMMs, with its kernel set ("OpenBLAS 0.3.21 ... (core SkylakeX)"), and whether jebm
// chose that kernel set for a CPU OpenBLAS did not recognise (experiments/main.cpp). `jebm --version`'s second
// line; runs record it as jebm.blas, since GEMM results differ in their last bits from one kernel set to another.
std::string blas_line();

// How idle OpenMP threads wait, as this process runs: "GOMP_SPINCOUNT=10000 (set by jebm): ..." when jebm chose it
// (experiments/main.cpp), else the user's OMP_WAIT_POLICY / GOMP_SPINCOUNT, else libgomp's default. `jebm --version`'s
// fourth line. Timing only: results do not depend on it.
std::string openmp_wait_line();
// The bounded spin jebm sets when the user sets neither variable (docs/performance.md, "OpenMP on a shared machine").
inline constexpr const char* kJebmSpinCount = "10000";

// The command line as the user typed it ("jebm gmm --iterations 10"), each argument quoted for a POSIX shell
// when it needs it. Set once by main() (set_command_line); empty before.
void set_command_line(int argc, char** argv);
const std::string& command_line();

// The current UTC time in ISO 8601: "2026-12-07T01:32:46Z".
std::string utc_now_iso8601();

// What a run records about how it was made, as (key, value) pairs: jebm.version, jebm.commit, jebm.build,
// jebm.backends, jebm.command, jebm.date, jebm.ranks, jebm.blas. options.txt writes them as '# key = value' comments (so
// --config and --resume read past them) and checkpoints as metadata.
std::vector<std::pair<std::string, std::string>> run_provenance(int ranks);

}  // namespace jebm
