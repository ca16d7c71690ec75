// The image runs' pictures: PNG grids of walkers and metrics.svg drawn from metrics.csv (the CE / log Z estimate
// and the data energy, the ESS, the per-class weights or the Frechet distance when present).
// Tested by tests/test_image_ebm.cpp (the files and the SVG's series).
#pragma once
#include <cstdint>
#include <filesystem>
#include <string>

#include "runtime/tensor.hpp"

namespace jebm {

// The first `count` rows of x [N, C, H, W] as a near-square PNG grid.
void write_grid(const std::filesystem::path& path, const Tensor& x, int64_t count);
// DIR/metrics.svg from DIR/metrics.csv (read back from disk, so a resumed run plots its whole history); `algo`
// names the algorithm in the titles. Nothing is written when the CSV has no rows.
void write_metrics_plot(const std::filesystem::path& out, const std::string& algo);

}  // namespace jebm
