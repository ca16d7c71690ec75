// write_grid and write_metrics_plot (see image_ebm_plot.hpp). Tested by tests/test_image_ebm.cpp.
#include "experiments/image_ebm_plot.hpp"

#include <algorithm>
#include <cmath>
#include <fstream>
#include <sstream>
#include <vector>

#include "experiments/output.hpp"
#include "experiments/png.hpp"

namespace jebm {

namespace fs = std::filesystem;

void write_grid(const fs::path& path, const Tensor& x, int64_t count) {
  const int64_t n = std::min(count, x.size(0));
  const int64_t cols = std::max<int64_t>(1, static_cast<int64_t>(std::ceil(std::sqrt(static_cast<double>(n)))));
  write_image_grid(path.string(), x.rows(0, n), cols);
}

void write_metrics_plot(const fs::path& out, const std::string& algo) {
  std::ifstream in(out / "metrics.csv");
  std::string line;
  if (!std::getline(in, line)) return;
  std::vector<std::string> cols;
  {
    std::stringstream ss(line);
    std::string c;
    while (std::getline(ss, c, ',')) cols.push_back(c);
  }
  std::vector<std::vector<double>> data(cols.size());
  while (std::getline(in, line)) {
    std::stringstream ss(line);
    std::string c;
    for (size_t k = 0; k < cols.size() && std::getline(ss, c, ','); ++k) data[k].push_back(std::strtod(c.c_str(), nullptr));
  }
  const auto col = [&](const std::string& name) -> const std::vector<double>* {
    for (size_t k = 0; k < cols.size(); ++k)
      if (cols[k] == name) return &data[k];
    return nullptr;
  };
  const std::vector<double>* it = col("iteration");
  if (!it || it->empty()) return;
  // Drops the rows where y is NaN (metrics computed only every few updates).
  const auto series = [&](const std::string& name, const std::vector<double>& y, bool dashed = false) {
    SvgSeries s;
    s.name = name;
    s.dashed = dashed;
    for (size_t i = 0; i < y.size() && i < it->size(); ++i)
      if (std::isfinite(y[i])) {
        s.x.push_back((*it)[i]);
        s.y.push_back(y[i]);
      }
    return s;
  };
  std::vector<SvgPanel> panels;
  SvgPanel energy{"energies (" + algo + ")", "parameter update", "nats", {}};
  if (const auto* d = col("data_energy")) energy.series.push_back(series("mean U(data)", *d));
  if (const auto* ce = col("ce_estimate"); ce && algo == "jarzynski")
    energy.series.push_back(series("CE estimate (up to log Z_0)", *ce, true));
  // The log Z diagnostics of --holdout-walkers and --correction-groups, when the run has them.
  if (const auto* h = col("holdout_ce_estimate"))
    energy.series.push_back(series("CE estimate, held-out walkers", *h, true));
  if (const auto* k = col("ce_corrected"))
    energy.series.push_back(series("CE estimate, corrected", *k, true));
  panels.push_back(energy);
  SvgPanel ess{"effective sample size", "parameter update", "ESS", {}};
  if (const auto* e = col("ess")) ess.series.push_back(series("ESS (all walkers)", *e));
  if (const auto* b = col("batch_ess")) ess.series.push_back(series("ESS (moved batch)", *b, true));
  if (const auto* h = col("holdout_ess")) ess.series.push_back(series("ESS (held-out walkers)", *h, true));
  panels.push_back(ess);
  SvgPanel classes{"walkers per predicted class (" + std::string(algo == "jarzynski" ? "weighted" : "unweighted") + ")",
                   "parameter update", "fraction", {}};
  for (size_t k = 0; k < cols.size(); ++k)
    if (cols[k].rfind("weight_", 0) == 0 || cols[k].rfind("class_", 0) == 0)
      classes.series.push_back(series(cols[k], data[k]));
  if (!classes.series.empty()) panels.push_back(classes);
  if (const auto* f = col("frechet_clf"))
    panels.push_back(SvgPanel{"Frechet distance on jebm's classifier (not FID)", "parameter update", "distance",
                              {series("walkers vs test images", *f)}});
  write_svg_plot(out / "metrics.svg", panels);
}

}  // namespace jebm
