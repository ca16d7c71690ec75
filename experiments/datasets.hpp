// Data loaders: MNIST (IDX) and CIFAR-10 (binary batches), plain or gzip, validated field by field, plus
// the helpers that turn pixels into [-1, 1] tensors and pick the paper's digit subsets.
// Tested by tests/test_datasets.cpp (small synthetic files; the real MNIST when JEBM_SHARED_DATA is set).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "runtime/tensor.hpp"

namespace jebm {

struct IdxImages {
  int64_t count = 0, rows = 0, cols = 0;
  std::vector<uint8_t> pixels;  // [count, rows, cols], row-major
};

// IDX image file (magic 0x00000803, u32 big-endian count/rows/cols, uint8 pixels); plain or gzip. The data
// must be exactly count*rows*cols bytes: short and long files are both errors naming the file and field.
IdxImages read_idx_images(const std::string& path);
// IDX label file (magic 0x00000801, u32 big-endian count, uint8 labels); same rules. Labels are not range
// checked here (IDX allows any byte); load_mnist checks 0..9.
std::vector<uint8_t> read_idx_labels(const std::string& path);

struct MnistSplit {
  int64_t count = 0, rows = 0, cols = 0;
  std::vector<uint8_t> pixels;  // [count, rows, cols]: 0 = background, 255 = ink
  std::vector<uint8_t> labels;  // [count], 0..9
};

// Reads {train,t10k}-{images-idx3,labels-idx1}-ubyte from `dir`, preferring the plain file over `.gz`;
// checks that the image and label counts agree and that labels are digits.
MnistSplit load_mnist(const std::string& dir, bool train);

struct CifarSplit {
  static constexpr int64_t kChannels = 3, kHeight = 32, kWidth = 32;
  static constexpr int64_t kRecordBytes = 1 + kChannels * kHeight * kWidth;  // label + CHW pixels = 3073
  int64_t count = 0;
  std::vector<uint8_t> pixels;  // [count, 3, 32, 32] (R, G, B planes)
  std::vector<uint8_t> labels;  // [count], 0..9
};

// Reads data_batch_1..5.bin (train) or test_batch.bin (test) from `dir`, each plain or `.gz`, in that
// order. Each file must be a non-empty multiple of 3073 bytes with labels 0..9.
CifarSplit load_cifar10(const std::string& dir, bool train);

// uint8 pixels [n, c, h, w] -> a float tensor in [-1, 1] (0 -> -1, 255 -> 1). dtype: Float32 or Float64.
Tensor images_to_tensor(const std::vector<uint8_t>& pixels, int64_t n, int64_t c, int64_t h, int64_t w,
                        DType dtype = DType::Float32);

// Indices of the first counts[k] examples of digit digits[k], for every k, merged and sorted ascending
// (file order). Throws when a digit has fewer examples than asked. E.g. digits {2,3,6}, counts {5600,2800,1400}.
std::vector<int64_t> select_digits(const std::vector<uint8_t>& labels, const std::vector<int>& digits,
                                   const std::vector<int64_t>& counts);

// Copies records `indices` (each `record_bytes` long) out of `data`, in the order given.
std::vector<uint8_t> take_records(const std::vector<uint8_t>& data, int64_t record_bytes,
                                  const std::vector<int64_t>& indices);

}  // namespace jebm
