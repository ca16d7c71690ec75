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

// The mode weights with 4 decimals each ("0.0036", "0.9964"), so that the columns keep their width.
std::vector<std::string> weight_cells(const std::vector<double>& w) {
  std::vector<std::string> out;
  for (double x : w) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.4f", x);
    out.push_back(buf);
  }
  return out;
}

std::string comma_joined(const std::vector<std::string>& items) {
  std::string out;
  for (const std::string& x : items) out += (out.empty() ? "" : ",") + x;
  return out;
}

std::string weights_text(const std::vector<double>& w) { return comma_joined(weight_cells(w)); }

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

// `head` followed by the items on lines of at most kWidth columns: each item but the last is followed by `sep` (", "
// or ","), continuation lines start with `indent` blanks. An item too long for a line of its own is broken after
// its commas (a piece without a comma that is still too long stands alone).
std::string wrapped(const std::string& head, const std::vector<std::string>& items, const std::string& sep = ", ",
                    size_t indent = 2) {
  const bool blank = sep.size() > 1;
  std::string out = head, line = head;
  auto put = [&](const std::string& glue, const std::string& piece) {
    if (line.size() > indent && line.size() + glue.size() + piece.size() > kWidth) {
      out += "\n" + std::string(indent, ' ') + piece;
      line = std::string(indent, ' ') + piece;
    } else {
      out += glue + piece;
      line += glue + piece;
    }
  };
  for (size_t i = 0; i < items.size(); ++i) {
    const std::string piece = items[i] + (i + 1 < items.size() ? sep.substr(0, 1) : "");
    std::string glue = (i == 0 ? !line.empty() && line.back() != ' ' : blank) ? " " : "";
    if (indent + piece.size() <= kWidth) {
      put(glue, piece);
      continue;
    }
    for (size_t a = 0; a < piece.size();) {
      const size_t comma = piece.find(',', a);
      const size_t b = comma == std::string::npos ? piece.size() : comma + 1;
      put(glue, piece.substr(a, b - a));
      glue.clear();
      a = b;
    }
  }
  return out + "\n";
}

// The numbers as text with `prec` significant digits.
std::vector<std::string> numbers(const std::vector<double>& v, int prec) {
  std::vector<std::string> out;
  for (double x : v) {
    std::ostringstream os;
    os << std::setprecision(prec) << x;
    out.push_back(os.str());
  }
  return out;
}

void print_setup(std::ostream& os, const GmmRun& run, int ranks) {
  const GmmConfig& c = run.command_line().config;
  std::ostringstream h;
  h << "h = " << c.h;
  os << "\n"
     << wrapped("jebm gmm:", {"d = " + std::to_string(c.dim),
                              std::to_string(run.teacher().k) + " teacher modes (weights " +
                                  comma_joined(numbers(gmm_mode_weights(run.teacher()), 4)) + ")",
                              std::to_string(c.data) + " samples", std::to_string(c.walkers) + " walkers", h.str(),
                              std::to_string(c.iterations) + " iterations",
                              std::string(c.autograd ? "autograd" : "closed-form") + " path",
                              (ranks > 1 ? std::to_string(ranks) + " ranks x " : "") +
                                  std::to_string(omp_get_max_threads()) + " threads"});
  os << "teacher cross-entropy on the samples: " << std::setprecision(6) << run.teacher_ce() << "\n\n";
}

constexpr size_t kWeightsColumn = 14;  // the table's weights column: two modes ("0.2566,0.7434")

// Whether every algorithm's weights fit the table's column; with more modes they get a table of their own.
bool weights_in_table(const GmmRun& run) {
  for (const auto& o : run.outcomes())
    if (weights_text(o.final_rec.weights).size() > kWeightsColumn) return false;
  return true;
}

// One row per algorithm. Jarzynski CE is the training walkers' estimate with the drift correction from the lag
// covariance (docs/method.md); the other estimates follow the table.
void print_table(std::ostream& os, const GmmRun& run) {
  const GmmConfig& c = run.command_line().config;
  const bool weights = weights_in_table(run);
  auto weights_cell = [&](const std::string& text) { return weights ? format("%-14s ", text.c_str()) : ""; };
  os << format("%-10s ", "algorithm") << weights_cell("weights")
     << format("%-10s %-10s %-11s %-13s %-9s %-7s %s\n", "max|a-a*|", "exact CE", "KL (exact)", "Jarzynski CE",
               "resampl.", "time s", "ms/it");
  for (const auto& o : run.outcomes()) {
    const GmmRecord& f = o.final_rec;
    double me = 0.0;
    for (double e : f.mean_errors) me = std::max(me, e);
    const std::string resamplings = o.algo == Algorithm::Jarzynski ? std::to_string(f.resamplings) : "-";
    const std::string ms = c.iterations ? format("%.3f", 1e3 * o.seconds / static_cast<double>(c.iterations)) : "-";
    os << format("%-10s ", algorithm_name(o.algo)) << weights_cell(weights_text(f.weights))
       << format("%-10.4f %-10.5f %-11.5f %-13s %-9s %-7.1f %s\n", me, f.exact_ce, f.exact_ce - run.teacher_ce(),
                 cell(f.jarzynski_ce).c_str(), resamplings.c_str(), o.seconds, ms.c_str());
  }
}

// More than two modes: the weights as a table of their own under the main one, the teacher's first, each row
// wrapped to kWidth.
void print_weights(std::ostream& os, const GmmRun& run) {
  if (weights_in_table(run)) return;
  os << format("%-10s %s\n", "algorithm", "mode weights");
  os << wrapped(format("%-10s ", "teacher"), weight_cells(gmm_mode_weights(run.teacher())), ",", 11);
  for (const auto& o : run.outcomes())
    os << wrapped(format("%-10s ", algorithm_name(o.algo)), weight_cells(o.final_rec.weights), ",", 11);
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
  print_weights(os, run);
  print_estimates(os, run);
  print_verdict(os, run);
  std::vector<double> teacher_means;
  for (int64_t j = 0; j < run.teacher().k; ++j) teacher_means.push_back(run.teacher().mean(j)[0]);
  os << wrapped("teacher means (first coordinate):", numbers(teacher_means, 5), ",");
  for (const auto& o : run.outcomes())
    os << wrapped(std::string(algorithm_name(o.algo)) + " final means (first coordinate):",
                  numbers(o.final_first_coords, 5), ",");
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
