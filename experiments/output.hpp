// What every experiment writes: the run directory (--out DIR: refuses to overwrite a previous run unless
// --force or --resume; resolved options in DIR/options.txt), CSV metrics (header once, flushed each row) and
// SVG line plots (no external libraries); the progress line is experiments/progress.hpp.
// Every write is checked and names the file on failure; files that replace a previous version (options.txt, SVG,
// a rewritten CSV) are written to a temporary, fsync'ed and renamed, so a full disk or a kill loses nothing.
// Tested by tests/test_gmm.cpp (a short run's files, the overwrite refusal) (the SVG is checked for its series)
// and tests/test_run_files.cpp (full disk, injected write failures, resume truncation, header changes).
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

#include "experiments/progress.hpp"
#include "experiments/run_dir_lock.hpp"  // Progress lived here; its users still include this header
#include "runtime/file_io.hpp"

namespace jebm {

// Prepares `dir` for a run and locks it for this process (the returned lock, to be held until the run ends): a
// directory another live run holds is refused, with or without force, naming that run. A directory holding any
// file (options.txt, a checkpoint, metrics...) is an error unless force (files are overwritten) or resume (kept;
// the caller appends). A symbolic link in it is an error unless force, which removes the link (never its
// target). Creates the directory as needed.
[[nodiscard]] RunDirLock prepare_run_dir(const std::filesystem::path& dir, bool force, bool resume);
// Writes "key = value" lines (the resolved options, in order) to dir/options.txt, atomically: a kill or a full
// disk leaves the previous options.txt whole (resume rewrites it). It opens with what made the run (run_provenance:
// version, commit, command line, date, ranks) as '# key = value' comments, and keys holding a '.' (reported values
// such as resolved.iterations) are comments too, so that `--config options.txt` repeats the run. resume: the
// previous options.txt's provenance is kept and a '# jebm.resumed = DATE COMMAND' line added.
void write_options(const std::filesystem::path& dir, const std::vector<std::pair<std::string, std::string>>& kv,
                   bool resume = false);
// Reads "key = value" lines (blank lines and '#' comments skipped, whitespace trimmed) in file order; any other
// line is an error naming path:line.
std::vector<std::pair<std::string, std::string>> read_options(const std::filesystem::path& path);
// For --resume: keeps the header and the complete rows whose first column (the iteration) is below
// `first_column_limit`, and replaces the file atomically (temporary, fsync, rename): a full disk or a kill
// leaves the old file whole. No file: nothing to do. A file without a complete header line is an error (left as
// it is).
void truncate_csv_rows(const std::filesystem::path& path, double first_column_limit);
// --resume from a checkpoint after `checkpoint_iteration` updates: validates the metrics CSV before touching it
// (its header must be `columns`; its rows must reach the last one logged before the checkpoint, a row every
// `log_every` from 0), then drops the rows the checkpoint does not cover (truncate_csv_rows). A refusal leaves the
// file as it is and names the last row, the checkpoint's iteration and the way out (`start_afresh`). No file is
// fine only at iteration 0.
void resume_csv(const std::filesystem::path& path, const std::vector<std::string>& columns,
                int64_t checkpoint_iteration, int64_t log_every, const std::string& checkpoint,
                const std::string& start_afresh);
// resume_csv's checks alone: reads the file, changes nothing (a run checks every CSV before it rewrites anything).
void check_resume_csv(const std::filesystem::path& path, const std::vector<std::string>& columns,
                      int64_t checkpoint_iteration, int64_t log_every, const std::string& checkpoint,
                      const std::string& start_afresh);
// A metrics CSV as CsvWriter wrote it: the header's columns and every complete row as numbers ("nan", "inf"
// included). For a resumed run that redraws its plots from the rows it kept. Errors name the file and line.
struct CsvTable {
  std::vector<std::string> columns;
  std::vector<std::vector<double>> rows;
  // The index of column `name`; an error naming the file when it has none.
  size_t column(const std::string& name) const;
  std::string path;
};
CsvTable read_csv(const std::filesystem::path& path);

// A scalar option's value as options.txt holds it (doubles to 17 digits, so a resume reads back the same value);
// nullopt for other types.
std::optional<std::string> option_value_string(const boost::program_options::variable_value& v);

class CsvWriter {
 public:
  CsvWriter() = default;
  // append: keep existing rows (resume) and write the header only if the file is empty; an existing header must
  // equal `columns` (else an error naming both), and a last row cut mid-write is dropped first.
  CsvWriter(const std::filesystem::path& path, const std::vector<std::string>& columns, bool append = false);
  bool is_open() const { return file_.is_open(); }
  // One row; the count must match the header. Written with one checked write, so a killed run keeps its rows and
  // a full disk is a jebm::Error naming the file.
  void row(const std::vector<double>& values);
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
  AppendFile file_;
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
