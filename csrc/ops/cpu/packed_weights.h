// Convolution weights pre-reordered ("prepacked") into the blocked layout oneDNN computes in.
#pragma once

#include <ATen/core/Tensor.h>

namespace resnet_edge::ops::cpu {

// `weight` reordered into the layout oneDNN picks for convolving inputs of `input_sizes`.
//
// Reordering a weight costs about as much as a small convolution, and oneDNN would redo it on
// every call for a dense weight, so the result is cached per (weight, input shape): the same
// thing inductor's freezing pass does ahead of time. An entry is reused while the weight tensor
// is alive and unmodified (same storage, same version counter); entries of freed weights are
// dropped when the next new weight is packed. Inference tensors have no version counter, so
// they are returned unpacked and oneDNN reorders them per call (correct, just slower).
at::Tensor packed_conv_weight(const at::Tensor& weight, at::IntArrayRef input_sizes, int64_t stride, int64_t padding);

} // namespace resnet_edge::ops::cpu
