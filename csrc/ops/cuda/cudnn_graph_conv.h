// The cuDNN graph route (conv_route.h): one cuDNN operation graph per convolution.
#pragma once

#include <ATen/core/Tensor.h>

#include <optional>

namespace resnet_edge::ops::cuda {

// out = [relu](conv2d(input, weight, stride, padding = kernel / 2) + bias [+ residual]) as one cuDNN
// graph (convolution, bias add, residual add, ReLU), fused by cuDNN's runtime fusion engines. The
// operands meet the contract of contract.h. Plans are built on the first call of each ConvPlanKey
// and cached; nullopt when cuDNN has no plan for the graph, or when a CUDA graph is being captured
// and the plan is not built yet (building may compile kernels): the caller then takes the epilogue route.
std::optional<at::Tensor> cudnn_graph_conv(
    const at::Tensor& input,
    const at::Tensor& weight,
    const at::Tensor& bias,
    int64_t stride,
    const std::optional<at::Tensor>& residual,
    bool relu);

} // namespace resnet_edge::ops::cuda
