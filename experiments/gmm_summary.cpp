// print_gmm_summary (gmm_summary.hpp): the table a `jebm gmm` run ends with. Tested by tests/test_gmm.cpp.
#include "experiments/gmm_summary.hpp"

#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <iomanip>
#include <sstream>
#include <string>
#include <vector>

namespace jebm {

namespace {

std::string join(const std::vector<double>& v, int prec = 4) {
  std::ostringstream os;
  os << std::setprecision(prec);
  for (size_t i = 0; i < v.size(); ++i) os << (i ? "," : "") << v[i];
  return os.str();
}

// printf into a string.
template <typename... Args>
std::string format(const char* fmt, Args... args) {
  char buf[512];
  std::snprintf(buf, sizeof buf, fmt, args...);
  return buf;
}

void print_setup(std::ostream& os, const GmmRun& run, int ranks) {
  const GmmConfig& c = run.command_line().config;
  os << "\njebm gmm: d = " << c.dim << ", " << run.teacher().k << " teacher modes (weights "
     << join(gmm_mode_weights(run.teacher())) << "), " << c.data << " data, " << c.walkers << " walkers, h = " << c.h
     << ", " << c.iterations << " iterations, " << (c.autograd ? "autograd" : "closed-form") << " path, "
     << (ranks > 1 ? std::to_string(ranks) + " ranks x " : "") << omp_get_max_threads() << " threads\n";
  os << "teacher cross-entropy on the data: " << std::setprecision(6) << run.teacher_ce() << "\n\n";
}

}  // namespace

void print_gmm_summary(std::ostream& os, const GmmRun& run, int ranks) {
  const GmmConfig& c = run.command_line().config;
  print_setup(os, run, ranks);
  // Jarzynski CE: the training walkers' estimate with the drift correction from the lag covariance; var: with
  // the variance correction instead; raw: without either (docs/method.md).
  os << format("%-10s %-22s %-12s %-12s %-11s %-12s %-12s %-12s %-22s %-9s %-8s %-8s\n", "algorithm",
               "final weights", "max|a-a*|", "exact CE", "KL (exact)", "Jarzynski CE", "var-corr.", "raw",
               "held-out CE +- se", "resampl.", "time s", "ms/it");
  for (const auto& o : run.outcomes()) {
    const GmmRecord& f = o.final_rec;
    double me = 0.0;
    for (double e : f.mean_errors) me = std::max(me, e);
    std::string held = "-";
    if (!std::isnan(f.holdout_ce)) held = format("%.5f +- %.5f", f.holdout_ce, f.holdout_se);
    os << format("%-10s %-22s %-12.4f %-12.5f %-11.5f %-12.5f %-12.5f %-12.5f %-22s %-9lld %-8.1f %-8.3f\n",
                 algorithm_name(o.algo), join(f.weights, 4).c_str(), me, f.exact_ce, f.exact_ce - run.teacher_ce(),
                 f.jarzynski_ce, f.jarzynski_ce_var, f.jarzynski_ce_raw, held.c_str(),
                 static_cast<long long>(f.resamplings), o.seconds,
                 c.iterations ? 1e3 * o.seconds / static_cast<double>(c.iterations) : 0.0);
  }
  os << "teacher means (first coordinate): ";
  for (int64_t j = 0; j < run.teacher().k; ++j) os << (j ? ", " : "") << run.teacher().mean(j)[0];
  os << "\n";
  for (const auto& o : run.outcomes())
    os << algorithm_name(o.algo) << " final means (first coordinate): " << join(o.final_first_coords, 5) << "\n";
}

}  // namespace jebm
