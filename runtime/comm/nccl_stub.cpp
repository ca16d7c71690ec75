// Built instead of nccl_communicator.cpp when jebm has no CUDA backend or NCCL was not found at configure time.
// Tested by tests/test_comm.cpp (the NCCL case reports "skipped" with this reason).
#include "runtime/check.hpp"
#include "runtime/comm/communicator.hpp"

namespace jebm {

bool comm_nccl_built() { return false; }

std::unique_ptr<Communicator> make_nccl_communicator(Communicator&, int) {
  JEBM_FAIL("this jebm was built without NCCL (it needs the CUDA backend and nccl.h/libnccl at configure time)");
}

}  // namespace jebm
