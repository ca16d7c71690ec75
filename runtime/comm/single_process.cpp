// The single-process Communicator: rank 0 of 1, every collective a copy (or nothing). What jebm uses when it was
// not launched by an MPI launcher, so the scale-out code paths run unchanged in one process.
// Tested by tests/test_comm.cpp (every collective at np 1) and tests/test_distributed.cpp.
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "runtime/check.hpp"
#include "runtime/comm/communicator.hpp"

namespace jebm {
namespace {

class SingleProcessCommunicator final : public Communicator {
 public:
  int rank() const override { return 0; }
  int size() const override { return 1; }
  const char* backend() const override { return "single"; }

  void allreduce(void*, int64_t n, CommType, CommReduce) override { check_count("allreduce", n); }
  void allgather(const void* send, int64_t n, void* recv, CommType type) override {
    check_count("allgather", n);
    copy(recv, send, n, type);
  }
  void allgatherv(const void* send, void* recv, const std::vector<int64_t>& counts, CommType type) override {
    check_counts("allgatherv", counts);
    copy(recv, send, counts[0], type);
  }
  void allgatherv_in_place(void*, const std::vector<int64_t>& counts, CommType) override {
    check_counts("allgatherv_in_place", counts);
  }
  void broadcast(void*, int64_t n, CommType, int root) override {
    check_count("broadcast", n);
    JEBM_CHECK(root == 0, "broadcast: root " << root << " in a single-process job");
  }
  void alltoallv(const void* send, const std::vector<int64_t>& send_counts, void* recv,
                 const std::vector<int64_t>& recv_counts, CommType type) override {
    check_counts("alltoallv send", send_counts);
    check_counts("alltoallv recv", recv_counts);
    JEBM_CHECK(send_counts[0] == recv_counts[0], "alltoallv: sends " << send_counts[0] << " to itself but expects "
                                                                     << recv_counts[0]);
    copy(recv, send, send_counts[0], type);
  }
  void barrier() override {}
  [[noreturn]] void abort(int exit_code) override {
    std::fflush(nullptr);
    std::_Exit(exit_code);
  }

 private:
  static void check_count(const char* op, int64_t n) { JEBM_CHECK(n >= 0, op << ": count " << n); }
  static void check_counts(const char* op, const std::vector<int64_t>& c) {
    JEBM_CHECK(c.size() == 1 && c[0] >= 0, op << ": " << c.size() << " counts for 1 rank");
  }
  static void copy(void* dst, const void* src, int64_t n, CommType type) {
    if (n > 0 && dst != src) std::memcpy(dst, src, static_cast<size_t>(n) * comm_type_size(type));
  }
};

}  // namespace

std::unique_ptr<Communicator> make_single_process_communicator() {
  return std::make_unique<SingleProcessCommunicator>();
}

}  // namespace jebm
