#include "block_forward.h"

#include "contract.h"

#include <ATen/ops/empty.h>
#include <c10/util/Exception.h>

#include <algorithm>
#include <sstream>
#include <string>

namespace resnet_edge::ops {
namespace {

constexpr auto kChannelsLast = at::MemoryFormat::ChannelsLast;

bool given(const std::optional<at::Tensor>& t) {
  return t.has_value() && t->defined();
}

std::string dtype_list(const std::vector<at::ScalarType>& dtypes) {
  std::ostringstream out;
  for (size_t i = 0; i < dtypes.size(); ++i) {
    out << (i == 0 ? "" : (i + 1 == dtypes.size() ? " and " : ", ")) << dtypes[i];
  }
  return out.str();
}

void check_input(const char* op, const Backend& backend, const at::Tensor& x) {
  TORCH_CHECK(
      x.dim() == 4, op, ": x must be a 4-D (N, C, H, W) tensor, but it has ", x.dim(), " dimension(s).");
  const auto& dtypes = backend.dtypes;
  TORCH_CHECK(
      std::find(dtypes.begin(), dtypes.end(), x.scalar_type()) != dtypes.end(),
      op, ": x has dtype ", x.scalar_type(), ", but the ", backend.name, " kernel supports only ",
      dtype_list(dtypes), ".");
}

void check_like_input(const char* op, const at::Tensor& x, const at::Tensor& t, const char* name) {
  TORCH_CHECK(
      t.device() == x.device(), op, ": ", name, " is on ", t.device(), " but x is on ", x.device(),
      "; move the model and its input to the same device.");
  TORCH_CHECK(
      t.scalar_type() == x.scalar_type(), op, ": ", name, " has dtype ", t.scalar_type(), " but x has dtype ",
      x.scalar_type(), "; convert the model and its input to the same dtype.");
}

// One folded convolution: a (C_out, in_channels, kernel, kernel) weight and a (C_out,) bias,
// both on x's device and of x's dtype. `source` names what feeds the convolution.
void check_conv(
    const char* op,
    const at::Tensor& x,
    const at::Tensor& weight,
    const char* weight_name,
    const at::Tensor& bias,
    const char* bias_name,
    int64_t kernel,
    int64_t in_channels,
    const char* source) {
  check_like_input(op, x, weight, weight_name);
  check_like_input(op, x, bias, bias_name);
  TORCH_CHECK(
      weight.dim() == 4, op, ": ", weight_name, " must be a 4-D (C_out, C_in, kH, kW) tensor, but its shape is ",
      weight.sizes(), ".");
  TORCH_CHECK(
      weight.size(2) == kernel && weight.size(3) == kernel, op, ": ", weight_name, " must hold ", kernel, "x",
      kernel, " kernels, but its shape is ", weight.sizes(), ".");
  TORCH_CHECK(
      weight.size(1) == in_channels, op, ": ", weight_name, " expects ", weight.size(1),
      " input channels, but its input (", source, ") has ", in_channels, ".");
  TORCH_CHECK(
      bias.dim() == 1 && bias.size(0) == weight.size(0), op, ": ", bias_name,
      " must be a 1-D tensor with one value per output channel of ", weight_name, " (", weight.size(0),
      "), but its shape is ", bias.sizes(), ".");
}

// Option A of the paper, generalised: subsample by `stride`, then zero-pad the channels up to
// `out_channels`. With stride 1 and equal channels this is the plain identity (no copy).
at::Tensor zero_pad_shortcut(const at::Tensor& x, int64_t stride, int64_t out_channels) {
  const int64_t channels = x.size(1);
  if (stride == 1 && channels == out_channels) {
    return x;
  }
  at::Tensor sampled = x.slice(2, 0, std::nullopt, stride).slice(3, 0, std::nullopt, stride);
  if (channels == out_channels) {
    return prepare_activation(sampled);
  }
  // at::empty takes the memory format as its own argument; at::zeros would silently drop one passed
  // inside the options and allocate NCHW (the bug that broke every CIFAR ResNet on CUDA, issue 21).
  at::Tensor padded = at::empty({x.size(0), out_channels, sampled.size(2), sampled.size(3)}, x.options(), kChannelsLast);
  padded.narrow(1, 0, channels).copy_(sampled);
  padded.narrow(1, channels, out_channels - channels).zero_();
  return padded;
}

// One convolution of the block, through the backend, with the operand contract (contract.h)
// asserted on the way in and out: the CPU suite then fails wherever a CUDA kernel would.
at::Tensor run_conv(
    const char* op,
    const Backend& backend,
    const at::Tensor& input,
    const at::Tensor& weight,
    const at::Tensor& bias,
    int64_t stride,
    const std::optional<at::Tensor>& residual,
    bool relu) {
  const at::Tensor aligned_weight = prepare_parameter(weight, /*contiguous=*/false);
  const at::Tensor aligned_bias = prepare_parameter(bias, /*contiguous=*/true);
  check_conv_call(op, backend, input, aligned_weight, aligned_bias, stride, residual);
  const at::Tensor out = backend.conv(input, aligned_weight, aligned_bias, stride, residual, relu);
  check_conv_result(op, backend, out, input, aligned_weight, stride);
  return with_canonical_strides(out);
}

// The tensor added before the final ReLU, or nullopt for a plain block.
std::optional<at::Tensor> shortcut(
    const char* op,
    const Backend& backend,
    const at::Tensor& x,
    const std::optional<at::Tensor>& shortcut_weight,
    const std::optional<at::Tensor>& shortcut_bias,
    int64_t stride,
    int64_t out_channels,
    bool residual) {
  if (!residual) {
    TORCH_CHECK(
        !given(shortcut_weight) && !given(shortcut_bias), op,
        ": shortcut_weight and shortcut_bias must be None when residual is false, because a plain block has "
        "no shortcut.");
    return std::nullopt;
  }
  TORCH_CHECK(
      given(shortcut_weight) == given(shortcut_bias), op,
      ": shortcut_weight and shortcut_bias must be given together (a projection shortcut) or both be None (the "
      "parameter-free shortcut).");
  if (given(shortcut_weight)) {
    check_conv(op, x, *shortcut_weight, "shortcut_weight", *shortcut_bias, "shortcut_bias", 1, x.size(1), "x");
    TORCH_CHECK(
        shortcut_weight->size(0) == out_channels, op, ": shortcut_weight produces ", shortcut_weight->size(0),
        " channels but the block produces ", out_channels, ", so the two cannot be added.");
    return run_conv(op, backend, x, *shortcut_weight, *shortcut_bias, stride, std::nullopt, /*relu=*/false);
  }
  TORCH_CHECK(
      out_channels >= x.size(1), op, ": the parameter-free shortcut can only zero-pad channels, but the block maps ",
      x.size(1), " channels to ", out_channels, "; pass shortcut_weight and shortcut_bias for a projection shortcut.");
  return zero_pad_shortcut(x, stride, out_channels);
}

void check_stride(const char* op, int64_t stride) {
  TORCH_CHECK(stride >= 1, op, ": stride must be at least 1, but it is ", stride, ".");
}

} // namespace

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
    bool residual) {
  constexpr const char* op = "resnet_edge::fused_basic_block";
  check_input(op, backend, x);
  check_stride(op, stride);
  check_conv(op, x, conv1_weight, "conv1_weight", conv1_bias, "conv1_bias", 3, x.size(1), "x");
  check_conv(
      op, x, conv2_weight, "conv2_weight", conv2_bias, "conv2_bias", 3, conv1_weight.size(0),
      "the output of conv1_weight");

  // Every intermediate stays channels_last: the layout oneDNN and cuDNN run fastest in.
  const at::Tensor input = prepare_activation(x);
  const auto added = shortcut(op, backend, input, shortcut_weight, shortcut_bias, stride, conv2_weight.size(0), residual);
  const at::Tensor out = run_conv(op, backend, input, conv1_weight, conv1_bias, stride, std::nullopt, /*relu=*/true);
  return run_conv(op, backend, out, conv2_weight, conv2_bias, 1, added, /*relu=*/true);
}

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
    bool residual) {
  constexpr const char* op = "resnet_edge::fused_bottleneck";
  check_input(op, backend, x);
  check_stride(op, stride);
  check_conv(op, x, conv1_weight, "conv1_weight", conv1_bias, "conv1_bias", 1, x.size(1), "x");
  check_conv(
      op, x, conv2_weight, "conv2_weight", conv2_bias, "conv2_bias", 3, conv1_weight.size(0),
      "the output of conv1_weight");
  check_conv(
      op, x, conv3_weight, "conv3_weight", conv3_bias, "conv3_bias", 1, conv2_weight.size(0),
      "the output of conv2_weight");

  const at::Tensor input = prepare_activation(x);
  const auto added = shortcut(op, backend, input, shortcut_weight, shortcut_bias, stride, conv3_weight.size(0), residual);
  at::Tensor out = run_conv(op, backend, input, conv1_weight, conv1_bias, 1, std::nullopt, /*relu=*/true);
  out = run_conv(op, backend, out, conv2_weight, conv2_bias, stride, std::nullopt, /*relu=*/true);
  return run_conv(op, backend, out, conv3_weight, conv3_bias, 1, added, /*relu=*/true);
}

} // namespace resnet_edge::ops
