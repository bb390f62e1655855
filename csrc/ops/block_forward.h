// The structure of a fused residual block, shared by every backend.
//
// A backend contributes one thing: a convolution with a fused epilogue (ConvEpilogue). The
// argument checks, the order of the convolutions and the shortcut are written once, here.
#pragma once

#include <ATen/core/Tensor.h>
#include <c10/core/ScalarType.h>

#include <functional>
#include <optional>
#include <vector>

namespace resnet_edge::ops {

// out = [relu](conv2d(input, weight, stride, padding = kernel / 2) + bias [+ residual]), with the operands
// and the result meeting the contract of contract.h (checked by the shared code around every call).
using ConvEpilogue = std::function<at::Tensor(
    const at::Tensor& input,
    const at::Tensor& weight,
    const at::Tensor& bias,
    int64_t stride,
    const std::optional<at::Tensor>& residual,
    bool relu)>;

// What a backend supports and how it convolves.
struct Backend {
  const char* name;  // "CPU", "CUDA": used in error messages
  std::vector<at::ScalarType> dtypes;
  ConvEpilogue conv;
};

at::Tensor basic_block_forward(
    const Backend& backend,
    const at::Tensor& x,
    const at::Tensor& conv1_weight,
    const at::Tensor& conv1_bias,
    const at::Tensor& conv2_weight,
    const at::Tensor& conv2_bias,
    const std::optional<at::Tensor>& shortcut_weight,
    const std::optional<at::Tensor>& shortcut_bias,
    int64_t stride,
    bool residual);

at::Tensor bottleneck_forward(
    const Backend& backend,
    const at::Tensor& x,
    const at::Tensor& conv1_weight,
    const at::Tensor& conv1_bias,
    const at::Tensor& conv2_weight,
    const at::Tensor& conv2_bias,
    const at::Tensor& conv3_weight,
    const at::Tensor& conv3_bias,
    const std::optional<at::Tensor>& shortcut_weight,
    const std::optional<at::Tensor>& shortcut_bias,
    int64_t stride,
    bool residual);

// The op kernels of one backend, ready for m.impl(): the shared block structure bound to `backend()`.
template <const Backend& (*backend)()>
at::Tensor fused_basic_block_kernel(
    const at::Tensor& x,
    const at::Tensor& conv1_weight,
    const at::Tensor& conv1_bias,
    const at::Tensor& conv2_weight,
    const at::Tensor& conv2_bias,
    const std::optional<at::Tensor>& shortcut_weight,
    const std::optional<at::Tensor>& shortcut_bias,
    int64_t stride,
    bool residual) {
  return basic_block_forward(
      backend(), x, conv1_weight, conv1_bias, conv2_weight, conv2_bias, shortcut_weight, shortcut_bias, stride,
      residual);
}

template <const Backend& (*backend)()>
at::Tensor fused_bottleneck_kernel(
    const at::Tensor& x,
    const at::Tensor& conv1_weight,
    const at::Tensor& conv1_bias,
    const at::Tensor& conv2_weight,
    const at::Tensor& conv2_bias,
    const at::Tensor& conv3_weight,
    const at::Tensor& conv3_bias,
    const std::optional<at::Tensor>& shortcut_weight,
    const std::optional<at::Tensor>& shortcut_bias,
    int64_t stride,
    bool residual) {
  return bottleneck_forward(
      backend(), x, conv1_weight, conv1_bias, conv2_weight, conv2_bias, conv3_weight, conv3_bias, shortcut_weight,
      shortcut_bias, stride, residual);
}

} // namespace resnet_edge::ops
