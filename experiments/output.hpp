// What every experiment writes: the run directory (--out DIR: refuses to overwrite a previous run unless
// --force or --resume; resolved options in DIR/options.txt), CSV metrics (header once, flushed each row) and
// SVG line plots (no external libraries).
// Tested by tests/test_gmm.cpp (a short run's files, the overwrite refusal) (the SVG is checked for its series).
#pragma once
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <boost/program_options/variables_map.hpp>

#include "experiments/progress.hpp"  // Progress lived here; its users still include this header

namespace jebm {

// Prepares `dir` for a run. A directory holding options.txt is a previous run: an error unless force (files
// are overwritten) or resume (kept; the caller appends). Creates the directory as needed.
void prepare_run_dir(const std::filesystem::path& dir, bool force, bool resume);
// Writes "key = value" lines (the resolved options, in order) to dir/options.txt.
void write_options(const std::filesystem::path& dir, const std::vector<std::pair<std::string, std::string>>& kv);
// A scalar option's value as options.txt holds it (doubles to 17 digits, so a resume reads back the same value);
// nullopt for other types.
std::optional<std::string> option_value_string(const boost::program_options::variable_value& v);

class CsvWriter {
 public:
  CsvWriter() = default;
  // append: keep existing rows (resume) and write the header only if the file is empty.
  CsvWriter(const std::filesystem::path& path, const std::vector<std::string>& columns, bool append = false);
  bool is_open() const { return os_.is_open(); }
  // One row; the count must match the header. Flushed at once, so a killed run keeps its rows.
  void row(const std::vector<double>& values);
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
  std::ofstream os_;
  size_t columns_ = 0;
};

struct SvgSeries {
  std::string name;
  std::vector<double> x, y;
  std::string color;  // empty: picked from a palette
  bool dashed = false;
};
struct SvgPanel {
  std::string title, x_label, y_label;
  std::vector<SvgSeries> series;
};
// One SVG with the panels side by side: axes with ticks, a legend per panel.
void write_svg_plot(const std::filesystem::path& path, const std::vector<SvgPanel>& panels, int panel_width = 520,
                    int panel_height = 380);

}  // namespace jebm
