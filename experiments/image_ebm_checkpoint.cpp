// The image runs' checkpoint and the metrics truncation of a resume (see image_ebm_checkpoint.hpp).
// Tested by tests/test_image_ebm.cpp and tests/test_cifar10.cpp.
#include "experiments/image_ebm_checkpoint.hpp"

#include <algorithm>
#include <fstream>
#include <iomanip>
#include <sstream>

#include "experiments/divergence_guard.hpp"
#include "experiments/module_io.hpp"
#include "experiments/version.hpp"
#include "models/checkpoint.hpp"
#include "runtime/comm/communicator.hpp"
#include "runtime/ops.hpp"
#include "runtime/user_error.hpp"
#include "samplers/population_io.hpp"

namespace jebm {

namespace fs = std::filesystem;

namespace {

std::string fmt_double(double v) {
  std::ostringstream os;
  os << std::setprecision(17) << v;
  return os.str();
}

}  // namespace

std::string image_ebm_checkpoint_path(const std::string& out) {
  return (fs::path(out) / "checkpoint.safetensors").string();
}

void save_image_ebm_checkpoint(const std::string& path, const ImageEbmConfig& c, Module& energy,
                               const Optimizer& opt, const WalkerPopulation& pop, const WalkerPopulation* holdout,
                               const Trainer& tr, const ImageEbmLoopState& ls, int64_t per_epoch) {
  CheckpointTensors t;
  for (const auto& [name, v] : energy.named_parameters()) {
    double bad = 0.0;
    const int64_t i = first_non_finite(v.value(), &bad);
    JEBM_USER_CHECK(i < 0, path << ": not written: parameter " << name << " holds " << bad << " at entry " << i);
  }
  append_module_parameters(energy, "model.", t);
  for (const auto& [name, v] : opt.state_tensors()) t.emplace_back("optim." + name, v);
  CheckpointMetadata md = {
      {"format", kImageEbmCheckpointFormat},
      {"command", c.command},
      {"algo", algorithm_name(c.algo)},
      {"weight_kernel", weight_kernel_name(c.weight_kernel)},
      {"seed", std::to_string(c.seed)},
      {"walkers", std::to_string(pop.size())},
      {"burned_in", ls.burned_in ? "1" : "0"},
      {"burnin_done", std::to_string(ls.burnin_done)},
      {"epoch", std::to_string(tr.iteration() / per_epoch)},  // for people; the iteration is what resume uses
      {"elapsed_s", fmt_double(ls.elapsed_s)},
  };
  // Written only when on, so that a default run's checkpoint is what it was before these options existed.
  if (c.holdout_walkers > 0) md["holdout_walkers"] = std::to_string(c.holdout_walkers);
  if (c.correction_groups > 0) md["correction_groups"] = std::to_string(c.correction_groups);
  if (effective_rejuvenation_moves(c) > 0) md["rejuvenation_moves"] = std::to_string(effective_rejuvenation_moves(c));
  for (const auto& [k, v] : run_provenance(world().size())) md[k] = v;  // what made it (jebm.version, ...)
  save_population(pop, t, md);
  if (holdout) save_population(*holdout, t, md, "holdout.");
  save_trainer_state(tr.state(), t, md, holdout ? holdout->size() : 0);
  save_safetensors(path, t, md);
}

void load_image_ebm_checkpoint(const std::string& path, const ImageEbmConfig& c, Module& energy, Optimizer& opt,
                               WalkerPopulation& pop, WalkerPopulation* holdout, Trainer& tr,
                               ImageEbmLoopState& ls) {
  const SafeTensors st = reading_user_file([&] { return load_safetensors(path); });
  const std::string format = checkpoint_meta(st, "format");  // a copy: GCC 13 flags the reference (-Wdangling-reference)
  JEBM_USER_CHECK(format == kImageEbmCheckpointFormat, path << ": format \"" << format << "\", expected \"" << kImageEbmCheckpointFormat << "\"");
  JEBM_USER_CHECK(checkpoint_meta(st, "algo") == algorithm_name(c.algo),
             path << ": the run was made with --algo " << checkpoint_meta(st, "algo") << ", the options say --algo "
                  << algorithm_name(c.algo));
  // Checkpoints from before --weight-kernel existed were weighted with 1/(2 sigma^2).
  const auto wk = st.metadata.find("weight_kernel");
  const std::string run_wk = wk == st.metadata.end() ? "sigma" : wk->second;
  JEBM_USER_CHECK(run_wk == weight_kernel_name(c.weight_kernel),
             path << ": the run was made with --weight-kernel " << run_wk << ", the options say --weight-kernel "
                  << weight_kernel_name(c.weight_kernel) << " (pass --weight-kernel " << run_wk << " to resume it)");
  JEBM_USER_CHECK(checkpoint_meta_u64(st, "seed") == c.seed, path << ": the run was made with --seed "
                                                             << checkpoint_meta(st, "seed")
                                                             << ", the options say --seed " << c.seed);
  JEBM_USER_CHECK(static_cast<int64_t>(checkpoint_meta_u64(st, "walkers")) == c.walkers,
             path << ": the run has " << checkpoint_meta(st, "walkers") << " walkers, --walkers is " << c.walkers);
  // Absent from checkpoints of runs without them (and from before they existed): off.
  for (const auto& [key, value] : {std::pair<const char*, int64_t>{"holdout_walkers", c.holdout_walkers},
                                   std::pair<const char*, int64_t>{"correction_groups", c.correction_groups},
                                   std::pair<const char*, int64_t>{"rejuvenation_moves", effective_rejuvenation_moves(c)}}) {
    const int64_t run = st.metadata.count(key) ? static_cast<int64_t>(checkpoint_meta_u64(st, key)) : 0;
    std::string option = key;
    std::replace(option.begin(), option.end(), '_', '-');
    JEBM_USER_CHECK(run == value, path << ": the run was made with --" << option << " " << run << ", the options say --"
                                  << option << " " << value << " (it cannot change on resume)");
  }
  JEBM_USER_CHECK((holdout ? holdout->size() : 0) == c.holdout_walkers,
             path << ": --holdout-walkers " << c.holdout_walkers << " but the run holds "
                  << (holdout ? holdout->size() : 0) << " held-out walkers");
  load_module_parameters(energy, st, "model.");
  load_optimizer_state(opt, st, path);
  load_population(st, pop);
  if (holdout) load_population(st, *holdout, "holdout.");
  tr.restore(load_trainer_state(st, c.walkers, c.holdout_walkers));
  ls.burned_in = checkpoint_meta_u64(st, "burned_in") != 0;
  ls.burnin_done = static_cast<int64_t>(checkpoint_meta_u64(st, "burnin_done"));
  ls.elapsed_s = checkpoint_meta_f64(st, "elapsed_s");
}

}  // namespace jebm
