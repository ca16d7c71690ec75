// PCD / CD-k helpers: algorithm names, the CD restart schedule and restarts from data rows.
// Tested by tests/test_samplers.cpp (restart schedule, rows come from the data) and tests/test_gmm.cpp.
#include "samplers/contrastive.hpp"

#include "runtime/ops.hpp"
#include "runtime/philox.hpp"
#include "runtime/user_error.hpp"

namespace jebm {

Algorithm algorithm_from_name(const std::string& name) {
  if (name == "jarzynski") return Algorithm::Jarzynski;
  if (name == "pcd") return Algorithm::Pcd;
  if (name == "cd") return Algorithm::Cd;
  JEBM_USER_FAIL("unknown algorithm '" << name << "' (expected jarzynski, pcd or cd)");
}

const char* algorithm_name(Algorithm a) {
  switch (a) {
    case Algorithm::Jarzynski: return "jarzynski";
    case Algorithm::Pcd: return "pcd";
    case Algorithm::Cd: return "cd";
  }
  return "?";
}

bool cd_should_restart(int64_t iteration, int64_t k) {
  JEBM_CHECK(k >= 1, "CD-k: k = " << k << " must be at least 1");
  return iteration % k == 0;
}

std::vector<int64_t> random_rows(int64_t n, int64_t rows, uint64_t seed, uint64_t offset, uint64_t first) {
  JEBM_CHECK(rows > 0, "random_rows: empty data set");
  std::vector<int64_t> idx(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) {
    double u0, u1;
    philox_uniform2(seed, first + static_cast<uint64_t>(i), offset, &u0, &u1);
    const int64_t r = static_cast<int64_t>(u0 * static_cast<double>(rows));
    idx[static_cast<size_t>(i)] = r < rows ? r : rows - 1;
  }
  return idx;
}

void restart_from_data(WalkerPopulation& pop, const Tensor& data, uint64_t seed, uint64_t offset) {
  JEBM_CHECK(data.dtype() == pop.x.dtype() && data.dim() == pop.x.dim() &&
                 data.numel() / data.size(0) == pop.walker_numel(),
             "restart_from_data: data " << shape_str(data.shape()) << " " << dtype_name(data.dtype())
                                        << " vs walkers " << shape_str(pop.x.shape()) << " "
                                        << dtype_name(pop.x.dtype()));
  JEBM_CHECK(data.device() == pop.x.device(), "restart_from_data: data on " << data.device().str()
                                                                         << ", walkers on " << pop.x.device().str());
  // Rows drawn on the host (indices only), gathered on the walkers' device.
  const std::vector<int64_t> rows =
      random_rows(pop.size(), data.size(0), seed, offset, static_cast<uint64_t>(pop.first_index));
  pop.reset_positions(gather_rows(data, Tensor::from_vector(rows, {pop.size()}, data.device())));
}

}  // namespace jebm
