// `jebm mnist-classifier` and `jebm cifar10-classifier` (experiments/classifier_cmd.cpp), and through
// experiments/metric_classifier.hpp the Classifier they train, its checkpoint and batched inference, which the
// experiments use. Tested by tests/test_classifier_cmd.cpp (synthetic IDX data, reload, bad paths).
#pragma once
#include <string>
#include <vector>

#include "experiments/metric_classifier.hpp"

namespace jebm {

// The subcommands (registered in experiments/main.cpp).
int run_mnist_classifier(const std::vector<std::string>& args);
int run_cifar10_classifier(const std::vector<std::string>& args);

}  // namespace jebm
