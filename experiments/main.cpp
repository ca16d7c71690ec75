// The `jebm` program: a table of subcommands, each in experiments/<name>.cpp. Errors from any subcommand are
// printed as "jebm <cmd>: error: ..." (a user's mistake) or "jebm <cmd>: internal error: ... (file:line)" (a bug)
// and give a non-zero exit, never a crash. Tested by tests/test_cli_binary.cpp.
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <exception>
#include <iostream>
#include <new>
#include <string>
#include <vector>

#include "experiments/cli.hpp"
#include "experiments/command.hpp"
#include "experiments/cpu_affinity.hpp"
#include "experiments/version.hpp"
#include "runtime/blas_core.hpp"
#include "runtime/comm/communicator.hpp"
#include "runtime/user_error.hpp"

namespace jebm {
// Entry points (one per file in experiments/).
int run_bench(const std::vector<std::string>& args);
int run_gmm(const std::vector<std::string>& args);
int run_mnist(const std::vector<std::string>& args);
int run_mnist_classifier(const std::vector<std::string>& args);
int run_cifar10_classifier(const std::vector<std::string>& args);
int run_cifar10(const std::vector<std::string>& args);
int run_sample(const std::vector<std::string>& args);
}  // namespace jebm

namespace {

const std::vector<jebm::Command>& commands() {
  static const std::vector<jebm::Command> table = {
      {"gmm", "the Gaussian-mixture experiment of the paper (Jarzynski vs PCD vs CD)", jebm::run_gmm,
       true},
      {"mnist", "the MNIST experiment of the paper (digits 2,3,6; Jarzynski or PCD)", jebm::run_mnist,
       true},
      {"mnist-classifier", "train the MNIST metric classifier (digits 2,3,6) for jebm mnist", jebm::run_mnist_classifier},
      {"cifar10-classifier", "train the CIFAR-10 feature classifier for the Frechet distance", jebm::run_cifar10_classifier},
      {"cifar10", "the CIFAR-10 experiment of the paper (Jarzynski or PCD)", jebm::run_cifar10, true},
      {"sample", "draw fresh samples (PNG grid) from a mnist/cifar10 run checkpoint by ULA", jebm::run_sample},
      {"bench", "micro-benchmarks: GEMM, conv2d, energy CNNs, sampler, training iterations", jebm::run_bench},
  };
  return table;
}

void print_help(std::ostream& os) {
  os << "jebm " << jebm::build_info().version
     << " - train energy-based models with Jarzynski-weighted Langevin walkers\n"
        "(Carbone, Hua, Coste, Vanden-Eijnden, NeurIPS 2023)\n\n"
        "usage: jebm <command> [options]    (jebm <command> --help for the command's options)\n\n"
        "commands:\n";
  for (const auto& c : commands()) {
    const std::string name = c.name;
    os << "  " << name << std::string(name.size() < 20 ? 20 - name.size() : 1, ' ') << c.summary << "\n";
  }
  os << "\noptions:\n  -h, --help          this text\n  --version           version, git commit, build type and backends\n";
}

// This process's rank, or -1 when there is no usable communicator (e.g. started by mpirun but built without MPI:
// world() itself is what failed).
int rank_of_world() {
  try {
    return jebm::world().rank();
  } catch (const std::exception&) {
    return -1;
  }
}

int world_size() {
  try {
    return jebm::world().size();
  } catch (const std::exception&) {
    return 1;
  }
}

// " on rank R" when several ranks run (an error only this rank met), else nothing.
std::string rank_text() { return world_size() > 1 ? " on rank " + std::to_string(rank_of_world()) : ""; }

// After an error only this rank met: the others may be waiting for it in a collective, so end the whole job now
// (MPI_Abort) rather than let them wait for the watchdog.
void end_other_ranks(int code) {
  if (world_size() > 1) jebm::world().abort(code);
}

void print_error(const std::string& cmd, const std::string& rank, const std::string& what, bool user) {
  std::cerr << jebm::error_text(cmd, rank, what, user);
}

}  // namespace

int main(int argc, char** argv) {
  // Two settings that libraries read once, before main, so jebm restarts itself once with them (execv returns only
  // on failure; then it goes on as it is). A user who sets either variable keeps their value.
  // - How idle OpenMP threads wait. libgomp's default spin (about 3 ms on a 2-core Xeon) made jebm 10-60x slower
  //   whenever the cores were shared with other work; OMP_WAIT_POLICY=passive (sleep at once) left a quiet 2-core
  //   Xeon VM running most 2-thread GMM iterations at the 1-thread time, the second thread woken too late to help.
  //   A bounded spin (GOMP_SPINCOUNT, about 0.1 ms there) keeps both (docs/performance.md, "OpenMP on a shared
  //   machine"). A user's OMP_WAIT_POLICY or GOMP_SPINCOUNT is kept.
  // - OpenBLAS falls back to a generic SSE3 kernel set on a CPU it does not know, 3-4x slower in GEMM than the
  //   CPU's AVX-512 or AVX2 one (runtime/blas_core.hpp): OPENBLAS_CORETYPE names the right one.
  bool restart = false;
  if (std::getenv("OMP_WAIT_POLICY") == nullptr && std::getenv("GOMP_SPINCOUNT") == nullptr &&
      setenv("GOMP_SPINCOUNT", jebm::kJebmSpinCount, 1) == 0) {
    setenv("JEBM_SET_SPINCOUNT", "1", 1);  // so that --version can say who chose it
    restart = true;
  }
  if (std::getenv("OPENBLAS_CORETYPE") == nullptr) {
    const std::string detected = jebm::blas_core(), core = jebm::blas_core_override(detected, jebm::cpu_features());
    if (!core.empty() && setenv("OPENBLAS_CORETYPE", core.c_str(), 1) == 0) {
      setenv("JEBM_BLAS_DETECTED", detected.c_str(), 1);  // so that the run can record what it replaced
      restart = true;
    }
  }
  if (restart) {
    jebm::unbind_before_restart();  // else OMP_PROC_BIND would leave the restarted jebm one CPU
    execv("/proc/self/exe", argv);
  }
  std::vector<std::string> args(argv + 1, argv + argc);
  if (args.empty() || args[0] == "-h" || args[0] == "--help" || args[0] == "help") {
    print_help(std::cout);
    return args.empty() ? 1 : 0;
  }
  jebm::set_command_line(argc, argv);
  // `jebm --version` and `jebm CMD --version`: what made this binary.
  if (std::find(args.begin(), args.end(), "--version") != args.end()) {
    std::cout << jebm::version_line() << "\nblas: " << jebm::blas_line() << "\ncpus: " << jebm::usable_cpus()
              << " usable by this process (its affinity mask)\nopenmp wait: " << jebm::openmp_wait_line() << "\n";
    return 0;
  }
  for (const auto& c : commands()) {
    if (args[0] != c.name) continue;
    try {
      // `mpirun -np K jebm ...` with K > 1 and a command that does not shard its work over ranks: every
      // rank would run the whole job and write the same files. Refuse before anything is read or written.
      if (!c.multi_rank && jebm::comm_launched_by_mpi() && jebm::world().size() > 1) {
        if (jebm::world().rank() == 0)
          std::cerr << "jebm " << c.name << ": error: started on " << jebm::world().size()
                    << " MPI ranks, but jebm " << c.name << " runs on one process only (gmm, mnist and cifar10 "
                    << "run on several); run it without mpirun, or with -np 1\n";
        return 2;
      }
      return c.run(std::vector<std::string>(args.begin() + 1, args.end()));
    } catch (const jebm::SharedError& e) {
      // Every rank failed together with this message: print it once.
      if (rank_of_world() <= 0) print_error(c.name, "", e.what(), !jebm::has_source_location(e.what()));
      return 2;
    } catch (const std::bad_alloc&) {
      // An allocation the size checks did not foresee: say what it was rather than "std::bad_alloc".
      std::cerr << "jebm " << c.name << ": error" << rank_text() << ": out of memory (an allocation failed); use "
                << "fewer walkers, smaller batches or --eval-chunk, or a machine with more memory\n";
      end_other_ranks(2);
      return 2;
    } catch (const jebm::Error& e) {
      // A JEBM_CHECK's message ends with its file:line (a bug); a UserError's never does.
      print_error(c.name, rank_text(), e.what(), !jebm::has_source_location(e.what()));
      end_other_ranks(2);
      return 2;
    } catch (const std::exception& e) {  // the system's (a file system error, ...): its own words
      print_error(c.name, rank_text(), e.what(), true);
      end_other_ranks(2);
      return 2;
    }
  }
  std::cerr << "jebm: unknown command '" << args[0] << "' (see jebm --help)\n";
  return 2;
}
