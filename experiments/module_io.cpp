// append_module_parameters / load_module_parameters (see module_io.hpp). Tested by tests/test_image_ebm.cpp,
// tests/test_sample.cpp and tests/test_classifier_cmd.cpp.
#include "experiments/module_io.hpp"

namespace jebm {

void append_module_parameters(Module& m, const std::string& prefix,
                              std::vector<std::pair<std::string, Tensor>>& tensors) {
  for (const auto& [name, v] : m.named_parameters()) tensors.emplace_back(prefix + name, v.value());
}

void load_module_parameters(Module& m, const SafeTensors& st, const std::string& prefix) {
  for (auto& [name, v] : m.named_parameters()) {
    const Tensor t = get(st, prefix + name, v.shape(), v.value().dtype());
    require_finite(st.path, prefix + name, t);  // a NaN weight is the file's fault, not the sampler's
    v.value().copy_(t);
  }
}

}  // namespace jebm
