// The contract between the shared block code (block_forward.cpp) and every backend's convolution.
//
// Whatever a device kernel relies on is stated here once and checked on every call, on the CPU as
// on the GPU, so a bug that only a CUDA kernel would notice (a residual in the wrong layout, a
// misaligned pointer) fails the CPU suite too. The shared code arranges its operands to meet the
// contract (prepare_*); check_conv_call() then asserts it right before the backend is called, and
// check_conv_result() asserts what the backend hands back.
//
// The contract, for out = [relu](conv2d(input, weight, stride, padding = kernel / 2) + bias [+ residual]):
//   input     4-D, a dtype the backend supports, channels_last-contiguous, 16-byte aligned
//   weight    (C_out, C_in, k, k) with k odd, input's dtype and device, 16-byte aligned (any layout)
//   bias      (C_out,), contiguous, input's dtype and device, 16-byte aligned
//   residual  exactly the output's shape, input's dtype and device, channels_last-contiguous, 16-byte aligned
//   result    the output's shape, input's dtype and device, channels_last-contiguous
// 16 bytes: the CUDA epilogue's 128-bit loads and cuDNN frontend graphs (which declare every tensor
// 16-byte aligned when choosing engines) both assume it.
#pragma once

#include <ATen/core/Tensor.h>

#include <array>
#include <optional>
#include <vector>

namespace resnet_edge::ops {

struct Backend;

constexpr int64_t kOperandAlignment = 16;

bool is_aligned(const at::Tensor& t);

// The (N, C_out, H_out, W_out) of convolving `input` with `weight` at `stride`, padding kernel / 2.
std::array<int64_t, 4> conv_output_sizes(const at::Tensor& input, const at::Tensor& weight, int64_t stride);

// The strides torch.empty(sizes, memory_format=torch.channels_last) gives: the strides the op's
// output has, and the fake (meta) kernels promise (torch.export and AOTInductor plan memory by them).
std::array<int64_t, 4> channels_last_strides(at::IntArrayRef sizes);

// `t` channels_last-contiguous and 16-byte aligned: itself when it already is, a copy otherwise.
at::Tensor prepare_activation(const at::Tensor& t);

// `t` 16-byte aligned (and contiguous when `contiguous`): itself when it already is, a copy otherwise.
at::Tensor prepare_parameter(const at::Tensor& t, bool contiguous);

// `t` (channels_last-contiguous) restrided to exactly channels_last_strides(t.sizes()). Only the
// strides of size-1 dimensions can differ, and those address nothing, so this never copies.
at::Tensor with_canonical_strides(const at::Tensor& t);

// Asserts the contract's preconditions; `op` and the backend's name go into the message.
void check_conv_call(
    const char* op,
    const Backend& backend,
    const at::Tensor& input,
    const at::Tensor& weight,
    const at::Tensor& bias,
    int64_t stride,
    const std::optional<at::Tensor>& residual);

// Asserts the contract's postcondition on what the backend returned for that call.
void check_conv_result(
    const char* op,
    const Backend& backend,
    const at::Tensor& result,
    const at::Tensor& input,
    const at::Tensor& weight,
    int64_t stride);

} // namespace resnet_edge::ops
