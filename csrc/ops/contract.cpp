#include "contract.h"

#include "block_forward.h"

#include <c10/core/MemoryFormat.h>
#include <c10/util/Exception.h>

#include <algorithm>
#include <cstdint>

namespace resnet_edge::ops {
namespace {

constexpr auto kChannelsLast = at::MemoryFormat::ChannelsLast;

// The contract is the shared code's promise to the kernels, so a breach is a bug in resnet_edge,
// never the caller's input: the message says which promise broke and where.
#define CONTRACT_CHECK(cond, op, backend, ...)                                                                  \
  TORCH_CHECK(                                                                                                  \
      cond, op, ": the ", (backend).name, " kernel's operand contract is broken (a bug in resnet_edge): ", \
      __VA_ARGS__)

void check_like(const char* op, const Backend& backend, const at::Tensor& input, const at::Tensor& t, const char* name) {
  CONTRACT_CHECK(
      t.scalar_type() == input.scalar_type() && t.device() == input.device(), op, backend, name, " is ",
      t.scalar_type(), " on ", t.device(), " but the input is ", input.scalar_type(), " on ", input.device(), ".");
  CONTRACT_CHECK(is_aligned(t), op, backend, name, " must be ", kOperandAlignment, "-byte aligned.");
}

} // namespace

bool is_aligned(const at::Tensor& t) {
  return reinterpret_cast<std::uintptr_t>(t.const_data_ptr()) % kOperandAlignment == 0;
}

std::array<int64_t, 4> conv_output_sizes(const at::Tensor& input, const at::Tensor& weight, int64_t stride) {
  const int64_t padding = weight.size(3) / 2;
  auto out = [&](int64_t size, int64_t kernel) { return (size + 2 * padding - kernel) / stride + 1; };
  return {input.size(0), weight.size(0), out(input.size(2), weight.size(2)), out(input.size(3), weight.size(3))};
}

std::array<int64_t, 4> channels_last_strides(at::IntArrayRef sizes) {
  const std::vector<int64_t> strides = c10::get_channels_last_strides_2d(sizes);
  return {strides[0], strides[1], strides[2], strides[3]};
}

at::Tensor prepare_activation(const at::Tensor& t) {
  at::Tensor dense = t.contiguous(kChannelsLast);
  // A view at an odd storage offset: one aligned copy (fresh allocations are 512-byte aligned).
  return is_aligned(dense) ? dense : dense.clone(kChannelsLast);
}

at::Tensor prepare_parameter(const at::Tensor& t, bool contiguous) {
  at::Tensor dense = contiguous ? t.contiguous() : t;
  return is_aligned(dense) ? dense : dense.clone(contiguous ? at::MemoryFormat::Contiguous : at::MemoryFormat::Preserve);
}

at::Tensor with_canonical_strides(const at::Tensor& t) {
  const auto strides = channels_last_strides(t.sizes());
  if (t.strides().equals(strides)) {
    return t;
  }
  TORCH_INTERNAL_ASSERT(t.is_contiguous(kChannelsLast), "with_canonical_strides needs a channels_last-contiguous tensor");
  return t.as_strided(t.sizes(), strides, t.storage_offset());
}

void check_conv_call(
    const char* op,
    const Backend& backend,
    const at::Tensor& input,
    const at::Tensor& weight,
    const at::Tensor& bias,
    int64_t stride,
    const std::optional<at::Tensor>& residual) {
  const auto& dtypes = backend.dtypes;
  CONTRACT_CHECK(
      input.dim() == 4 && std::find(dtypes.begin(), dtypes.end(), input.scalar_type()) != dtypes.end(), op, backend,
      "the input must be 4-D of a supported dtype, but it is ", input.scalar_type(), " of shape ", input.sizes(), ".");
  CONTRACT_CHECK(
      input.is_contiguous(kChannelsLast), op, backend, "the input must be channels_last-contiguous, but its strides are ",
      input.strides(), " for shape ", input.sizes(), ".");
  CONTRACT_CHECK(is_aligned(input), op, backend, "the input must be ", kOperandAlignment, "-byte aligned.");
  check_like(op, backend, input, weight, "the weight");
  check_like(op, backend, input, bias, "the bias");
  CONTRACT_CHECK(
      weight.dim() == 4 && weight.size(1) == input.size(1) && weight.size(2) == weight.size(3) &&
          weight.size(2) % 2 == 1,
      op, backend, "the weight must be (C_out, ", input.size(1), ", k, k) with k odd, but its shape is ",
      weight.sizes(), ".");
  CONTRACT_CHECK(
      bias.dim() == 1 && bias.size(0) == weight.size(0) && bias.is_contiguous(), op, backend,
      "the bias must be a contiguous (", weight.size(0), ",) tensor, but its shape is ", bias.sizes(), ".");
  CONTRACT_CHECK(stride >= 1, op, backend, "the stride must be at least 1, but it is ", stride, ".");
  if (!residual.has_value()) {
    return;
  }
  check_like(op, backend, input, *residual, "the residual");
  const auto out_sizes = conv_output_sizes(input, weight, stride);
  CONTRACT_CHECK(
      residual->sizes().equals(out_sizes) && residual->is_contiguous(kChannelsLast), op, backend,
      "the residual must be channels_last-contiguous with the output's shape ", at::IntArrayRef(out_sizes),
      ", but its shape is ", residual->sizes(), " and its strides are ", residual->strides(), ".");
}

void check_conv_result(
    const char* op,
    const Backend& backend,
    const at::Tensor& result,
    const at::Tensor& input,
    const at::Tensor& weight,
    int64_t stride) {
  const auto out_sizes = conv_output_sizes(input, weight, stride);
  CONTRACT_CHECK(
      result.sizes().equals(out_sizes) && result.scalar_type() == input.scalar_type() &&
          result.device() == input.device() && result.is_contiguous(kChannelsLast),
      op, backend, "the convolution must return a channels_last-contiguous ", input.scalar_type(), " tensor of shape ",
      at::IntArrayRef(out_sizes), " on ", input.device(), ", but it returned ", result.scalar_type(), " of shape ",
      result.sizes(), " with strides ", result.strides(), " on ", result.device(), ".");
}

#undef CONTRACT_CHECK

} // namespace resnet_edge::ops
