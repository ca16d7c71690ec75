// Timing and layer shapes shared by the GEMM / convolution library drivers (gemm_compare.cpp, conv_compare.cpp).
// Not part of the CMake build; scripts/gemm-libraries/run.sh compiles and runs them. No tests: a measurement tool.
#pragma once
#include <omp.h>
#include <time.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <string>
#include <vector>

// THREADS [REPS] from the command line into threads and reps (kept when absent), and sets OpenMP's thread count;
// false, after a usage line, when either is below 1.
inline bool parse_threads_reps(int argc, char** argv, int& threads, int& reps) {
  if (argc > 1) threads = std::atoi(argv[1]);
  if (argc > 2) reps = std::atoi(argv[2]);
  if (threads < 1 || reps < 1) {
    std::fprintf(stderr, "usage: %s THREADS [REPS], both >= 1\n", argv[0]);
    return false;
  }
  omp_set_num_threads(threads);
  return true;
}

// One timed call: wall time, the calling thread's CPU time and the whole process's CPU time (all threads), in ms.
struct Sample {
  double wall, thread_cpu, process_cpu;
};

inline double clock_ms(clockid_t id) {
  timespec t{};
  clock_gettime(id, &t);
  return t.tv_sec * 1e3 + t.tv_nsec * 1e-6;
}

inline Sample time_call(const std::function<void()>& f) {
  const double w0 = clock_ms(CLOCK_MONOTONIC), t0 = clock_ms(CLOCK_THREAD_CPUTIME_ID),
               p0 = clock_ms(CLOCK_PROCESS_CPUTIME_ID);
  f();
  return {clock_ms(CLOCK_MONOTONIC) - w0, clock_ms(CLOCK_THREAD_CPUTIME_ID) - t0,
          clock_ms(CLOCK_PROCESS_CPUTIME_ID) - p0};
}

inline double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0.0 : v[v.size() / 2];
}

// A case timed `reps` times; cases are run round-robin (case 0, 1, ..., then again) so that load changes on a shared
// machine hit every case alike.
struct Case {
  std::string name;
  double flops;  // useful floating-point work of one call
  std::function<void()> run;
  std::vector<Sample> samples;
};

inline void run_round_robin(std::vector<Case>& cases, int warmup, int reps) {
  for (int r = 0; r < warmup; ++r)
    for (Case& c : cases) c.run();
  for (int r = 0; r < reps; ++r)
    for (Case& c : cases) c.samples.push_back(time_call(c.run));
}

// One row per case: medians in ms of wall, thread-CPU and process-CPU time, the rate, and the spread (min-max as a
// share of the median). The rate and spread use the thread's CPU time at 1 thread (a busy neighbour's share of the
// core does not count) and the wall time at more threads (the process CPU time then includes OpenMP's waiting).
inline void print_header() {
  std::printf("%-56s %9s %9s %9s %8s %10s\n", "case", "wall ms", "thrCPU", "procCPU", "GFLOP/s", "spread");
}

// Prints c and returns its primary time (ms).
inline double print_case(const std::string& prefix, const Case& c, int threads) {
  std::vector<double> w, t, p;
  for (const Sample& s : c.samples) {
    w.push_back(s.wall);
    t.push_back(s.thread_cpu);
    p.push_back(s.process_cpu);
  }
  const std::vector<double>& v = threads == 1 ? t : w;
  const double mid = median(v), lo = *std::min_element(v.begin(), v.end()), hi = *std::max_element(v.begin(), v.end());
  std::printf("%-56s %9.3f %9.3f %9.3f %8.1f %4.0f-%3.0f%%\n", (prefix + c.name).c_str(), median(w), median(t),
              median(p), c.flops / (mid * 1e6), 100.0 * lo / mid, 100.0 * hi / mid);
  return mid;
}

// The layers measured, NCHW, square images and kernels.
struct Layer {
  const char* name;
  int64_t n, c, hw, f, k, stride, pad;
  int64_t ohw() const { return (hw + 2 * pad - k) / stride + 1; }
  double macs() const { return double(n) * f * ohw() * ohw() * c * k * k; }
};

// The MNIST energy CNN (models/energy_nets.cpp) at batch 256, and the CIFAR-10 energy CNN's three wide layers at
// batch 32 (their GEMMs do not depend on the batch beyond its group count; 32 keeps a run under a minute).
inline std::vector<Layer> measured_layers() {
  return {{"mnist conv1 1->16 5x5 s2 p4 @28", 256, 1, 28, 16, 5, 2, 4},
          {"mnist conv2 16->32 3x3 s2 p1 @16", 256, 16, 16, 32, 3, 2, 1},
          {"mnist conv3 32->64 3x3 s2 p1 @8", 256, 32, 8, 64, 3, 2, 1},
          {"mnist conv4 64->64 3x3 s2 p1 @4", 256, 64, 4, 64, 3, 2, 1},
          {"cifar conv2 64->128 4x4 s2 p1 @32", 32, 64, 32, 128, 4, 2, 1},
          {"cifar conv3 128->256 4x4 s2 p1 @16", 32, 128, 16, 256, 4, 2, 1},
          {"cifar conv4 256->512 4x4 s2 p1 @8", 32, 256, 8, 512, 4, 2, 1}};
}
