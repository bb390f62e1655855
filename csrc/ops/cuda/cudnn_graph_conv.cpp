// Built only with the cuDNN frontend headers (setup.py and CMake define RESNET_EDGE_HAVE_CUDNN_FRONTEND
// when they find them, from the pinned nvidia-cudnn-frontend wheel); without them the route is absent.
#ifdef RESNET_EDGE_HAVE_CUDNN_FRONTEND

#include "cudnn_graph_conv.h"

#include "../contract.h"
#include "../conv_route.h"
#include "../cudnn_plan_key.h"

#include <ATen/cudnn/Handle.h>
#include <ATen/ops/empty.h>
#include <c10/cuda/CUDACachingAllocator.h>
#include <c10/cuda/CUDAGraphsC10Utils.h>
#include <c10/util/Exception.h>

#include <cuda_runtime.h>
#include <cudnn.h>
#include <dlfcn.h>
#include <nvrtc.h>

// The cuDNN frontend, header-only, set up so the extension links against nothing new:
// - dynamic loading: it reaches cuDNN (and NVRTC, for its own experimental engines) through dlopen,
//   so the library torch already loaded serves it, and no libcudnn/libnvrtc is needed at link time;
// - hidden: its inline functions never bind to the (other version's) cudnn_frontend symbols that
//   libtorch_cuda exports; the CUDA/cuDNN C headers above keep their default visibility;
// - no JSON (de)serialisation, which is unused and slow to compile.
#define NV_CUDNN_FRONTEND_USE_DYNAMIC_LOADING
#define CUDNN_FRONTEND_SKIP_JSON_LIB
#pragma GCC visibility push(hidden)
#include <cudnn_frontend.h>
#pragma GCC visibility pop

#include <string>

// The handle the frontend resolves cuDNN's functions through (its dynamic-loading contract).
namespace cudnn_frontend {
void* cudnn_dlhandle = nullptr;
} // namespace cudnn_frontend

#include <memory>
#include <mutex>
#include <unordered_map>
#include <vector>

namespace resnet_edge::ops::cuda {
namespace {

namespace fe = cudnn_frontend;

// Tensor ids in the variant pack.
enum Uid : int64_t { kInput = 1, kWeight, kBias, kResidual, kOut };

// With cudnn.benchmark, the first few candidates the heuristics rank are built and timed. Building a
// runtime-fusion plan compiles a kernel, so "all of them" would cost seconds per convolution shape.
constexpr int64_t kAutotuneCandidates = 4;
// Distinct shapes a process sees are few (one per layer and batch size); a bound keeps a server that
// sees many batch sizes from growing without limit (the cache is dropped and rebuilt past it).
constexpr size_t kMaxPlans = 2048;

struct Plan {
  std::shared_ptr<fe::graph::Graph> graph;  // null: cuDNN has no plan for this graph
  int64_t workspace_bytes = 0;
  std::string why_not;
};

std::shared_ptr<fe::graph::Graph> describe_graph(const ConvPlanKey& key) {
  const auto io_type = key.dtype == at::kHalf ? fe::DataType_t::HALF : fe::DataType_t::FLOAT;
  auto graph = std::make_shared<fe::graph::Graph>();
  graph->set_io_data_type(io_type)
      .set_intermediate_data_type(fe::DataType_t::FLOAT)
      .set_compute_data_type(fe::DataType_t::FLOAT);
  auto tensor = [&](const char* name, Uid uid, std::vector<int64_t> sizes) {
    const auto strides = channels_last_strides(sizes);  // what the operand contract guarantees
    return graph->tensor(fe::graph::Tensor_attributes().set_name(name).set_uid(uid).set_dim(sizes).set_stride(
        {strides.begin(), strides.end()}));
  };
  const auto& x = key.input_sizes;
  const auto& w = key.weight_sizes;
  auto input = tensor("input", kInput, {x[0], x[1], x[2], x[3]});
  auto weight = tensor("weight", kWeight, {w[0], w[1], w[2], w[3]});
  auto out = graph->conv_fprop(
      input, weight,
      fe::graph::Conv_fprop_attributes()
          .set_padding({key.padding, key.padding})
          .set_stride({key.stride, key.stride})
          .set_dilation({1, 1}));
  const auto add = fe::graph::Pointwise_attributes().set_mode(fe::PointwiseMode_t::ADD);
  out = graph->pointwise(out, tensor("bias", kBias, {1, w[0], 1, 1}), add);
  if (key.residual) {
    const int64_t height = (x[2] + 2 * key.padding - w[2]) / key.stride + 1;
    const int64_t width = (x[3] + 2 * key.padding - w[3]) / key.stride + 1;
    out = graph->pointwise(out, tensor("residual", kResidual, {x[0], w[0], height, width}), add);
  }
  if (key.relu) {
    out = graph->pointwise(out, fe::graph::Pointwise_attributes().set_mode(fe::PointwiseMode_t::RELU_FWD));
  }
  out->set_output(true).set_uid(kOut).set_data_type(io_type);
  return graph;
}

// The engines ATen's own cuDNN convolutions refuse, refused here too (aten/src/ATen/native/cudnn/Conv_v8.cpp).
void deselect_engines_aten_refuses(fe::graph::Graph& graph, const ConvPlanKey& key) {
  std::vector<fe::NumericalNote_t> notes{fe::NumericalNote_t::DOWN_CONVERT_INPUTS};
  if (key.dtype == at::kFloat && !key.allow_tf32) {
    notes.push_back(fe::NumericalNote_t::TENSOR_CORE);  // on FP32 data, tensor cores mean TF32
  }
  if (key.deterministic) {
    notes.push_back(fe::NumericalNote_t::NONDETERMINISTIC);
  }
  graph.deselect_numeric_notes(notes);
}

// Builds the plan(s); with `autotune`, times the first candidates on the call's own buffers.
Plan build_plan(const ConvPlanKey& key, bool autotune, cudnnHandle_t handle, std::unordered_map<int64_t, void*>& pack) {
  Plan plan;
  auto graph = describe_graph(key);
  auto failed = [&](fe::error_t status) {
    plan.why_not = status.get_message();
    return status.is_bad();
  };
  if (failed(graph->validate()) || failed(graph->build_operation_graph(handle)) ||
      failed(graph->create_execution_plans({fe::HeurMode_t::A, fe::HeurMode_t::FALLBACK}))) {
    return plan;
  }
  deselect_engines_aten_refuses(*graph, key);
  if (failed(graph->check_support())) {
    return plan;
  }
  if (!autotune) {
    if (failed(graph->build_plans(fe::BuildPlanPolicy_t::HEURISTICS_CHOICE))) {
      return plan;
    }
  } else {
    int64_t built = 0;
    for (int64_t index = 0; index < graph->get_execution_plan_count() && built < kAutotuneCandidates; ++index) {
      built += graph->build_plan_at_index(index).is_good() ? 1 : 0;
    }
    if (built == 0) {
      plan.why_not = "no candidate plan could be built";
      return plan;
    }
    const auto tuning_space = c10::cuda::CUDACachingAllocator::get()->allocate(graph->get_autotune_workspace_size());
    if (failed(graph->autotune(handle, pack, tuning_space.get()))) {
      return plan;
    }
  }
  if (failed(graph->get_workspace_size(plan.workspace_bytes))) {
    return plan;
  }
  plan.graph = std::move(graph);
  return plan;
}

class PlanCache {
 public:
  std::shared_ptr<const Plan> find(const ConvPlanKey& key) {
    const std::lock_guard<std::mutex> lock(mutex_);
    const auto it = plans_.find(key);
    return it == plans_.end() ? nullptr : it->second;
  }

  std::shared_ptr<const Plan> insert(const ConvPlanKey& key, Plan plan) {
    const std::lock_guard<std::mutex> lock(mutex_);
    if (plans_.size() >= kMaxPlans) {
      plans_.clear();
    }
    // Two threads may build the same key at once; the first one stored wins, both results are valid.
    return plans_.try_emplace(key, std::make_shared<const Plan>(std::move(plan))).first->second;
  }

 private:
  std::mutex mutex_;
  std::unordered_map<ConvPlanKey, std::shared_ptr<const Plan>, ConvPlanKeyHash> plans_;
};

PlanCache& plan_cache() {
  static PlanCache cache;
  return cache;
}

// Points cudnn_dlhandle at the cuDNN torch runs with, once: dlopen by soname finds the loaded copy.
void load_cudnn() {
  static const bool loaded = [] {
    const std::string name = "libcudnn.so." + std::to_string(CUDNN_MAJOR);
    fe::cudnn_dlhandle = dlopen(name.c_str(), RTLD_NOW);
    TORCH_CHECK(fe::cudnn_dlhandle != nullptr, "resnet_edge: cannot load ", name, " for the cuDNN graph route: ", dlerror());
    return true;
  }();
  (void)loaded;
}

void* pointer(const at::Tensor& t) {
  return const_cast<void*>(t.const_data_ptr());
}

} // namespace

std::optional<at::Tensor> cudnn_graph_conv(
    const at::Tensor& input,
    const at::Tensor& weight,
    const at::Tensor& bias,
    int64_t stride,
    const std::optional<at::Tensor>& residual,
    bool relu) {
  load_cudnn();
  // The graph declares a KRSC (channels_last) filter; folded weights already are (no copy).
  const at::Tensor filter = weight.contiguous(at::MemoryFormat::ChannelsLast);
  const bool capturing = c10::cuda::currentStreamCaptureStatusMayInitCtx() != c10::cuda::CaptureStatus::None;
  const CudnnSettings settings = current_cudnn_settings();
  const ConvPlanKey key = make_plan_key(input, filter, stride, residual.has_value(), relu, settings);

  at::Tensor out = at::empty(conv_output_sizes(input, filter, stride), input.options(), at::MemoryFormat::ChannelsLast);
  std::unordered_map<int64_t, void*> pack{
      {kInput, pointer(input)}, {kWeight, pointer(filter)}, {kBias, pointer(bias)}, {kOut, out.data_ptr()}};
  if (residual.has_value()) {
    pack.emplace(kResidual, pointer(*residual));
  }

  cudnnHandle_t handle = at::native::getCudnnHandle();  // bound to the current stream
  auto plan = plan_cache().find(key);
  if (plan == nullptr) {
    if (capturing) {
      TORCH_WARN_ONCE(
          "resnet_edge: the cuDNN graph of ", key.describe(), " was not built before this CUDA graph capture, so ",
          "the capture records the epilogue route for it; run the model once before capturing.");
      return std::nullopt;
    }
    plan = plan_cache().insert(key, build_plan(key, settings.benchmark, handle, pack));
  }
  if (plan->graph == nullptr) {
    TORCH_WARN_ONCE(
        "resnet_edge: cuDNN has no plan for ", key.describe(), " (", plan->why_not,
        "); such convolutions take the epilogue route.");
    return std::nullopt;
  }
  // From the caching allocator: stream-ordered, and drawn from the graph's private pool under capture.
  const auto workspace = c10::cuda::CUDACachingAllocator::get()->allocate(plan->workspace_bytes);
  auto status = plan->graph->execute(handle, pack, workspace.get());
  TORCH_CHECK(status.is_good(), "resnet_edge: cuDNN graph execution failed for ", key.describe(), ": ", status.get_message());
  return out;
}

} // namespace resnet_edge::ops::cuda

#endif // RESNET_EDGE_HAVE_CUDNN_FRONTEND
