// `jebm bench --compare`: runs experiments/bench/torch_reference.py (the same workloads written the fastest way
// in PyTorch) as a child process right after jebm's own rows, with the same device, sizes and thread count, and
// pairs its medians with jebm's rows. Tested by tests/test_bench.cpp (a stand-in script, and PyTorch when
// installed).
#pragma once
#include <map>
#include <string>

namespace jebm {

// What the PyTorch side is asked to run: torch_reference.py's own options.
struct TorchCompareArgs {
  std::string python = "python3", script;
  std::string device = "cpu", only, net = "all";
  int repeat = 5, threads = 1;
  long long batch = 256, moves = 0;
};

// Runs the script and returns its medians by workload ("gmm/fused step" ...). Throws a user error naming the
// command, its exit status and its last line of output when it fails (e.g. no PyTorch).
std::map<std::string, double> run_torch_reference(const TorchCompareArgs& a);

// The script's workload name for a jebm bench row, or "" when PyTorch has no twin of it.
std::string torch_workload(const std::string& section, const std::string& name);

}  // namespace jebm
