// The seeded mutator of tests/fuzz/mutator.hpp. Weighted towards what breaks loaders: sizes and counts in
// headers (interesting integers), truncation, and text numbers in JSON/INI. Tested by CTest fuzz_seeded.
#include "tests/fuzz/mutator.hpp"

#include <algorithm>

namespace jebm::fuzz {

namespace {

const uint64_t kInteresting[] = {0,          1,          2,          7,          8,          0x7f,       0x80,
                                 0xff,       0x100,      0x7fff,     0xffff,     0x10000,    0x7fffffff, 0x80000000,
                                 0xffffffff, 0x100000000, 0x7fffffffffffffff, 0x8000000000000000, ~uint64_t{0}};

const char* const kNumbers[] = {"0",   "-1",  "1",    "4294967295", "4294967296", "9223372036854775807",
                                "-9223372036854775808", "9223372036854775808", "18446744073709551616", "1e308",
                                "-1e308", "inf", "nan", "1e-320", "4611686018427387904", "00", "-0", "0x10"};

bool digit(uint8_t c) { return c >= '0' && c <= '9'; }

}  // namespace

uint64_t Mutator::next() {
  uint64_t z = (state_ += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

std::vector<uint8_t> Mutator::mutate(const std::vector<uint8_t>& in, const std::vector<uint8_t>& other) {
  std::vector<uint8_t> b = in;
  const size_t rounds = 1 + below(4);
  for (size_t r = 0; r < rounds; ++r) mutate_once(b, other);
  if (b.size() > max_size_) b.resize(max_size_);
  return b;
}

void Mutator::mutate_once(std::vector<uint8_t>& b, const std::vector<uint8_t>& other) {
  const size_t n = b.size();
  switch (below(10)) {
    case 0:  // flip one bit
      if (n) b[below(n)] ^= static_cast<uint8_t>(1u << below(8));
      break;
    case 1:  // one random byte
      if (n) b[below(n)] = static_cast<uint8_t>(next());
      break;
    case 2: {  // an interesting integer of 1, 2, 4 or 8 bytes, little- or big-endian
      if (!n) break;
      const size_t width = size_t{1} << below(4);
      const uint64_t v = kInteresting[below(std::size(kInteresting))] + (below(4) == 0 ? below(3) - 1 : 0);
      const size_t at = below(n);
      const bool big = below(2);
      for (size_t i = 0; i < width && at + i < n; ++i)
        b[at + i] = static_cast<uint8_t>(v >> (8 * (big ? width - 1 - i : i)));
      break;
    }
    case 3: {  // delete a chunk
      if (!n) break;
      const size_t at = below(n), len = 1 + below(std::min<size_t>(n - at, 64));
      b.erase(b.begin() + static_cast<std::ptrdiff_t>(at), b.begin() + static_cast<std::ptrdiff_t>(at + len));
      break;
    }
    case 4: {  // insert random bytes or duplicate a chunk of the input
      const size_t at = below(n + 1);
      std::vector<uint8_t> chunk;
      if (n && below(2)) {
        const size_t from = below(n);
        chunk.assign(b.begin() + static_cast<std::ptrdiff_t>(from),
                     b.begin() + static_cast<std::ptrdiff_t>(from + 1 + below(std::min<size_t>(n - from, 256))));
      } else {
        for (size_t i = 0, len = 1 + below(16); i < len; ++i) chunk.push_back(static_cast<uint8_t>(next()));
      }
      b.insert(b.begin() + static_cast<std::ptrdiff_t>(at), chunk.begin(), chunk.end());
      break;
    }
    case 5:  // truncate
      if (n) b.resize(below(n));
      break;
    case 6: {  // splice: our head, the other entry's tail
      if (other.empty()) break;
      const size_t cut = below(n + 1), from = below(other.size());
      b.resize(cut);
      b.insert(b.end(), other.begin() + static_cast<std::ptrdiff_t>(from), other.end());
      break;
    }
    case 7: {  // replace a run of digits by an interesting number
      if (!n) break;
      size_t at = below(n);
      while (at < n && !digit(b[at])) ++at;
      if (at == n) break;
      size_t end = at;
      while (end < n && digit(b[end])) ++end;
      const std::string num = kNumbers[below(std::size(kNumbers))];
      b.erase(b.begin() + static_cast<std::ptrdiff_t>(at), b.begin() + static_cast<std::ptrdiff_t>(end));
      b.insert(b.begin() + static_cast<std::ptrdiff_t>(at), num.begin(), num.end());
      break;
    }
    case 8: {  // a dictionary token at a random place
      if (tokens_.empty()) break;
      const std::string& t = tokens_[below(tokens_.size())];
      b.insert(b.begin() + static_cast<std::ptrdiff_t>(below(n + 1)), t.begin(), t.end());
      break;
    }
    default: {  // a few bytes shuffled in place
      if (n < 2) break;
      const size_t at = below(n - 1), len = 2 + below(std::min<size_t>(n - at - 1, 8));
      for (size_t i = len - 1; i > 0; --i) std::swap(b[at + i], b[at + below(i + 1)]);
      break;
    }
  }
}

}  // namespace jebm::fuzz
