// A deterministic byte mutator for the seeded fuzz driver: bit flips, interesting integers (both byte orders),
// chunk deletion/insertion/duplication, truncation, splicing, number-text swaps and dictionary tokens. The same
// seed gives the same inputs on every machine. Tested through tests/fuzz/fuzz_driver.cpp (CTest fuzz_seeded).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace jebm::fuzz {

class Mutator {
 public:
  Mutator(uint64_t seed, std::vector<std::string> tokens, size_t max_size = size_t{1} << 20)
      : state_(seed), tokens_(std::move(tokens)), max_size_(max_size) {}

  // 1 to 4 stacked mutations of `in`; `other` is a second corpus entry for splicing.
  std::vector<uint8_t> mutate(const std::vector<uint8_t>& in, const std::vector<uint8_t>& other);
  uint64_t next();                       // splitmix64
  size_t below(size_t n) { return n ? static_cast<size_t>(next() % n) : 0; }

 private:
  void mutate_once(std::vector<uint8_t>& b, const std::vector<uint8_t>& other);
  uint64_t state_;
  std::vector<std::string> tokens_;
  size_t max_size_;
};

}  // namespace jebm::fuzz
