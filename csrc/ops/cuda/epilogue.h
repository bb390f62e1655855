// The hand-written fused epilogue that follows each cuDNN convolution of a block.
#pragma once

#include <ATen/core/Tensor.h>

#include <optional>

namespace resnet_edge::ops::cuda {

// In place, in one pass over memory: out = [relu](out + bias[channel] [+ residual]).
// `out` and `residual` are channels_last-contiguous float32 or float16 CUDA tensors of one shape.
void bias_residual_relu_(at::Tensor& out, const at::Tensor& bias, const std::optional<at::Tensor>& residual, bool relu);

} // namespace resnet_edge::ops::cuda
