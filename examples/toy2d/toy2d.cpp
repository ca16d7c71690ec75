// toy2d: a user-defined energy trained with jebm from outside the project. An MLP energy (2-128-128-1, SiLU, plus a
// confining term) learns 2-D data sets whose modes have unequal weights, with Jarzynski-weighted walkers and with
// PCD at the same budget. The plane is small enough for quadrature, so every checkpoint compares the walkers'
// estimates of log Z with the exact value, and each mode's mass under the model with the data's. Writes
// metrics_<set>.csv and panel_<set>_<update>.png into --out. Built and run out of tree by tests/install.
#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <iostream>
#include <map>
#include <memory>
#include <sstream>
#include <string>
#include <sys/stat.h>
#include <type_traits>
#include <vector>

#include "autograd/variable.hpp"
#include "models/layers.hpp"
#include "models/optim.hpp"
#include "runtime/file_io.hpp"
#include "samplers/trainer.hpp"

#include "panel.hpp"

using namespace jebm;

namespace {

// ------------------------------------------------------------------------------------------------ options
struct Options {
  std::string out = "toy2d-out", datasets = "ring,moons";
  int64_t seed = 1, updates = 1000, every = 200, walkers = 500, holdout = 250, batch = 256, data_size = 10000;
  int64_t grid = 512, moves = 4, rejuvenation = 3, groups = 16, tile = 192;
  double h = 0.01, lr = 1e-3, box = 6.0;
};

// Defaults, and why (set from the method's scales and the time budget, not tuned to the result): the narrowest
// data scale is sigma = 0.25, so h = 0.01 makes a move's noise sqrt(2h) = 0.14 about half of it; 4 moves per
// update bring a walker's local relaxation time within a mode (sigma^2 / h ~ 6 moves) to about one update; 3 warm
// moves after a resampling spread the copies over sqrt(3 * 2h) = 0.24 ~ sigma; Adam with beta1 = 0 makes
// Adam::step_scale_dot the exact effective step of the first-order log Z correction. Walkers, updates and grid fit
// both data sets and both algorithms into about a minute on 2 cores.
const char* kUsage =
    "usage: toy2d [--out DIR] [--datasets ring,moons] [--seed S] [--updates K] [--every C] [--walkers N]\n"
    "             [--holdout-walkers M] [--batch B] [--data-size D] [--grid G] [--moves-per-update m]\n"
    "             [--rejuvenation-moves r] [--correction-groups q] [--h STEP] [--lr LR] [--box L] [--tile PX]\n";

// The whole of `val` as a number of type T, else an error naming the option and the value.
template <typename T>
T parse_number(const std::string& key, const std::string& val) {
  size_t used = 0;
  T v{};
  try {
    if constexpr (std::is_integral_v<T>) v = std::stoll(val, &used);
    else v = std::stod(val, &used);
  } catch (const std::logic_error&) {
  }
  if (used == 0 || used != val.size())
    throw std::invalid_argument(key + " " + val + (std::is_integral_v<T> ? ": not an integer" : ": not a number"));
  return v;
}

Options parse(int argc, char** argv) {
  Options o;
  std::map<std::string, int64_t*> ints = {
      {"--seed", &o.seed},         {"--updates", &o.updates},     {"--every", &o.every},
      {"--walkers", &o.walkers},   {"--holdout-walkers", &o.holdout}, {"--batch", &o.batch},
      {"--data-size", &o.data_size}, {"--grid", &o.grid},         {"--moves-per-update", &o.moves},
      {"--rejuvenation-moves", &o.rejuvenation}, {"--correction-groups", &o.groups}, {"--tile", &o.tile}};
  std::map<std::string, double*> reals = {{"--h", &o.h}, {"--lr", &o.lr}, {"--box", &o.box}};
  for (int i = 1; i < argc; ++i) {
    const std::string key = argv[i];
    if (key == "--help" || key == "-h") {
      std::cout << kUsage;
      std::exit(0);
    }
    if (key != "--out" && key != "--datasets" && !ints.count(key) && !reals.count(key))
      throw std::invalid_argument("unknown option " + key + "\n" + kUsage);
    if (i + 1 >= argc) throw std::invalid_argument(key + ": needs a value");
    const std::string val = argv[++i];
    if (key == "--out") o.out = val;
    else if (key == "--datasets") o.datasets = val;
    else if (ints.count(key)) *ints[key] = parse_number<int64_t>(key, val);
    else *reals[key] = parse_number<double>(key, val);
  }
  const auto positive = [](const char* name, double v) {
    std::ostringstream s;
    s << name << " " << v << ": must be > 0";
    if (!(v > 0)) throw std::invalid_argument(s.str());
  };
  positive("--updates", static_cast<double>(o.updates));
  positive("--every", static_cast<double>(o.every));
  positive("--walkers", static_cast<double>(o.walkers));
  positive("--batch", static_cast<double>(o.batch));
  positive("--data-size", static_cast<double>(o.data_size));
  positive("--moves-per-update", static_cast<double>(o.moves));
  positive("--h", o.h);
  positive("--lr", o.lr);
  positive("--box", o.box);
  positive("--tile", static_cast<double>(o.tile));
  if (o.grid < 16) throw std::invalid_argument("--grid " + std::to_string(o.grid) + ": must be >= 16");
  if (o.holdout < 0 || o.rejuvenation < 0 || o.groups < 0)
    throw std::invalid_argument("--holdout-walkers, --rejuvenation-moves, --correction-groups: must be >= 0");
  if (o.groups == 1) throw std::invalid_argument("--correction-groups 1: must be 0 (off) or >= 2");
  return o;
}

// ------------------------------------------------------------------------------------------------ data sets
constexpr double kPi = 3.14159265358979323846;

// A data set: its modes (weights, a density, which mode a point belongs to) and a sampler.
struct DataSet {
  std::string name;
  std::vector<double> weights;  // per mode, sum 1
  double sigma = 0.25;
  // Ring: 8 Gaussians at radius 4, weights 1:2:...:8. Moons: two half circles of radius 2.5 (the usual two-moons
  // layout, scaled), upper moon 3x the lower one, Gaussian noise sigma.
  bool ring = true;
  static constexpr int kArc = 256;  // points per moon arc for its density and nearest-moon test

  std::vector<double> centre(int64_t mode, double t) const {  // ring: the mode's mean; moons: arc point at t
    if (ring) return {4.0 * std::cos(2 * kPi * mode / 8.0), 4.0 * std::sin(2 * kPi * mode / 8.0)};
    const double s = 2.5;
    if (mode == 0) return {s * std::cos(t) - 0.5 * s, s * std::sin(t) - 0.25 * s};
    return {s * (1.0 - std::cos(t)) - 0.5 * s, s * (0.5 - std::sin(t)) - 0.25 * s};
  }
  static double arc_t(int k) { return kPi * (k + 0.5) / kArc; }

  double density(double x, double y) const {
    const double norm = 1.0 / (2 * kPi * sigma * sigma);
    double p = 0.0;
    for (size_t m = 0; m < weights.size(); ++m) {
      const int reps = ring ? 1 : kArc;
      double pm = 0.0;
      for (int k = 0; k < reps; ++k) {
        const std::vector<double> c = centre(static_cast<int64_t>(m), arc_t(k));
        const double d2 = (x - c[0]) * (x - c[0]) + (y - c[1]) * (y - c[1]);
        pm += std::exp(-d2 / (2 * sigma * sigma));
      }
      p += weights[m] * norm * pm / reps;
    }
    return p;
  }

  int64_t mode_of(double x, double y) const {  // ring: nearest angle sector; moons: nearest arc
    if (ring) {
      const double a = std::atan2(y, x);
      return static_cast<int64_t>(std::lround(a / (2 * kPi / 8.0)) + 8) % 8;
    }
    double best = 1e300;
    int64_t mode = 0;
    for (int64_t m = 0; m < 2; ++m)
      for (int k = 0; k < kArc; ++k) {
        const std::vector<double> c = centre(m, arc_t(k));
        const double d2 = (x - c[0]) * (x - c[0]) + (y - c[1]) * (y - c[1]);
        if (d2 < best) best = d2, mode = m;
      }
    return mode;
  }

  // n points [n, 2] float32: a mode drawn by its weight, then (moons) a place along the arc, then the noise.
  Tensor sample(int64_t n, uint64_t seed) const {
    Generator gen{seed, 0};
    const std::vector<double> u = rand_uniform({n, 2}, 0.0, 1.0, gen, DType::Float64).to_vector();
    const std::vector<double> z = rand_normal({n, 2}, 0.0, sigma, gen, DType::Float64).to_vector();
    std::vector<float> xy(static_cast<size_t>(2 * n));
    for (int64_t i = 0; i < n; ++i) {
      int64_t m = 0;
      for (double c = weights[0]; u[2 * i] > c && m + 1 < static_cast<int64_t>(weights.size());) c += weights[++m];
      const std::vector<double> c = centre(m, kPi * u[2 * i + 1]);
      xy[2 * i] = static_cast<float>(c[0] + z[2 * i]);
      xy[2 * i + 1] = static_cast<float>(c[1] + z[2 * i + 1]);
    }
    return Tensor::from_vector(xy, {n, 2});
  }
};

DataSet make_dataset(const std::string& name) {
  DataSet d;
  d.name = name;
  if (name == "ring") {
    for (int m = 1; m <= 8; ++m) d.weights.push_back(m / 36.0);
  } else if (name == "moons") {
    d.ring = false;
    d.weights = {0.75, 0.25};
  } else {
    throw std::invalid_argument("--datasets: unknown data set '" + name + "' (ring, moons)");
  }
  return d;
}

// ------------------------------------------------------------------------------------------------ the energy
// U(x) = MLP(x) + kStiff * relu(|x|^2 - kR^2)^2: the network shapes the modes; the confining term (zero inside
// radius kR = 5, +12 nats at radius 6) keeps the model's mass inside the quadrature box whatever the network
// does far from the data, where nothing trains it. Its curvature at radius 5 (200 kStiff = 20) keeps ULA with
// h = 0.01 stable there.
class MlpEnergy : public Module {
 public:
  static constexpr double kR = 5.0, kStiff = 0.1;
  explicit MlpEnergy(uint64_t seed) {
    Generator gen{seed, 0};
    net_ = register_module("net", std::make_shared<Sequential>());
    net_->emplace<Linear>(2, 128, gen);
    net_->emplace<SiLU>();
    net_->emplace<Linear>(128, 128, gen);
    net_->emplace<SiLU>();
    net_->emplace<Linear>(128, 1, gen);
  }
  ag::Var forward(const ag::Var& x) override {  // x: [N, 2] -> [N]
    const ag::Var net = ag::reshape(net_->forward(x), {x.size(0)});
    const ag::Var outside = ag::relu(ag::add_scalar(ag::sum(ag::square(x), 1), -kR * kR));
    return net + ag::mul_scalar(ag::square(outside), kStiff);
  }

 private:
  std::shared_ptr<Sequential> net_;
};

// ------------------------------------------------------------------------------------------------ quadrature
// Cell centres of a g x g grid over [-L, L]^2 (row-major, y by row), and of a coarser grid over [-2L, 2L]^2 whose
// cells outside [-L, L]^2 measure the mass the box misses.
struct Grid {
  int64_t g = 0;
  double lo = 0, cell = 0, outer_cell = 0;
  Tensor points, outer;  // [g*g, 2] and [outer cells, 2] float32
};

Grid make_grid(int64_t g, double box) {
  Grid q;
  q.g = g;
  q.lo = -box;
  q.cell = 2 * box / static_cast<double>(g);
  std::vector<float> p(static_cast<size_t>(2 * g * g));
  for (int64_t r = 0; r < g; ++r)
    for (int64_t c = 0; c < g; ++c) {
      p[static_cast<size_t>(2 * (r * g + c))] = static_cast<float>(q.lo + (c + 0.5) * q.cell);
      p[static_cast<size_t>(2 * (r * g + c) + 1)] = static_cast<float>(q.lo + (r + 0.5) * q.cell);
    }
  q.points = Tensor::from_vector(p, {g * g, 2});
  const int64_t go = std::max<int64_t>(g / 4, 8);
  q.outer_cell = 4 * box / static_cast<double>(go);
  std::vector<float> o;
  for (int64_t r = 0; r < go; ++r)
    for (int64_t c = 0; c < go; ++c) {
      const double x = -2 * box + (c + 0.5) * q.outer_cell, y = -2 * box + (r + 0.5) * q.outer_cell;
      if (std::abs(x) > box || std::abs(y) > box) o.insert(o.end(), {static_cast<float>(x), static_cast<float>(y)});
    }
  q.outer = Tensor::from_vector(o, {static_cast<int64_t>(o.size() / 2), 2});
  return q;
}

std::vector<double> energies(Module& energy, const Tensor& x) {  // forward only, in pieces
  ag::NoGradGuard no_grad;
  std::vector<double> u;
  u.reserve(static_cast<size_t>(x.size(0)));
  for (int64_t b = 0; b < x.size(0); b += 16384) {
    const std::vector<double> piece = energy(ag::Var(x.rows(b, std::min(x.size(0), b + 16384)))).value().to_vector();
    u.insert(u.end(), piece.begin(), piece.end());
  }
  return u;
}

double log_sum_exp_neg(const std::vector<double>& u, double log_cell_area) {  // log sum exp(-u) * area
  const double m = -*std::min_element(u.begin(), u.end());
  double s = 0.0;
  for (double v : u) s += std::exp(-v - m);
  return m + std::log(s) + log_cell_area;
}

// What quadrature says about the current energy.
struct Exact {
  double log_z = 0.0, outside = 0.0;  // log Z over the plane (box + outer cells); mass outside the box
  std::vector<double> p;              // model density on the grid cells
  std::vector<double> mass;           // per mode
};

Exact quadrature(Module& energy, const Grid& q, const std::vector<int64_t>& mode_of_cell, int64_t modes) {
  Exact e;
  const std::vector<double> u = energies(energy, q.points), uo = energies(energy, q.outer);
  const double lz_box = log_sum_exp_neg(u, 2 * std::log(q.cell));
  const double lz_out = uo.empty() ? -INFINITY : log_sum_exp_neg(uo, 2 * std::log(q.outer_cell));
  e.log_z = std::max(lz_box, lz_out) + std::log1p(std::exp(-std::abs(lz_box - lz_out)));
  e.outside = std::exp(lz_out - e.log_z);
  e.p.resize(u.size());
  e.mass.assign(static_cast<size_t>(modes), 0.0);
  const double area = q.cell * q.cell;
  for (size_t i = 0; i < u.size(); ++i) {
    e.p[i] = std::exp(-u[i] - e.log_z);
    e.mass[static_cast<size_t>(mode_of_cell[i])] += e.p[i] * area;
  }
  return e;
}

// n exact samples of exp(-U)/Z up to the grid's resolution: a cell drawn by its mass, then a uniform point in it.
Tensor grid_samples(const Exact& e, const Grid& q, int64_t n, uint64_t seed) {
  std::vector<double> cdf(e.p.size());
  double c = 0.0;
  for (size_t i = 0; i < e.p.size(); ++i) cdf[i] = (c += e.p[i]);
  Generator gen{seed, 0};
  const std::vector<double> u = rand_uniform({n, 3}, 0.0, 1.0, gen, DType::Float64).to_vector();
  std::vector<float> xy(static_cast<size_t>(2 * n));
  for (int64_t i = 0; i < n; ++i) {
    const auto k = static_cast<int64_t>(
        std::min<size_t>(std::lower_bound(cdf.begin(), cdf.end(), u[3 * i] * c) - cdf.begin(), cdf.size() - 1));
    xy[2 * i] = static_cast<float>(q.lo + (k % q.g + u[3 * i + 1]) * q.cell);
    xy[2 * i + 1] = static_cast<float>(q.lo + (k / q.g + u[3 * i + 2]) * q.cell);
  }
  return Tensor::from_vector(xy, {n, 2});
}

// ------------------------------------------------------------------------------------------------ training
// One algorithm's run: its own copy of the initial energy, optimiser, walkers and Trainer.
struct Run {
  Algorithm algo;
  MlpEnergy energy;
  std::unique_ptr<Adam> adam;
  WalkerPopulation walkers, holdout;
  std::unique_ptr<Trainer> trainer;

  Run(Algorithm a, const Options& o, const Tensor& x0, const Tensor& h0, double log_z0, const Tensor& data)
      : algo(a), energy(static_cast<uint64_t>(o.seed)) {
    adam = std::make_unique<Adam>(energy.parameters(), o.lr, std::make_pair(0.0, 0.999));
    walkers = WalkerPopulation::create(x0, static_cast<uint64_t>(o.seed) + 11, log_z0);
    TrainerOptions t;
    t.algorithm = a;
    t.ula.h = o.h;
    t.moves_per_update = o.moves;
    t.rejuvenation_moves = o.rejuvenation;
    t.correction_groups = a == Algorithm::Jarzynski ? o.groups : 0;
    trainer = std::make_unique<Trainer>(energy, walkers, t);
    if (a == Algorithm::Jarzynski && h0.defined()) {
      holdout = WalkerPopulation::create(h0, static_cast<uint64_t>(o.seed) + 13, log_z0);
      trainer->set_holdout(&holdout);
    }
    const uint64_t batch_key = static_cast<uint64_t>(o.seed) + 17;
    const int64_t batch = o.batch, rows = data.size(0);
    trainer->data_batch = [data, batch_key, batch, rows](int64_t it) {
      // The same batches for both algorithms: they differ only in the walkers' weights.
      return gather_rows(data, Tensor::from_vector(random_rows(batch, rows, batch_key, static_cast<uint64_t>(it)),
                                                   {batch}));
    };
    trainer->optimizer_step = [this](int64_t) { adam->step(); };
    trainer->step_scale_dot = [this](const std::vector<Tensor>& c) { return adam->step_scale_dot(c); };
  }
};

std::string fmt(double v) {
  std::ostringstream s;
  s.precision(6);
  s << v;
  return s.str();
}

// Each mode's share of the walkers: their normalised weights (Jarzynski) or 1/N each (PCD).
std::vector<double> walker_mode_mass(const WalkerPopulation& w, bool weighted, const DataSet& ds, int64_t modes) {
  const std::vector<double> xy = w.x.to_vector();
  const std::vector<double> wt = weighted ? w.weights() : std::vector<double>(xy.size() / 2, 2.0 / xy.size());
  std::vector<double> mass(static_cast<size_t>(modes), 0.0);
  for (size_t i = 0; i < wt.size(); ++i) mass[static_cast<size_t>(ds.mode_of(xy[2 * i], xy[2 * i + 1]))] += wt[i];
  return mass;
}

toy2d::WalkerTile walker_tile(const WalkerPopulation& w, bool weighted) {
  toy2d::WalkerTile t;
  t.xy = w.x.to_vector();
  if (weighted) t.w = w.weights();
  return t;
}

// What the data set is on the grid: its density, each cell's mode, each mode's mass, its entropy.
struct Truth {
  Grid q;
  int64_t modes = 0;
  std::vector<int64_t> mode_of_cell;
  std::vector<double> target;
  double entropy = 0.0;
  toy2d::DensityTile tile;
};

Truth make_truth(const Options& o, const DataSet& ds) {
  Truth t;
  t.q = make_grid(o.grid, o.box);
  t.modes = static_cast<int64_t>(ds.weights.size());
  const int64_t cells = o.grid * o.grid;
  t.mode_of_cell.resize(static_cast<size_t>(cells));
  t.tile = {std::vector<double>(static_cast<size_t>(cells)), o.grid};
  t.target.assign(static_cast<size_t>(t.modes), 0.0);
  const std::vector<double> g = t.q.points.to_vector();
  const double area = t.q.cell * t.q.cell;
  for (size_t i = 0; i < static_cast<size_t>(cells); ++i) {
    const double p = ds.density(g[2 * i], g[2 * i + 1]);
    t.mode_of_cell[i] = ds.mode_of(g[2 * i], g[2 * i + 1]);
    t.tile.p[i] = p;
    t.target[static_cast<size_t>(t.mode_of_cell[i])] += p * area;
    if (p > 0) t.entropy -= p * std::log(p) * area;
  }
  return t;
}

// One algorithm at a checkpoint: quadrature at theta_k against the walkers' estimates; appends its CSV row, prints
// a line, and returns its panel column.
toy2d::PanelColumn checkpoint(Run& r, int64_t k, const Options& o, const DataSet& ds, const Truth& t,
                              const Tensor& data, double elapsed, std::ostream& csv) {
  r.trainer->bring_up_to_date();  // the weights refer to theta_k, as the next step's estimate would
  const Exact e = quadrature(r.energy, t.q, t.mode_of_cell, t.modes);
  const std::vector<double> u = energies(r.energy, data);
  double mean_u = 0.0;
  for (double v : u) mean_u += v / static_cast<double>(u.size());
  const double ce = e.log_z + mean_u;
  // The model's mode masses against the data's; and the walkers' (weighted) against the model's: the sampler's
  // own error, which the gradient inherits.
  const bool jz = r.algo == Algorithm::Jarzynski;
  const std::vector<double> wm = walker_mode_mass(r.walkers, jz, ds, t.modes);
  double err = 0.0, walker_err = 0.0;
  for (size_t m = 0; m < wm.size(); ++m) {
    err = std::max(err, std::abs(e.mass[m] - t.target[m]));
    walker_err = std::max(walker_err, std::abs(wm[m] - e.mass[m]));
  }
  const double nan = std::nan("");
  const double lz = jz ? r.walkers.log_z_estimate() : nan;
  const double corrected = jz && o.groups > 0 ? lz + r.trainer->state().log_z_correction : nan;
  const double held = jz && o.holdout > 0 ? r.holdout.log_z_estimate() : nan;
  csv << ds.name << "," << algorithm_name(r.algo) << "," << k << "," << fmt(e.log_z) << "," << fmt(lz) << ","
      << fmt(corrected) << "," << fmt(held) << "," << fmt(ce) << "," << fmt(ce - t.entropy) << "," << fmt(e.outside)
      << "," << fmt(r.walkers.stats().ess) << "," << r.walkers.resamplings << "," << fmt(err) << ","
      << fmt(walker_err);
  for (double m : e.mass) csv << "," << fmt(m);
  csv << "," << fmt(elapsed) << "\n";
  std::cout << ds.name << " " << algorithm_name(r.algo) << " update " << k << ": log Z exact " << fmt(e.log_z)
            << (jz ? " jarzynski " + fmt(lz) + " corrected " + fmt(corrected) + " held-out " + fmt(held) : "")
            << ", largest mode-mass error " << fmt(err) << " (walkers vs model " << fmt(walker_err)
            << "), mass outside box " << fmt(e.outside) << std::endl;
  return {algorithm_name(r.algo), {e.p, o.grid}, walker_tile(r.walkers, jz)};
}

// Trains both algorithms on one data set; returns the CSV text.
std::string run_dataset(const Options& o, const DataSet& ds) {
  const auto t0 = std::chrono::steady_clock::now();
  const Truth t = make_truth(o, ds);
  const Tensor data = ds.sample(o.data_size, static_cast<uint64_t>(o.seed) + 5);

  // theta_0 is the same for both algorithms, and so are the walkers: exact samples of exp(-U_0)/Z_0, with log Z_0
  // from quadrature, so that the Jarzynski estimates are of log Z itself.
  MlpEnergy init(static_cast<uint64_t>(o.seed));
  const Exact e0 = quadrature(init, t.q, t.mode_of_cell, t.modes);
  const Tensor x0 = grid_samples(e0, t.q, o.walkers, static_cast<uint64_t>(o.seed) + 7);
  const Tensor h0 = o.holdout > 0 ? grid_samples(e0, t.q, o.holdout, static_cast<uint64_t>(o.seed) + 9) : Tensor();
  std::vector<std::unique_ptr<Run>> runs;
  runs.push_back(std::make_unique<Run>(Algorithm::Jarzynski, o, x0, h0, e0.log_z, data));
  runs.push_back(std::make_unique<Run>(Algorithm::Pcd, o, x0, Tensor(), e0.log_z, data));

  std::ostringstream csv;
  csv << "dataset,algo,update,exact_log_z,jarzynski_log_z,corrected_log_z,holdout_log_z,exact_ce,kl,mass_outside_box,"
         "ess,resamplings,max_mode_error,walker_mode_error";
  for (int64_t m = 0; m < t.modes; ++m) csv << ",mass_" << m;
  csv << ",time_s\n" << ds.name << ",data," << 0 << ",,,,,,,,,,,";
  for (double m : t.target) csv << "," << fmt(m);
  csv << ",\n";
  for (int64_t k = 0;; ++k) {
    if (k % o.every == 0 || k == o.updates) {
      std::vector<toy2d::PanelColumn> cols;
      for (const auto& r : runs) {
        const double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        cols.push_back(checkpoint(*r, k, o, ds, t, data, elapsed, csv));
      }
      char name[64];
      std::snprintf(name, sizeof name, "panel_%s_%06lld.png", ds.name.c_str(), static_cast<long long>(k));
      toy2d::write_panel(o.out + "/" + name, t.tile, cols, -o.box, o.box, o.tile);
    }
    if (k == o.updates) break;
    for (const auto& r : runs) r->trainer->step();
  }
  return csv.str();
}

}  // namespace

int main(int argc, char** argv) {
  try {
    const Options o = parse(argc, argv);
    std::vector<DataSet> sets;
    std::stringstream names(o.datasets);
    for (std::string n; std::getline(names, n, ',');) sets.push_back(make_dataset(n));
    if (::mkdir(o.out.c_str(), 0777) != 0 && errno != EEXIST)
      throw std::runtime_error("--out " + o.out + ": cannot create the directory");
    for (const DataSet& ds : sets) {
      const auto t0 = std::chrono::steady_clock::now();
      write_file_atomic(o.out + "/metrics_" + ds.name + ".csv", run_dataset(o, ds));
      std::cout << ds.name << ": " << std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count()
                << " s\n";
    }
    return 0;
  } catch (const std::invalid_argument& e) {
    std::cerr << "toy2d: " << e.what() << "\n";
    return 2;
  } catch (const std::exception& e) {
    std::cerr << "toy2d: error: " << e.what() << "\n";
    return 1;
  }
}
