#include "conv_route.h"

#include <ATen/Context.h>
#include <c10/util/Exception.h>
#include <torch/version.h>

#include <cstdlib>
#include <cstring>

namespace resnet_edge::ops {
namespace {

constexpr ConvRoute kRoutes[] = {ConvRoute::CudnnGraph, ConvRoute::AtenFused, ConvRoute::Epilogue};

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

} // namespace

bool cudnn_graph_route_built() {
#ifdef RESNET_EDGE_HAVE_CUDNN_FRONTEND
  return true;
#else
  return false;
#endif
}

const char* conv_route_name(ConvRoute route) {
  switch (route) {
    case ConvRoute::CudnnGraph:
      return "cudnn_graph";
    case ConvRoute::AtenFused:
      return "aten_fused";
    case ConvRoute::Epilogue:
      return "epilogue";
  }
  return "unknown";
}

ConvRoute parse_conv_route(const char* value, bool graph_built) {
  if (value == nullptr || *value == '\0') {
    // The epilogue is the route verified on a GPU (H200: every op, fuse and CIFAR bundle case). The cuDNN
    // graph route has not yet run on one, so it is opt-in until benchmarks/gpu_suite.sh shows it correct
    // and faster; then this default becomes the measured winner.
    return ConvRoute::Epilogue;
  }
  for (const ConvRoute route : kRoutes) {
    if (std::strcmp(value, conv_route_name(route)) == 0) {
      // Asked for by name, for an A/B measurement: silently measuring another route would mislead.
      TORCH_CHECK(
          route != ConvRoute::CudnnGraph || graph_built, kConvRouteEnv,
          "=cudnn_graph, but this build of resnet_edge has no cuDNN graph route (it was compiled without the "
          "cuDNN frontend headers: pip install nvidia-cudnn-frontend, then rebuild); unset it or pick epilogue.");
      return route;
    }
  }
  TORCH_CHECK(
      false, kConvRouteEnv, " must be cudnn_graph, aten_fused or epilogue (or unset for the default), not '", value,
      "'.");
}

ConvRoute current_conv_route() {
  return parse_conv_route(std::getenv(kConvRouteEnv), cudnn_graph_route_built());
}

CudnnSettings current_cudnn_settings() {
  const auto& context = at::globalContext();
  return {context.benchmarkCuDNN(), context.deterministicCuDNN(), allow_tf32_conv(context)};
}

} // namespace resnet_edge::ops
