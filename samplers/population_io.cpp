// save/load of WalkerPopulation and Trainer::State as checkpoint tensors + metadata (see population_io.hpp).
// Tested by tests/test_image_ebm.cpp (exact resume) and tests/test_cifar10.cpp.
#include "samplers/population_io.hpp"

#include <cmath>
#include <cstdlib>
#include <exception>

#include "runtime/user_error.hpp"

namespace jebm {

namespace {

void copy_into(Tensor& dst, const SafeTensors& st, const std::string& name) {
  const Tensor src = get(st, name);
  JEBM_USER_CHECK(src.shape() == dst.shape() && src.dtype() == dst.dtype(),
                  st.path << ": tensor \"" << name << "\" is " << shape_str(src.shape()) << " "
                          << dtype_name(src.dtype()) << ", this run expects " << shape_str(dst.shape()) << " "
                          << dtype_name(dst.dtype()) << " (were the options changed since the run started?)");
  dst.copy_(src);
}

}  // namespace

const std::string& checkpoint_meta(const SafeTensors& st, const std::string& key) {
  const auto it = st.metadata.find(key);
  JEBM_USER_CHECK(it != st.metadata.end(), st.path << ": checkpoint metadata has no \"" << key << "\"");
  return it->second;
}

uint64_t checkpoint_meta_u64(const SafeTensors& st, const std::string& key) {
  const std::string& s = checkpoint_meta(st, key);
  size_t pos = 0;
  unsigned long long v = 0;
  bool ok = !s.empty() && s[0] >= '0' && s[0] <= '9';
  try {
    if (ok) v = std::stoull(s, &pos);
  } catch (const std::exception&) {
    ok = false;
  }
  JEBM_USER_CHECK(ok && pos == s.size(),
                  st.path << ": checkpoint metadata \"" << key << "\" = \"" << s << "\" is not an unsigned integer");
  return static_cast<uint64_t>(v);
}

double checkpoint_meta_f64(const SafeTensors& st, const std::string& key) {
  const std::string& s = checkpoint_meta(st, key);
  char* end = nullptr;
  const double v = s.empty() ? 0.0 : std::strtod(s.c_str(), &end);
  JEBM_USER_CHECK(!s.empty() && end == s.c_str() + s.size() && std::isfinite(v),
                  st.path << ": checkpoint metadata \"" << key << "\" = \"" << s << "\" is not a finite number");
  return v;
}

void save_population(const WalkerPopulation& pop, CheckpointTensors& t, CheckpointMetadata& md,
                     const std::string& prefix) {
  t.emplace_back(prefix + "x", pop.x);
  t.emplace_back(prefix + "log_w", pop.log_w);
  t.emplace_back(prefix + "x_prev", pop.x_prev);
  t.emplace_back(prefix + "partial", pop.partial);
  t.emplace_back(prefix + "pending", pop.pending);
  t.emplace_back(prefix + "log_z_offset", Tensor::from_vector(std::vector<double>{pop.log_z_offset}, {1}, DType::Float64));
  md[prefix + "seed"] = std::to_string(pop.seed);
  md[prefix + "moves"] = std::to_string(pop.moves);
  md[prefix + "resamplings"] = std::to_string(pop.resamplings);
}

void load_population(const SafeTensors& st, WalkerPopulation& pop, const std::string& prefix) {
  copy_into(pop.x, st, prefix + "x");
  copy_into(pop.log_w, st, prefix + "log_w");
  copy_into(pop.x_prev, st, prefix + "x_prev");
  copy_into(pop.partial, st, prefix + "partial");
  copy_into(pop.pending, st, prefix + "pending");
  pop.log_z_offset = get(st, prefix + "log_z_offset", Shape{1}, DType::Float64).data<double>()[0];
  pop.seed = checkpoint_meta_u64(st, prefix + "seed");
  pop.moves = checkpoint_meta_u64(st, prefix + "moves");
  pop.resamplings = static_cast<int64_t>(checkpoint_meta_u64(st, prefix + "resamplings"));
}

void save_track(const WalkerTrack& r, const std::string& key, CheckpointTensors& t, CheckpointMetadata& md) {
  if (r.u_cache.defined()) t.emplace_back(key + "u_cache", r.u_cache);
  if (!r.last_moved.empty())
    t.emplace_back(key + "last_moved", Tensor::from_vector(r.last_moved, {static_cast<int64_t>(r.last_moved.size())}));
  md[key + "initialised"] = r.initialised ? "1" : "0";
  md[key + "params_changed"] = r.params_changed ? "1" : "0";
  md[key + "all_moved"] = r.all_moved ? "1" : "0";
  md[key + "subset_counter"] = std::to_string(r.subset_counter);
  md[key + "last_moved_count"] = std::to_string(r.last_moved.size());
}

WalkerTrack load_track(const SafeTensors& st, const std::string& key, int64_t walkers) {
  WalkerTrack r;
  r.initialised = checkpoint_meta_u64(st, key + "initialised") != 0;
  r.params_changed = checkpoint_meta_u64(st, key + "params_changed") != 0;
  r.all_moved = checkpoint_meta_u64(st, key + "all_moved") != 0;
  r.subset_counter = checkpoint_meta_u64(st, key + "subset_counter");
  if (st.tensors.count(key + "u_cache"))
    r.u_cache = get(st, key + "u_cache", Shape{walkers}, DType::Float64).clone();
  JEBM_USER_CHECK(!r.initialised || r.u_cache.defined(),
                  st.path << ": " << key << "initialised is 1 but the file has no tensor \"" << key << "u_cache\"");
  const int64_t lm = static_cast<int64_t>(checkpoint_meta_u64(st, key + "last_moved_count"));
  if (lm > 0) r.last_moved = get(st, key + "last_moved", Shape{lm}, DType::Int64).host_vector<int64_t>();
  // Checked here, where the file is known, rather than by Trainer::restore.
  for (int64_t i : r.last_moved)
    JEBM_USER_CHECK(i >= 0 && i < walkers, st.path << ": tensor \"" << key << "last_moved\" holds walker index " << i
                                                   << ", outside [0, " << walkers << ")");
  return r;
}

void save_trainer_state(const Trainer::State& s, CheckpointTensors& t, CheckpointMetadata& md,
                        int64_t holdout_walkers) {
  md["iteration"] = std::to_string(s.iteration);
  save_track(s.walkers, "trainer.", t, md);
  if (holdout_walkers > 0) save_track(s.holdout, "trainer.holdout_", t, md);
  if (s.log_z_correction != 0.0)
    t.emplace_back("trainer.log_z_correction",
                   Tensor::from_vector(std::vector<double>{s.log_z_correction}, {1}, DType::Float64));
}

Trainer::State load_trainer_state(const SafeTensors& st, int64_t walkers, int64_t holdout_walkers) {
  Trainer::State s;
  s.iteration = static_cast<int64_t>(checkpoint_meta_u64(st, "iteration"));
  s.walkers = load_track(st, "trainer.", walkers);
  if (holdout_walkers > 0) s.holdout = load_track(st, "trainer.holdout_", holdout_walkers);
  if (st.tensors.count("trainer.log_z_correction"))
    s.log_z_correction = get(st, "trainer.log_z_correction", Shape{1}, DType::Float64).data<double>()[0];
  return s;
}

}  // namespace jebm
