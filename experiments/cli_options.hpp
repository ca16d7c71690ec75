// The options several commands share, each defined once: name, default, and the --help text that opens its
// description (a command may add a sentence of its own after it). docs/cli.md lists them with the commands that
// take them; tests/test_cli_binary.cpp checks that table against every command's --help. Also: --threads as every
// command applies it, and --help without the options that exist only for tests.
#pragma once
#include <boost/program_options.hpp>

#include <cstdint>
#include <string>
#include <vector>

#include "experiments/cli.hpp"

namespace jebm {

namespace shared_option {
void help(boost::program_options::options_description& d);                 // -h, --help
void version(boost::program_options::options_description& d);              // --version (main() answers it)
void seed(boost::program_options::options_description& d, uint64_t& seed);  // --seed, default 1
void threads(boost::program_options::options_description& d, int& threads);  // --threads, default 0
void no_progress(boost::program_options::options_description& d, bool& no_progress);
void config(boost::program_options::options_description& d, std::string& file);  // --config FILE
// --out DIR; `files`: what the command writes there.
void out(boost::program_options::options_description& d, std::string& dir, const std::string& files);
void force(boost::program_options::options_description& d, bool& force);
// --resume DIR; `may_change`: the options a resume may give with other values ("--epochs, --threads").
void resume(boost::program_options::options_description& d, std::string& dir, const std::string& may_change);
// --device (default cpu); `what`: what lives there.
void device(boost::program_options::options_description& d, std::string& device, const std::string& what);
// --noise, the ULA noise std (its default is the command's); `more`: a sentence of the command's own, or "".
void noise(boost::program_options::options_description& d, double& sigma, const Range& range,
           const std::string& more);
}  // namespace shared_option

// The shared numeric options' ranges (--seed, --threads), for a command's OptionRanges.
OptionRanges shared_option_ranges();

// --threads as every command applies it: n > 0 threads; 0 = OMP_NUM_THREADS if set, else all cores.
void apply_threads(int threads);

// Where a run command's options came from: vm holds every source; given the command line and --config; run a
// resumed run's options.txt (for check_resume_options and option_source).
struct OptionSources {
  boost::program_options::variables_map vm, given, run;
};
// Parses args against desc from its sources: the command line, then --resume DIR's options.txt, then --config FILE
// (the first value stored wins, so the command line beats both). --help prints `usage` and help_text(desc) and
// returns false. Errors name the file they come from and end "(see jebm COMMAND --help)".
bool parse_option_sources(const std::vector<std::string>& args, const boost::program_options::options_description& desc,
                          const std::string& command, const std::string& usage, OptionSources& src);

// Options that exist for tests (--interrupt-at, --interrupt-at-burn-in): they parse, --help does not show them.
bool is_testing_option(const std::string& name);
// desc as --help shows it: every option but the testing ones.
std::string help_text(const boost::program_options::options_description& desc);

}  // namespace jebm
