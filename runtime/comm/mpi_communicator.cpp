// The MPI Communicator over MPI_COMM_WORLD (built with JEBM_MPI). Errors come back as return codes
// (MPI_ERRORS_RETURN) and are thrown as jebm::Error with MPI's message. A rank that dies is handled by the
// launcher (OpenMPI's mpirun ends the whole job when one rank exits non-zero or on a signal); a rank that hangs
// or skips a collective is caught by the collective watchdog: after JEBM_COMM_TIMEOUT_S (default 600 s) in one
// call, the waiting rank prints which call timed out and exits with kCommTimeoutExit, and mpirun ends the rest.
// Tested by tests/test_comm.cpp at np 1, 2, 3 and by the CTest cases test_comm_timeout and test_comm_dead_rank.
// The C API only: OpenMPI's and MPICH's mpi.h otherwise pull in the removed MPI-2 C++ bindings (libmpi_cxx).
#define OMPI_SKIP_MPICXX 1
#define MPICH_SKIP_MPICXX 1
#include <mpi.h>

#include <climits>
#include <cstdio>
#include <cstdlib>
#include <unistd.h>

#include "runtime/check.hpp"
#include "runtime/comm/backends.hpp"
#include "runtime/comm/watchdog.hpp"

namespace jebm {
namespace {

constexpr int kCommTimeoutExit = 75;  // EX_TEMPFAIL: the job may succeed when restarted

#define JEBM_MPI_CHECK(stmt)                                                                               \
  do {                                                                                                     \
    const int jebm_mpi_rc_ = (stmt);                                                                       \
    if (jebm_mpi_rc_ != MPI_SUCCESS) {                                                                     \
      char jebm_mpi_msg_[MPI_MAX_ERROR_STRING];                                                            \
      int jebm_mpi_len_ = 0;                                                                               \
      MPI_Error_string(jebm_mpi_rc_, jebm_mpi_msg_, &jebm_mpi_len_);                                       \
      JEBM_FAIL(#stmt << " failed on rank " << rank_ << ": " << std::string(jebm_mpi_msg_, jebm_mpi_len_)); \
    }                                                                                                      \
  } while (0)

MPI_Datatype mpi_type(CommType t) {
  switch (t) {
    case CommType::Byte: return MPI_BYTE;
    case CommType::Int64: return MPI_INT64_T;
    case CommType::Float32: return MPI_FLOAT;
    case CommType::Float64: return MPI_DOUBLE;
  }
  JEBM_FAIL("MPI: unknown type " << static_cast<int>(t));
}

int mpi_count(int64_t n, const char* op) {
  JEBM_CHECK(n >= 0 && n <= INT_MAX, "MPI " << op << ": count " << n << " outside [0, " << INT_MAX
                                            << "] (MPI-3 counts are int)");
  return static_cast<int>(n);
}

// Counts and displacements as MPI's ints, with the total checked against int overflow too.
void mpi_counts(const std::vector<int64_t>& c, int size, const char* op, std::vector<int>& counts,
                std::vector<int>& displs) {
  JEBM_CHECK(static_cast<int>(c.size()) == size, "MPI " << op << ": " << c.size() << " counts for " << size
                                                        << " ranks");
  counts.resize(c.size());
  displs.resize(c.size());
  int64_t at = 0;
  for (size_t r = 0; r < c.size(); ++r) {
    counts[r] = mpi_count(c[r], op);
    displs[r] = mpi_count(at, op);
    at += c[r];
  }
  mpi_count(at, op);
}

void on_timeout(int rank, int size, double timeout_s, const std::string& what, double waited) {
  std::fprintf(stderr,
               "jebm: rank %d of %d: %s has waited %.0f s for the other ranks (timeout JEBM_COMM_TIMEOUT_S = %g s): "
               "a rank died, hung or did not make the same call; ending this rank (exit %d)\n",
               rank, size, what.c_str(), waited, timeout_s, kCommTimeoutExit);
  std::fflush(stderr);
  // Not MPI_Abort: this is not the thread that initialised MPI (MPI_THREAD_FUNNELED). Exiting without
  // MPI_Finalize makes mpirun end every other rank.
  _exit(kCommTimeoutExit);
}

class MpiCommunicator final : public Communicator {
 public:
  MpiCommunicator() {
    int initialised = 0;
    MPI_Initialized(&initialised);
    if (!initialised) {
      int provided = 0;
      if (MPI_Init_thread(nullptr, nullptr, MPI_THREAD_FUNNELED, &provided) != MPI_SUCCESS)
        JEBM_FAIL("MPI_Init_thread failed (launched by mpirun? is OpenMPI installed on every node?)");
      owns_mpi_ = true;
    }
    JEBM_MPI_CHECK(MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN));
    JEBM_MPI_CHECK(MPI_Comm_rank(MPI_COMM_WORLD, &rank_));
    JEBM_MPI_CHECK(MPI_Comm_size(MPI_COMM_WORLD, &size_));
    const double t = comm_detail::collective_timeout_s();
    const int r = rank_, s = size_;
    watchdog_ = std::make_unique<CollectiveWatchdog>(
        t, [r, s, t](const std::string& what, double waited) { on_timeout(r, s, t, what, waited); });
  }
  ~MpiCommunicator() override {
    if (!owns_mpi_) return;
    int finalised = 0;
    MPI_Finalized(&finalised);
    if (finalised) return;
    // MPI_Finalize waits for the other ranks: a rank that left with an error would otherwise wait forever.
    CollectiveWatchdog::Scope scope(*watchdog_, "MPI_Finalize");
    MPI_Finalize();
  }

  int rank() const override { return rank_; }
  int size() const override { return size_; }
  const char* backend() const override { return "mpi"; }

  void allreduce(void* buf, int64_t n, CommType type, CommReduce op) override {
    JEBM_CHECK(type != CommType::Byte, "MPI allreduce: bytes cannot be summed or maxed");
    CollectiveWatchdog::Scope scope(*watchdog_, "MPI_Allreduce");
    JEBM_MPI_CHECK(MPI_Allreduce(MPI_IN_PLACE, buf, mpi_count(n, "allreduce"), mpi_type(type),
                                 op == CommReduce::Sum ? MPI_SUM : MPI_MAX, MPI_COMM_WORLD));
  }
  void allgather(const void* send, int64_t n, void* recv, CommType type) override {
    CollectiveWatchdog::Scope scope(*watchdog_, "MPI_Allgather");
    const int c = mpi_count(n, "allgather");
    mpi_count(n * size_, "allgather");
    JEBM_MPI_CHECK(MPI_Allgather(send, c, mpi_type(type), recv, c, mpi_type(type), MPI_COMM_WORLD));
  }
  void allgatherv(const void* send, void* recv, const std::vector<int64_t>& counts, CommType type) override {
    std::vector<int> c, d;
    mpi_counts(counts, size_, "allgatherv", c, d);
    CollectiveWatchdog::Scope scope(*watchdog_, "MPI_Allgatherv");
    JEBM_MPI_CHECK(MPI_Allgatherv(send, c[static_cast<size_t>(rank_)], mpi_type(type), recv, c.data(), d.data(),
                                  mpi_type(type), MPI_COMM_WORLD));
  }
  void allgatherv_in_place(void* buf, const std::vector<int64_t>& counts, CommType type) override {
    std::vector<int> c, d;
    mpi_counts(counts, size_, "allgatherv_in_place", c, d);
    CollectiveWatchdog::Scope scope(*watchdog_, "MPI_Allgatherv");
    JEBM_MPI_CHECK(MPI_Allgatherv(MPI_IN_PLACE, 0, MPI_DATATYPE_NULL, buf, c.data(), d.data(), mpi_type(type),
                                  MPI_COMM_WORLD));
  }
  void broadcast(void* buf, int64_t n, CommType type, int root) override {
    JEBM_CHECK(root >= 0 && root < size_, "MPI broadcast: root " << root << " of " << size_ << " ranks");
    CollectiveWatchdog::Scope scope(*watchdog_, "MPI_Bcast");
    JEBM_MPI_CHECK(MPI_Bcast(buf, mpi_count(n, "broadcast"), mpi_type(type), root, MPI_COMM_WORLD));
  }
  void alltoallv(const void* send, const std::vector<int64_t>& send_counts, void* recv,
                 const std::vector<int64_t>& recv_counts, CommType type) override {
    std::vector<int> sc, sd, rc, rd;
    mpi_counts(send_counts, size_, "alltoallv send", sc, sd);
    mpi_counts(recv_counts, size_, "alltoallv recv", rc, rd);
    CollectiveWatchdog::Scope scope(*watchdog_, "MPI_Alltoallv");
    JEBM_MPI_CHECK(MPI_Alltoallv(send, sc.data(), sd.data(), mpi_type(type), recv, rc.data(), rd.data(),
                                 mpi_type(type), MPI_COMM_WORLD));
  }
  void barrier() override {
    CollectiveWatchdog::Scope scope(*watchdog_, "MPI_Barrier");
    JEBM_MPI_CHECK(MPI_Barrier(MPI_COMM_WORLD));
  }
  [[noreturn]] void abort(int exit_code) override {
    std::fflush(nullptr);
    MPI_Abort(MPI_COMM_WORLD, exit_code);
    std::_Exit(exit_code);  // MPI_Abort does not return; this is for the compiler
  }

 private:
  int rank_ = 0;
  int size_ = 1;
  bool owns_mpi_ = false;
  std::unique_ptr<CollectiveWatchdog> watchdog_;
};

}  // namespace

bool comm_mpi_built() { return true; }

namespace comm_detail {
std::unique_ptr<Communicator> make_mpi_communicator() { return std::make_unique<MpiCommunicator>(); }
}  // namespace comm_detail

}  // namespace jebm
