// The paper's baselines: PCD (persistent unweighted walkers) and CD-k (walkers restarted from data every
// k parameter updates), and the algorithm names shared by `jebm gmm` and the Trainer. Their moves are the fused
// kernel with UlaConfig::weighted = false. Tested by tests/test_samplers.cpp and tests/test_gmm.cpp.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "samplers/walkers.hpp"

namespace jebm {

enum class Algorithm { Jarzynski, Pcd, Cd };
Algorithm algorithm_from_name(const std::string& name);  // "jarzynski" | "pcd" | "cd"
const char* algorithm_name(Algorithm a);

// CD-k: restart before update `iteration` (0-based) when iteration % k == 0 (k >= 1).
bool cd_should_restart(int64_t iteration, int64_t k);

// n row indices into a data set of `rows` rows, uniform with replacement, from Philox (seed, stream = first + i,
// offset): first is the global index of the first walker (WalkerPopulation::first_index of a rank's shard).
std::vector<int64_t> random_rows(int64_t n, int64_t rows, uint64_t seed, uint64_t offset, uint64_t first = 0);

// Restarts every walker at a data row (rows drawn as above): positions replaced, A = 0, nothing pending. Any
// device (data on the walkers' device).
void restart_from_data(WalkerPopulation& pop, const Tensor& data, uint64_t seed, uint64_t offset);

}  // namespace jebm
