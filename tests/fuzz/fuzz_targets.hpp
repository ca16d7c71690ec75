// Fuzz targets: one per file loader (safetensors, IDX images/labels, CIFAR-10 batch, PNG) and per parser of
// text the user or a file supplies (safetensors header JSON, options.txt, the image experiments' and gmm's --config).
// Each target feeds one input to the real loader; a jebm::Error is the expected answer to a bad input, any
// other exception or a sanitizer report is a finding. Seeds are valid small files the target makes itself.
// Run by tests/fuzz/fuzz_driver.cpp (CTest: fuzz_seeded) and tests/fuzz/libfuzzer_main.cpp (JEBM_FUZZ=ON).
#pragma once
#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace jebm::fuzz {

using Bytes = std::vector<uint8_t>;

struct FuzzTarget {
  std::string name;
  bool loader = false;  // a file loader (campaigns give these 10x the inputs of the text parsers)
  // Runs one input. Returns true when it was accepted (loaded/parsed), false when rejected with a jebm::Error.
  std::function<bool(const uint8_t* data, size_t size)> run;
  std::function<std::vector<Bytes>()> seeds;
  std::vector<std::string> tokens;  // dictionary for the mutator (format keywords, magic values)
};

// All targets, in a fixed order. Their scratch files live in one private temporary directory per process.
const std::vector<FuzzTarget>& fuzz_targets();
// The target `name`, or a std::invalid_argument listing the names.
const FuzzTarget& fuzz_target(const std::string& name);

}  // namespace jebm::fuzz
