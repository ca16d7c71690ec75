// Direct conv2d (NCHW) for thin layers, where im2col + GEMM has a short K and wastes the core, and for small images
// (MNIST's conv3 and conv4), where im2col, col2im and the GEMM's packing cost as much as the products: which shapes
// take it, and its forward, backward-data and backward-filter (runtime/cpu/conv_direct.cpp). Also the im2col + GEMM
// entry points (runtime/cpu/conv.cpp), the reference the direct path is tested against in tests/test_conv_direct.cpp.
#pragma once
#include "runtime/ops.hpp"

namespace jebm::cpu {

// The direct kernels give the same bits with every instruction set. For tests, conv2d_direct_force_isa picks their
// code: 0 portable, 1 FMA (AVX2 class), 2 AVX-512 (at most what the CPU has), -1 the CPU's best (the default).
void conv2d_direct_force_isa(int isa);
// Which layout the direct forward takes, for tests and measurements: 0 lanes over filters, pixel blocks along a row;
// 1 lanes over output columns; 2 lanes over filters, pixel blocks from the whole output plane; -1 by the shapes (the
// default). All give the same bits.
void conv2d_direct_force_forward_layout(int layout);
// The same for the input gradient: 0 by output phase, 1 by the columns of one stride phase, 2 by the columns of one
// (row, column) phase with its own taps only (1 and 2: stride 2 only), 3 by pixels of the plane (lanes over
// channels), -1 by the shapes.
void conv2d_direct_force_backward_data_layout(int layout);

// The same for the filter gradient: 0 per sample, 1 by taps of the plane, -1 by the shapes.
void conv2d_direct_force_backward_filter_layout(int layout);

// Whether conv2d_forward / conv2d_backward_data take the direct path for these shapes (x: [N, C, H, W],
// w: [F, C, KH, KW], valid for conv2d). A function of the shapes only, so the result never depends on the thread count.
bool conv2d_direct_forward_fits(const Shape& x, const Shape& w, const Conv2dParams& p);
bool conv2d_direct_backward_data_fits(const Shape& x, const Shape& w, const Conv2dParams& p);
bool conv2d_direct_backward_filter_fits(const Shape& x, const Shape& w, const Conv2dParams& p);
// Whether the input gradient takes the layout by pixels of the plane (conv2d_direct_backward_data_plane), and the
// filter gradient the layout by taps of the plane (conv2d_direct_backward_filter_plane).
bool conv2d_direct_backward_data_by_plane(const Shape& x, const Shape& w);
bool conv2d_direct_backward_filter_by_plane(const Shape& x, const Shape& w, const Conv2dParams& p);

// y: [N, F, OH, OW] = conv(x, w) + bias (bias may be undefined). Samples (or groups of them) in parallel, each
// computed alone. Lanes over output columns (conv2d_direct_forward_columns, runtime/cpu/conv_direct_forward_columns
// .cpp) for output rows of 16 and more, else over filters: pixel blocks along a row, or from the whole output plane
// (several samples' at once) for rows shorter than a block.
void conv2d_direct_forward(const Tensor& x, const Tensor& w, const Tensor& bias, const Conv2dParams& p, Tensor& y);
void conv2d_direct_forward_columns(const Tensor& x, const Tensor& w, const Tensor& bias, const Conv2dParams& p,
                                   Tensor& y);
// grad_x: [N, C, H, W] from grad_y: [N, F, OH, OW]. Samples in parallel, each computed alone. Layers with channels
// for a vector and many taps or narrow rows (MNIST's conv3 and conv4, conv2 on 14x14 digits) by pixels of the plane
// (conv2d_direct_backward_data_plane,
// runtime/cpu/conv_direct_backward_data_plane.cpp). Else, at stride 2, by the
// columns of one stride phase (conv2d_direct_backward_data_columns) for rows whose phases fill 12 lanes of a float32
// vector, else in the FMA version by the columns of one (row, column) phase with its own taps only
// (conv2d_direct_backward_data_phases, runtime/cpu/conv_direct_backward_data_phases.cpp); else by output phase. All
// four give the same values (a zero's sign may differ: see conv_direct_backward_data_phases.cpp).
void conv2d_direct_backward_data(const Tensor& grad_y, const Tensor& w, const Conv2dParams& p, Tensor& grad_x);
void conv2d_direct_backward_data_columns(const Tensor& grad_y, const Tensor& w, const Conv2dParams& p,
                                         Tensor& grad_x);
void conv2d_direct_backward_data_phases(const Tensor& grad_y, const Tensor& w, const Conv2dParams& p,
                                        Tensor& grad_x);
void conv2d_direct_backward_data_plane(const Tensor& grad_y, const Tensor& w, const Conv2dParams& p, Tensor& grad_x);
// grad_w: [F, C, KH, KW] from grad_y and x: per-sample sums in fixed slots, or, for layers with many taps and
// filters, one chain per tap over every (sample, pixel) (conv2d_direct_backward_filter_plane,
// runtime/cpu/conv_direct_backward_filter_plane.cpp); both independent of the thread count, not of each other.
void conv2d_direct_backward_filter(const Tensor& grad_y, const Tensor& x, const Conv2dParams& p, Tensor& grad_w);
void conv2d_direct_backward_filter_plane(const Tensor& grad_y, const Tensor& x, const Conv2dParams& p, Tensor& grad_w);

// The im2col + GEMM path for every shape.
void conv2d_im2col_forward(const Tensor& x, const Tensor& w, const Tensor& bias, const Conv2dParams& p, Tensor& y);
void conv2d_im2col_backward_data(const Tensor& grad_y, const Tensor& w, const Conv2dParams& p, Tensor& grad_x);
void conv2d_im2col_backward_filter(const Tensor& grad_y, const Tensor& x, const Conv2dParams& p, Tensor& grad_w);

}  // namespace jebm::cpu
