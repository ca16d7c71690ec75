// The shared options (see cli_options.hpp). Tested by tests/test_cli_binary.cpp (docs/cli.md against every
// command's --help, the testing options hidden, --threads).
#include "experiments/cli_options.hpp"

#include <omp.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>

namespace jebm {

namespace po = boost::program_options;

namespace shared_option {

void help(po::options_description& d) { d.add_options()("help,h", "this text"); }

void version(po::options_description& d) {
  d.add_options()("version", "print the version, git commit, build type, backends, BLAS kernel set, the number "
                             "of CPUs the process may use and how idle OpenMP threads wait, and exit");
}

void seed(po::options_description& d, uint64_t& seed) {
  d.add_options()("seed", po::value(&seed)->default_value(1),
                  "seed of every random draw: the same seed and options give the same results");
}

void threads(po::options_description& d, int& threads) {
  d.add_options()("threads", po::value(&threads)->default_value(0),
                  "OpenMP threads; 0 = OMP_NUM_THREADS if set, else all cores (in [0, 4096])");
}

void no_progress(po::options_description& d, bool& no_progress) {
  d.add_options()("no-progress", po::bool_switch(&no_progress), "no progress line on stderr");
}

void config(po::options_description& d, std::string& file) {
  d.add_options()("config", po::value(&file),
                  "INI file with any of these options (key = value; a run's options.txt repeats the run); the "
                  "command line wins");
}

void out(po::options_description& d, std::string& dir, const std::string& files) {
  d.add_options()("out", po::value(&dir), ("run directory, refused when it holds files unless --force: " + files).c_str());
}

void force(po::options_description& d, bool& force) {
  d.add_options()("force", po::bool_switch(&force), "overwrite a previous run in --out");
}

void resume(po::options_description& d, std::string& dir, const std::string& may_change) {
  d.add_options()("resume", po::value(&dir),
                  ("continue the run in this directory from its last checkpoint; its options.txt gives every "
                   "option. Only " + may_change + " may be given with other values").c_str());
}

void device(po::options_description& d, std::string& device, const std::string& what) {
  d.add_options()("device", po::value(&device)->default_value(device.empty() ? "cpu" : device),
                  ("cpu | cuda | cuda:N: " + what).c_str());
}

void noise(po::options_description& d, double& sigma, const Range& range, const std::string& more) {
  const std::string r = range.text();
  d.add_options()("noise", po::value(&sigma)->default_value(sigma, short_double(sigma)),
                  ("ULA noise std sigma; 0 = sqrt(2h)" + (more.empty() ? "" : ". " + more) +
                   (r.empty() ? "" : " " + r)).c_str());
}

}  // namespace shared_option

OptionRanges shared_option_ranges() { return {{"seed", any_value()}, {"threads", within(0, 4096)}}; }

void apply_threads(int threads) {
  if (threads > 0) omp_set_num_threads(threads);
  else if (std::getenv("OMP_NUM_THREADS") == nullptr) omp_set_num_threads(omp_get_num_procs());
}

bool parse_option_sources(const std::vector<std::string>& args, const po::options_description& desc,
                          const std::string& command, const std::string& usage, OptionSources& src) {
  auto parse_file = [&](const std::filesystem::path& path, const char* what) {
    std::ifstream f(path);
    JEBM_USER_CHECK(f, what << " " << path.string() << ": cannot read the file");
    try {
      return po::parse_config_file(f, desc);
    } catch (const po::error& e) {
      JEBM_USER_FAIL(what << " " << path.string() << ": " << option_error_text(e, desc) << " (see jebm " << command
                          << " --help)");
    }
  };
  try {
    const auto cmd = po::command_line_parser(args).options(desc).run();
    po::store(cmd, src.vm);
    po::store(cmd, src.given);
    if (src.vm.count("help")) {
      std::cout << usage << "\n" << help_text(desc);
      return false;
    }
    if (src.vm.count("resume")) {
      const std::filesystem::path dir = src.vm["resume"].as<std::string>();
      JEBM_USER_CHECK(std::filesystem::is_regular_file(dir / "options.txt"),
                      "--resume " << dir.string() << ": no options.txt there (not a jebm " << command
                                  << " run directory)");
      const auto parsed = parse_file(dir / "options.txt", "--resume: options");
      po::store(parsed, src.vm);
      po::store(parsed, src.run);
    }
    if (src.vm.count("config")) {
      const auto parsed = parse_file(src.vm["config"].as<std::string>(), "--config");
      po::store(parsed, src.vm);
      po::store(parsed, src.given);
    }
    po::notify(src.vm);
  } catch (const po::error& e) {
    fail_option_error(e, desc, command);
  }
  return true;
}

bool is_testing_option(const std::string& name) { return name == "interrupt-at" || name == "interrupt-at-burn-in"; }

std::string help_text(const po::options_description& desc) {
  std::ostringstream rendered;
  rendered << desc;
  // Boost's layout: an option's first line starts "  --name" (or "  -x [ --name ]"), its description wraps onto
  // lines that start with more blanks.
  std::istringstream in(rendered.str());
  std::string text;
  bool hiding = false;
  for (std::string line; std::getline(in, line);) {
    if (line.rfind("  -", 0) == 0) {
      const size_t start = line.find("--") + 2, end = line.find_first_of(" ]", start);
      hiding = is_testing_option(line.substr(start, end == std::string::npos ? std::string::npos : end - start));
    } else if (line.rfind("   ", 0) != 0) {
      hiding = false;
    }
    if (!hiding) text += line + "\n";
  }
  return text;
}

}  // namespace jebm
