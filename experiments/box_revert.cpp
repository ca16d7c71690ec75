// box_revert (see box_revert.hpp). Tested by tests/test_image_ebm.cpp.
#include "experiments/box_revert.hpp"

#include "runtime/check.hpp"

namespace jebm {

namespace {

template <typename T>
void box_revert_rows(WalkerPopulation& pop, const std::vector<int64_t>& idx) {
  const int64_t n = pop.size(), d = pop.walker_numel();
  T* x = pop.x.data<T>();
  const T* xp = pop.x_prev.data<T>();
  const int64_t rows = idx.empty() ? n : static_cast<int64_t>(idx.size());
#pragma omp parallel for schedule(static)
  for (int64_t r = 0; r < rows; ++r) {
    const int64_t i = idx.empty() ? r : idx[static_cast<size_t>(r)];
    for (int64_t k = i * d; k < (i + 1) * d; ++k)
      if (x[k] < T(-1) || x[k] > T(1)) x[k] = xp[k];
  }
}

}  // namespace

void box_revert(WalkerPopulation& pop, const std::vector<int64_t>& idx) {
  JEBM_CHECK(pop.x.device().is_cpu(), "box_revert: the walkers are on " << pop.x.device().str() << "; --box runs on the CPU only");
  if (pop.x.dtype() == DType::Float32)
    box_revert_rows<float>(pop, idx);
  else
    box_revert_rows<double>(pop, idx);
}

}  // namespace jebm
