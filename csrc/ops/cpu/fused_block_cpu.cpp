// CPU kernels: oneDNN convolutions with fused post-ops when ATen has oneDNN and it is enabled,
// plain ATen convolutions otherwise (torch.backends.mkldnn.flags(enabled=False) selects these).

#include "../block_forward.h"
#include "onednn_conv.h"

#include <ATen/Context.h>
#include <ATen/ops/conv2d.h>
#include <torch/library.h>

namespace resnet_edge::ops {
namespace {

at::Tensor aten_conv(
    const at::Tensor& input,
    const at::Tensor& weight,
    const at::Tensor& bias,
    int64_t stride,
    const std::optional<at::Tensor>& residual,
    bool relu) {
  const int64_t padding = weight.size(3) / 2;
  at::Tensor out = at::conv2d(input, weight, bias, {stride, stride}, {padding, padding})
                       .contiguous(at::MemoryFormat::ChannelsLast);
  if (residual.has_value()) {
    out.add_(*residual);
  }
  return relu ? out.relu_() : out;
}

at::Tensor conv_cpu(
    const at::Tensor& input,
    const at::Tensor& weight,
    const at::Tensor& bias,
    int64_t stride,
    const std::optional<at::Tensor>& residual,
    bool relu) {
  if (at::hasMKLDNN() && at::globalContext().userEnabledMkldnn()) {
    return cpu::onednn_conv(input, weight, bias, stride, residual, relu);
  }
  return aten_conv(input, weight, bias, stride, residual, relu);
}

const Backend& cpu_backend() {
  static const Backend backend{"CPU", {at::kFloat}, conv_cpu};
  return backend;
}

} // namespace

TORCH_LIBRARY_IMPL(resnet_edge, CPU, m) {
  m.impl("fused_basic_block", &fused_basic_block_kernel<cpu_backend>);
  m.impl("fused_bottleneck", &fused_bottleneck_kernel<cpu_backend>);
}

} // namespace resnet_edge::ops
