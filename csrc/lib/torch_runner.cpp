// The TorchScript runner: torchscript bundles, and tensorrt bundles' model.ts through Torch-TensorRT's
// runtime (those carrying an AOTInductor package run in aoti_runner.cpp instead). Loads the module
// from the bytes read_bundle hashed (an istream), not from the path. Also the libtorch helpers both
// runners share (torch_support.h).

#include "runner.h"
#include "torch_support.h"

#include <ATen/Parallel.h>
#include <ATen/core/dispatch/Dispatcher.h>
#include <torch/cuda.h>
#include <torch/script.h>
#include <torch/version.h>

#include <dlfcn.h>

#include <cstdlib>
#include <filesystem>
#include <sstream>

namespace fs = std::filesystem;

namespace resnet_edge {
namespace {

const char* const kOpsLibrary = "libresnet_edge_ops.so";
const char* const kTorchTrtRuntime = "libtorchtrt_runtime.so";

// The directory libresnet_edge.so was loaded from (where the build puts the ops library too).
fs::path own_directory() {
  Dl_info info{};
  if (dladdr(reinterpret_cast<void*>(&own_directory), &info) != 0 && info.dli_fname != nullptr) {
    std::error_code ec;
    fs::path path = fs::canonical(info.dli_fname, ec);
    if (!ec) {
      return path.parent_path();
    }
  }
  return {};
}

// dlopen `name` from $env_var, beside this library, then the loader's search path; "" or the error.
std::string try_dlopen(const char* env_var, const char* name) {
  std::vector<std::string> candidates;
  if (const char* env = std::getenv(env_var); env != nullptr && *env != '\0') {
    candidates.emplace_back(env);
  }
  if (fs::path dir = own_directory(); !dir.empty()) {
    candidates.push_back((dir / name).string());
  }
  candidates.emplace_back(name);
  std::string last_error = "not found";
  for (const std::string& candidate : candidates) {
    if (candidate.find('/') != std::string::npos && !fs::exists(candidate)) {
      continue;
    }
    if (dlopen(candidate.c_str(), RTLD_NOW | RTLD_GLOBAL) != nullptr) {
      return "";
    }
    const char* error = dlerror();
    last_error = error != nullptr ? error : "dlopen failed";
  }
  return last_error;
}

bool fused_ops_registered() {
  return c10::Dispatcher::singleton().findSchema({"resnet_edge::fused_basic_block", ""}).has_value() &&
         c10::Dispatcher::singleton().findSchema({"resnet_edge::fused_bottleneck", ""}).has_value();
}

}  // namespace

void ensure_fused_ops(const std::string& bundle_dir) {
  if (fused_ops_registered()) {
    return;
  }
  const std::string error = try_dlopen("RESNET_EDGE_OPS_LIBRARY", kOpsLibrary);
  if (!fused_ops_registered()) {
    throw Error("bundle " + bundle_dir + " uses the fused resnet_edge ops and " + kOpsLibrary +
                " cannot be loaded (" + first_line(error, 160) +
                "); build it with CMake (target resnet_edge_ops) or rebuild the bundle with --no-fused");
  }
}

namespace {

bool torchtrt_runtime_registered() {
  try {
    return torch::getCustomClass("__torch__.torch.classes.tensorrt.Engine") != nullptr;
  } catch (const std::exception&) {
    return false;
  }
}

}  // namespace

void ensure_torchtrt_runtime(const std::string& bundle_dir) {
  if (torchtrt_runtime_registered()) {
    return;
  }
  const std::string error = try_dlopen("RESNET_EDGE_TORCHTRT_RUNTIME", kTorchTrtRuntime);
  if (!torchtrt_runtime_registered()) {
    throw Error("bundle " + bundle_dir +
                " is a TensorRT bundle and this build of libresnet_edge has no Torch-TensorRT runtime (" +
                std::string(kTorchTrtRuntime) + ": " + first_line(error, 120) +
                "); rebuild it with -DTORCHTRT_ROOT=<torch_tensorrt install> or use a torchscript bundle");
  }
}

namespace {

// The artifact file libtorch loads for this bundle.
std::string torchscript_artifact(const BundleInfo& info) {
  if (info.backend == "torchscript") {
    return info.artifacts.at("model");
  }
  if (info.backend == "tensorrt") {
    if (std::string ts = tensorrt_torchscript(info.manifest); !ts.empty()) {
      return ts;
    }
    for (const auto& [role, name] : info.artifacts) {
      if (name.size() > 3 && name.compare(name.size() - 3, 3, ".ts") == 0) {
        return name;
      }
    }
    throw Error("bundle " + info.dir +
                " has no TorchScript TensorRT module (model.ts) for libtorch; rebuild it with the torchscript format");
  }
  throw Error("bundle " + info.dir + " is a " + info.backend +
              " bundle, which the C++ Classifier does not run (it runs aoti and torchscript bundles, tensorrt ones "
              "when built with Torch-TensorRT, openvino ones when built with OpenVINO); compile one with resnet-edge "
              "compile --backend aoti");
}

}  // namespace

// The torch::Device `device` names for this bundle ("auto": a GPU when the bundle wants one).
torch::Device resolve_device(const BundleInfo& info, const std::string& device) {
  const bool cuda = torch::cuda::is_available();
  std::string wanted = device;
  if (wanted == "auto") {
    const bool wants_gpu = info.precision == "fp16" || info.target != "cpu" || info.backend == "tensorrt" ||
                           info.requires_device == "cuda";
    wanted = wants_gpu && cuda ? "cuda" : "cpu";
  }
  torch::Device chosen{torch::kCPU};
  try {
    chosen = torch::Device(wanted);
  } catch (const std::exception&) {
    throw Error("unknown device '" + device + "'; use auto, cpu, cuda or cuda:N", true);
  }
  if (!chosen.is_cpu() && !chosen.is_cuda()) {
    throw Error("unknown device '" + device + "'; use auto, cpu, cuda or cuda:N", true);
  }
  if (chosen.is_cuda() && !cuda) {
    throw Error("device " + wanted + " was asked for and no CUDA GPU is visible to libtorch");
  }
  if (!chosen.is_cuda()) {
    if (info.backend == "tensorrt") {
      throw Error("bundle " + info.dir + " is a TensorRT engine and runs on a CUDA GPU only" +
                  (cuda ? std::string("; use device cuda") : std::string("; none is visible here")));
    }
    if (info.precision == "fp16" || info.requires_device == "cuda") {
      throw Error("bundle " + info.dir + " (" + info.precision + ") needs a CUDA GPU to run" +
                  (cuda ? std::string("; use device cuda") : std::string(" and none is visible here")));
    }
  }
  return chosen;
}

namespace {

class TorchRunner : public Runner {
 public:
  TorchRunner(torch::jit::Module module, torch::Device device) : module_(std::move(module)), device_(device) {
    name_ = device_.str();
    if (device_.is_cuda() && !device_.has_index()) {
      name_ = "cuda:0";
    }
  }

  RunnerOutput forward(const float* data, const std::vector<int64_t>& shape) override {
    c10::InferenceMode guard;
    torch::Tensor input = torch::from_blob(const_cast<float*>(data), shape, torch::kFloat32).to(device_);
    c10::IValue value = module_.forward({input});
    if (value.isTuple()) {
      value = value.toTupleRef().elements().at(0);
    }
    torch::Tensor output = value.toTensor().to(torch::kCPU, torch::kFloat32).contiguous();
    RunnerOutput out;
    out.shape.assign(output.sizes().begin(), output.sizes().end());
    out.values.assign(output.data_ptr<float>(), output.data_ptr<float>() + output.numel());
    return out;
  }

  std::string device() const override { return name_; }

 private:
  torch::jit::Module module_;
  torch::Device device_;
  std::string name_;
};

}  // namespace

std::unique_ptr<Runner> make_torch_runner(BundleInfo& info, const std::string& device, const ClassifierOptions& options) {
  // The backend first: a bundle this build cannot run is refused before anything else is tried.
  if (info.backend != "torchscript" && info.backend != "tensorrt") {
    torchscript_artifact(info);  // throws the explanation
  }
  if (info.backend == "tensorrt") {
    ensure_torchtrt_runtime(info.dir);
  }
  const std::string artifact = torchscript_artifact(info);
  const torch::Device chosen = resolve_device(info, device);
  if (info.requires_fused_ops) {
    ensure_fused_ops(info.dir);
  }
  if (options.num_threads > 0) {
    at::set_num_threads(options.num_threads);
  }
  const std::string path = (fs::path(info.dir) / artifact).string();
  torch::jit::Module module;
  try {
    std::istringstream stream(take_file(info, artifact));  // the checked bytes, not the file again
    module = torch::jit::load(stream, chosen);
    module.eval();
  } catch (const Error&) {
    throw;
  } catch (const std::exception& error) {
    throw Error("cannot load " + path + " with libtorch " + TORCH_VERSION + " (" + first_line(error.what(), 200) + ")");
  }
  return std::make_unique<TorchRunner>(std::move(module), chosen);
}

}  // namespace resnet_edge
