// A Module's parameters in a checkpoint: written as "<prefix><parameter name>" tensors, read back with every
// parameter present and of its shape and dtype; and an optimiser's state read back. Used by the image runs'
// checkpoints, `jebm sample` and the classifiers. Tested by tests/test_image_ebm.cpp, tests/test_sample.cpp and tests/test_classifier_cmd.cpp.
#pragma once
#include <string>
#include <utility>
#include <vector>

#include "models/checkpoint.hpp"
#include "models/module.hpp"
#include "models/optim.hpp"

namespace jebm {

// Appends (prefix + name, value) for every parameter of m, in named_parameters() order.
void append_module_parameters(Module& m, const std::string& prefix,
                              std::vector<std::pair<std::string, Tensor>>& tensors);
// Copies tensor prefix + name of st into each parameter of m (on m's device). A missing tensor, or one of another
// shape or dtype, or one holding a NaN or an infinity, is a jebm::Error naming the file, the tensor and both
// shapes or the element; tensors of st that m does not have are ignored (callers that must refuse them check st.tensors themselves).
void load_module_parameters(Module& m, const SafeTensors& st, const std::string& prefix);
// The optimiser state saved as "optim.<name>" tensors (Optimizer::state_tensors) back into opt; a state that does
// not fit its parameters is a UserError naming `path`, the checkpoint.
void load_optimizer_state(Optimizer& opt, const SafeTensors& st, const std::string& path);

}  // namespace jebm
