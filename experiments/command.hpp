// A `jebm` subcommand: name, one-line summary, and an entry point taking the arguments after the name.
// experiments/main.cpp holds the table; each subcommand lives in its own experiments/<name>.cpp.
#pragma once
#include <string>
#include <vector>

namespace jebm {

struct Command {
  const char* name;
  const char* summary;
  int (*run)(const std::vector<std::string>& args);  // returns the process exit code
  // Runs as one rank of `mpirun -np K jebm <name>` with K > 1 (shards its work over world()). Commands
  // without it are refused at once on several ranks, before anything is read or written.
  bool multi_rank = false;
};

}  // namespace jebm
