// run_torch_reference, torch_workload (see torch_compare.hpp).
#include "experiments/bench/torch_compare.hpp"

#include <sys/wait.h>

#include <cstdio>
#include <cstdlib>
#include <sstream>
#include <string>

#include "runtime/check.hpp"

namespace jebm {

namespace {

// Single-quoted for /bin/sh: the only character to escape is the quote itself.
std::string shell_quote(const std::string& s) {
  std::string q = "'";
  for (char c : s) q += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return q + "'";
}

// The value after `"key": ` in one JSON line of the script (a string or a number), or "" when absent.
std::string json_field(const std::string& line, const std::string& key) {
  const std::string tag = "\"" + key + "\": ";
  const size_t at = line.find(tag);
  if (at == std::string::npos) return "";
  const size_t v = at + tag.size();
  if (v < line.size() && line[v] == '"') {
    const size_t end = line.find('"', v + 1);
    return end == std::string::npos ? "" : line.substr(v + 1, end - v - 1);
  }
  const size_t end = line.find_first_of(",}", v);
  return line.substr(v, end == std::string::npos ? std::string::npos : end - v);
}

}  // namespace

std::map<std::string, double> run_torch_reference(const TorchCompareArgs& a) {
  std::ostringstream cmd;
  cmd << shell_quote(a.python) << " " << shell_quote(a.script) << " --device " << shell_quote(a.device)
      << " --repeat " << a.repeat << " --threads " << a.threads << " --batch " << a.batch << " --moves " << a.moves
      << " --net " << shell_quote(a.net);
  if (!a.only.empty()) cmd << " --only " << shell_quote(a.only);
  cmd << " 2>&1";
  FILE* pipe = popen(cmd.str().c_str(), "r");
  JEBM_CHECK(pipe, "--compare: cannot start " << cmd.str());
  std::map<std::string, double> ms;
  std::string line, last;
  char buf[4096];
  while (std::fgets(buf, sizeof buf, pipe)) {
    line += buf;
    if (line.empty() || line.back() != '\n') continue;
    line.pop_back();
    const std::string workload = json_field(line, "workload"), median = json_field(line, "median_ms");
    if (!workload.empty() && !median.empty()) ms[workload] = std::strtod(median.c_str(), nullptr);
    if (!line.empty()) last = line;
    line.clear();
  }
  const int status = pclose(pipe);
  const int code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  JEBM_CHECK(code == 0, "--compare: `" << a.python << " " << a.script << "` failed (exit status " << code
                                            << "): " << last << " (install PyTorch for --python, or name another "
                                            << "interpreter with --python)");
  return ms;
}

std::string torch_workload(const std::string& section, const std::string& name) {
  if (section == "gmm") {
    for (const char* k : {"fused step", "full iteration"})
      if (name.rfind(k, 0) == 0) return "gmm/" + std::string(k);
    return "";
  }
  const std::string first = name.substr(0, name.find(' '));
  if (section == "ula_cnn" && name.find("Trainer::step") != std::string::npos) return "ula_cnn/" + first + " iteration";
  if (section == "ula_cnn" || section == "energy_cnn") return section + "/" + name.substr(0, name.find(" @"));
  return "";
}

}  // namespace jebm
