// `jebm sample`: fresh samples from a trained image energy. Loads the model of a `jebm mnist` / `jebm cifar10`
// run checkpoint (which one is told by its metadata and the first layer's shape; the image size by its walkers,
// so that a `jebm mnist --downsample 2` run samples 14x14 digits), runs unweighted ULA from
// uniform noise (or from the run's saved walkers) and writes a PNG grid atomically. Tested by
// tests/test_sample.cpp (grid size, missing/corrupt/foreign checkpoints) and tests/test_cifar10.cpp (a run's).
#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <iomanip>
#include <iostream>
#include <map>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include <boost/program_options.hpp>
#include <omp.h>

#include "experiments/cli.hpp"
#include "experiments/cli_options.hpp"
#include "experiments/image_ebm.hpp"
#include "experiments/image_ebm_checkpoint.hpp"
#include "experiments/module_io.hpp"
#include "experiments/output.hpp"
#include "experiments/png.hpp"
#include "models/checkpoint.hpp"
#include "models/energy_nets.hpp"
#include "runtime/checked_size.hpp"
#include "runtime/cuda_api.hpp"
#include "runtime/user_error.hpp"
#include "samplers/trainer.hpp"
#include "samplers/ula_jarzynski.hpp"

namespace jebm {

namespace po = boost::program_options;
namespace fs = std::filesystem;

namespace {

constexpr uint64_t kSampleInitKey = 0x73616d706c65696eULL, kSampleNoiseKey = 0x73616d706c656e7aULL;

// A model `jebm sample` knows: how to build it and the ULA settings of its experiment (the official code's).
struct EnergyKind {
  std::string name;           // the experiment: "mnist" | "cifar10"
  Shape first_weight;         // model.0.weight of its energy CNN
  std::vector<Shape> images;  // the [C, H, W] its energy takes; the first is the experiment's native size
  double h, sigma, drift_clip;
};
const std::vector<EnergyKind>& energy_kinds() {
  static const std::vector<EnergyKind> k = {
      {"mnist", {16, 1, 5, 5}, {{1, 28, 28}, {1, 14, 14}}, 5e-5, 1e-4, 0.0},  // 14x14: jebm mnist --downsample 2
      {"cifar10", {64, 3, 3, 3}, {{3, 32, 32}}, 1.0, 0.01, 0.3},
  };
  return k;
}

// The run's image size: that of its walkers (every run checkpoint holds them), else the experiment's native one.
Shape run_image_shape(const SafeTensors& st, const EnergyKind& k) {
  const auto it = st.tensors.find("walkers.x");
  if (it == st.tensors.end()) return k.images.front();
  const Shape& ws = it->second.shape();
  const Shape image(ws.begin() + (ws.empty() ? 0 : 1), ws.end());
  std::string known;
  for (const Shape& s : k.images) {
    if (s == image) return image;
    known += (known.empty() ? "" : " or ") + shape_str(s);
  }
  JEBM_USER_FAIL("--checkpoint " << st.path << ": walkers.x is " << shape_str(ws) << "; a " << k.name
                            << " energy takes images " << known);
}

std::shared_ptr<Module> make_energy(const EnergyKind& k, Generator& gen) {
  if (k.name == "mnist") return std::make_shared<MnistEnergyCNN>(gen);
  return std::make_shared<CifarEnergyCNN>(gen);
}

// "key = value" lines of a run's options.txt (empty when there is none).
std::map<std::string, std::string> read_run_options(const fs::path& path) {
  std::map<std::string, std::string> kv;
  std::ifstream in(path);
  std::string line;
  while (std::getline(in, line)) {
    const size_t eq = line.find('=');
    if (eq == std::string::npos) continue;
    auto trim = [](std::string s) {
      s.erase(0, s.find_first_not_of(" \t"));
      s.erase(s.find_last_not_of(" \t\r") + 1);
      return s;
    };
    kv[trim(line.substr(0, eq))] = trim(line.substr(eq + 1));
  }
  return kv;
}

// Which energy a checkpoint holds: its format tag, its "command" and the first conv's shape must agree.
const EnergyKind& detect_energy(const SafeTensors& st) {
  const auto fmt = st.metadata.find("format");
  JEBM_USER_CHECK(fmt != st.metadata.end() && fmt->second == kImageEbmCheckpointFormat,
             "--checkpoint " << st.path << ": format \"" << (fmt == st.metadata.end() ? std::string("(none)") : fmt->second)
                             << "\" is not a jebm mnist/cifar10 run checkpoint (\"" << kImageEbmCheckpointFormat
                             << "\"; classifier checkpoints are not energies)");
  const auto w = st.tensors.find("model.0.weight");
  JEBM_USER_CHECK(w != st.tensors.end(), "--checkpoint " << st.path << ": no tensor \"model.0.weight\" (not an image energy)");
  const auto cmd = st.metadata.find("command");
  for (const EnergyKind& k : energy_kinds()) {
    if (w->second.shape() != k.first_weight) continue;
    JEBM_USER_CHECK(cmd == st.metadata.end() || cmd->second == k.name,
               "--checkpoint " << st.path << ": metadata says command \"" << cmd->second << "\" but model.0.weight is "
                               << shape_str(w->second.shape()) << ", the " << k.name << " energy's first layer");
    return k;
  }
  JEBM_USER_FAIL("--checkpoint " << st.path << ": model.0.weight is " << shape_str(w->second.shape())
                            << "; known energies: mnist " << shape_str(energy_kinds()[0].first_weight) << ", cifar10 "
                            << shape_str(energy_kinds()[1].first_weight));
}

// options.txt of a sample run: the options given (not those that name the run), then the ULA settings used
// (resolved.*: reports, written as comments).
std::vector<std::pair<std::string, std::string>> sample_options(const po::variables_map& vm, double h, double sigma,
                                                                double drift_clip) {
  std::vector<std::pair<std::string, std::string>> kv;
  for (const auto& [name, val] : vm) {
    if (name == "out" || name == "force" || name == "no-progress" || name == "help") continue;
    if (const auto text = option_value_string(val)) kv.emplace_back(name, *text);
  }
  kv.emplace_back("resolved.h", short_double(h));
  kv.emplace_back("resolved.noise", short_double(sigma > 0 ? sigma : std::sqrt(2 * h)));
  kv.emplace_back("resolved.drift-clip", short_double(drift_clip));
  return kv;
}

// What `jebm sample` was asked for: the options' values and the variables map they were parsed into.
struct SampleOptions {
  std::string checkpoint, out, from = "uniform", device_name = "cpu";
  int64_t steps = -1, n = 64, columns = 0, eval_chunk = 0;
  uint64_t seed = 1;
  int threads = 0;
  bool force = false, no_progress = false;
  double h = 0, sigma = 0, drift_clip = 0;
  po::variables_map vm;
};

// The valid range of every numeric option (--help shows it; checked after parsing). --h/--noise/--drift-clip
// taken from the run's options.txt are checked against the same ranges (resolve_ula_settings).
OptionRanges sample_ranges() {
  OptionRanges R = {{"steps", within(0, 1000000000)}, {"n", at_least(1)}, {"h", above(0)},
                    {"noise", at_least(0)},   {"drift-clip", at_least(0)}, {"columns", at_least(0)},
                    {"eval-chunk", at_least(0)}};
  R.add(shared_option_ranges());
  return R;
}

// The options of `jebm sample`, in the order --help lists them, bound to o's fields.
void declare_sample_options(po::options_description& desc, SampleOptions& o, const OptionRanges& R) {
  // clang-format off
  shared_option::help(desc);
  shared_option::version(desc);
  desc.add_options()
      ("checkpoint", po::value(&o.checkpoint), "checkpoint.safetensors of a jebm mnist or cifar10 run (required)")
      ("steps", po::value(&o.steps), R.help("steps", "ULA steps (required; the experiments' burn-in: mnist 20000, cifar10 8000)").c_str())
      ("n", po::value(&o.n)->default_value(o.n), R.help("n", "samples (jebm's choice: 64, an 8x8 grid)").c_str())
      ("h", po::value(&o.h), R.help("h", "ULA step size (default: the run's, else the experiment's)").c_str())
      ("drift-clip", po::value(&o.drift_clip), R.help("drift-clip", "clip each coordinate of grad_x U to +-c; 0 = off (default: the run's, else the experiment's)").c_str())
      ("from", po::value(&o.from)->default_value(o.from),
       "uniform: start from uniform noise on [-1,1] | checkpoint-walkers: start from the run's first --n walkers")
      ("columns", po::value(&o.columns)->default_value(o.columns), R.help("columns", "grid columns; 0 = ceil(sqrt(n))").c_str())
      ("eval-chunk", po::value(&o.eval_chunk)->default_value(o.eval_chunk),
       R.help("eval-chunk", "samples per forward/backward piece; 0 = 64 on the CPU (pieces in parallel over the "
                            "threads), 256 on a GPU. The float32 results can differ in the last bits with the "
                            "piece size (not with the thread count)").c_str());
  // clang-format on
  desc.add_options()("noise", po::value(&o.sigma), R.help("noise", "ULA noise std sigma; 0 = sqrt(2h) (default: the "
                                                                   "run's, else the experiment's)").c_str());
  shared_option::out(desc, o.out, "samples.png (the grid) and options.txt (required)");
  shared_option::force(desc, o.force);
  shared_option::seed(desc, o.seed);
  shared_option::device(desc, o.device_name, "where the energy and the samples live");
  shared_option::threads(desc, o.threads);
  shared_option::no_progress(desc, o.no_progress);
}

// Parses and checks `args` into o; false when --help was asked for (and printed).
bool parse_sample_options(const std::vector<std::string>& args, SampleOptions& o, const OptionRanges& R) {
  po::options_description desc(
      "jebm sample: draw fresh samples from the energy of a `jebm mnist` / `jebm cifar10` run checkpoint by\n"
      "unweighted ULA (x <- x - h clip(grad_x U) + sigma xi) from uniform noise on [-1,1] (or from the run's saved\n"
      "walkers), and write them as a PNG grid into the run directory --out (with the options in options.txt).\n"
      "--h, --noise and --drift-clip default to the run's values (options.txt beside the checkpoint), else to the\n"
      "experiment's official values (mnist: h 5e-5, noise 1e-4, no clip; cifar10: h 1, noise 0.01, clip 0.3).\n"
      "The images have the size of the run's walkers (14x14 for a `jebm mnist --downsample 2` run).\n\n"
      "Options");
  declare_sample_options(desc, o, R);
  try {
    po::store(po::command_line_parser(args).options(desc).run(), o.vm);
    if (o.vm.count("help")) {
      std::cout << "usage: jebm sample --checkpoint PATH --steps K --out DIR [options]\n" << help_text(desc) << "\n";
      return false;
    }
    po::notify(o.vm);
  } catch (const po::error& e) {
    fail_option_error(e, desc, "sample");
  }
  JEBM_USER_CHECK(!o.checkpoint.empty(), "--checkpoint PATH is required (see jebm sample --help)");
  JEBM_USER_CHECK(o.vm.count("steps"), "--steps K is required (see jebm sample --help)");
  JEBM_USER_CHECK(!o.out.empty(), "--out DIR is required (the run directory; see jebm sample --help)");
  R.check(o.vm);
  JEBM_USER_CHECK(o.from == "uniform" || o.from == "checkpoint-walkers",
                  "--from " << o.from << ": expected uniform or checkpoint-walkers");
  JEBM_USER_CHECK(fs::is_regular_file(o.checkpoint), "--checkpoint '" << o.checkpoint << "': no such file");
  return true;
}

// The ULA settings not given on the command line: the run's options.txt beside the checkpoint, else the
// experiment's defaults. Returns where they came from ("" when all were given).
std::string resolve_ula_settings(SampleOptions& o, const EnergyKind& kind, const OptionRanges& R) {
  const fs::path run_options = fs::path(o.checkpoint).parent_path() / "options.txt";
  const std::map<std::string, std::string> run_opts = read_run_options(run_options);
  std::string source;
  auto pick = [&](const char* name, double& v, double fallback) {
    if (o.vm.count(name)) return;
    const auto it = run_opts.find(name);
    if (it != run_opts.end()) {
      try {
        v = std::stod(it->second);
        source = "the run's options.txt";
        return;
      } catch (const std::exception&) {
        JEBM_USER_FAIL(run_options << ": " << name << " = \"" << it->second << "\" is not a number");
      }
    }
    v = fallback;
    if (source.empty()) source = "the official defaults for " + kind.name;
  };
  pick("h", o.h, kind.h);
  pick("noise", o.sigma, kind.sigma);
  pick("drift-clip", o.drift_clip, kind.drift_clip);
  // Values from the command line were checked by parse_sample_options; these may come from the run's options.txt.
  auto label = [&](const std::string& name) {
    return "--" + name + (o.vm.count(name) ? "" : " (from " + source + ")");
  };
  check_range(label("h"), o.h, R.at("h"));
  check_range(label("noise"), o.sigma, R.at("noise"));
  check_range(label("drift-clip"), o.drift_clip, R.at("drift-clip"));
  return source;
}

// The samples' starting points, [n, image...]: uniform noise on [-1, 1], or the run's first n walkers.
Tensor initial_samples(const SampleOptions& o, const SafeTensors& st, const Shape& image) {
  Shape shape = image;
  shape.insert(shape.begin(), o.n);
  if (o.from == "uniform") {
    Generator wgen{o.seed ^ kSampleInitKey, 0};
    return rand_uniform(shape, -1.0, 1.0, wgen);
  }
  const auto it = st.tensors.find("walkers.x");
  JEBM_USER_CHECK(it != st.tensors.end(),
                  "--checkpoint " << o.checkpoint << ": no \"walkers.x\" for --from checkpoint-walkers");
  const Tensor& wx = it->second;
  Shape want = image;
  want.insert(want.begin(), wx.dim() > 0 ? wx.size(0) : 0);
  JEBM_USER_CHECK(wx.shape() == want && wx.dtype() == DType::Float32,
                  "--checkpoint " << o.checkpoint << ": walkers.x is " << shape_str(wx.shape()) << ", want "
                                  << shape_str(want));
  JEBM_USER_CHECK(o.n <= wx.size(0), "--n " << o.n << ": the checkpoint holds only " << wx.size(0) << " walkers");
  return wx.rows(0, o.n).clone();
}

// Runs the unweighted ULA moves on `pop` (with the run directory locked and options.txt written), writes the grid
// and prints the summary; 3 when the samples' mean energy is not finite.
int draw_samples(const SampleOptions& o, const SafeTensors& st, const EnergyKind& kind, Module& energy,
                 WalkerPopulation& pop, const std::string& source) {
  TrainerOptions to;
  to.eval_chunk = o.eval_chunk > 0 || pop.x.device().is_cpu() ? o.eval_chunk : kDeviceEvalChunk;
  Trainer tr(energy, pop, to);  // only for energy_and_grad
  UlaConfig ula;
  ula.h = o.h;
  ula.sigma = o.sigma;
  ula.drift_clip = o.drift_clip;
  ula.weighted = false;
  const RunDirLock run_lock = prepare_run_dir(o.out, o.force, false);
  write_options(o.out, sample_options(o.vm, o.h, o.sigma, o.drift_clip));
  Progress prog("sample " + kind.name, o.steps, !o.no_progress);
  Tensor u, g;
  for (int64_t k = 0; k < o.steps; ++k) {
    tr.energy_and_grad(pop.x, u, g);
    ula_jarzynski_step(pop, u, g, ula, MoveKind::MoveOnly);
    prog.update(k + 1);
  }
  prog.finish();
  u = tr.energy_only(pop.x);
  double mean_u = 0.0;
  for (double v : u.to_vector()) mean_u += v / static_cast<double>(o.n);
  const auto side = static_cast<int64_t>(std::ceil(std::sqrt(static_cast<double>(o.n))));
  const int64_t cols = o.columns > 0 ? o.columns : std::max<int64_t>(1, side);
  const std::string grid = (fs::path(o.out) / "samples.png").string();
  write_image_grid(grid, pop.x.to(Device::cpu()), cols);

  const auto it_meta = st.metadata.find("iteration");
  std::cout << "jebm sample: " << kind.name << " energy from " << o.checkpoint << " (update "
            << (it_meta != st.metadata.end() ? it_meta->second : std::string("?")) << "); " << o.n << " samples from "
            << o.from << ", " << o.steps << " ULA steps, h " << o.h << ", noise "
            << (o.sigma > 0 ? o.sigma : std::sqrt(2 * o.h)) << ", drift clip " << o.drift_clip << " ("
            << (source.empty() ? "command line" : source) << "); mean energy " << std::setprecision(6) << mean_u
            << "\n  wrote " << grid << ", " << (fs::path(o.out) / "options.txt").string() << "\n";
  if (std::isfinite(mean_u)) return 0;
  std::cerr << "jebm sample: the samples' mean energy is " << mean_u << " (non-finite): the sampler diverged; try a "
               "smaller --h or a --drift-clip\n";
  return 3;
}

}  // namespace

int run_sample(const std::vector<std::string>& args) {
  SampleOptions o;
  const OptionRanges R = sample_ranges();
  if (!parse_sample_options(args, o, R)) return 0;
  apply_threads(o.threads);
  const Device device = device_from_name(o.device_name);
  if (device.is_cuda()) cuda_api::require("jebm sample --device cuda");

  const SafeTensors st = reading_user_file([&] { return load_safetensors(o.checkpoint); });
  const EnergyKind& kind = detect_energy(st);
  const Shape image = run_image_shape(st, kind);
  check_tensor_bytes(o.n, shape_numel(image), 4,
                     "--n " + std::to_string(o.n) + " samples of " + shape_str(image) + " pixels");
  const std::string source = resolve_ula_settings(o, kind, R);

  // The energy with the checkpoint's parameters (every one present, same shape and dtype).
  Generator gen{o.seed, 0};
  std::shared_ptr<Module> energy = make_energy(kind, gen);
  load_module_parameters(*energy, st, "model.");
  const Tensor x0 = initial_samples(o, st, image);
  energy->to(device);
  WalkerPopulation pop = WalkerPopulation::create(x0.to(device), o.seed ^ kSampleNoiseKey);
  return draw_samples(o, st, kind, *energy, pop, source);
}

}  // namespace jebm
