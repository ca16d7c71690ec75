// Communicator: the thin collective interface jebm's scale-out code talks to (rank, size, allreduce sum/max,
// allgather(v), broadcast, all-to-all(v), barrier). Implementations: single process (always), MPI (JEBM_MPI),
// NCCL for device buffers (CUDA + NCCL). Tested by tests/test_comm.cpp (CTest runs it at np 1, 2 and 3).
#pragma once
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "runtime/check.hpp"

namespace jebm {

enum class CommType { Byte, Int64, Float32, Float64 };
enum class CommReduce { Sum, Max };
size_t comm_type_size(CommType t);
const char* comm_type_name(CommType t);

template <typename T>
constexpr CommType comm_type_of();
template <>
constexpr CommType comm_type_of<uint8_t>() { return CommType::Byte; }
template <>
constexpr CommType comm_type_of<int64_t>() { return CommType::Int64; }
template <>
constexpr CommType comm_type_of<float>() { return CommType::Float32; }
template <>
constexpr CommType comm_type_of<double>() { return CommType::Float64; }

// Every call is collective: all ranks make the same calls in the same order, with matching counts. Buffers are
// host memory, except for a communicator whose device_buffers() is true (NCCL), which takes device pointers
// on its device and is ordered on jebm's stream. Counts are elements of `type`. Failures throw jebm::Error.
class Communicator {
 public:
  virtual ~Communicator() = default;
  virtual int rank() const = 0;
  virtual int size() const = 0;
  virtual const char* backend() const = 0;  // "single", "mpi", "nccl"
  virtual bool device_buffers() const { return false; }

  // In place on every rank. Sum of floating values is in the library's order: for results independent of the
  // rank count use samplers/distributed.hpp (fixed-block sums), not a floating Sum here.
  virtual void allreduce(void* buf, int64_t n, CommType type, CommReduce op) = 0;
  // recv: size() * n elements, rank r's n at r * n.
  virtual void allgather(const void* send, int64_t n, void* recv, CommType type) = 0;
  // recv: sum(counts) elements, rank r's counts[r] in rank order. counts has size() entries, equal on all ranks.
  virtual void allgatherv(const void* send, void* recv, const std::vector<int64_t>& counts, CommType type) = 0;
  // The same in place: buf holds sum(counts) elements, rank r's counts[r] at their place in rank order, written
  // there by rank r; afterwards every rank's buf holds all of them (no send buffer, no copy).
  virtual void allgatherv_in_place(void* buf, const std::vector<int64_t>& counts, CommType type) = 0;
  virtual void broadcast(void* buf, int64_t n, CommType type, int root) = 0;
  // send: send_counts[r] elements for rank r, in rank order; recv: recv_counts[r] from rank r, in rank order.
  virtual void alltoallv(const void* send, const std::vector<int64_t>& send_counts, void* recv,
                         const std::vector<int64_t>& recv_counts, CommType type) = 0;
  virtual void barrier() = 0;
  // Ends every rank of the job now (after an error on one rank, so that the others do not wait for it).
  [[noreturn]] virtual void abort(int exit_code) = 0;

  // Typed conveniences.
  template <typename T>
  void allreduce(T* buf, int64_t n, CommReduce op) { allreduce(buf, n, comm_type_of<T>(), op); }
  template <typename T>
  T allreduce_value(T v, CommReduce op) { allreduce(&v, 1, comm_type_of<T>(), op); return v; }
  template <typename T>
  std::vector<T> allgather_value(T v) {
    std::vector<T> all(static_cast<size_t>(size()));
    allgather(&v, 1, all.data(), comm_type_of<T>());
    return all;
  }
};

// The communicator of this process: MPI when jebm was launched by an MPI launcher (mpirun/srun set PMIx or
// OMPI_* variables) and built with MPI; single process otherwise. Launched by mpirun with a build without MPI,
// it throws (every rank would otherwise run the whole job and write the same files). The MPI one lives until
// the process ends (MPI may be initialised only once).
Communicator& world();
bool comm_mpi_built();               // was jebm built with MPI (JEBM_MPI)?
// This process's rank among the ranks on its machine, from the launcher's environment (OpenMPI, MPICH/Hydra,
// Slurm); world().rank() when none says. For "one GPU per rank": cuda:(local rank % GPUs).
int comm_local_rank();
bool comm_launched_by_mpi();         // do the environment variables say an MPI launcher started us?
std::unique_ptr<Communicator> make_single_process_communicator();

// NCCL over device `device` of this rank, bootstrapped with its unique id broadcast from rank 0 over `host`
// (any communicator: MPI, or the single-process one for a one-rank job). Throws when NCCL was not built.
bool comm_nccl_built();
std::unique_ptr<Communicator> make_nccl_communicator(Communicator& host, int device);
// For a job whose ranks each run on their CUDA device `device` (collective): NCCL over the same ranks when there
// are several, NCCL was built and no two ranks share a GPU (same host name and device index: NCCL refuses
// that); otherwise null, with the reason in *why_not when given.
std::unique_ptr<Communicator> make_nccl_communicator_if_usable(Communicator& host, int device, std::string* why_not);

// An error that every rank of the job raises together, with the same message (a collective check failed, or rank
// 0 could not write the run's files): `jebm` prints it once, from rank 0, instead of once per rank.
class SharedError : public Error {
 public:
  using Error::Error;
};

// Runs fn on rank 0 only (e.g. preparing the run directory); when it throws there, every rank throws a SharedError
// with rank 0's message, so that no rank goes on to wait for a rank 0 that has stopped. Collective.
void run_on_rank0(Communicator& comm, const std::function<void()>& fn);

// Runs fn on every rank (fn makes no collective calls: e.g. parsing and checking the options), then the ranks
// agree: when fn failed on every rank with the same message, every rank throws it as a SharedError (printed
// once); when it failed on some ranks only, those throw their own error and the others a SharedError naming them.
void agree_on_errors(Communicator& comm, const std::function<void()>& fn);

// Fails on every rank (SharedError), with the same message naming the ranks that differ from rank 0, unless `text` (e.g.
// the resolved options plus the version) hashes the same on all ranks. `what` names the text in the message.
void check_same_on_all_ranks(Communicator& comm, const std::string& what, const std::string& text);
uint64_t comm_hash(const std::string& text);  // FNV-1a 64: stable across processes, builds and machines

// The shard of rank `rank` out of `size` over n global items: [offset, offset + count), the first n % size
// ranks get one more. Fails when n < size (a rank would get nothing): the message names `what`, n and size.
struct Shard {
  int64_t offset = 0;
  int64_t count = 0;
};
Shard shard_of(int64_t n, int rank, int size, const char* what);
// n items over `size` ranks in contiguous ranges where a rank may get none (work that some ranks may lack:
// held-out populations, evaluation blocks): rank r has [s[r], s[r + 1]) with s[r] = n r / size (size + 1 entries).
std::vector<int64_t> split_starts(int64_t n, int size);

}  // namespace jebm
