// Internal to runtime/comm: the factories of the implementations behind runtime/comm/communicator.hpp, each
// defined by its backend's file or, in a build without that backend, by its stub (mpi_stub.cpp, nccl_stub.cpp).
// Tested by tests/test_comm.cpp.
#pragma once
#include <memory>

#include "runtime/comm/communicator.hpp"

namespace jebm::comm_detail {

// MPI_COMM_WORLD; initialises MPI (once per process). Throws in a build without MPI.
std::unique_ptr<Communicator> make_mpi_communicator();

// Seconds a collective may wait for the other ranks before this rank gives up: JEBM_COMM_TIMEOUT_S, else
// kDefaultTimeoutS (PyTorch's NCCL watchdog uses 10 minutes too: long enough for rank 0 to write a checkpoint
// while the others wait at the next collective).
constexpr double kDefaultTimeoutS = 600.0;
double collective_timeout_s();

}  // namespace jebm::comm_detail
