// The image runs' summary (see image_ebm_summary.hpp). Tested by tests/test_summary.cpp.
#include "experiments/image_ebm_summary.hpp"

#include <cmath>
#include <iomanip>
#include <limits>
#include <sstream>

#include "experiments/metrics.hpp"
#include "experiments/summary_text.hpp"

namespace jebm {

namespace {

std::string fixed4(double v) {
  if (!std::isfinite(v)) return "-";
  std::ostringstream os;
  os << std::fixed << std::setprecision(4) << v;
  return os.str();
}

// "  class weights (Jarzynski-weighted): 2=0.5500 3=0.3300 6=0.1200", its truth, and the verdict.
std::string class_lines(const ImageEbmConfig& c, const ImageEbmProblem& p, const ImageEbmResult& r) {
  const bool have = !r.class_weights.empty(), truth = have && p.class_targets.size() == r.class_weights.size();
  std::string w = "  class weights (" + std::string(c.algo == Algorithm::Jarzynski ? "Jarzynski-weighted" : "unweighted") + "):";
  std::string t = "  truth:";
  for (size_t k = 0; have && k < r.class_weights.size(); ++k) {
    w += " " + p.class_names[k] + "=" + fixed4(r.class_weights[k]);
    if (truth) t += " " + p.class_names[k] + "=" + fixed4(p.class_targets[k]);
  }
  std::string out;
  if (have) out += wrap_text(w) + (truth ? wrap_text(t + " (the data's class proportions)") : "");
  if (!truth) {
    out += wrap_text(std::string("  verdict: - (") + (have ? "no truth to compare with" :
                     "no class weights: give --classifier to compare the walkers' classes with the data's") + ")");
    return out;
  }
  const double tv = total_variation(r.class_weights, p.class_targets);
  return out + wrap_text("  verdict: total variation " + fixed4(tv) + " from the truth (0: the same proportions, "
                         "1: disjoint)");
}

}  // namespace

std::string image_ebm_summary(const ImageEbmConfig& c, const ImageEbmProblem& p, const ImageEbmResult& r,
                              const std::vector<std::string>& files) {
  const bool jarzynski = c.algo == Algorithm::Jarzynski;
  const double nan = std::numeric_limits<double>::quiet_NaN();
  std::string out = "jebm " + c.command + " " + algorithm_name(c.algo) + ": " + std::to_string(r.iterations) +
                    " updates, " + std::to_string(r.epochs_done) + " epochs\n";
  out += wrap_text("  final ESS " + value_or_dash(r.ess, 4) + ", log Z estimate " +
                   value_or_dash(jarzynski ? r.log_z : nan) + ", CE estimate " +
                   // of exp(-U / T) with the tempered kernel (data energy / T)
                   value_or_dash(jarzynski ? r.data_energy * image_ebm_trainer_options(c).ula.energy_coef() + r.log_z
                                           : nan) +
                   (jarzynski ? "" : " (PCD has no weights: no log Z)"));
  out += class_lines(c, p, r);
  if (!r.metrics.empty()) {
    std::string m = std::string("  metrics of the ") + (jarzynski ? "Jarzynski-weighted" : "unweighted") +
                    " walkers at the last update:";
    for (size_t k = 0; k < r.metrics.size() && k < p.metric_names.size(); ++k)
      m += " " + p.metric_names[k] + "=" + value_or_dash(r.metrics[k]);
    out += wrap_text(m);
  }
  out += wrap_text(image_ebm_timing(c, r));
  return out + wrote_line(c.out, files);
}

}  // namespace jebm
