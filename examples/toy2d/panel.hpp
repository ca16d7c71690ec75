// The toy example's pictures: one PNG panel per checkpoint (data density, then each algorithm's learned density
// exp(-U)/Z and its walkers), written with libpng and replaced atomically (jebm's runtime/file_io.hpp).
// Built and run by the out-of-tree test tests/install (toy2d_out_of_tree).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace toy2d {

// A density on a g x g grid of cell centres over [lo, hi]^2, row-major with y growing with the row index.
struct DensityTile {
  std::vector<double> p;  // g * g values (any scale: the panel maps them with one shared scale)
  int64_t g = 0;
};

// Walker positions (x, y pairs) and their normalised weights (empty: equal weights).
struct WalkerTile {
  std::vector<double> xy;
  std::vector<double> w;
};

struct PanelColumn {
  std::string title;  // not drawn; kept for the caller's legend
  DensityTile density;
  WalkerTile walkers;
};

// One row of tiles: the data density, then per column its density and its walkers, each tile `tile` pixels
// square over [lo, hi]^2. Densities share the data tile's peak as full scale (square-root ramp, so that a mode
// of an eighth of the peak still shows); walkers are dark dots whose shade follows their weight.
void write_panel(const std::string& path, const DensityTile& data, const std::vector<PanelColumn>& columns,
                 double lo, double hi, int64_t tile);

}  // namespace toy2d
