// Command-line helpers shared by the subcommands: comma-separated lists of numbers ("2,3,6", "0.25,0.75").
// Tested by tests/test_image_ebm.cpp (--digits/--counts) and tests/test_classifier_cmd.cpp.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace jebm {

// "0.25,0.75" -> {0.25, 0.75}. Each item is one number (blanks around it allowed), the list is not empty;
// errors name `option`, the text and the bad item.
std::vector<double> parse_double_list(const std::string& text, const std::string& option);
// The int64 twin ("5600,2800,1400"); values outside int64 are errors too.
std::vector<int64_t> parse_int64_list(const std::string& text, const std::string& option);

}  // namespace jebm
