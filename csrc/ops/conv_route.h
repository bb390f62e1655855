// Which implementation the CUDA kernels convolve with, and the cuDNN settings they honour.
//
// Plain C++ (no CUDA): the CPU-only build compiles it too, so the CPU suite tests the choice
// (torch.ops.resnet_edge._conv_route) even though only a GPU runs the routes themselves.
#pragma once

#include <string>

namespace resnet_edge::ops {

// One convolution of a block, out = [relu](conv(input) + bias [+ residual]), on CUDA:
//   CudnnGraph  one cuDNN operation graph per convolution (conv, bias add, residual add, ReLU fused by
//               cuDNN's runtime fusion engines; cuda/cudnn_graph_conv.cpp). Opt-in until measured on a GPU.
//   AtenFused   ATen's own fused ops, at::cudnn_convolution_relu / _add_relu (the baseline to beat).
//   Epilogue    at::cudnn_convolution, then the hand-written bias/residual/ReLU kernel (cuda/epilogue.cu).
//               The default: the route verified on a GPU.
// A route that cannot run one convolution (no cuDNN plan for its shape, a convolution ATen has no
// fused op for) hands that convolution to the epilogue route, which runs everything.
enum class ConvRoute { CudnnGraph, AtenFused, Epilogue };

// The environment variable that selects the route, read on every call so one process can A/B them:
// "cudnn_graph", "aten_fused" or "epilogue"; unset or empty means the default.
constexpr const char* kConvRouteEnv = "RESNET_EDGE_CONV_ROUTE";

// Whether this build has the cuDNN graph route (CUDA kernels built with the cuDNN frontend headers).
bool cudnn_graph_route_built();

// The route for `value` (the variable's text, nullptr when unset) in a build where the cuDNN graph
// route is `graph_built`. Raises, naming the variable, for an unknown value or an unbuilt route.
ConvRoute parse_conv_route(const char* value, bool graph_built);

// The route the CUDA kernels take now.
ConvRoute current_conv_route();

const char* conv_route_name(ConvRoute route);

// The cuDNN switches of torch.backends.cudnn as ATen's own convolutions read them.
struct CudnnSettings {
  bool benchmark;      // autotune plans (torch.backends.cudnn.benchmark)
  bool deterministic;  // refuse non-deterministic engines
  bool allow_tf32;     // FP32 convolutions may run in TF32
};

CudnnSettings current_cudnn_settings();

} // namespace resnet_edge::ops
