// The image energies of the paper's MNIST and CIFAR-10 experiments: Sequentials of Conv2d/Linear/activations whose
// forward returns one energy per image, shape [N]. Parameter names follow the layer positions ("0.weight").
// Tested by tests/test_models.cpp (parameter counts, shapes, finite-difference gradients in x and theta).
#pragma once
#include "models/layers.hpp"

namespace jebm {

// x: [N, 1, 28, 28] or [N, 1, 14, 14] (2x2-downsampled digits) -> U: [N].
// conv 5x5 s2 p4 (1->16), conv 3x3 s2 p1 (->32), conv 3x3 s2 p1 (->64), conv 3x3 s2 p1 (->64), SiLU after each;
// spatial 28 -> 16 -> 8 -> 4 -> 2 (14 -> 9 -> 5 -> 3 -> 2), flatten (64*2*2 = 256), linear 256->64, SiLU,
// linear 64->1. The parameter shapes do not depend on the input size.
class MnistEnergyCNN : public Sequential {
 public:
  explicit MnistEnergyCNN(Generator& gen, DType dtype = DType::Float32);
  ag::Var forward(const ag::Var& x) override;
};

// x: [N, 3, 32, 32] -> U: [N].
// conv 3x3 s1 p1 (3->64), conv 4x4 s2 p1 (->128), conv 4x4 s2 p1 (->256), conv 4x4 s2 p1 (->512),
// conv 4x4 s1 p0 (->1), LeakyReLU 0.2 after all but the last; spatial 32 -> 32 -> 16 -> 8 -> 4 -> 1.
class CifarEnergyCNN : public Sequential {
 public:
  static constexpr double kLeakySlope = 0.2;
  explicit CifarEnergyCNN(Generator& gen, DType dtype = DType::Float32);
  ag::Var forward(const ag::Var& x) override;
};

}  // namespace jebm
