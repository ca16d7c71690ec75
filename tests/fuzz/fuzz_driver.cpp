// jebm_fuzz: the deterministic seeded mutation driver (plain C++, no libFuzzer). For each target it mutates the
// target's own seed files and feeds them to the loader; CTest runs a bounded pass under every preset
// (fuzz_seeded), scripts/fuzz.sh a long campaign. A finding (an exception other than jebm::Error, a crash, a
// sanitizer report) stops it with a non-zero exit, after saving the input to fuzz-crash-<target>.bin.
//   jebm_fuzz [--target NAME|all|loaders|parsers] [--inputs N] [--seconds S] [--seed S] [--write-seeds DIR]
#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <functional>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <string>
#include <typeinfo>
#include <vector>

// The sanitizer runtime is only linked into sanitized builds (gcc says so with __SANITIZE_ADDRESS__, clang
// with __has_feature).
#if defined(__SANITIZE_ADDRESS__)
#define JEBM_FUZZ_HAVE_SANITIZER_API 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define JEBM_FUZZ_HAVE_SANITIZER_API 1
#endif
#endif
#ifdef JEBM_FUZZ_HAVE_SANITIZER_API
#include <sanitizer/common_interface_defs.h>
#endif

#include "tests/fuzz/fuzz_targets.hpp"
#include "tests/fuzz/mutator.hpp"

using namespace jebm::fuzz;

namespace {

// The input being run, for the crash handlers (they may only use async-signal-safe calls).
const uint8_t* g_data = nullptr;
size_t g_size = 0;
char g_crash_path[256] = "fuzz-crash.bin";

void save_current_input() {
  if (!g_data) return;
  const int fd = ::open(g_crash_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
  if (fd < 0) return;
  size_t done = 0;
  while (done < g_size) {
    const ssize_t w = ::write(fd, g_data + done, g_size - done);
    if (w <= 0) break;
    done += static_cast<size_t>(w);
  }
  ::close(fd);
  const char msg[] = "jebm_fuzz: the crashing input was saved\n";
  (void)!::write(2, msg, sizeof msg - 1);
}

void on_signal(int sig) {
  save_current_input();
  ::signal(sig, SIG_DFL);
  ::raise(sig);
}

struct Options {
  std::string target = "all";
  long long inputs = 2000;
  double seconds = 0;  // > 0: run each target for this long instead of a fixed count
  uint64_t seed = 1;
  std::string write_seeds;
};

Options parse(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) {
        std::cerr << "jebm_fuzz: " << a << " needs a value\n";
        std::exit(2);
      }
      return argv[++i];
    };
    if (a == "--target") o.target = value();
    else if (a == "--inputs") o.inputs = std::stoll(value());
    else if (a == "--seconds") o.seconds = std::stod(value());
    else if (a == "--seed") o.seed = std::stoull(value());
    else if (a == "--write-seeds") o.write_seeds = value();
    else {
      std::cerr << "usage: jebm_fuzz [--target NAME|all|loaders|parsers] [--inputs N] [--seconds S] [--seed S] "
                   "[--write-seeds DIR]\n";
      std::exit(2);
    }
  }
  return o;
}

std::vector<const FuzzTarget*> select(const std::string& what) {
  std::vector<const FuzzTarget*> out;
  for (const auto& t : fuzz_targets())
    if (what == "all" || (what == "loaders" && t.loader) || (what == "parsers" && !t.loader)) out.push_back(&t);
  if (out.empty()) out.push_back(&fuzz_target(what));
  return out;
}

// Runs one target; returns false on a finding.
bool campaign(const FuzzTarget& t, const Options& o) {
  std::snprintf(g_crash_path, sizeof g_crash_path, "fuzz-crash-%s.bin", t.name.c_str());
  std::vector<Bytes> corpus = t.seeds();
  const size_t n_seeds = corpus.size();
  Mutator m(o.seed * 0x100000001b3ull + std::hash<std::string>{}(t.name), t.tokens);
  long long ran = 0, accepted = 0;
  const auto start = std::chrono::steady_clock::now();
  auto elapsed = [&] { return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count(); };
  for (long long i = 0;; ++i) {
    if (o.seconds > 0 ? (i % 64 == 0 && elapsed() >= o.seconds) : i >= o.inputs) break;
    // Every seed once as it is, then mutants of random corpus entries.
    const Bytes input = i < static_cast<long long>(n_seeds)
                            ? corpus[static_cast<size_t>(i)]
                            : m.mutate(corpus[m.below(corpus.size())], corpus[m.below(corpus.size())]);
    g_data = input.data();
    g_size = input.size();
    bool ok = false;
    try {
      ok = t.run(input.data(), input.size());
    } catch (const std::exception& e) {
      save_current_input();
      std::cerr << "FINDING: target " << t.name << " input " << i << " (seed " << o.seed << ", " << input.size()
                << " bytes): " << typeid(e).name() << ": " << e.what() << "\n  saved to " << g_crash_path << "\n";
      return false;
    }
    g_data = nullptr;
    // A rejected seed means the target never gets past its first check on valid input (the image config target
    // once accepted 0 of 3000 inputs that way): a finding too.
    if (!ok && i < static_cast<long long>(n_seeds)) {
      std::cerr << "FINDING: target " << t.name << ": seed " << i << " was rejected; seeds must be valid inputs\n";
      return false;
    }
    ++ran;
    if (ran % 10000 == 0)  // long campaigns: a count that survives the campaign being stopped
      std::cout << "target " << t.name << ": " << ran << " inputs so far, 0 findings, " << elapsed() << " s" << std::endl;
    // Accepted mutants are new valid files: keep some, so later mutants start from them too.
    if (ok) {
      ++accepted;
      if (i >= static_cast<long long>(n_seeds) && corpus.size() < 512) corpus.push_back(input);
    }
  }
  std::cout << "target " << t.name << ": " << ran << " inputs (" << accepted << " accepted, " << (ran - accepted)
            << " rejected with a jebm::Error), 0 findings, " << elapsed() << " s, seed " << o.seed << std::endl;
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  const Options o = parse(argc, argv);
  for (int sig : {SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGABRT}) ::signal(sig, on_signal);
#ifdef JEBM_FUZZ_HAVE_SANITIZER_API
  __sanitizer_set_death_callback(save_current_input);  // UBSan's halt_on_error exits without a signal
#endif
  try {
    const auto targets = select(o.target);
    if (!o.write_seeds.empty()) {  // libFuzzer's starting corpus: the same seeds, one directory per target
      for (const FuzzTarget* t : targets) {
        const auto dir = std::filesystem::path(o.write_seeds) / t->name;
        std::filesystem::create_directories(dir);
        int k = 0;
        for (const Bytes& s : t->seeds()) {
          std::ofstream f(dir / ("seed" + std::to_string(k++)), std::ios::binary);
          f.write(reinterpret_cast<const char*>(s.data()), static_cast<std::streamsize>(s.size()));
        }
      }
      return 0;
    }
    for (const FuzzTarget* t : targets)
      if (!campaign(*t, o)) return 1;
  } catch (const std::exception& e) {
    std::cerr << "jebm_fuzz: " << e.what() << "\n";
    return 2;
  }
  return 0;
}
