// MnistEnergyCNN and CifarEnergyCNN (the official MNIST and CIFAR-10 code's networks). Tested by tests/test_models.cpp.
#include "models/energy_nets.hpp"

namespace jebm {

MnistEnergyCNN::MnistEnergyCNN(Generator& gen, DType dtype) {
  emplace<Conv2d>(1, 16, 5, 2, 4, gen, true, dtype);  // [N, 16, 16, 16]
  emplace<SiLU>();
  emplace<Conv2d>(16, 32, 3, 2, 1, gen, true, dtype);  // [N, 32, 8, 8]
  emplace<SiLU>();
  emplace<Conv2d>(32, 64, 3, 2, 1, gen, true, dtype);  // [N, 64, 4, 4]
  emplace<SiLU>();
  emplace<Conv2d>(64, 64, 3, 2, 1, gen, true, dtype);  // [N, 64, 2, 2]
  emplace<SiLU>();
  emplace<Flatten>();                                   // [N, 256]
  emplace<Linear>(256, 64, gen, true, dtype);
  emplace<SiLU>();
  emplace<Linear>(64, 1, gen, true, dtype);             // [N, 1]
}

ag::Var MnistEnergyCNN::forward(const ag::Var& x) {
  // 14x14 (2x2-downsampled digits, --downsample 2) keeps every parameter shape: spatial 14 -> 9 -> 5 -> 3 -> 2.
  JEBM_CHECK(x.dim() == 4 && x.size(1) == 1 && x.size(2) == x.size(3) && (x.size(2) == 28 || x.size(2) == 14),
             "MnistEnergyCNN: input " << shape_str(x.shape()) << ", want [N, 1, 28, 28] or [N, 1, 14, 14]");
  return ag::reshape(Sequential::forward(x), {x.size(0)});
}

CifarEnergyCNN::CifarEnergyCNN(Generator& gen, DType dtype) {
  emplace<Conv2d>(3, 64, 3, 1, 1, gen, true, dtype);     // [N, 64, 32, 32]
  emplace<LeakyReLU>(kLeakySlope);
  emplace<Conv2d>(64, 128, 4, 2, 1, gen, true, dtype);   // [N, 128, 16, 16]
  emplace<LeakyReLU>(kLeakySlope);
  emplace<Conv2d>(128, 256, 4, 2, 1, gen, true, dtype);  // [N, 256, 8, 8]
  emplace<LeakyReLU>(kLeakySlope);
  emplace<Conv2d>(256, 512, 4, 2, 1, gen, true, dtype);  // [N, 512, 4, 4]
  emplace<LeakyReLU>(kLeakySlope);
  emplace<Conv2d>(512, 1, 4, 1, 0, gen, true, dtype);    // [N, 1, 1, 1]
}

ag::Var CifarEnergyCNN::forward(const ag::Var& x) {
  JEBM_CHECK(x.dim() == 4 && x.size(1) == 3 && x.size(2) == 32 && x.size(3) == 32,
             "CifarEnergyCNN: input " << shape_str(x.shape()) << ", want [N, 3, 32, 32]");
  return ag::reshape(Sequential::forward(x), {x.size(0)});
}

}  // namespace jebm
