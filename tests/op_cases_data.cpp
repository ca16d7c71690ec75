// Rows of the op-case table (tests/op_cases.hpp) for the ops that make or convert data: fill_, cast (every dtype and
// back) and the Philox fills (uniform_, normal_: element i from the pair (seed, stream i / 2, offset), member i % 2),
// at sizes that take the serial, vectorised and parallel paths. Read through op_cases() by tests/test_ops.cpp and
// tests/test_cuda_ops.cpp; none has a gradient.
#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "runtime/philox.hpp"
#include "tests/op_cases.hpp"

namespace jebm::test {

namespace {

const std::vector<Shape> kDataShapes = {{1}, {7}, {33, 5}, {4, 3, 17, 9}, {1 << 17}};

// The documented fill: element i = member i % 2 of pair(i / 2), times scale plus shift.
template <typename Pair>
Host philox_pairs(const Host& like, double scale, double shift, Pair pair) {
  Host y = like;
  for (size_t i = 0; i < y.v.size(); i += 2) {
    double v0, v1;
    pair(static_cast<uint64_t>(i / 2), &v0, &v1);
    y.v[i] = v0 * scale + shift;
    if (i + 1 < y.v.size()) y.v[i + 1] = v1 * scale + shift;
  }
  return y;
}

}  // namespace

void add_data_cases(std::vector<OpCase>& t) {
  for (const Shape& s : kDataShapes) {
    // Fills every element, whatever the buffer held (here: the input's values).
    t.push_back({"fill", "fill_ " + shape_str(s), {s}, -2, 2, 1e-7, 0,
                 [](const std::vector<Tensor>& in) {
                   Tensor y = in[0].clone();
                   fill_(y, -3.25);
                   return std::vector<Tensor>{y};
                 },
                 [](const std::vector<Host>& in) {
                   return std::vector<Host>{{in[0].shape, std::vector<double>(in[0].v.size(), -3.25)}};
                 }});
    // Round trips through every dtype, so both directions of every conversion run: float32 rounds, int64 truncates.
    t.push_back({"cast", "cast to float32, float64, int64 and back " + shape_str(s), {s}, -1000, 1000, 0, 0,
                 [](const std::vector<Tensor>& in) {
                   std::vector<Tensor> out;
                   for (DType to : {DType::Float32, DType::Float64, DType::Int64})
                     out.push_back(cast(cast(in[0], to), in[0].dtype()));
                   return out;
                 },
                 [](const std::vector<Host>& in) {
                   Host f = in[0], i = in[0];
                   for (double& v : f.v) v = static_cast<double>(static_cast<float>(v));
                   for (double& v : i.v) v = std::trunc(v);
                   return std::vector<Host>{f, in[0], i};
                 }});
  }
  for (int64_t n : {int64_t{1}, int64_t{2}, int64_t{3}, int64_t{1001}, int64_t{1} << 20}) {
    const Shape s{n};
    const uint64_t seed = 0x1234abcd5678ull + static_cast<uint64_t>(n), offset = (uint64_t{1} << 40) + 3;
    t.push_back({"rng", "uniform_ [-1.5, 2.5) " + shape_str(s), {s}, -1, 1, 1e-7, 1e-15,
                 [=](const std::vector<Tensor>& in) {
                   Tensor y = in[0].clone();
                   Generator g{seed, offset};
                   uniform_(y, -1.5, 2.5, g);
                   return std::vector<Tensor>{y};
                 },
                 [=](const std::vector<Host>& in) {
                   return std::vector<Host>{philox_pairs(in[0], 4.0, -1.5, [=](uint64_t p, double* a, double* b) {
                     philox_uniform2(seed, p, offset, a, b);
                   })};
                 }});
    // Philox words -> (k + 0.5) * 2^-53 -> u * scale + shift: exact IEEE steps on both backends.
    t.back().cuda32 = t.back().cuda64 = {0, 0};
    t.push_back({"rng", "normal_ (0.5, 2) " + shape_str(s), {s}, -1, 1, 1e-6, 1e-14,
                 [=](const std::vector<Tensor>& in) {
                   Tensor y = in[0].clone();
                   Generator g{seed, offset};
                   normal_(y, 0.5, 2.0, g);
                   return std::vector<Tensor>{y};
                 },
                 [=](const std::vector<Host>& in) {
                   return std::vector<Host>{philox_pairs(in[0], 2.0, 0.5, [=](uint64_t p, double* a, double* b) {
                     philox_normal2(seed, p, offset, a, b);
                   })};
                 }});
    // log/sin/cos in double: CUDA within 1-2 ulp of glibc, so float64 values (|z| < 12) agree to ~1e-15; in float32
    // the double result rounds to the same float except across a rounding boundary (one float ulp).
    t.back().cuda64 = {1e-14, 1e-14};
    t.back().cuda32 = {1e-30, 1.5 * eps_of(DType::Float32)};
  }
}

}  // namespace jebm::test
