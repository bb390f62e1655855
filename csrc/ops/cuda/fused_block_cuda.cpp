// CUDA kernels: each convolution runs in cuDNN without bias, then one hand-written epilogue
// kernel (epilogue.cu) adds the folded-BN bias and the residual and applies the ReLU in a single
// pass, instead of the three passes an unfused BN, add and ReLU cost.

#include "../block_forward.h"
#include "epilogue.h"

#include <ATen/Context.h>
#include <ATen/ops/cudnn_convolution.h>
#include <c10/cuda/CUDAGuard.h>
#include <torch/library.h>
#include <torch/version.h>

namespace resnet_edge::ops {
namespace {

// Whether cuDNN convolutions may use TF32, decided as ATen's own convolutions decide it: the
// per-operator setting (torch.backends.cudnn.conv.fp32_precision) first, the legacy allow_tf32 flag
// as fallback. Asking without an operator ignores the new setting, and raises on a mix of the two.
bool allow_tf32_conv(const at::Context& context) {
#if TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 10)
  return context.allowTF32CuDNN(at::Float32Op::CONV);
#elif TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR == 9
  return context.allowTF32CuDNN("conv");
#else
  return context.allowTF32CuDNN();
#endif
}

at::Tensor conv_cuda(
    const at::Tensor& input,
    const at::Tensor& weight,
    const at::Tensor& bias,
    int64_t stride,
    const std::optional<at::Tensor>& residual,
    bool relu) {
  const c10::cuda::CUDAGuard device_guard(input.device());
  const int64_t padding = weight.size(3) / 2;
  const auto& context = at::globalContext();
  // The user's cuDNN settings (torch.backends.cudnn.benchmark and friends) apply here as well.
  at::Tensor out = at::cudnn_convolution(
                       input, weight, {padding, padding}, {stride, stride}, {1, 1}, /*groups=*/1,
                       context.benchmarkCuDNN(), context.deterministicCuDNN(), allow_tf32_conv(context))
                       .contiguous(at::MemoryFormat::ChannelsLast);
  cuda::bias_residual_relu_(out, bias, residual, relu);
  return out;
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
