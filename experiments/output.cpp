// Run directories, CSV metrics and SVG line plots shared by the experiments. Every
// file goes through runtime/file_io (checked writes; atomic replacement). Tested by tests/test_gmm.cpp and
// tests/test_run_files.cpp.
#include "experiments/output.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <iomanip>
#include <iostream>
#include <limits>
#include <sstream>

#include "experiments/version.hpp"
#include "runtime/check.hpp"
#include "runtime/comm/communicator.hpp"
#include "runtime/file_io.hpp"
#include "runtime/user_error.hpp"

namespace jebm {

namespace fs = std::filesystem;

namespace {
// The symbolic links directly in `dir` (none are jebm's: it writes only plain files there).
std::vector<fs::path> links_in(const fs::path& dir, const std::string& option) {
  std::vector<fs::path> links;
  std::error_code ec;
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec))
    if (it->is_symlink(ec)) links.push_back(it->path());
  JEBM_USER_CHECK(!ec, option << ": cannot list the directory: " << ec.message());
  return links;
}

// --force: the link goes (unlink never follows it), with a note saying so.
void remove_link(const fs::path& link, const std::string& option) {
  std::error_code ec;
  JEBM_USER_CHECK(fs::remove(link, ec) && !ec, option << ": cannot remove the symbolic link " << link.filename().string()
                                                 << ": " << ec.message());
  std::cerr << "jebm: note: --force: removed the symbolic link " << link.string() << " (its target is untouched)\n";
}
}  // namespace

RunDirLock prepare_run_dir(const fs::path& dir, bool force, bool resume) {
  JEBM_USER_CHECK(!dir.empty(), "--out: empty directory name");
  const std::string option = (resume ? "--resume " : "--out ") + dir.string();
  std::error_code ec;
  if (fs::exists(fs::symlink_status(dir, ec))) {
    JEBM_USER_CHECK(fs::is_directory(dir), option << ": exists and is not a directory");
  } else {
    fs::create_directories(dir, ec);
    JEBM_USER_CHECK(!ec, option << ": cannot create the directory: " << ec.message());
  }
  // A link where jebm writes would send its bytes to the link's target: refused, or removed (never followed)
  // with --force. The file writers never follow one either (runtime/file_io), so a link planted later fails.
  const std::vector<fs::path> links = links_in(dir, option);
  if (!links.empty() && !force) {
    const fs::path target = fs::read_symlink(links.front(), ec);
    JEBM_USER_FAIL(option << ": " << links.front().filename().string() << " is a symbolic link (to " << target.string()
                     << "), and jebm never writes through one: remove it, or pass --force to have jebm remove the "
                     << "link (its target is left alone)");
  }
  const fs::path lock_path = dir / kRunLockName;
  if (force && fs::is_symlink(fs::symlink_status(lock_path, ec))) remove_link(lock_path, option);
  RunDirLock lock = RunDirLock::acquire(dir.string(), option);
  // Any file is someone's: a run whose options.txt was lost still has its checkpoint and metrics.
  std::string first;
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec))
    if (it->path().filename() != kRunLockName) {
      first = it->path().filename().string();
      break;
    }
  if (ec || !(first.empty() || force || resume)) {
    lock.release(/*keep_file=*/!lock.created_file());
    JEBM_USER_CHECK(!ec, option << ": cannot list the directory: " << ec.message());
    JEBM_USER_FAIL(option << " is not empty (it holds " << first << (fs::exists(dir / "options.txt") ? ", a previous run" : "")
                     << "); pass --force to overwrite it or --resume to continue a run there");
  }
  for (const fs::path& l : links)
    if (l.filename() != kRunLockName) remove_link(l, option);
  if (!lock.stale_owner().empty())
    std::cerr << "jebm: note: " << option << ": the run that locked it (" << lock.stale_owner()
              << ") is gone; its lock is taken over\n";
  lock.claim();
  return lock;
}

std::optional<std::string> option_value_string(const boost::program_options::variable_value& v) {
  const auto& a = v.value();
  std::ostringstream os;
  if (a.type() == typeid(std::string)) os << v.as<std::string>();
  else if (a.type() == typeid(int64_t)) os << v.as<int64_t>();
  else if (a.type() == typeid(int)) os << v.as<int>();
  else if (a.type() == typeid(uint64_t)) os << v.as<uint64_t>();
  else if (a.type() == typeid(double)) os << std::setprecision(17) << v.as<double>();
  else if (a.type() == typeid(bool)) os << (v.as<bool>() ? "true" : "false");
  else return std::nullopt;
  return os.str();
}

void write_options(const fs::path& dir, const std::vector<std::pair<std::string, std::string>>& kv, bool resume) {
  const fs::path path = dir / "options.txt";
  std::string text = "# What made this run (comments: --config and --resume skip them).\n";
  std::error_code ec;
  if (resume && fs::is_regular_file(path, ec)) {
    // The run's own provenance stays; each resume adds a line.
    const std::string old = read_file(path.string());
    for (size_t pos = 0; pos < old.size();) {
      const size_t end = std::min(old.find('\n', pos), old.size());
      const std::string line = old.substr(pos, end - pos);
      pos = end + 1;
      if (line.rfind("# jebm.", 0) == 0) text += line + "\n";
    }
    text += "# jebm.resumed = " + utc_now_iso8601() + " " + command_line() + "\n";
  } else {
    for (const auto& [k, v] : run_provenance(world().size())) text += "# " + k + " = " + v + "\n";
  }
  // A key with a '.' (resolved.iterations) reports a value, it is not an option: a comment too.
  for (const auto& [k, v] : kv) text += (k.find('.') == std::string::npos ? "" : "# ") + k + " = " + v + "\n";
  write_file_atomic(path.string(), text);
}

std::vector<std::pair<std::string, std::string>> read_options(const fs::path& path) {
  const std::string text = read_file(path.string());
  std::vector<std::pair<std::string, std::string>> kv;
  auto trim = [](const std::string& s) {
    const size_t b = s.find_first_not_of(" \t\r");
    return b == std::string::npos ? std::string() : s.substr(b, s.find_last_not_of(" \t\r") - b + 1);
  };
  size_t line_no = 0;
  for (size_t pos = 0; pos < text.size();) {
    const size_t end = std::min(text.find('\n', pos), text.size());
    const std::string line = trim(text.substr(pos, end - pos));
    pos = end + 1;
    ++line_no;
    if (line.empty() || line[0] == '#') continue;
    const size_t eq = line.find('=');
    JEBM_USER_CHECK(eq != std::string::npos && eq > 0 && !trim(line.substr(0, eq)).empty(),
               path.string() << ":" << line_no << ": expected \"key = value\", found \"" << line.substr(0, 80) << "\"");
    kv.emplace_back(trim(line.substr(0, eq)), trim(line.substr(eq + 1)));
  }
  return kv;
}

namespace {
// The complete lines of a CSV (a last line without its newline was cut by a kill or a full disk: dropped).
std::vector<std::string> csv_lines(const std::string& text) {
  std::vector<std::string> lines;
  for (size_t pos = 0; pos < text.size();) {
    const size_t end = text.find('\n', pos);
    if (end == std::string::npos) break;
    lines.push_back(text.substr(pos, end - pos));
    pos = end + 1;
  }
  return lines;
}
}  // namespace

void truncate_csv_rows(const fs::path& path, double first_column_limit) {
  if (!fs::exists(path)) return;
  const std::vector<std::string> lines = csv_lines(read_file(path.string()));
  // A header cut mid-write is not a header: refuse rather than rewrite the file empty.
  JEBM_USER_CHECK(!lines.empty(), path.string() << ": no complete header line; the file is left as it is");
  std::string keep;
  for (size_t i = 0; i < lines.size(); ++i) {
    if (i > 0) {
      if (lines[i].empty()) continue;
      char* end = nullptr;
      const double first = std::strtod(lines[i].c_str(), &end);
      if (end == lines[i].c_str() || !(first < first_column_limit)) continue;
    }
    keep += lines[i] + "\n";
  }
  write_file_atomic(path.string(), keep);
}

void check_resume_csv(const fs::path& path, const std::vector<std::string>& columns, int64_t checkpoint_iteration,
                      int64_t log_every, const std::string& checkpoint, const std::string& start_afresh) {
  const std::string left = "; the file is left as it is. Put back the whole " + path.filename().string() +
                           ", or start afresh: " + start_afresh;
  std::string header;
  for (size_t i = 0; i < columns.size(); ++i) header += (i ? "," : "") + columns[i];
  if (!fs::exists(fs::symlink_status(path))) {
    JEBM_USER_CHECK(checkpoint_iteration == 0, path.string() << " is missing, but " << checkpoint << " is at iteration "
                                                         << checkpoint_iteration << ": its rows are lost" << left);
    return;
  }
  const std::vector<std::string> lines = csv_lines(read_file(path.string()));
  JEBM_USER_CHECK(!lines.empty(), path.string() << ": no complete header line (the file was cut)" << left);
  JEBM_USER_CHECK(lines[0] == header, path.string() << ": its header \"" << lines[0] << "\" differs from this run's columns \""
                                               << header << "\" (an option that changes the metrics cannot change on "
                                               << "--resume)" << left);
  // The rows the checkpoint covers are those logged before its iteration; the last of them must be there.
  double last = -1;
  for (size_t i = 1; i < lines.size(); ++i) {
    char* end = nullptr;
    const double it = std::strtod(lines[i].c_str(), &end);
    if (end != lines[i].c_str() && it < static_cast<double>(checkpoint_iteration)) last = std::max(last, it);
  }
  const int64_t want = checkpoint_iteration > 0 ? (checkpoint_iteration - 1) / log_every * log_every : -1;
  JEBM_USER_CHECK(last >= static_cast<double>(want),
             path.string() << ": its last row is iteration " << (last < 0 ? std::string("(none)") : std::to_string(static_cast<int64_t>(last)))
                           << ", but " << checkpoint << " is at iteration " << checkpoint_iteration
                           << " (last logged row " << want << " at --log-every " << log_every
                           << "): rows are missing and a resume would lose them for good" << left);
}

void resume_csv(const fs::path& path, const std::vector<std::string>& columns, int64_t checkpoint_iteration,
                int64_t log_every, const std::string& checkpoint, const std::string& start_afresh) {
  check_resume_csv(path, columns, checkpoint_iteration, log_every, checkpoint, start_afresh);
  if (fs::exists(fs::symlink_status(path))) truncate_csv_rows(path, static_cast<double>(checkpoint_iteration));
}

CsvTable read_csv(const fs::path& path) {
  const std::string text = read_file(path.string());
  const std::vector<std::string> lines = csv_lines(text);  // a last row cut mid-write is not among them
  CsvTable t;
  t.path = path.string();
  JEBM_USER_CHECK(!lines.empty(), path.string() << ": no header line");
  std::istringstream hs(lines[0]);
  for (std::string c; std::getline(hs, c, ',');) t.columns.push_back(c);
  for (size_t i = 1; i < lines.size(); ++i) {
    if (lines[i].empty()) continue;
    std::vector<double> row;
    std::istringstream rs(lines[i]);
    for (std::string c; std::getline(rs, c, ',');) {
      char* end = nullptr;
      const double v = std::strtod(c.c_str(), &end);
      JEBM_USER_CHECK(end != c.c_str() && *end == '\0', path.string() << ":" << i + 1 << ": \"" << c << "\" is not a number");
      row.push_back(v);
    }
    JEBM_USER_CHECK(row.size() == t.columns.size(), path.string() << ":" << i + 1 << ": " << row.size() << " values for "
                                                             << t.columns.size() << " columns");
    t.rows.push_back(std::move(row));
  }
  return t;
}

size_t CsvTable::column(const std::string& name) const {
  const auto it = std::find(columns.begin(), columns.end(), name);
  JEBM_USER_CHECK(it != columns.end(), path << ": no column " << name);
  return static_cast<size_t>(it - columns.begin());
}

CsvWriter::CsvWriter(const fs::path& path, const std::vector<std::string>& columns, bool append)
    : path_(path), columns_(columns.size()) {
  std::string header;
  for (size_t i = 0; i < columns.size(); ++i) header += (i ? "," : "") + columns[i];
  if (append && fs::exists(path) && fs::file_size(path) > 0) {
    const std::string text = read_file(path.string());
    const std::vector<std::string> lines = csv_lines(text);
    JEBM_USER_CHECK(!lines.empty() && lines[0] == header,
               path.string() << ": its header \"" << (lines.empty() ? "" : lines[0]) << "\" differs from this run's "
                             << "columns \"" << header << "\" (an option that changes the metrics cannot change "
                             << "on --resume)");
    if (text.back() != '\n') {  // a row cut mid-write: drop it, or the next row would be glued to it
      std::string whole;
      for (const auto& l : lines) whole += l + "\n";
      write_file_atomic(path.string(), whole);
    }
    file_ = AppendFile(path.string(), false);
    return;
  }
  std::error_code ec;
  const bool existed = fs::exists(path, ec);
  file_ = AppendFile(path.string(), true);
  try {
    file_.append(header + "\n");
  } catch (...) {
    // A new file without even its header is worse than no file; only a regular file this writer created goes
    // (never a device such as /dev/full, never someone else's file).
    if (!existed && fs::is_regular_file(path, ec)) fs::remove(path, ec);
    throw;
  }
}

void CsvWriter::row(const std::vector<double>& values) {
  JEBM_CHECK(values.size() == columns_, path_.string() << ": row of " << values.size() << " values for "
                                                       << columns_ << " columns");
  std::ostringstream os;
  os << std::setprecision(10);
  for (size_t i = 0; i < values.size(); ++i) os << (i ? "," : "") << values[i];
  os << "\n";
  file_.append(os.str());  // one write per row: a kill keeps whole rows, a full disk is an error here
}

// --- SVG -------------------------------------------------------------------------------------------------

namespace {

std::string esc(const std::string& s) {
  std::string o;
  for (char c : s) {
    if (c == '<') o += "&lt;";
    else if (c == '>') o += "&gt;";
    else if (c == '&') o += "&amp;";
    else if (c == '"') o += "&quot;";
    else o += c;
  }
  return o;
}

// "Nice" tick positions covering [lo, hi].
std::vector<double> ticks(double lo, double hi, int target = 6) {
  const double span = hi - lo;
  const double raw = span / target;
  const double mag = std::pow(10.0, std::floor(std::log10(raw)));
  double step = mag;
  for (double m : {1.0, 2.0, 2.5, 5.0, 10.0})
    if (m * mag >= raw) {
      step = m * mag;
      break;
    }
  std::vector<double> t;
  for (double v = std::ceil(lo / step) * step; v <= hi + 1e-9 * span; v += step) t.push_back(std::fabs(v) < 1e-12 * step ? 0.0 : v);
  return t;
}

std::string num(double v) {
  std::ostringstream os;
  os << std::setprecision(4) << v;
  return os.str();
}

}  // namespace

void write_svg_plot(const fs::path& path, const std::vector<SvgPanel>& panels, int pw, int ph) {
  static const char* kPalette[] = {"#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2",
                                   "#7f7f7f"};
  const int ml = 70, mr = 20, mt = 34, mb = 50;
  std::ostringstream os;  // rendered whole, then replaces the file atomically
  const int width = pw * static_cast<int>(std::max<size_t>(panels.size(), 1));
  os << "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" << width << "\" height=\"" << ph
     << "\" font-family=\"sans-serif\" font-size=\"12\">\n<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n";
  for (size_t pi = 0; pi < panels.size(); ++pi) {
    const SvgPanel& p = panels[pi];
    const double ox = static_cast<double>(pw) * static_cast<double>(pi);
    double x0 = std::numeric_limits<double>::infinity(), x1 = -x0, y0 = x0, y1 = -x0;
    for (const auto& s : p.series)
      for (size_t i = 0; i < std::min(s.x.size(), s.y.size()); ++i) {
        if (!std::isfinite(s.x[i]) || !std::isfinite(s.y[i])) continue;
        x0 = std::min(x0, s.x[i]); x1 = std::max(x1, s.x[i]);
        y0 = std::min(y0, s.y[i]); y1 = std::max(y1, s.y[i]);
      }
    if (!std::isfinite(x0)) { x0 = 0; x1 = 1; y0 = 0; y1 = 1; }
    if (x1 - x0 < 1e-300) { x0 -= 0.5; x1 += 0.5; }
    if (y1 - y0 < 1e-12 * std::max(1.0, std::fabs(y0))) { y0 -= 0.5; y1 += 0.5; }
    const double pad = 0.05 * (y1 - y0);
    y0 -= pad; y1 += pad;
    const double L = ox + ml, R = ox + pw - mr, T = mt, B = ph - mb;
    auto sx = [&](double v) { return L + (v - x0) / (x1 - x0) * (R - L); };
    auto sy = [&](double v) { return B - (v - y0) / (y1 - y0) * (B - T); };
    os << "<text x=\"" << (L + R) / 2 << "\" y=\"20\" text-anchor=\"middle\" font-size=\"14\">" << esc(p.title) << "</text>\n";
    os << "<rect x=\"" << L << "\" y=\"" << T << "\" width=\"" << R - L << "\" height=\"" << B - T
       << "\" fill=\"none\" stroke=\"black\"/>\n";
    for (double t : ticks(x0, x1))
      os << "<line x1=\"" << sx(t) << "\" y1=\"" << B << "\" x2=\"" << sx(t) << "\" y2=\"" << B + 5
         << "\" stroke=\"black\"/><text x=\"" << sx(t) << "\" y=\"" << B + 18 << "\" text-anchor=\"middle\">" << num(t)
         << "</text>\n";
    for (double t : ticks(y0, y1))
      os << "<line x1=\"" << L - 5 << "\" y1=\"" << sy(t) << "\" x2=\"" << R << "\" y2=\"" << sy(t)
         << "\" stroke=\"#ddd\"/><text x=\"" << L - 8 << "\" y=\"" << sy(t) + 4 << "\" text-anchor=\"end\">" << num(t)
         << "</text>\n";
    os << "<text x=\"" << (L + R) / 2 << "\" y=\"" << ph - 12 << "\" text-anchor=\"middle\">" << esc(p.x_label) << "</text>\n";
    os << "<text transform=\"translate(" << ox + 16 << "," << (T + B) / 2 << ") rotate(-90)\" text-anchor=\"middle\">"
       << esc(p.y_label) << "</text>\n";
    for (size_t si = 0; si < p.series.size(); ++si) {
      const SvgSeries& s = p.series[si];
      const std::string color = s.color.empty() ? kPalette[si % 8] : s.color;
      os << "<polyline class=\"series\" data-name=\"" << esc(s.name) << "\" fill=\"none\" stroke=\"" << color
         << "\" stroke-width=\"1.5\"" << (s.dashed ? " stroke-dasharray=\"6,4\"" : "") << " points=\"";
      for (size_t i = 0; i < std::min(s.x.size(), s.y.size()); ++i)
        if (std::isfinite(s.x[i]) && std::isfinite(s.y[i])) os << sx(s.x[i]) << "," << sy(s.y[i]) << " ";
      os << "\"/>\n";
    }
    // The legend last, on a white box, so no curve hides it.
    if (!p.series.empty())
      os << "<rect x=\"" << R - 156 << "\" y=\"" << T + 4 << "\" width=\"152\" height=\""
         << 16 * p.series.size() + 6 << "\" fill=\"white\" fill-opacity=\"0.85\" stroke=\"#ccc\"/>\n";
    for (size_t si = 0; si < p.series.size(); ++si) {
      const SvgSeries& s = p.series[si];
      const std::string color = s.color.empty() ? kPalette[si % 8] : s.color;
      const double ly = T + 14 + 16 * static_cast<double>(si);
      os << "<line x1=\"" << R - 150 << "\" y1=\"" << ly << "\" x2=\"" << R - 125 << "\" y2=\"" << ly << "\" stroke=\""
         << color << "\" stroke-width=\"2\"" << (s.dashed ? " stroke-dasharray=\"6,4\"" : "") << "/><text x=\""
         << R - 120 << "\" y=\"" << ly + 4 << "\">" << esc(s.name) << "</text>\n";
    }
  }
  os << "</svg>\n";
  write_file_atomic(path.string(), os.str());
}

}  // namespace jebm
