// write_gmm_plot (gmm_plot.hpp): gmm.svg's three panels from a run's logged records. Tested by tests/test_gmm.cpp.
#include "experiments/gmm_plot.hpp"

#include <cmath>
#include <filesystem>
#include <iomanip>
#include <sstream>
#include <vector>

#include "experiments/output.hpp"

namespace jebm {

namespace {

const char* const kColors[] = {"#1f77b4", "#d62728", "#2ca02c"};  // by Algorithm

std::string weight_text(double w) {
  std::ostringstream os;
  os << std::setprecision(4) << w;
  return os.str();
}

// The Jarzynski estimates minus the exact CE: corrected, raw and held-out (those that have values).
void add_estimate_gaps(const GmmOutcome& o, SvgPanel& pg) {
  SvgSeries gap{"corrected", {}, {}, "#1f77b4", false}, raw{"raw (uncorrected)", {}, {}, "#9467bd", true};
  SvgSeries held{"held-out", {}, {}, "#ff7f0e", false};
  for (const auto& r : o.records) {
    const double it = static_cast<double>(r.iteration);
    gap.x.push_back(it);
    gap.y.push_back(r.jarzynski_ce - r.exact_ce);
    raw.x.push_back(it);
    raw.y.push_back(r.jarzynski_ce_raw - r.exact_ce);
    if (std::isnan(r.holdout_ce)) continue;
    held.x.push_back(it);
    held.y.push_back(r.holdout_ce - r.exact_ce);
  }
  for (SvgSeries* sr : {&gap, &raw, &held})
    if (!sr->x.empty() && !std::isnan(sr->y.back())) pg.series.push_back(*sr);
}

}  // namespace

void write_gmm_plot(const std::string& dir, const GmmRun& run) {
  const double teacher_w0 = gmm_mode_weights(run.teacher())[0], ce_teacher = run.teacher_ce();
  SvgPanel pw{"weight of mode 1 (teacher: " + weight_text(teacher_w0) + ")", "iteration", "weight", {}};
  SvgPanel pc{"cross-entropy: exact (solid), Jarzynski estimate (dashed)", "iteration", "CE (nats)", {}};
  SvgPanel pg{"Jarzynski CE estimates minus the exact CE", "iteration", "nats", {}};
  for (const auto& o : run.outcomes()) {
    const char* color = kColors[static_cast<int>(o.algo)];
    SvgSeries w{algorithm_name(o.algo), {}, {}, color, false};
    SvgSeries ce{std::string(algorithm_name(o.algo)) + " exact", {}, {}, color, false};
    SvgSeries est{"jarzynski estimate", {}, {}, color, true};
    for (const auto& r : o.records) {
      w.x.push_back(static_cast<double>(r.iteration));
      w.y.push_back(r.weights[0]);
      ce.x.push_back(static_cast<double>(r.iteration));
      ce.y.push_back(r.exact_ce);
      est.x.push_back(static_cast<double>(r.iteration));
      est.y.push_back(r.jarzynski_ce);
    }
    pw.series.push_back(w);
    pc.series.push_back(ce);
    if (o.algo != Algorithm::Jarzynski) continue;
    pc.series.push_back(est);
    add_estimate_gaps(o, pg);
  }
  const double last = static_cast<double>(run.command_line().config.iterations);
  pw.series.push_back({"teacher", {0.0, last}, {teacher_w0, teacher_w0}, "#555555", true});
  pc.series.push_back({"teacher CE", {0.0, last}, {ce_teacher, ce_teacher}, "#555555", true});
  std::vector<SvgPanel> panels = {pw, pc};
  if (!pg.series.empty()) {
    pg.series.push_back({"zero", {0.0, last}, {0.0, 0.0}, "#555555", true});
    panels.push_back(pg);
  }
  write_svg_plot(std::filesystem::path(dir) / "gmm.svg", panels);
}

}  // namespace jebm
