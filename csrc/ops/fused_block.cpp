// The schema site of the resnet_edge operator library: every op is declared here, once.
// Backends register kernels in cpu/ and cuda/; fake (meta) kernels live in Python
// (resnet_edge/ops/fake.py) so torch.export and torch.compile can trace the ops.

#include "conv_route.h"
#include "cudnn_plan_key.h"

#include <torch/csrc/autograd/autograd_not_implemented_fallback.h>
#include <torch/library.h>

#include <string>

namespace {

using namespace resnet_edge::ops;

std::string conv_route_now() {
  return conv_route_name(current_conv_route());
}

std::string describe_plan_key(const at::Tensor& x, const at::Tensor& weight, int64_t stride, bool residual, bool relu) {
  return make_plan_key(x, weight, stride, residual, relu, current_cudnn_settings()).describe();
}

} // namespace

TORCH_LIBRARY(resnet_edge, m) {
  // An inference-mode BasicBlock with BatchNorm folded into each convolution:
  //   relu(conv2(relu(conv1(x, stride))) + shortcut(x))   (relu(conv2(...)) when residual is false)
  // shortcut: a 1x1 projection (shortcut_weight, shortcut_bias) when given, otherwise the
  // parameter-free identity, subsampled by `stride` and zero-padded to the output channels
  // (the paper's option A; plain identity when shapes match). The output is channels_last.
  m.def(
      "fused_basic_block(Tensor x, Tensor conv1_weight, Tensor conv1_bias, Tensor conv2_weight, "
      "Tensor conv2_bias, Tensor? shortcut_weight, Tensor? shortcut_bias, int stride, bool residual) "
      "-> Tensor");
  // An inference-mode Bottleneck (1x1 reduce, 3x3 with the stride as in torchvision V1.5,
  // 1x1 expand) with the same folded-BN, shortcut and epilogue rules as fused_basic_block.
  m.def(
      "fused_bottleneck(Tensor x, Tensor conv1_weight, Tensor conv1_bias, Tensor conv2_weight, "
      "Tensor conv2_bias, Tensor conv3_weight, Tensor conv3_bias, Tensor? shortcut_weight, "
      "Tensor? shortcut_bias, int stride, bool residual) -> Tensor");
  // Introspection for tests and benchmarks, answered by plain C++ in every build (CPU-only too): the
  // route the CUDA kernels take now (conv_route.h), and the key under which a convolution of x with
  // weight caches its cuDNN plan (cudnn_plan_key.h). Neither computes anything.
  m.def("_conv_route() -> str", &conv_route_now);
  m.def("_cudnn_plan_key(Tensor x, Tensor weight, int stride, bool residual, bool relu) -> str", &describe_plan_key);
}

// The ops are inference-only. Registering the not-implemented fallback makes a backward pass
// through them fail with a clear error instead of silently producing no gradient.
TORCH_LIBRARY_IMPL(resnet_edge, Autograd, m) {
  m.impl("fused_basic_block", torch::autograd::autogradNotImplementedFallback());
  m.impl("fused_bottleneck", torch::autograd::autogradNotImplementedFallback());
}
