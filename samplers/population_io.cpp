// save/load of WalkerPopulation and Trainer::State as checkpoint tensors + metadata (see population_io.hpp).
// Tested by tests/test_image_ebm.cpp (exact resume) and tests/test_cifar10.cpp.
#include "samplers/population_io.hpp"

#include <exception>

namespace jebm {

namespace {

void copy_into(Tensor& dst, const SafeTensors& st, const std::string& name) {
  const Tensor src = get(st, name);
  JEBM_CHECK(src.shape() == dst.shape() && src.dtype() == dst.dtype(),
             st.path << ": tensor \"" << name << "\" is " << shape_str(src.shape()) << " " << dtype_name(src.dtype())
                     << ", this run expects " << shape_str(dst.shape()) << " " << dtype_name(dst.dtype())
                     << " (were the options changed since the run started?)");
  dst.copy_(src);
}

}  // namespace

const std::string& checkpoint_meta(const SafeTensors& st, const std::string& key) {
  const auto it = st.metadata.find(key);
  JEBM_CHECK(it != st.metadata.end(), st.path << ": checkpoint metadata has no \"" << key << "\"");
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
  JEBM_CHECK(ok && pos == s.size(),
             st.path << ": checkpoint metadata \"" << key << "\" = \"" << s << "\" is not an unsigned integer");
  return static_cast<uint64_t>(v);
}

void save_population(const WalkerPopulation& pop, CheckpointTensors& t, CheckpointMetadata& md) {
  t.emplace_back("walkers.x", pop.x);
  t.emplace_back("walkers.log_w", pop.log_w);
  t.emplace_back("walkers.x_prev", pop.x_prev);
  t.emplace_back("walkers.partial", pop.partial);
  t.emplace_back("walkers.pending", pop.pending);
  t.emplace_back("walkers.log_z_offset",
                 Tensor::from_vector(std::vector<double>{pop.log_z_offset}, {1}, DType::Float64));
  md["walkers.seed"] = std::to_string(pop.seed);
  md["walkers.moves"] = std::to_string(pop.moves);
  md["walkers.resamplings"] = std::to_string(pop.resamplings);
}

void load_population(const SafeTensors& st, WalkerPopulation& pop) {
  copy_into(pop.x, st, "walkers.x");
  copy_into(pop.log_w, st, "walkers.log_w");
  copy_into(pop.x_prev, st, "walkers.x_prev");
  copy_into(pop.partial, st, "walkers.partial");
  copy_into(pop.pending, st, "walkers.pending");
  pop.log_z_offset = get(st, "walkers.log_z_offset", Shape{1}, DType::Float64).data<double>()[0];
  pop.seed = checkpoint_meta_u64(st, "walkers.seed");
  pop.moves = checkpoint_meta_u64(st, "walkers.moves");
  pop.resamplings = static_cast<int64_t>(checkpoint_meta_u64(st, "walkers.resamplings"));
}

void save_trainer_state(const Trainer::State& s, CheckpointTensors& t, CheckpointMetadata& md) {
  if (s.u_cache.defined()) t.emplace_back("trainer.u_cache", s.u_cache);
  if (!s.last_moved.empty())
    t.emplace_back("trainer.last_moved",
                   Tensor::from_vector(s.last_moved, {static_cast<int64_t>(s.last_moved.size())}));
  md["iteration"] = std::to_string(s.iteration);
  md["trainer.initialised"] = s.initialised ? "1" : "0";
  md["trainer.params_changed"] = s.params_changed ? "1" : "0";
  md["trainer.all_moved"] = s.all_moved ? "1" : "0";
  md["trainer.subset_counter"] = std::to_string(s.subset_counter);
  md["trainer.last_moved_count"] = std::to_string(s.last_moved.size());
}

Trainer::State load_trainer_state(const SafeTensors& st, int64_t walkers) {
  Trainer::State s;
  s.iteration = static_cast<int64_t>(checkpoint_meta_u64(st, "iteration"));
  s.initialised = checkpoint_meta_u64(st, "trainer.initialised") != 0;
  s.params_changed = checkpoint_meta_u64(st, "trainer.params_changed") != 0;
  s.all_moved = checkpoint_meta_u64(st, "trainer.all_moved") != 0;
  s.subset_counter = checkpoint_meta_u64(st, "trainer.subset_counter");
  if (st.tensors.count("trainer.u_cache"))
    s.u_cache = copy_tensor(get(st, "trainer.u_cache", Shape{walkers}, DType::Float64));
  const int64_t lm = static_cast<int64_t>(checkpoint_meta_u64(st, "trainer.last_moved_count"));
  if (lm > 0) s.last_moved = get(st, "trainer.last_moved", Shape{lm}, DType::Int64).host_vector<int64_t>();
  return s;
}

}  // namespace jebm
