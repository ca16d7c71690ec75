// Which CPUs this process may run on, and keeping them across jebm's self-restart (experiments/main.cpp).
// Tested by tests/test_cli_binary.cpp (`jebm --version` under OMP_PROC_BIND=true).
#pragma once

namespace jebm {

// The number of CPUs this process's OpenMP threads may use: with OMP_PROC_BIND, those of libgomp's places (the
// initial thread alone is bound to the first); else this thread's affinity mask. 0 if it cannot be read.
int usable_cpus();

// Before main() restarts jebm with its OpenMP/OpenBLAS settings: with OMP_PROC_BIND set, libgomp has already bound
// this (the initial) thread to its first place, and exec keeps that mask, so the restarted process would see one
// CPU and run every OpenMP thread on it. Widens the mask back to the union of libgomp's places (computed from the
// mask the process started with). Does nothing when binding is off.
void unbind_before_restart();

}  // namespace jebm
