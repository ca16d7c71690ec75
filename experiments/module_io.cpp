// append_module_parameters, load_module_parameters, load_optimizer_state (see module_io.hpp). Tested by
// tests/test_image_ebm.cpp, tests/test_sample.cpp, tests/test_classifier_cmd.cpp, tests/test_classifier_resume.cpp
// and tests/test_load_errors.cpp (non-finite parameters).
#include "experiments/module_io.hpp"

#include "runtime/user_error.hpp"

namespace jebm {

void append_module_parameters(Module& m, const std::string& prefix,
                              std::vector<std::pair<std::string, Tensor>>& tensors) {
  for (const auto& [name, v] : m.named_parameters()) tensors.emplace_back(prefix + name, v.value());
}

void load_module_parameters(Module& m, const SafeTensors& st, const std::string& prefix) {
  for (auto& [name, v] : m.named_parameters()) {
    // A missing, misshapen or non-finite tensor is the file's fault (not jebm's, nor the sampler's).
    const Tensor t = reading_user_file([&] {
      Tensor got = get(st, prefix + name, v.shape(), v.value().dtype());
      require_finite(st.path, prefix + name, got);
      return got;
    });
    v.value().copy_(t);
  }
}

void load_optimizer_state(Optimizer& opt, const SafeTensors& st, const std::string& path) {
  NamedTensors os;
  for (const auto& [name, v] : st.tensors)
    if (name.rfind("optim.", 0) == 0) os.emplace_back(name.substr(6), v);
  try {
    opt.load_state(os);
  } catch (const Error& e) {
    std::string why = e.what();
    if (has_source_location(why)) why.erase(why.rfind(" ("));
    JEBM_USER_FAIL(path << ": its optimizer state (optim.*) does not fit: " << why);
  }
}

}  // namespace jebm
