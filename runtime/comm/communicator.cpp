// The backend-independent part of runtime/comm: type sizes, the process's communicator (world), the option-hash
// check across ranks and the even sharding of N items. Tested by tests/test_comm.cpp.
#include "runtime/comm/communicator.hpp"

#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <sstream>

#include "runtime/check.hpp"
#include "runtime/comm/backends.hpp"

namespace jebm {

size_t comm_type_size(CommType t) {
  switch (t) {
    case CommType::Byte: return 1;
    case CommType::Int64: return 8;
    case CommType::Float32: return 4;
    case CommType::Float64: return 8;
  }
  JEBM_FAIL("comm_type_size: unknown type " << static_cast<int>(t));
}

const char* comm_type_name(CommType t) {
  switch (t) {
    case CommType::Byte: return "byte";
    case CommType::Int64: return "int64";
    case CommType::Float32: return "float32";
    case CommType::Float64: return "float64";
  }
  return "unknown";
}

bool comm_launched_by_mpi() {
  // OpenMPI's mpirun, PMIx launchers (OpenMPI 5, Slurm's srun --mpi=pmix), MPICH's Hydra and PMI-2 launchers.
  for (const char* v : {"OMPI_COMM_WORLD_SIZE", "PMIX_RANK", "PMI_SIZE", "PMI_RANK"})
    if (std::getenv(v)) return true;
  return false;
}

int comm_local_rank() {
  for (const char* v : {"OMPI_COMM_WORLD_LOCAL_RANK", "MPI_LOCALRANKID", "SLURM_LOCALID", "PMI_LOCAL_RANK"})
    if (const char* s = std::getenv(v)) {
      char* end = nullptr;
      const long r = std::strtol(s, &end, 10);
      if (end != s && *end == '\0' && r >= 0) return static_cast<int>(r);
    }
  return world().rank();
}

Communicator& world() {
  static std::unique_ptr<Communicator> w = [] {
    if (!comm_launched_by_mpi()) return make_single_process_communicator();
    JEBM_CHECK(comm_mpi_built(),
               "jebm was started by an MPI launcher (OMPI_COMM_WORLD_SIZE/PMIX_RANK/PMI_SIZE is set) but was built "
               "without MPI (JEBM_MPI=OFF, or MPI not found at configure time): every rank would run the whole job "
               "alone. Rebuild with -DJEBM_MPI=ON (Debian: libopenmpi-dev openmpi-bin) or run without mpirun");
    return comm_detail::make_mpi_communicator();
  }();
  return *w;
}

uint64_t comm_hash(const std::string& text) {
  uint64_t h = 0xcbf29ce484222325ULL;
  for (unsigned char c : text) {
    h ^= c;
    h *= 0x100000001b3ULL;
  }
  return h;
}

void check_same_on_all_ranks(Communicator& comm, const std::string& what, const std::string& text) {
  const std::vector<int64_t> all = comm.allgather_value(static_cast<int64_t>(comm_hash(text)));
  std::ostringstream differ;
  int n_differ = 0;
  for (size_t r = 1; r < all.size(); ++r)
    if (all[r] != all[0]) differ << (n_differ++ ? ", " : "") << r;
  // Every rank sees the same hashes, so every rank throws the same error: none is left waiting in a collective.
  if (n_differ == 0) return;
  std::ostringstream os;
  os << what << " differ between ranks: rank(s) " << differ.str() << " of " << all.size()
     << " differ from rank 0; start every rank with the same options and the same jebm build";
  throw SharedError(os.str());
}

void agree_on_errors(Communicator& comm, const std::function<void()>& fn) {
  if (comm.size() == 1) {
    fn();
    return;
  }
  std::string failure;
  bool failed = false;
  try {
    fn();
  } catch (const std::exception& e) {
    failure = e.what();
    failed = true;
  }
  // 0: no error; else the message's hash (never 0).
  const int64_t mine = failed ? static_cast<int64_t>(comm_hash(failure) | 1) : 0;
  const std::vector<int64_t> all = comm.allgather_value(mine);
  if (std::all_of(all.begin(), all.end(), [](int64_t v) { return v == 0; })) return;
  if (std::all_of(all.begin(), all.end(), [&](int64_t v) { return v == all[0]; })) throw SharedError(failure);
  if (failed) throw Error(failure);
  std::ostringstream os;
  os << "failed on rank(s)";
  for (size_t r = 0; r < all.size(); ++r)
    if (all[r] != 0) os << " " << r;
  os << " (their messages above)";
  throw SharedError(os.str());
}

void run_on_rank0(Communicator& comm, const std::function<void()>& fn) {
  std::string failure;
  int64_t failed = 0;
  if (comm.rank() == 0) {
    try {
      fn();
    } catch (const std::exception& e) {
      failure = e.what();
      failed = 1;
    }
  }
  if (comm.size() > 1) {
    int64_t len = static_cast<int64_t>(failure.size());
    comm.broadcast(&failed, 1, CommType::Int64, 0);
    if (!failed) return;
    comm.broadcast(&len, 1, CommType::Int64, 0);
    failure.resize(static_cast<size_t>(len));
    comm.broadcast(failure.data(), len, CommType::Byte, 0);
  }
  if (failed) throw SharedError(failure);
}

std::unique_ptr<Communicator> make_nccl_communicator_if_usable(Communicator& host, int device, std::string* why_not) {
  auto none = [&](const std::string& why) {
    if (why_not) *why_not = why;
    return std::unique_ptr<Communicator>();
  };
  if (host.size() == 1) return none("one rank");
  char name[256] = {};
  gethostname(name, sizeof(name) - 1);
  const uint64_t key = comm_hash(std::string(name) + "/cuda:" + std::to_string(device));
  std::vector<int64_t> keys = host.allgather_value(static_cast<int64_t>(key));
  std::sort(keys.begin(), keys.end());
  if (std::adjacent_find(keys.begin(), keys.end()) != keys.end())
    return none("ranks share a GPU (NCCL needs one GPU per rank)");
  if (!comm_nccl_built()) return none("jebm was built without NCCL");
  return make_nccl_communicator(host, device);
}

std::vector<int64_t> split_starts(int64_t n, int size) {
  JEBM_CHECK(size >= 1 && n >= 0, "split_starts: " << n << " items over " << size << " ranks");
  std::vector<int64_t> s(static_cast<size_t>(size) + 1);
  for (int r = 0; r <= size; ++r) s[static_cast<size_t>(r)] = n * r / size;
  return s;
}

Shard shard_of(int64_t n, int rank, int size, const char* what) {
  JEBM_CHECK(size >= 1 && rank >= 0 && rank < size, "shard_of: rank " << rank << " of " << size);
  JEBM_CHECK(n >= size, what << ": " << n << " cannot be shared by " << size
                             << " ranks (each needs at least one); use fewer ranks (mpirun -np) or more " << what);
  const int64_t base = n / size, extra = n % size;
  Shard s;
  s.offset = rank * base + std::min<int64_t>(rank, extra);
  s.count = base + (rank < extra ? 1 : 0);
  return s;
}

namespace comm_detail {
double collective_timeout_s() {
  const char* v = std::getenv("JEBM_COMM_TIMEOUT_S");
  if (!v || !*v) return kDefaultTimeoutS;
  char* end = nullptr;
  const double t = std::strtod(v, &end);
  JEBM_CHECK(end && *end == '\0' && t > 0.0, "JEBM_COMM_TIMEOUT_S='" << v << "': expected a positive number of "
                                                                       "seconds");
  return t;
}
}  // namespace comm_detail

}  // namespace jebm
