// Convolution with a fused oneDNN epilogue, through the ops ATen registers for inductor's CPU backend.
#pragma once

#include <ATen/core/Tensor.h>

#include <optional>

namespace resnet_edge::ops::cpu {

// out = [relu](conv2d(input, weight, stride, padding = kernel / 2) + bias [+ residual]) in one
// oneDNN primitive: the bias, the residual add and the ReLU run as post-ops on the output tile
// while it is still in cache. `input` and `residual` are channels_last; so is the result.
at::Tensor onednn_conv(
    const at::Tensor& input,
    const at::Tensor& weight,
    const at::Tensor& bias,
    int64_t stride,
    const std::optional<at::Tensor>& residual,
    bool relu);

} // namespace resnet_edge::ops::cpu
