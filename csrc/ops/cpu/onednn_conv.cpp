#include "onednn_conv.h"

#include "packed_weights.h"

#include <ATen/core/List.h>
#include <ATen/core/dispatch/Dispatcher.h>

namespace resnet_edge::ops::cpu {
namespace {

using ScalarList = c10::List<std::optional<at::Scalar>>;

// mkldnn::_convolution_pointwise(X, W, B, padding, stride, dilation, groups, attr, scalars, algorithm)
using ConvUnary = at::Tensor(
    const at::Tensor&, const at::Tensor&, const std::optional<at::Tensor>&, at::IntArrayRef, at::IntArrayRef,
    at::IntArrayRef, int64_t, c10::string_view, ScalarList, std::optional<c10::string_view>);

// mkldnn::_convolution_pointwise.binary(X, other, W, B, padding, stride, dilation, groups,
//                                        binary_attr, alpha, unary_attr, unary_scalars, unary_algorithm)
using ConvBinary = at::Tensor(
    const at::Tensor&, const at::Tensor&, const at::Tensor&, const std::optional<at::Tensor>&, at::IntArrayRef,
    at::IntArrayRef, at::IntArrayRef, int64_t, c10::string_view, std::optional<at::Scalar>,
    std::optional<c10::string_view>, ScalarList, std::optional<c10::string_view>);

c10::TypedOperatorHandle<ConvUnary> conv_unary() {
  static const auto op =
      c10::Dispatcher::singleton().findSchemaOrThrow("mkldnn::_convolution_pointwise", "").typed<ConvUnary>();
  return op;
}

c10::TypedOperatorHandle<ConvBinary> conv_binary() {
  static const auto op =
      c10::Dispatcher::singleton().findSchemaOrThrow("mkldnn::_convolution_pointwise", "binary").typed<ConvBinary>();
  return op;
}

} // namespace

at::Tensor onednn_conv(
    const at::Tensor& input,
    const at::Tensor& weight,
    const at::Tensor& bias,
    int64_t stride,
    const std::optional<at::Tensor>& residual,
    bool relu) {
  const int64_t padding = weight.size(3) / 2;
  const at::Tensor packed = packed_conv_weight(weight, input.sizes(), stride, padding);
  const int64_t pad[] = {padding, padding};
  const int64_t strides[] = {stride, stride};
  const int64_t dilation[] = {1, 1};
  if (residual.has_value()) {
    const std::optional<c10::string_view> unary =
        relu ? std::optional<c10::string_view>("relu") : std::nullopt;
    return conv_binary().call(
        input, *residual, packed, bias, pad, strides, dilation, /*groups=*/1, "add", /*alpha=*/std::nullopt, unary,
        ScalarList(), std::nullopt);
  }
  return conv_unary().call(
      input, packed, bias, pad, strides, dilation, /*groups=*/1, relu ? "relu" : "none", ScalarList(), std::nullopt);
}

} // namespace resnet_edge::ops::cpu
