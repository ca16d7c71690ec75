// Built instead of mpi_communicator.cpp when jebm is configured without MPI (JEBM_MPI=OFF or not found): jebm
// then runs as one process, and being launched by mpirun is an error (runtime/comm/communicator.cpp: world()).
// Tested by tests/test_comm.cpp (comm_mpi_built() decides which cases run).
#include "runtime/check.hpp"
#include "runtime/comm/backends.hpp"

namespace jebm {

bool comm_mpi_built() { return false; }

namespace comm_detail {
std::unique_ptr<Communicator> make_mpi_communicator() {
  JEBM_FAIL("this jebm was built without MPI (configure with -DJEBM_MPI=ON; Debian: libopenmpi-dev openmpi-bin)");
}
}  // namespace comm_detail

}  // namespace jebm
