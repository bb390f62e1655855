#include "epilogue.h"

#include <ATen/Dispatch_v2.h>
#include <ATen/OpMathType.h>
#include <ATen/cuda/CUDAContext.h>
#include <c10/cuda/CUDAException.h>

#include <algorithm>
#include <cstdint>

namespace resnet_edge::ops::cuda {
namespace {

constexpr int kThreads = 256;
constexpr int kBytesPerAccess = 16;  // one 128-bit load/store per thread and pass

template <typename T, int N>
struct alignas(sizeof(T) * N) Pack {
  T v[N];
};

// Thread i handles elements [i * kVec, (i + 1) * kVec). In channels_last the channel is the
// innermost dimension, and kVec divides the channel count, so a pack never straddles two pixels.
template <typename scalar_t, int kVec>
__global__ void bias_residual_relu_kernel(
    scalar_t* __restrict__ out,
    const scalar_t* __restrict__ bias,
    const scalar_t* __restrict__ residual,
    int64_t packs,
    int64_t channels,
    bool relu) {
  using opmath_t = at::opmath_type<scalar_t>;
  using P = Pack<scalar_t, kVec>;
  const int64_t step = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < packs; i += step) {
    P o = reinterpret_cast<P*>(out)[i];
    P r;
    if (residual != nullptr) {
      r = reinterpret_cast<const P*>(residual)[i];
    }
    const int64_t c0 = (i * kVec) % channels;
#pragma unroll
    for (int k = 0; k < kVec; ++k) {
      opmath_t v = static_cast<opmath_t>(o.v[k]) + static_cast<opmath_t>(bias[c0 + k]);
      if (residual != nullptr) {
        v += static_cast<opmath_t>(r.v[k]);
      }
      // `v < 0` rather than fmax so a NaN propagates, as torch.relu does.
      if (relu && v < opmath_t(0)) {
        v = opmath_t(0);
      }
      o.v[k] = static_cast<scalar_t>(v);
    }
    reinterpret_cast<P*>(out)[i] = o;
  }
}

bool aligned(const void* ptr) {
  return reinterpret_cast<std::uintptr_t>(ptr) % kBytesPerAccess == 0;
}

template <typename scalar_t, int kVec>
void launch(scalar_t* out, const scalar_t* bias, const scalar_t* residual, int64_t numel, int64_t channels, bool relu) {
  const int64_t packs = numel / kVec;
  // Enough blocks to fill the GPU a few times over; the grid-stride loop covers the rest.
  const int64_t max_blocks = static_cast<int64_t>(at::cuda::getCurrentDeviceProperties()->multiProcessorCount) * 8;
  const auto blocks = static_cast<unsigned int>(std::min((packs + kThreads - 1) / kThreads, max_blocks));
  bias_residual_relu_kernel<scalar_t, kVec><<<blocks, kThreads, 0, at::cuda::getCurrentCUDAStream()>>>(
      out, bias, residual, packs, channels, relu);
  C10_CUDA_KERNEL_LAUNCH_CHECK();
}

template <typename T>
void run(at::Tensor& out, const at::Tensor& bias, const std::optional<at::Tensor>& residual, bool relu) {
  constexpr int kVec = kBytesPerAccess / sizeof(T);
  const int64_t channels = out.size(1);
  T* out_ptr = out.mutable_data_ptr<T>();
  const T* bias_ptr = bias.const_data_ptr<T>();
  const T* residual_ptr = residual.has_value() ? residual->const_data_ptr<T>() : nullptr;
  if (channels % kVec == 0 && aligned(out_ptr) && (residual_ptr == nullptr || aligned(residual_ptr))) {
    launch<T, kVec>(out_ptr, bias_ptr, residual_ptr, out.numel(), channels, relu);
  } else {
    launch<T, 1>(out_ptr, bias_ptr, residual_ptr, out.numel(), channels, relu);
  }
}

} // namespace

void bias_residual_relu_(at::Tensor& out, const at::Tensor& bias, const std::optional<at::Tensor>& residual, bool relu) {
  constexpr auto kChannelsLast = at::MemoryFormat::ChannelsLast;
  TORCH_CHECK(out.is_contiguous(kChannelsLast), "bias_residual_relu_: out must be channels_last-contiguous.");
  TORCH_CHECK(
      !residual.has_value() || (residual->sizes() == out.sizes() && residual->is_contiguous(kChannelsLast)),
      "bias_residual_relu_: residual must be channels_last-contiguous with the shape of out.");
  if (out.numel() == 0) {
    return;
  }
  const at::Tensor bias_contiguous = bias.contiguous();
  AT_DISPATCH_V2(
      out.scalar_type(), "bias_residual_relu_", AT_WRAP([&] { run<scalar_t>(out, bias_contiguous, residual, relu); }),
      at::kFloat, at::kHalf);
}

} // namespace resnet_edge::ops::cuda
