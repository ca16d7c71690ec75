// The summaries' shared text (see summary_text.hpp). Tested by tests/test_summary.cpp.
#include "experiments/summary_text.hpp"

#include <algorithm>
#include <cmath>
#include <iomanip>
#include <sstream>

#include "experiments/run_dir_lock.hpp"

namespace jebm {

namespace fs = std::filesystem;

std::string wrap_text(const std::string& text, size_t width, size_t indent) {
  std::istringstream words(text);
  std::string out, line, word;
  while (words >> word) {
    if (!line.empty() && line.size() + 1 + word.size() > width) {
      out += line + "\n";
      line = std::string(indent, ' ');
    }
    // The text's own leading blanks (an indented first line) are kept.
    if (line.empty() && out.empty()) line = text.substr(0, text.find_first_not_of(' '));
    line += (line.empty() || line.back() == ' ' ? "" : " ") + word;
  }
  return out + line + "\n";
}

std::string value_or_dash(double v, int digits) {
  if (!std::isfinite(v)) return "-";
  std::ostringstream os;
  os << std::setprecision(digits) << v;
  return os.str();
}

std::vector<std::string> files_written_since(const fs::path& dir, fs::file_time_type since) {
  std::vector<std::string> names;
  std::error_code ec;
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    const std::string name = it->path().filename().string();
    if (name == kRunLockName || !it->is_regular_file(ec)) continue;
    if (it->last_write_time(ec) >= since) names.push_back(name);
  }
  std::sort(names.begin(), names.end());
  return names;
}

std::string wrote_line(const fs::path& dir, const std::vector<std::string>& files) {
  std::string list;
  for (const auto& f : files) list += (list.empty() ? "" : ", ") + f;
  return wrap_text("  wrote " + (dir / "{").string() + list + "}", kSummaryWidth, 8);
}

}  // namespace jebm
