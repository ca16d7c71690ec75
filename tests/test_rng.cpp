// Random numbers (runtime/philox.hpp, runtime/cpu/rng.cpp, rand_* in runtime/ops.hpp): the Philox-4x32-10
// known-answer vectors, the documented element -> (stream, member) mapping, determinism across seeds, offsets and
// OpenMP thread counts, the moments of uniform and normal draws, the Philox shuffles (runtime/shuffle.hpp), and the
// AVX-512 and AVX2 twins of the walkers' noise (runtime/philox_normals.hpp) against the scalar reference, bit for bit.
#include "tests/helpers.hpp"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <map>
#include <numeric>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "runtime/philox_normals.hpp"
#include "runtime/ops.hpp"
#include "runtime/philox.hpp"
#include "runtime/shuffle.hpp"

using namespace jebm;

BOOST_AUTO_TEST_CASE(philox_known_answers) {
  // Random123's kat_vectors for philox4x32_10.
  const Philox4 zero = philox4x32_10(0, 0, 0, 0, 0, 0);
  const uint32_t want_zero[4] = {0x6627e8d5u, 0xe169c58du, 0xbc57ac4cu, 0x9b00dbd8u};
  const Philox4 ones = philox4x32_10(0xffffffffu, 0xffffffffu, 0xffffffffu, 0xffffffffu, 0xffffffffu, 0xffffffffu);
  const uint32_t want_ones[4] = {0x408f276du, 0x41c83b0eu, 0xa20bc7c6u, 0x6d5451fdu};
  for (int k = 0; k < 4; ++k) {
    BOOST_TEST(zero.v[k] == want_zero[k]);
    BOOST_TEST(ones.v[k] == want_ones[k]);
  }
  // philox_block puts (stream, offset) in the counter and the seed in the key.
  const Philox4 b = philox_block(0xffffffffffffffffull, 0xffffffffffffffffull, 0xffffffffffffffffull);
  for (int k = 0; k < 4; ++k) BOOST_TEST(b.v[k] == want_ones[k]);
}

BOOST_AUTO_TEST_CASE(elements_follow_the_documented_philox_mapping) {
  // Element i is member i % 2 of the pair from (seed, stream = i / 2, offset); odd sizes use half a pair.
  for (DType dt : {DType::Float32, DType::Float64}) {
    Generator gen{1234, 17};
    const auto u = rand_uniform({7}, -2.0, 3.0, gen, dt).to_vector();
    const auto z = rand_normal({7}, 0.5, 2.0, gen, dt).to_vector();
    BOOST_TEST(gen.offset == 19u);
    const double tol = dt == DType::Float32 ? 1e-6 : 1e-15;
    for (int64_t i = 0; i < 7; ++i) {
      double a, b;
      philox_uniform2(1234, static_cast<uint64_t>(i / 2), 17, &a, &b);
      BOOST_TEST(u[i] == -2.0 + 5.0 * (i % 2 ? b : a), boost::test_tools::tolerance(tol));
      philox_normal2(1234, static_cast<uint64_t>(i / 2), 18, &a, &b);
      BOOST_TEST(z[i] == 0.5 + 2.0 * (i % 2 ? b : a), boost::test_tools::tolerance(tol));
    }
  }
}

BOOST_AUTO_TEST_CASE(same_seed_same_numbers_different_offsets_differ) {
  Generator g1{42, 0}, g2{42, 0}, g3{43, 0};
  const auto a = rand_normal({1000}, 0, 1, g1).to_vector();
  const auto b = rand_normal({1000}, 0, 1, g2).to_vector();
  const auto c = rand_normal({1000}, 0, 1, g3).to_vector();
  const auto d = rand_normal({1000}, 0, 1, g1).to_vector();  // next offset of the same generator
  BOOST_TEST(a == b);
  int same_seed = 0, same_offset = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    same_seed += a[i] == c[i];
    same_offset += a[i] == d[i];
  }
  BOOST_TEST(same_seed == 0);
  BOOST_TEST(same_offset == 0);
  // In-place draws consume an offset too, and reproduce the out-of-place ones.
  Generator g4{42, 0};
  Tensor t = Tensor::empty({1000});
  normal_(t, 0, 1, g4);
  BOOST_TEST(t.to_vector() == a);
  BOOST_TEST(g4.offset == 1u);
  // A prefix of a larger draw equals the smaller draw: values depend on (seed, offset, i) only.
  Generator g5{42, 0};
  const auto big = rand_normal({5001}, 0, 1, g5).to_vector();
  BOOST_TEST(std::vector<double>(big.begin(), big.begin() + 1000) == a);
}

BOOST_AUTO_TEST_CASE(results_do_not_depend_on_thread_count) {
  std::vector<std::vector<double>> runs;
  for (int threads : {1, 2}) {
    const jebm::test::ThreadCount count(threads);
    Generator gen{7, 3};
    std::vector<double> r = rand_normal({100001}, 0, 1, gen, DType::Float64).to_vector();
    const auto u = rand_uniform({100001}, 0, 1, gen, DType::Float32).to_vector();
    r.insert(r.end(), u.begin(), u.end());
    runs.push_back(r);
  }
  BOOST_TEST(runs[0] == runs[1]);
}

BOOST_AUTO_TEST_CASE(moments_within_statistical_bounds) {
  const int64_t n = jebm::test::sanitized() ? 100000 : 1000000;
  const double dn = static_cast<double>(n);
  for (DType dt : {DType::Float32, DType::Float64}) {
    Generator gen{2023, 0};
    // Normal(mean 1.5, sd 2): sample mean within 5 sigma of 1.5 (sigma = 2 / sqrt(n)); sample variance within
    // 5 sigma of 4 (Var of s^2 = 2 sd^4 / n for a normal).
    const auto z = rand_normal({n}, 1.5, 2.0, gen, dt).to_vector();
    double s = 0, s2 = 0;
    for (double v : z) s += v;
    const double mean = s / dn;
    for (double v : z) s2 += (v - mean) * (v - mean);
    const double var = s2 / (dn - 1);
    BOOST_TEST(std::fabs(mean - 1.5) < 5 * 2.0 / std::sqrt(dn));
    BOOST_TEST(std::fabs(var - 4.0) < 5 * std::sqrt(2.0 * 16.0 / dn));
    // Uniform(-1, 3): mean 1, variance 16/12; every draw inside the interval.
    const auto u = rand_uniform({n}, -1.0, 3.0, gen, dt).to_vector();
    double us = 0, us2 = 0;
    bool inside = true;
    for (double v : u) {
      us += v;
      inside = inside && v >= -1.0 && v <= 3.0;
    }
    const double umean = us / dn;
    for (double v : u) us2 += (v - umean) * (v - umean);
    const double uvar = us2 / (dn - 1);
    BOOST_TEST(inside);
    const double var_u = 16.0 / 12.0, m4_u = 256.0 / 80.0;  // fourth central moment of U(a, b): (b-a)^4 / 80
    BOOST_TEST(std::fabs(umean - 1.0) < 5 * std::sqrt(var_u / dn));
    BOOST_TEST(std::fabs(uvar - var_u) < 5 * std::sqrt((m4_u - var_u * var_u) / dn));
    // Neighbouring elements (the two members of a pair, and consecutive pairs) are uncorrelated.
    double c = 0;
    for (int64_t i = 0; i + 1 < n; ++i) c += (z[i] - 1.5) * (z[i + 1] - 1.5);
    BOOST_TEST(std::fabs(c / (dn - 1) / 4.0) < 5 / std::sqrt(dn));
  }
}

// runtime/shuffle.hpp: the documented swap rule step by step on two items, every order of three items about equally
// often (each 1000 of 6000 counters; sd 28.9, bound ~5 sd), permutations at any size, prefixes independent of b.
BOOST_AUTO_TEST_CASE(philox_shuffles_follow_their_rule_and_are_uniform) {
  for (uint64_t c = 0; c < 64; ++c) {
    double u0, u1;
    philox_uniform2(5, 1, c, &u0, &u1);  // philox_permutation's one step: i = 1, j = floor(2 u)
    const std::vector<int64_t> swapped{1, 0}, kept{0, 1};
    BOOST_TEST((philox_permutation(2, 5, c) == (u0 < 0.5 ? swapped : kept)));
    philox_uniform2(5, 0, c, &u0, &u1);  // the prefix's first step: i = 0, j = floor(2 u)
    BOOST_TEST(philox_shuffled_prefix(2, 1, 5, c)[0] == (u0 < 0.5 ? 0 : 1));
  }
  for (bool prefix : {false, true}) {
    std::map<std::vector<int64_t>, int> seen;
    for (uint64_t c = 0; c < 6000; ++c)
      ++seen[prefix ? philox_shuffled_prefix(3, 3, 7, c) : philox_permutation(3, 7, c)];
    BOOST_TEST(seen.size() == 6u);
    for (const auto& [order, k] : seen) BOOST_TEST(std::abs(k - 1000) < 150, "prefix " << prefix << ": " << k);
  }
  const std::vector<int64_t> whole = philox_shuffled_prefix(50, 50, 9, 3);
  for (const std::vector<int64_t>& p : {whole, philox_permutation(50, 9, 3)}) {
    std::vector<int64_t> sorted = p;
    std::sort(sorted.begin(), sorted.end());
    std::vector<int64_t> iota(50);
    std::iota(iota.begin(), iota.end(), int64_t{0});
    BOOST_TEST(sorted == iota, boost::test_tools::per_element());
  }
  for (int64_t b : {0, 1, 17, 49})
    BOOST_TEST(philox_shuffled_prefix(50, b, 9, 3) == std::vector<int64_t>(whole.begin(), whole.begin() + b),
               boost::test_tools::per_element());
  BOOST_TEST(philox_permutation(50, 9, 3) != philox_permutation(50, 9, 4));
  BOOST_TEST(philox_shuffled_prefix(50, 50, 9, 3) != philox_shuffled_prefix(50, 50, 10, 3));
}

// --- the AVX-512 and AVX2 twins of philox_normal2_poly -------------------------------------------------------------

namespace {

struct Avx512Present {
  boost::test_tools::assertion_result operator()(boost::unit_test::test_unit_id) const {
    return jebm::test::skip_unless(cpu::noise_avx512_supported(),
                                   "this CPU has no AVX-512F: the noise's AVX-512 twin cannot run here");
  }
};

struct Avx2Present {
  boost::test_tools::assertion_result operator()(boost::unit_test::test_unit_id) const {
    return jebm::test::skip_unless(cpu::noise_avx2_supported(),
                                   "this CPU has no AVX2: the noise's AVX2 twin cannot run here");
  }
};

bool same_bits(double a, double b) { return std::memcmp(&a, &b, sizeof a) == 0; }

// One twin: its stream entry (philox_normals_avx512 / _avx2) and its words entry (..._from_words_...).
struct NoiseTwin {
  void (*streams)(uint64_t seed, uint64_t first, uint64_t offset, int64_t np, double* z);
  void (*words)(const uint32_t* w0, const uint32_t* w1, const uint32_t* w2, const uint32_t* w3, int64_t np, double* z);
};
const NoiseTwin kAvx512Twin{cpu::philox_normals_avx512, cpu::philox_normals_from_words_avx512};
const NoiseTwin kAvx2Twin{cpu::philox_normals_avx2, cpu::philox_normals_from_words_avx2};

// The twin's np pairs from (seed, first, offset) against philox_normal2_poly stream by stream; counts mismatches.
int twin_mismatches(const NoiseTwin& twin, uint64_t seed, uint64_t first, uint64_t offset, int64_t np) {
  std::vector<double> z(static_cast<size_t>(2 * np) + 3, 7.0);  // the 3 past the end must stay untouched
  twin.streams(seed, first, offset, np, z.data());
  int bad = 0;
  for (int64_t p = 0; p < np; ++p) {
    double z0, z1;
    philox_normal2_poly(seed, first + static_cast<uint64_t>(p), offset, &z0, &z1);
    bad += !same_bits(z[static_cast<size_t>(2 * p)], z0) + !same_bits(z[static_cast<size_t>(2 * p + 1)], z1);
  }
  for (size_t e = static_cast<size_t>(2 * np); e < z.size(); ++e) bad += z[e] != 7.0;
  return bad;
}

// Edge counters: stream lo words that carry into hi within one vector step, streams wrapping at 2^64, offsets and
// seeds at 0, 2^32 - 1, 2^32 and 2^64 - 1; every length 0..100 (odd pair counts, part vectors, and from one to
// several pipelined groups with a part group last, for either twin) and a long run; then random (seed, first,
// offset, length), and so random words, at about a million pairs.
int stream_mismatches(const NoiseTwin& twin) {
  constexpr uint64_t kMax = ~0ull, k32 = 0xffffffffull;
  const std::vector<uint64_t> edges = {0, 1, k32 - 3, k32, k32 + 1, kMax - 5, kMax, 0x8000000000000000ull};
  int bad = 0;
  for (uint64_t seed : edges)
    for (uint64_t first : edges)
      for (uint64_t offset : edges)
        for (int64_t np : {1, 8, 13})
          bad += twin_mismatches(twin, seed, first, offset, np);
  for (int64_t np = 0; np <= 100; ++np) bad += twin_mismatches(twin, 5, k32 - 20, 3, np);
  bad += twin_mismatches(twin, 2023, 0, 0, 100000);
  std::mt19937_64 rng(12345);
  for (int t = 0; t < 2000; ++t)
    bad += twin_mismatches(twin, rng(), rng(), rng() >> (rng() % 64), 1 + static_cast<int64_t>(rng() % 500));
  return bad;
}

// The twin's transform of the first n words against philox_normal2_poly_words; counts mismatches.
int words_mismatches(const NoiseTwin& twin, const std::vector<uint32_t>& w0, const std::vector<uint32_t>& w1,
                     const std::vector<uint32_t>& w2, const std::vector<uint32_t>& w3, int64_t n) {
  std::vector<double> z(static_cast<size_t>(2 * n) + 3, 7.0);  // the 3 past the end must stay untouched
  twin.words(w0.data(), w1.data(), w2.data(), w3.data(), n, z.data());
  int bad = 0;
  for (int64_t p = 0; p < n; ++p) {
    const size_t i = static_cast<size_t>(p);
    double z0, z1;
    philox_normal2_poly_words(w0[i], w1[i], w2[i], w3[i], &z0, &z1);
    bad += !same_bits(z[2 * i], z0) + !same_bits(z[2 * i + 1], z1);
  }
  for (size_t e = static_cast<size_t>(2 * n); e < z.size(); ++e) bad += z[e] != 7.0;
  return bad;
}

// Words for the transform's edges: u1 at its least (2^-53) and greatest, the log's mantissa on each side of
// sqrt(2)'s (0x6a09e667f3bcd) and at exact powers of two; u2 at every quadrant boundary 4u = 0..4 and either side.
// All of them, then every prefix of length 0..20 (part vectors), each leaving the doubles past its end untouched.
int edge_word_mismatches(const NoiseTwin& twin) {
  std::vector<uint32_t> hi = {0, 0xffffffffu, 0x0006a09eu, 0x3ff6a09eu, 0x80000000u, 0x40000000u, 0x00000001u},
                        lo = {0, 0xffffffffu, 0x667f3bcdu, 0x667f3000u, 0x667f4000u, 0x00001000u, 0x00000fffu};
  for (uint32_t q = 0; q <= 4; ++q)
    for (int64_t d : {-1, 0, 1}) hi.push_back(static_cast<uint32_t>((static_cast<int64_t>(q) << 30) + d));
  std::vector<uint32_t> w0, w1, w2, w3;
  for (uint32_t a : hi)
    for (uint32_t b : lo)
      for (uint32_t c : hi)
        for (uint32_t e : lo) {
          w0.push_back(a);
          w1.push_back(b);
          w2.push_back(c);
          w3.push_back(e);
        }
  int bad = words_mismatches(twin, w0, w1, w2, w3, static_cast<int64_t>(w0.size()));
  for (int64_t n = 0; n <= 20; ++n) bad += words_mismatches(twin, w0, w1, w2, w3, n);
  return bad;
}

}  // namespace

BOOST_AUTO_TEST_CASE(avx512_noise_equals_the_scalar_reference_bit_for_bit, *boost::unit_test::precondition(Avx512Present())) {
  BOOST_TEST(stream_mismatches(kAvx512Twin) == 0);
}

BOOST_AUTO_TEST_CASE(avx512_noise_transform_equals_the_reference_at_edge_words, *boost::unit_test::precondition(Avx512Present())) {
  BOOST_TEST(edge_word_mismatches(kAvx512Twin) == 0);
}

BOOST_AUTO_TEST_CASE(avx2_noise_equals_the_scalar_reference_bit_for_bit, *boost::unit_test::precondition(Avx2Present())) {
  BOOST_TEST(stream_mismatches(kAvx2Twin) == 0);
}

BOOST_AUTO_TEST_CASE(avx2_noise_transform_equals_the_reference_at_edge_words, *boost::unit_test::precondition(Avx2Present())) {
  BOOST_TEST(edge_word_mismatches(kAvx2Twin) == 0);
}

BOOST_AUTO_TEST_CASE(noise_path_follows_the_cpu_and_the_switch) {
  const cpu::NoisePath was = cpu::noise_path();
  const char* env = std::getenv("JEBM_NOISE");
  const std::string chosen = env ? env : "";
  if (chosen == "reference")
    BOOST_TEST(cpu::noise_path_name(was) == std::string("reference"));
  else if (chosen == "avx2" && cpu::noise_avx2_supported())
    BOOST_TEST(cpu::noise_path_name(was) == std::string("avx2"));
  else  // the widest the CPU has
    BOOST_TEST(cpu::noise_path_name(was) == std::string(cpu::noise_avx512_supported() ? "avx512"
                                                        : cpu::noise_avx2_supported() ? "avx2"
                                                                                      : "reference"));
  double z[2] = {7.0, 7.0};
  cpu::set_noise_path(cpu::NoisePath::Reference);
  BOOST_TEST(!cpu::philox_normals_fast(1, 2, 3, 1, z));  // the caller runs the reference
  BOOST_TEST(z[0] == 7.0);
  const std::pair<cpu::NoisePath, bool> twins[] = {{cpu::NoisePath::Avx512, cpu::noise_avx512_supported()},
                                                   {cpu::NoisePath::Avx2, cpu::noise_avx2_supported()}};
  for (const auto& [path, supported] : twins) {
    if (!supported) {
      BOOST_CHECK_THROW(cpu::set_noise_path(path), std::exception);
      continue;
    }
    cpu::set_noise_path(path);
    z[0] = z[1] = 7.0;
    BOOST_TEST(cpu::philox_normals_fast(1, 2, 3, 1, z), cpu::noise_path_name(path));
    double z0, z1;
    philox_normal2_poly(1, 2, 3, &z0, &z1);
    BOOST_TEST((same_bits(z[0], z0) && same_bits(z[1], z1)), cpu::noise_path_name(path));
  }
  cpu::set_noise_path(was);
}
