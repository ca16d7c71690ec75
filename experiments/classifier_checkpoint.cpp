// The classifier runs' resume state (see classifier_checkpoint.hpp). Tested by tests/test_classifier_resume.cpp.
#include "experiments/classifier_checkpoint.hpp"

#include <filesystem>
#include <map>
#include <utility>
#include <vector>

#include "experiments/cli.hpp"
#include "experiments/module_io.hpp"
#include "experiments/version.hpp"
#include "models/checkpoint.hpp"
#include "runtime/user_error.hpp"
#include "samplers/population_io.hpp"

namespace jebm {

namespace {

std::string exact(double v) { return short_double(v); }  // round-trips

// The options a checkpoint must agree with: they fix the images, their order and the learning-rate schedule.
std::map<std::string, std::string> run_identity(const ClassifierOptions& o, int64_t train_count) {
  return {{"seed", std::to_string(o.seed)},
          {"epochs", std::to_string(o.epochs)},
          {"batch_size", std::to_string(o.batch_size)},
          {"lr", exact(o.lr)},
          {"train_count", std::to_string(train_count)}};
}

SafeTensors read_checkpoint(const std::string& path) {
  JEBM_USER_CHECK(std::filesystem::is_regular_file(path),
                  path << ": no classifier checkpoint there (the run was not made by a jebm that writes one, or the "
                          "file was removed); start afresh with --out DIR --force");
  SafeTensors st = reading_user_file([&] { return load_safetensors(path); });
  const auto it = st.metadata.find("format");
  JEBM_USER_CHECK(it != st.metadata.end() && it->second == kClassifierCheckpointFormat,
                  path << ": not a classifier checkpoint (format '" << (it == st.metadata.end() ? "" : it->second)
                       << "', want '" << kClassifierCheckpointFormat << "')");
  return st;
}

int64_t epochs_done(const SafeTensors& st, const std::string& path, const ClassifierOptions& o) {
  const auto e = static_cast<int64_t>(reading_user_file([&] { return checkpoint_meta_u64(st, "epochs_done"); }));
  JEBM_USER_CHECK(e <= o.epochs, path << ": " << e << " epochs done, more than the run's --epochs " << o.epochs);
  return e;
}

}  // namespace

std::string classifier_checkpoint_path(const std::string& dir) {
  return (std::filesystem::path(dir) / "checkpoint.safetensors").string();
}

void save_classifier_checkpoint(const std::string& path, const ClassifierOptions& o, Module& model,
                                const Optimizer& opt, const ClassifierProgress& p, int64_t train_count) {
  std::vector<std::pair<std::string, Tensor>> t;
  append_module_parameters(model, "model.", t);
  for (const auto& [name, v] : opt.state_tensors()) t.emplace_back("optim." + name, v);
  std::map<std::string, std::string> md = run_identity(o, train_count);
  md["format"] = kClassifierCheckpointFormat;
  md["epochs_done"] = std::to_string(p.epochs_done);
  md["test_accuracy"] = exact(p.test_accuracy);
  md["reject_accuracy"] = exact(p.reject_accuracy);
  md["elapsed_s"] = exact(p.elapsed_s);
  for (const auto& [k, v] : run_provenance(1)) md[k] = v;  // what made it (jebm.version, ...)
  save_safetensors(path, t, md);
}

int64_t classifier_checkpoint_epochs(const std::string& path, const ClassifierOptions& o) {
  return epochs_done(read_checkpoint(path), path, o);
}

ClassifierProgress load_classifier_checkpoint(const std::string& path, const ClassifierOptions& o, Module& model,
                                              Optimizer& opt, int64_t train_count) {
  const SafeTensors st = read_checkpoint(path);
  for (const auto& [key, value] : run_identity(o, train_count)) {
    const std::string& was = reading_user_file([&]() -> const std::string& { return checkpoint_meta(st, key); });
    std::string option = key == "train_count" ? "training images (--data, --limit, --digits)" : "--" + key;
    if (key == "batch_size") option = "--batch-size";
    JEBM_USER_CHECK(was == value, path << ": the run was made with " << option << " " << was << ", now " << value
                                       << " (it cannot change on resume)");
  }
  load_module_parameters(model, st, "model.");
  load_optimizer_state(opt, st, path);
  ClassifierProgress p;
  p.epochs_done = epochs_done(st, path, o);
  p.test_accuracy = checkpoint_meta_f64(st, "test_accuracy");
  p.reject_accuracy = checkpoint_meta_f64(st, "reject_accuracy");
  p.elapsed_s = checkpoint_meta_f64(st, "elapsed_s");
  return p;
}

}  // namespace jebm
