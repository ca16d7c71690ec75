// The NCCL Communicator for device buffers (built with the CUDA backend when nccl.h and libnccl are found): one
// rank per GPU, bootstrapped by broadcasting rank 0's ncclUniqueId over a host communicator (MPI, or the
// single-process one). Every call is enqueued on jebm's stream of its device, so it is ordered after the kernels
// that wrote the buffer, and the host does not wait. Uneven gathers (in place too) are grouped broadcasts,
// all-to-all(v) grouped send/recv (NCCL has no v-collectives); the barrier synchronises the stream, then the host
// communicator. Used by the image runs on several GPUs for the walker rows (samplers/trainer.cpp). Tested by
// tests/test_comm.cpp (nccl_collectives_on_device_buffers: skipped without a GPU; the device check runs it with
// one rank).
#include <cuda_runtime.h>
#include <nccl.h>

#include <cstdio>
#include <cstdlib>

#include "runtime/check.hpp"
#include "runtime/comm/communicator.hpp"
#include "runtime/cuda/context.hpp"

#define NCCL_CHECK(stmt)                                                                          \
  do {                                                                                            \
    const ncclResult_t jebm_nccl_rc_ = (stmt);                                                    \
    if (jebm_nccl_rc_ != ncclSuccess)                                                             \
      JEBM_FAIL(#stmt << " failed: " << ncclGetErrorString(jebm_nccl_rc_) << " ("                 \
                      << (ncclGetLastError(nullptr) ? ncclGetLastError(nullptr) : "") << ")");    \
  } while (0)

namespace jebm {
namespace {

ncclDataType_t nccl_type(CommType t) {
  switch (t) {
    case CommType::Byte: return ncclUint8;
    case CommType::Int64: return ncclInt64;
    case CommType::Float32: return ncclFloat32;
    case CommType::Float64: return ncclFloat64;
  }
  JEBM_FAIL("NCCL: unknown type " << static_cast<int>(t));
}

class NcclCommunicator final : public Communicator {
 public:
  NcclCommunicator(Communicator& host, int device) : host_(host), device_(device) {
    JEBM_CHECK(!host.device_buffers(), "NCCL bootstrap: the host communicator must use host buffers");
    stream_ = cuda::context(device).stream;  // makes `device` current
    ncclUniqueId id{};
    if (host.rank() == 0) NCCL_CHECK(ncclGetUniqueId(&id));
    host.broadcast(&id, static_cast<int64_t>(sizeof(id)), CommType::Byte, 0);
    NCCL_CHECK(ncclCommInitRank(&comm_, host.size(), id, host.rank()));
  }
  ~NcclCommunicator() override {
    if (!comm_) return;
    cudaStreamSynchronize(stream_);
    const ncclResult_t rc = ncclCommDestroy(comm_);
    if (rc != ncclSuccess) std::fprintf(stderr, "jebm: ncclCommDestroy failed: %s\n", ncclGetErrorString(rc));
  }

  int rank() const override { return host_.rank(); }
  int size() const override { return host_.size(); }
  const char* backend() const override { return "nccl"; }
  bool device_buffers() const override { return true; }

  void allreduce(void* buf, int64_t n, CommType type, CommReduce op) override {
    JEBM_CHECK(type != CommType::Byte, "NCCL allreduce: bytes cannot be summed or maxed");
    NCCL_CHECK(ncclAllReduce(buf, buf, count(n), nccl_type(type), op == CommReduce::Sum ? ncclSum : ncclMax, comm_,
                             stream_));
  }
  void allgather(const void* send, int64_t n, void* recv, CommType type) override {
    NCCL_CHECK(ncclAllGather(send, recv, count(n), nccl_type(type), comm_, stream_));
  }
  void allgatherv(const void* send, void* recv, const std::vector<int64_t>& counts, CommType type) override {
    grouped_broadcasts(send, recv, counts, type, "allgatherv");
  }
  void allgatherv_in_place(void* buf, const std::vector<int64_t>& counts, CommType type) override {
    grouped_broadcasts(nullptr, buf, counts, type, "allgatherv_in_place");
  }
  void broadcast(void* buf, int64_t n, CommType type, int root) override {
    JEBM_CHECK(root >= 0 && root < size(), "NCCL broadcast: root " << root << " of " << size() << " ranks");
    NCCL_CHECK(ncclBroadcast(buf, buf, count(n), nccl_type(type), root, comm_, stream_));
  }
  void alltoallv(const void* send, const std::vector<int64_t>& send_counts, void* recv,
                 const std::vector<int64_t>& recv_counts, CommType type) override {
    check_counts(send_counts, "alltoallv send");
    check_counts(recv_counts, "alltoallv recv");
    const size_t esize = comm_type_size(type);
    const char* in = static_cast<const char*>(send);
    char* out = static_cast<char*>(recv);
    NCCL_CHECK(ncclGroupStart());
    size_t s_at = 0, r_at = 0;
    for (int r = 0; r < size(); ++r) {
      const size_t sc = count(send_counts[static_cast<size_t>(r)]), rc = count(recv_counts[static_cast<size_t>(r)]);
      if (sc) NCCL_CHECK(ncclSend(in + s_at * esize, sc, nccl_type(type), r, comm_, stream_));
      if (rc) NCCL_CHECK(ncclRecv(out + r_at * esize, rc, nccl_type(type), r, comm_, stream_));
      s_at += sc;
      r_at += rc;
    }
    NCCL_CHECK(ncclGroupEnd());
  }
  void barrier() override {
    CUDA_CHECK(cudaStreamSynchronize(stream_));
    host_.barrier();
  }
  [[noreturn]] void abort(int exit_code) override {
    if (comm_) ncclCommAbort(comm_);
    comm_ = nullptr;
    host_.abort(exit_code);
    std::_Exit(exit_code);  // not reached: [[noreturn]] does not follow a virtual call
  }

 private:
  // Rank r broadcasts its counts[r] elements (from send; from their place in recv when send is null: in place,
  // which ncclBroadcast does when its two buffers are the same) to their place in recv on every rank.
  void grouped_broadcasts(const void* send, void* recv, const std::vector<int64_t>& counts, CommType type,
                          const char* op) {
    check_counts(counts, op);
    const size_t esize = comm_type_size(type);
    char* out = static_cast<char*>(recv);
    NCCL_CHECK(ncclGroupStart());
    size_t at = 0;
    for (int r = 0; r < size(); ++r) {
      const size_t c = count(counts[static_cast<size_t>(r)]);
      char* place = out + at * esize;
      NCCL_CHECK(ncclBroadcast(send ? send : place, place, c, nccl_type(type), r, comm_, stream_));
      at += c;
    }
    NCCL_CHECK(ncclGroupEnd());
  }
  static size_t count(int64_t n) {
    JEBM_CHECK(n >= 0, "NCCL: count " << n);
    return static_cast<size_t>(n);
  }
  void check_counts(const std::vector<int64_t>& c, const char* op) const {
    JEBM_CHECK(static_cast<int>(c.size()) == size(), "NCCL " << op << ": " << c.size() << " counts for " << size()
                                                             << " ranks");
  }

  Communicator& host_;
  int device_ = 0;
  cudaStream_t stream_ = nullptr;
  ncclComm_t comm_ = nullptr;
};

}  // namespace

bool comm_nccl_built() { return true; }

std::unique_ptr<Communicator> make_nccl_communicator(Communicator& host, int device) {
  return std::make_unique<NcclCommunicator>(host, device);
}

}  // namespace jebm
