// `jebm bench --only noise` (experiments/bench/noise.hpp). Not a test; tests/test_rng.cpp and
// tests/test_walker_noise.cpp show that every path gives the same bits.
#include "experiments/bench/noise.hpp"

#include <time.h>

#include <algorithm>
#include <cstdio>
#include <functional>
#include <memory>
#include <vector>

#include "experiments/bench/timing.hpp"
#include "runtime/philox_normals.hpp"
#include "samplers/gmm_setup.hpp"
#include "samplers/gmm_training.hpp"
#include "samplers/ula_jarzynski.hpp"

namespace jebm {

namespace {

constexpr int64_t kWalkers = 10000, kDims = 50;

// The walkers' noise as a move draws it (walker i's pairs are streams i * P + p): per chunk of 64 walkers in one
// draw where that path is selected (ula_walkers_noise), else tile by tile; summed so that nothing is optimised
// away. Cloned like the walker loops, so the reference path runs as they run it (AVX2 where present).
__attribute__((target_clones("avx2", "default"))) double draw_all(uint64_t seed, uint64_t offset) {
  constexpr int64_t pairs = (kDims + 1) / 2, chunk = 64;
  double z[2 * kUlaTile], acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};  // 8 sums: no add-latency chain to time
  std::vector<double> buf;
  for (int64_t c = 0; c < kWalkers; c += chunk) {
    const int64_t n = std::min(chunk, kWalkers - c);
    if (ula_walkers_noise(seed, static_cast<uint64_t>(c), n, kDims, offset, buf)) {
      for (size_t e = 0; e < buf.size(); ++e) acc[e % 8] += buf[e];
      continue;
    }
    for (int64_t i = c; i < c + n; ++i)
      for (int64_t p0 = 0; p0 < pairs; p0 += kUlaTile) {
        const int64_t np = std::min(kUlaTile, pairs - p0);
        ula_normals_tile(seed, static_cast<uint64_t>(i * pairs + p0), offset, np, z);
        for (int64_t e = 0; e < 2 * np; ++e) acc[e % 8] += z[e];
      }
  }
  return ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
}

volatile double g_sink = 0.0;  // keeps the draws alive

// CPU time of the whole process (all its threads), ms.
double cpu_ms() {
  timespec t{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
  return 1e3 * static_cast<double>(t.tv_sec) + 1e-6 * static_cast<double>(t.tv_nsec);
}

// median_ms of f on each path in turn, `rounds` times interleaved (so that a load that comes and goes hits both
// alike); per path the median wall time and the median CPU time of a call.
struct PathTiming {
  std::vector<double> wall, cpu;
};
std::vector<PathTiming> interleaved(const std::vector<cpu::NoisePath>& paths, const std::function<void()>& f,
                                    int repeat, int rounds) {
  std::vector<PathTiming> t(paths.size());
  for (int r = 0; r < rounds; ++r)
    for (size_t k = 0; k < paths.size(); ++k) {
      cpu::set_noise_path(paths[k]);
      std::vector<double> c;
      t[k].wall.push_back(median_ms(
          [&] {
            const double t0 = cpu_ms();
            f();
            c.push_back(cpu_ms() - t0);
          },
          repeat));
      c.erase(c.begin());  // median_ms's untimed warm-up call
      t[k].cpu.insert(t[k].cpu.end(), c.begin(), c.end());
    }
  return t;
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

}  // namespace

std::vector<SamplerTiming> bench_noise_timings(int repeat) {
  const cpu::NoisePath was = cpu::noise_path();
  std::vector<cpu::NoisePath> paths = {cpu::NoisePath::Reference};
  if (cpu::noise_avx2_supported()) paths.push_back(cpu::NoisePath::Avx2);
  if (cpu::noise_avx512_supported()) paths.push_back(cpu::NoisePath::Avx512);
  std::vector<SamplerTiming> out;
  char name[128];
  uint64_t offset = 0;
  const std::vector<PathTiming> noise = interleaved(paths, [&] { g_sink = draw_all(7, offset++); }, repeat, 3);
  for (size_t k = 0; k < paths.size(); ++k) {
    const double ns = 1e6 * median(noise[k].cpu) / static_cast<double>(kWalkers * kDims);
    std::snprintf(name, sizeof name, "normals 1e4x50 %s (%.2f ns/normal CPU)", cpu::noise_path_name(paths[k]), ns);
    out.push_back({name, median(noise[k].wall), 0.0, 0.0});
  }
  // What the path changes in the paper's GMM iteration (the "gmm" section's full iteration, d = 50, N = 10^4).
  const GmmConfig c;
  const GmmParams teacher = gmm_teacher(c);
  const Tensor data = gmm_teacher_data(c, teacher);
  GmmTrainer run(c, Algorithm::Jarzynski, data, teacher);
  const std::vector<PathTiming> gmm = interleaved(paths, [&] { run.iterate(); }, repeat, 3);
  for (size_t k = 0; k < paths.size(); ++k) {
    std::snprintf(name, sizeof name, "gmm iteration 1e4x50 %s (%.2f ms CPU)", cpu::noise_path_name(paths[k]),
                  median(gmm[k].cpu));
    out.push_back({name, median(gmm[k].wall), 0.0, 0.0});
  }
  cpu::set_noise_path(was);
  return out;
}

}  // namespace jebm
