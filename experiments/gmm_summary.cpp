// print_gmm_summary and print_gmm_wrote (gmm_summary.hpp): what a `jebm gmm` run prints when it ends, in at most
// 100 columns, "-" where a value does not apply. Tested by tests/test_gmm_command.cpp (through the binary).
#include "experiments/gmm_summary.hpp"

#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <iomanip>
#include <sstream>
#include <string>
#include <vector>

namespace jebm {

namespace {

constexpr size_t kWidth = 100;  // the summary's columns at most

std::string join(const std::vector<double>& v, int prec = 4) {
  std::ostringstream os;
  os << std::setprecision(prec);
  for (size_t i = 0; i < v.size(); ++i) os << (i ? "," : "") << v[i];
  return os.str();
}

// The mode weights with 4 decimals each ("0.0036,0.9964"), so that the table's column keeps its width.
std::string weights_text(const std::vector<double>& w) {
  std::string out;
  for (size_t i = 0; i < w.size(); ++i) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%s%.4f", i ? "," : "", w[i]);
    out += buf;
  }
  return out;
}

// printf into a string.
template <typename... Args>
std::string format(const char* fmt, Args... args) {
  char buf[256];
  std::snprintf(buf, sizeof buf, fmt, args...);
  return buf;
}

// A number, or "-" where it does not apply (NaN: PCD's and CD's Jarzynski estimates, held-out ones without
// held-out walkers, the corrections on the autograd path).
std::string cell(double v, const char* fmt = "%.5f") { return std::isnan(v) ? "-" : format(fmt, v); }

// `head` followed by the items separated by ", ", on lines of at most kWidth columns (continuation lines indented
// by two blanks; an item longer than a line stands alone).
std::string wrapped(const std::string& head, const std::vector<std::string>& items) {
  std::string out = head, line = head;
  for (size_t i = 0; i < items.size(); ++i) {
    const std::string piece = items[i] + (i + 1 < items.size() ? "," : "");
    if (line.size() > 2 && line.size() + 1 + piece.size() > kWidth) {
      out += "\n  " + piece;
      line = "  " + piece;
    } else {
      const std::string sep = line.empty() || line.back() == ' ' ? "" : " ";
      out += sep + piece;
      line += sep + piece;
    }
  }
  return out + "\n";
}

void print_setup(std::ostream& os, const GmmRun& run, int ranks) {
  const GmmConfig& c = run.command_line().config;
  std::ostringstream h;
  h << "h = " << c.h;
  os << "\n"
     << wrapped("jebm gmm:", {"d = " + std::to_string(c.dim),
                              std::to_string(run.teacher().k) + " teacher modes (weights " +
                                  join(gmm_mode_weights(run.teacher())) + ")",
                              std::to_string(c.data) + " samples", std::to_string(c.walkers) + " walkers", h.str(),
                              std::to_string(c.iterations) + " iterations",
                              std::string(c.autograd ? "autograd" : "closed-form") + " path",
                              (ranks > 1 ? std::to_string(ranks) + " ranks x " : "") +
                                  std::to_string(omp_get_max_threads()) + " threads"});
  os << "teacher cross-entropy on the samples: " << std::setprecision(6) << run.teacher_ce() << "\n\n";
}

// One row per algorithm. Jarzynski CE is the training walkers' estimate with the drift correction from the lag
// covariance (docs/method.md); the other estimates follow the table.
void print_table(std::ostream& os, const GmmRun& run) {
  const GmmConfig& c = run.command_line().config;
  os << format("%-10s %-14s %-10s %-10s %-11s %-13s %-9s %-7s %s\n", "algorithm", "weights", "max|a-a*|",
               "exact CE", "KL (exact)", "Jarzynski CE", "resampl.", "time s", "ms/it");
  for (const auto& o : run.outcomes()) {
    const GmmRecord& f = o.final_rec;
    double me = 0.0;
    for (double e : f.mean_errors) me = std::max(me, e);
    const std::string resamplings = o.algo == Algorithm::Jarzynski ? std::to_string(f.resamplings) : "-";
    const std::string ms = c.iterations ? format("%.3f", 1e3 * o.seconds / static_cast<double>(c.iterations)) : "-";
    os << format("%-10s %-14s %-10.4f %-10.5f %-11.5f %-13s %-9s %-7.1f %s\n", algorithm_name(o.algo),
                 weights_text(f.weights).c_str(), me, f.exact_ce, f.exact_ce - run.teacher_ce(),
                 cell(f.jarzynski_ce).c_str(), resamplings.c_str(), o.seconds, ms.c_str());
  }
}

// The Jarzynski run's other estimates of the cross-entropy: with the variance correction instead, without either,
// and from the held-out walkers (docs/method.md).
void print_estimates(std::ostream& os, const GmmRun& run) {
  for (const auto& o : run.outcomes()) {
    if (o.algo != Algorithm::Jarzynski) continue;
    const GmmRecord& f = o.final_rec;
    const std::string held = std::isnan(f.holdout_ce) ? "-" : cell(f.holdout_ce) + " +- " + cell(f.holdout_se);
    os << wrapped("Jarzynski CE:", {"corrected " + cell(f.jarzynski_ce), "var-corrected " + cell(f.jarzynski_ce_var),
                                    "raw " + cell(f.jarzynski_ce_raw), "held-out " + held});
  }
}

// The verdict: each algorithm's weight of the teacher's smallest mode next to the teacher's, with the difference.
void print_verdict(std::ostream& os, const GmmRun& run) {
  const std::vector<double> teacher = gmm_mode_weights(run.teacher());
  const size_t small = static_cast<size_t>(std::min_element(teacher.begin(), teacher.end()) - teacher.begin());
  const int64_t student = run.command_line().config.student_modes;
  if (student != run.teacher().k) {
    os << "small mode vs teacher: - (" << student << " student modes for " << run.teacher().k << " teacher modes)\n";
    return;
  }
  std::vector<std::string> items;
  for (const auto& o : run.outcomes()) {
    const double w = o.final_rec.weights[small];
    items.push_back(format("%s %.4f (%+.4f)", algorithm_name(o.algo), w, w - teacher[small]));
  }
  std::ostringstream head;
  head << "small mode" << (teacher.size() > 2 ? " " + std::to_string(small) : std::string()) << " vs teacher "
       << std::setprecision(4) << teacher[small] << ":";
  os << wrapped(head.str(), items);
}

}  // namespace

void print_gmm_summary(std::ostream& os, const GmmRun& run, int ranks) {
  print_setup(os, run, ranks);
  print_table(os, run);
  print_estimates(os, run);
  print_verdict(os, run);
  std::vector<double> teacher_means;
  for (int64_t j = 0; j < run.teacher().k; ++j) teacher_means.push_back(run.teacher().mean(j)[0]);
  os << "teacher means (first coordinate): " << join(teacher_means, 5) << "\n";
  for (const auto& o : run.outcomes())
    os << algorithm_name(o.algo) << " final means (first coordinate): " << join(o.final_first_coords, 5) << "\n";
}

void print_gmm_wrote(std::ostream& os, const GmmRun& run) {
  const std::string& out = run.command_line().out;
  std::vector<std::string> files = {"options.txt"};
  for (const auto& o : run.outcomes()) {
    files.push_back(std::filesystem::path(run.csv_path(o.algo)).filename().string());
    if (run.writes_checkpoints()) files.push_back(std::filesystem::path(run.checkpoint_path(o.algo)).filename().string());
  }
  files.push_back("gmm.svg");
  os << wrapped("wrote " + out + ":", files);
}

}  // namespace jebm
