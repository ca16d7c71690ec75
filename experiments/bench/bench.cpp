// `jebm bench`: benchmarks of the runtime's kernels and of the product's own training step, printed as a table of
// median times with each case's work (FLOPs, or bytes for memory-bound kernels), its rate and its share of this
// machine's peak. Sections are entries of bench_sections() (name + function): add one there to benchmark
// something new; `--only NAME` runs one. Smoke-tested by tests/test_bench.cpp (`jebm bench --only gemm`).
#include <boost/program_options.hpp>
#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <functional>
#include <iostream>
#include <map>
#include <string>
#include <vector>

#include "experiments/bench/bench_models.hpp"
#include "experiments/bench/bench_samplers.hpp"
#include "experiments/bench/gmm.hpp"
#include "experiments/bench/noise.hpp"
#include "experiments/bench/peak.hpp"
#include "experiments/bench/timing.hpp"
#include "experiments/bench/torch_compare.hpp"
#include "experiments/cli.hpp"
#include "experiments/cli_options.hpp"
#include "experiments/gmm.hpp"
#include "experiments/version.hpp"
#include "runtime/cuda_api.hpp"
#include "runtime/ops.hpp"
#include "runtime/user_error.hpp"

namespace jebm {
namespace {

struct BenchOptions {
  Device device = Device::cpu();
  int repeat = 5;
  int64_t batch = 256;  // energy_cnn: images per forward+backward
  int64_t moves = 0;    // ula_cnn: ULA moves per training iteration (0: the paper's)
  std::string net = "all";  // ula_cnn, energy_cnn: mnist, cifar10 or all
};

// One printed row: what ran, its median wall time, and the useful floating-point work it did.
struct BenchRow {
  std::string section, name;
  DType dtype;
  double median_ms;
  double flops;       // useful floating-point work of one call; 0 when GFLOP/s means nothing for the case
  double bytes = 0.0;  // memory traffic of one call, for memory-bound cases (rate in GB/s against the bandwidth)
};

struct BenchSection {
  const char* name;
  const char* summary;
  std::function<void(const BenchOptions&, std::vector<BenchRow>&)> run;
};

void bench_gemm(const BenchOptions& o, std::vector<BenchRow>& rows) {
  for (DType dt : {DType::Float32, DType::Float64}) {
    for (int64_t n : {256, 512, 1024}) {
      Generator gen{1, 0};
      const Tensor a = rand_uniform({n, n}, -1, 1, gen, dt, o.device);
      const Tensor b = rand_uniform({n, n}, -1, 1, gen, dt, o.device);
      Tensor c = Tensor::empty({n, n}, dt, o.device);
      const double ms = median_ms([&] { gemm_(false, false, 1.0, a, b, 0.0, c); }, o.repeat);
      rows.push_back({"gemm", std::to_string(n) + "^3", dt, ms, 2.0 * n * n * n});
    }
  }
}

// The MNIST energy CNN's convolutions at batch 256: forward, backward-data and backward-filter.
void bench_conv_mnist(const BenchOptions& o, std::vector<BenchRow>& rows) {
  struct Layer {
    const char* name;
    int64_t c, hw, f, k, stride, pad;
  };
  const std::vector<Layer> layers = {{"conv1 1->16 5x5 s2 p4 @28", 1, 28, 16, 5, 2, 4},
                                     {"conv2 16->32 3x3 s2 p1 @16", 16, 16, 32, 3, 2, 1},
                                     {"conv3 32->64 3x3 s2 p1 @8", 32, 8, 64, 3, 2, 1},
                                     {"conv4 64->64 3x3 s2 p1 @4", 64, 4, 64, 3, 2, 1}};
  const int64_t batch = 256;
  for (DType dt : {DType::Float32, DType::Float64}) {
    for (const Layer& l : layers) {
      Generator gen{2, 0};
      const Conv2dParams p{l.stride, l.pad};
      const Tensor x = rand_uniform({batch, l.c, l.hw, l.hw}, -1, 1, gen, dt, o.device);
      const Tensor w = rand_uniform({l.f, l.c, l.k, l.k}, -0.1, 0.1, gen, dt, o.device);
      const Tensor b = rand_uniform({l.f}, -0.1, 0.1, gen, dt, o.device);
      const Shape ys = conv2d_output_shape(x.shape(), w.shape(), p);
      const Tensor gy = rand_uniform(ys, -1, 1, gen, dt, o.device);
      const double macs = static_cast<double>(shape_numel(ys)) * static_cast<double>(l.c * l.k * l.k);
      rows.push_back({"conv_mnist", std::string(l.name) + " fwd", dt,
                      median_ms([&] { conv2d(x, w, b, p); }, o.repeat), 2 * macs});
      rows.push_back({"conv_mnist", std::string(l.name) + " bwd data", dt,
                      median_ms([&] { conv2d_backward_data(gy, w, x.shape(), p); }, o.repeat), 2 * macs});
      rows.push_back({"conv_mnist", std::string(l.name) + " bwd filter+bias", dt, median_ms([&] {
                        conv2d_backward_filter(gy, x, w.shape(), p);
                        conv2d_backward_bias(gy);
                      }, o.repeat),
                      2 * macs});
    }
  }
}

// Forward+backward of the image energies (grad_x U and grad_theta U together), as one Langevin move runs it.
void bench_energy_cnn_section(const BenchOptions& o, std::vector<BenchRow>& rows) {
  for (const EnergyCnnTiming& t : bench_energy_cnn(o.batch, o.repeat, o.device, o.net))
    rows.push_back({"energy_cnn", t.model + " fwd+bwd @" + std::to_string(t.batch), DType::Float32, t.median_ms,
                    t.flops});
}

// The Gaussian-mixture sampler: the fused ULA+Jarzynski kernel and one full iteration (experiments/bench/gmm.cpp).
void bench_gmm_section(const BenchOptions& o, std::vector<BenchRow>& rows) {
  for (const SamplerTiming& t : bench_gmm_timings(o.device, o.repeat))
    rows.push_back({"gmm", t.name, DType::Float64, t.median_ms, t.flops, t.bytes});
}

// GmmTrainer::iterate against N and d (experiments/bench/gmm.cpp).
void bench_gmm_scaling_section(const BenchOptions& o, std::vector<BenchRow>& rows) {
  for (const SamplerTiming& t : bench_gmm_scaling(o.device, o.repeat))
    rows.push_back({"gmm_scaling", t.name, DType::Float64, t.median_ms, t.flops, t.bytes});
}

// The walkers' Gaussian noise alone, reference and AVX-512 (experiments/bench/noise.cpp); always on the CPU.
void bench_noise_section(const BenchOptions& o, std::vector<BenchRow>& rows) {
  for (const SamplerTiming& t : bench_noise_timings(o.repeat))
    rows.push_back({"noise", t.name, DType::Float64, t.median_ms, t.flops, t.bytes});
}

// The image samplers as the product runs them: one ULA move and one Trainer::step (Algorithm 1) per energy CNN
// (experiments/bench/bench_samplers.cpp; the PyTorch twin is experiments/bench/torch_reference.py).
void bench_ula_cnn_section(const BenchOptions& o, std::vector<BenchRow>& rows) {
  for (const SamplerTiming& t : bench_ula_cnn(o.batch, o.repeat, o.device, o.moves, o.net))
    rows.push_back({"ula_cnn", t.name, DType::Float32, t.median_ms, t.flops, t.bytes});
}

// One MNIST ULA move against the walkers it moves (experiments/bench/bench_samplers.cpp).
void bench_ula_scaling_section(const BenchOptions& o, std::vector<BenchRow>& rows) {
  for (const SamplerTiming& t : bench_ula_scaling(o.repeat, o.device))
    rows.push_back({"ula_scaling", t.name, DType::Float32, t.median_ms, t.flops, t.bytes});
}

const std::vector<BenchSection>& bench_sections() {
  static const std::vector<BenchSection> sections = {
      {"gemm", "square GEMM 256/512/1024, float32 and float64", bench_gemm},
      {"conv_mnist", "conv2d fwd/bwd for the MNIST energy CNN layers at batch 256", bench_conv_mnist},
      {"energy_cnn", "MNIST and CIFAR-10 energy CNNs: forward+backward to grad_x and grad_theta at --batch",
       bench_energy_cnn_section},
      {"gmm", "Gaussian mixture, d = 50, N = 10^4: fused ULA+Jarzynski kernel, one full iteration", bench_gmm_section},
      {"gmm_scaling", "Gaussian mixture: one full iteration at N = 10^3 ... 10^6 (d = 50) and d = 10 ... 1000 "
                      "(N = 10^4), against its memory floor", bench_gmm_scaling_section},
      {"noise", "the walkers' Gaussian noise (Philox + Box-Muller) by the scalar reference and its AVX-512 twin: "
                "5 x 10^5 normals on one thread, and one full GMM iteration on each path", bench_noise_section},
      {"ula_cnn", "the product's MNIST and CIFAR-10 training (their defaults, --batch walkers per moving subset and "
                  "in the loss): one ULA move as Trainer::step makes it, and one whole Trainer::step (--moves "
                  "moves of one subset instead of the defaults' 6 x 30 and 1 x 60 when > 0)", bench_ula_cnn_section},
      {"ula_scaling", "one MNIST ULA move as Trainer::step makes it, at 32, 64, ... 1024 walkers",
       bench_ula_scaling_section},
  };
  return sections;
}

// Work, rate and share of peak: FLOPs against the measured FLOP peak of the row's dtype; bytes against the
// measured copy bandwidth. A share above 100 % can only be noise (or a peak measured while something else held a
// core): it is flagged with '!' and explained under the table, never hidden.
void print_rows(const std::vector<BenchRow>& rows, const MachinePeak& peak, std::ostream& os) {
  bool above = false;
  char line[256];
  std::snprintf(line, sizeof line, "%-12s %-44s %-8s %11s %10s %12s %7s\n", "section", "case", "dtype", "median ms",
                "work", "rate", "% peak");
  os << line;
  for (const BenchRow& r : rows) {
    std::string work = "-", rate = "-", share = "-";
    char buf[64];
    if (r.median_ms > 0 && (r.flops > 0 || r.bytes > 0)) {
      const bool flops = r.flops > 0;
      const double amount = flops ? r.flops : r.bytes;
      const double per_s = amount / (r.median_ms * 1e6);  // GFLOP/s or GB/s
      std::snprintf(buf, sizeof buf, flops ? "%.3g GFLOP" : "%.3g MB", flops ? amount / 1e9 : amount / 1e6);
      work = buf;
      std::snprintf(buf, sizeof buf, flops ? "%.1f GFLOP/s" : "%.1f GB/s", per_s);
      rate = buf;
      const double ref = flops ? (r.dtype == DType::Float64 ? peak.gflops_f64 : peak.gflops_f32) : peak.copy_gbs;
      if (ref > 0) {
        const double pct = 100.0 * per_s / ref;
        std::snprintf(buf, sizeof buf, pct > 100.0 ? "%.0f%% !" : "%.0f%%", pct);
        share = buf;
        above = above || pct > 100.0;
      }
    }
    std::snprintf(line, sizeof line, "%-12s %-44s %-8s %11.3f %10s %12s %7s\n", r.section.c_str(), r.name.c_str(),
                  dtype_name(r.dtype), r.median_ms, work.c_str(), rate.c_str(), share.c_str());
    os << line;
  }
  if (above)
    os << "! above the measured peak: timing noise, or the peak was measured while another process held a core; "
          "rerun on a quiet machine\n";
}

// The rows PyTorch has a twin of, side by side: jebm's median, PyTorch's, and how many times faster jebm is.
void print_comparison(const std::vector<BenchRow>& rows, const std::map<std::string, double>& torch_ms,
                      const TorchCompareArgs& a, std::ostream& os) {
  char line[256];
  os << "\njebm vs PyTorch (" << a.script << ", run by " << a.python << " just after jebm's rows, " << a.threads
     << " thread(s), same sizes; > 1 means jebm is faster)\n";
  std::snprintf(line, sizeof line, "%-44s %12s %12s %12s\n", "workload", "jebm ms", "PyTorch ms", "PyTorch/jebm");
  os << line;
  for (const BenchRow& r : rows) {
    const std::string key = torch_workload(r.section, r.name);
    if (key.empty()) continue;
    const auto t = torch_ms.find(key);
    char torch[32] = "-", ratio[32] = "-";
    if (t != torch_ms.end() && r.median_ms > 0) {
      std::snprintf(torch, sizeof torch, "%.3f", t->second);
      std::snprintf(ratio, sizeof ratio, "%.2fx", t->second / r.median_ms);
    }
    // The GMM iteration without the CE correction's sums is PyTorch's twin's work; with them, jebm does more.
    const std::string label = key + (r.name.find(kNoCorrection) != std::string::npos ? kNoCorrection : "");
    std::snprintf(line, sizeof line, "%-44s %12.3f %12s %12s\n", label.c_str(), r.median_ms, torch, ratio);
    os << line;
  }
}

}  // namespace

int run_bench(const std::vector<std::string>& args) {
  namespace po = boost::program_options;
  std::string device = "cpu", only;
  int repeat = 5, threads = 0;
  int64_t batch = 256, moves = 0;
  std::string net = "all";
  TorchCompareArgs torch;
  torch.script = JEBM_TORCH_REFERENCE;
  OptionRanges R = {{"repeat", within(1, 1e6)}, {"batch", within(1, 65536)}, {"moves", within(0, 1e6)}};
  R.add(shared_option_ranges());
  po::options_description desc("jebm bench: micro-benchmarks of the runtime kernels (median wall time)");
  std::string section_list;
  for (const auto& s : bench_sections()) section_list += std::string(section_list.empty() ? "" : ", ") + s.name;
  shared_option::help(desc);
  shared_option::version(desc);
  shared_option::device(desc, device, "where the timed kernels run");
  shared_option::threads(desc, threads);
  desc.add_options()
      ("repeat", po::value(&repeat)->default_value(repeat), R.help("repeat", "timed repetitions per case (after one warm-up); the median is reported").c_str())
      ("batch", po::value(&batch)->default_value(batch), R.help("batch", "energy_cnn: images per pass (256 = the paper's walker mini-batch; CIFAR-10 takes seconds per pass on a CPU)").c_str())
      ("moves", po::value(&moves)->default_value(moves), R.help("moves", "ula_cnn: ULA moves per training iteration; 0 = the paper's (MNIST 6 x 30, CIFAR-10 60)").c_str())
      ("net", po::value(&net)->default_value(net), "ula_cnn and energy_cnn: mnist, cifar10 or all (CIFAR-10 takes minutes on a CPU)")
      ("only", po::value(&only), ("run one section: " + section_list).c_str())
      ("compare", "also run the PyTorch twins of the gmm, ula_cnn and energy_cnn rows (--torch-script) with the same "
                  "sizes and threads, and print both medians and their ratio")
      ("python", po::value(&torch.python)->default_value(torch.python), "--compare: the Python that has PyTorch")
      ("torch-script", po::value(&torch.script)->default_value(torch.script), "--compare: the PyTorch reference script");
  po::variables_map vm;
  try {
    po::store(po::command_line_parser(args).options(desc).run(), vm);
    if (vm.count("help")) {
      std::cout << desc << "\nsections:\n";
      for (const auto& s : bench_sections()) std::cout << "  " << s.name << ": " << s.summary << "\n";
      return 0;
    }
    po::notify(vm);
  } catch (const po::error& e) {
    fail_option_error(e, desc, "bench");
  }
  R.check(vm);
  apply_threads(threads);
  BenchOptions o;
  o.device = device_from_name(device);
  o.repeat = repeat;
  o.batch = batch;
  o.moves = moves;
  JEBM_USER_CHECK(net == "mnist" || net == "cifar10" || net == "all", "--net " << net << ": expected mnist, cifar10 or all");
  o.net = net;
  if (o.device.is_cuda()) cuda_api::require("jebm bench --device cuda");  // says why CUDA cannot be used
  bool found = only.empty();
  std::vector<BenchRow> rows;
  for (const auto& s : bench_sections()) {
    if (!only.empty() && only != s.name) continue;
    found = true;
    s.run(o, rows);
  }
  JEBM_USER_CHECK(found, "--only: unknown section '" << only << "' (sections: " << section_list << ")");
  std::cout << "jebm bench on " << o.device.str()
            << (o.device.is_cuda() ? " (" + cuda_api::device_name(o.device.index) + ")"
                                   : " (" + std::to_string(omp_get_max_threads()) + " OpenMP threads)")
            << ", median of " << repeat << "\n"
            << "blas: " << blas_line() << "\n";
  const MachinePeak peak = measure_peak(o.device, o.repeat);
  std::cout << peak.how << "\n";
  print_rows(rows, peak, std::cout);
  if (vm.count("compare")) {
    torch.device = device;
    torch.repeat = repeat;
    torch.threads = omp_get_max_threads();
    torch.batch = batch;
    torch.moves = moves;
    torch.net = net;
    if (only == "gmm" || only == "ula_cnn" || only == "energy_cnn") torch.only = only;
    else if (!only.empty()) torch.only = "none";
    if (torch.only == "none")
      std::cout << "\n--compare: PyTorch has no twin of section " << only << " (it has gmm, ula_cnn, energy_cnn)\n";
    else
      print_comparison(rows, run_torch_reference(torch), torch, std::cout);
  }
  return 0;
}

}  // namespace jebm
