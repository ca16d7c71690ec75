// What the runs' end-of-run summaries share, so that every summary reads the same way: lines of at most 100
// columns (wrap_text), '-' where a value does not apply (value_or_dash), and the closing "wrote" line that names
// every file the run wrote, checkpoints included (files_written_since, wrote_line). Tested by
// tests/test_summary.cpp (the image runs' summary through the jebm binary, and these helpers).
#pragma once
#include <filesystem>
#include <string>
#include <vector>

namespace jebm {

constexpr size_t kSummaryWidth = 100;

// `text` broken at blanks into lines of at most `width` columns; the lines after the first start with `indent`
// blanks. A word longer than a line stays whole. Ends with a newline.
std::string wrap_text(const std::string& text, size_t width = kSummaryWidth, size_t indent = 4);

// v with `digits` significant digits, or "-" when it is not finite (not applicable or not measured).
std::string value_or_dash(double v, int digits = 5);

// The regular files directly in `dir` modified at or after `since` (what a run that began then wrote), sorted by
// name; the run directory's lock file is left out.
std::vector<std::string> files_written_since(const std::filesystem::path& dir,
                                             std::filesystem::file_time_type since);

// "  wrote DIR/{a, b, c}", wrapped to kSummaryWidth.
std::string wrote_line(const std::filesystem::path& dir, const std::vector<std::string>& files);

}  // namespace jebm
