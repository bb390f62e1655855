// The key cuDNN execution plans are cached under: everything a plan is specific to.
//
// Plain C++ (no cuDNN): the CPU-only build compiles it, and torch.ops.resnet_edge._cudnn_plan_key
// lets the CPU suite check which differences make a new plan and which reuse one.
#pragma once

#include "conv_route.h"

#include <ATen/core/Tensor.h>
#include <c10/core/ScalarType.h>

#include <array>
#include <cstddef>
#include <string>
#include <tuple>

namespace resnet_edge::ops {

// One fused convolution out = [relu](conv(x, w, stride, padding) + bias [+ residual]). Every tensor
// is channels_last-contiguous by the operand contract (contract.h), so the sizes fix the strides
// and the layout is not a field; data pointers are not either (a plan runs on any aligned buffers).
struct ConvPlanKey {
  int device_index;
  c10::ScalarType dtype;
  std::array<int64_t, 4> input_sizes;
  std::array<int64_t, 4> weight_sizes;
  int64_t stride;
  int64_t padding;
  bool residual;
  bool relu;
  bool allow_tf32;      // plans chosen without TF32 engines differ
  bool deterministic;   // plans chosen without non-deterministic engines differ
  // Not a field: whether the plan was autotuned (cudnn.benchmark) or the heuristics' first choice. The
  // first call builds it either way, and a CUDA graph capture must find the plan its warm-up built.

  auto fields() const {
    return std::tie(
        device_index, dtype, input_sizes, weight_sizes, stride, padding, residual, relu, allow_tf32, deterministic);
  }
  bool operator==(const ConvPlanKey& other) const {
    return fields() == other.fields();
  }
  // "cuda:0 Half NHWC x[2,16,9,8] w[32,16,3,3] stride 2 pad 1 +bias +residual relu ieee nondeterministic"
  std::string describe() const;
};

struct ConvPlanKeyHash {
  std::size_t operator()(const ConvPlanKey& key) const;
};

// The key of convolving `input` (channels_last-contiguous, else raises) with `weight` under `settings`.
ConvPlanKey make_plan_key(
    const at::Tensor& input,
    const at::Tensor& weight,
    int64_t stride,
    bool residual,
    bool relu,
    const CudnnSettings& settings);

} // namespace resnet_edge::ops
