// median_ms (see timing.hpp).
#include "experiments/bench/timing.hpp"

#include <algorithm>
#include <chrono>
#include <vector>

#include "runtime/check.hpp"
#include "runtime/cuda_api.hpp"

namespace jebm {

double median_ms(const std::function<void()>& f, int repeat) {
  JEBM_CHECK(repeat >= 1, "median_ms: repeat " << repeat << " must be >= 1");
  static const bool gpu = cuda_api::available();
  const auto sync = [] {
    if (gpu) cuda_api::synchronize();
  };
  f();
  sync();
  std::vector<double> t;
  for (int r = 0; r < repeat; ++r) {
    const auto start = std::chrono::steady_clock::now();
    f();
    sync();
    t.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count());
  }
  std::sort(t.begin(), t.end());
  return t[t.size() / 2];
}

}  // namespace jebm
