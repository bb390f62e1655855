// CUDA kernels: each convolution of a block takes one of three routes (conv_route.h), chosen per call
// by RESNET_EDGE_CONV_ROUTE: one cuDNN operation graph with the bias, residual and ReLU fused in
// (cudnn_graph_conv.cpp, the default where built), ATen's fused cuDNN ops, or cuDNN's convolution
// followed by the hand-written epilogue kernel (epilogue.cu), which runs every convolution and so
// takes whatever the other two cannot.

#include "../block_forward.h"
#include "../conv_route.h"
#include "cudnn_graph_conv.h"
#include "epilogue.h"

#include <ATen/ops/cudnn_convolution.h>
#include <ATen/ops/cudnn_convolution_add_relu.h>
#include <ATen/ops/cudnn_convolution_relu.h>
#include <c10/cuda/CUDAGuard.h>
#include <torch/library.h>

namespace resnet_edge::ops {
namespace {

constexpr auto kChannelsLast = at::MemoryFormat::ChannelsLast;

at::Tensor epilogue_conv(
    const at::Tensor& input,
    const at::Tensor& weight,
    const at::Tensor& bias,
    int64_t stride,
    const std::optional<at::Tensor>& residual,
    bool relu) {
  const int64_t padding = weight.size(3) / 2;
  const CudnnSettings settings = current_cudnn_settings();
  // The user's cuDNN settings (torch.backends.cudnn.benchmark and friends) apply here as well.
  at::Tensor out = at::cudnn_convolution(
                       input, weight, {padding, padding}, {stride, stride}, {1, 1}, /*groups=*/1, settings.benchmark,
                       settings.deterministic, settings.allow_tf32)
                       .contiguous(kChannelsLast);
  cuda::bias_residual_relu_(out, bias, residual, relu);
  return out;
}

// ATen's fused ops always end in a ReLU; a convolution without one (a projection shortcut) gets nullopt.
std::optional<at::Tensor> aten_fused_conv(
    const at::Tensor& input,
    const at::Tensor& weight,
    const at::Tensor& bias,
    int64_t stride,
    const std::optional<at::Tensor>& residual,
    bool relu) {
  if (!relu) {
    return std::nullopt;
  }
  const int64_t padding = weight.size(3) / 2;
  const int64_t strides[] = {stride, stride};
  const int64_t paddings[] = {padding, padding};
  const int64_t dilation[] = {1, 1};
  at::Tensor out = residual.has_value()
      ? at::cudnn_convolution_add_relu(input, weight, *residual, /*alpha=*/1, bias, strides, paddings, dilation, 1)
      : at::cudnn_convolution_relu(input, weight, bias, strides, paddings, dilation, 1);
  return out.contiguous(kChannelsLast);
}

at::Tensor conv_cuda(
    const at::Tensor& input,
    const at::Tensor& weight,
    const at::Tensor& bias,
    int64_t stride,
    const std::optional<at::Tensor>& residual,
    bool relu) {
  const c10::cuda::CUDAGuard device_guard(input.device());
  std::optional<at::Tensor> out;
  switch (current_conv_route()) {
    case ConvRoute::CudnnGraph:
#ifdef RESNET_EDGE_HAVE_CUDNN_FRONTEND
      out = cuda::cudnn_graph_conv(input, weight, bias, stride, residual, relu);
#endif
      break;
    case ConvRoute::AtenFused:
      out = aten_fused_conv(input, weight, bias, stride, residual, relu);
      break;
    case ConvRoute::Epilogue:
      break;
  }
  return out.has_value() ? *out : epilogue_conv(input, weight, bias, stride, residual, relu);
}

const Backend& cuda_backend() {
  static const Backend backend{"CUDA", {at::kFloat, at::kHalf}, conv_cuda};
  return backend;
}

} // namespace

TORCH_LIBRARY_IMPL(resnet_edge, CUDA, m) {
  m.impl("fused_basic_block", &fused_basic_block_kernel<cuda_backend>);
  m.impl("fused_bottleneck", &fused_bottleneck_kernel<cuda_backend>);
}

} // namespace resnet_edge::ops
