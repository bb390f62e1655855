// The AOTInductor runner: aoti bundles' model.pt2, and the AOTInductor package a tensorrt bundle
// carries (model.aoti.pt2, saved by torch_tensorrt.save(..., output_format="aot_inductor")), through
// libtorch's torch::inductor::AOTIModelPackageLoader. No Python, no TorchScript.
//
// What runs is what was checked: the loader only opens a path, so the bytes read_bundle hashed are
// written to a private directory (mkdtemp, mode 0700) and loaded from there; the loader extracts
// the package's shared library into its own directory, and ours is removed at once.
//
// The package is native code for one torch, one CPU architecture and its instruction-set
// extensions (Inductor compiles with -march=native): the manifest's requires.torch / cpu_arch /
// cpu_isa are checked before the library is loaded, as bundle.load does in Python.
//
// With a fixed batch on a CUDA GPU the runner captures the package's run as a CUDA graph once and
// replays it (AOTInductor has no capture of its own): ClassifierOptions::cuda_graph, on by default.

#include "runner.h"
#include "torch_support.h"

#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <c10/core/InferenceMode.h>
#include <torch/csrc/inductor/aoti_package/model_package_loader.h>
#include <torch/headeronly/version.h>

#ifdef RESNET_EDGE_WITH_CUDA
#include <ATen/cuda/CUDAGraph.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#endif

#include <sys/utsname.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

namespace fs = std::filesystem;
using nlohmann::json;

namespace resnet_edge {
namespace {

std::string machine_name() {
  utsname name{};
  return uname(&name) == 0 ? std::string(name.machine) : std::string("unknown");
}

// The instruction-set flags /proc/cpuinfo lists for the first CPU (x86 "flags", Arm "Features").
std::set<std::string> cpu_flags() {
  std::ifstream in("/proc/cpuinfo");
  std::set<std::string> flags;
  for (std::string line; std::getline(in, line);) {
    const std::string key = line.substr(0, line.find_first_of(" \t:"));
    if (key == "flags" || key == "Features") {
      std::istringstream words(line.substr(line.find(':') + 1));
      for (std::string flag; words >> flag;) {
        flags.insert(flag);
      }
      break;
    }
  }
  return flags;
}

// requires.torch / cpu_arch / cpu_isa against this process (backends/aoti/host.py's check in Python).
void check_package_host(const BundleInfo& info) {
  const json needs = info.manifest.value("requires", json::object());
  if (!needs.is_object()) {
    return;
  }
  const std::string torch_version = needs.value("torch", std::string());
  if (!torch_version.empty() && torch_version.substr(0, torch_version.find('+')) != TORCH_VERSION) {
    throw Error("bundle " + info.dir + " is an AOTInductor package built with torch " + torch_version +
                " and this libtorch is " + TORCH_VERSION + "; recompile it with the torch of this libtorch");
  }
  const std::string arch = needs.value("cpu_arch", std::string());
  if (!arch.empty() && arch != machine_name()) {
    throw Error("bundle " + info.dir + " was compiled for " + arch + " CPUs and this host is " + machine_name() +
                "; recompile it here with resnet-edge compile --backend aoti");
  }
  if (needs.contains("cpu_isa") && needs["cpu_isa"].is_array()) {
    const std::set<std::string> have = cpu_flags();
    std::string missing;
    for (const auto& flag : needs["cpu_isa"]) {
      if (flag.is_string() && have.count(flag.get<std::string>()) == 0) {
        missing += (missing.empty() ? "" : ", ") + flag.get<std::string>();
      }
    }
    if (!missing.empty()) {
      throw Error("bundle " + info.dir + " was compiled for a CPU with " + first_line(missing, 120) +
                  ", which this CPU lacks; recompile it here");
    }
  }
}

// The checked bytes of `name` in a private directory for the loader; removed when this goes.
class PrivateCopy {
 public:
  PrivateCopy(const std::string& bytes, const std::string& name) {
    std::string pattern = (fs::temp_directory_path() / "resnet-edge-aoti-XXXXXX").string();
    if (mkdtemp(pattern.data()) == nullptr) {
      throw Error("cannot create a private directory in " + fs::temp_directory_path().string() + " to load " + name);
    }
    dir_ = pattern;
    path_ = (fs::path(dir_) / name).string();
    std::ofstream out(path_, std::ios::binary);
    out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    if (!out.flush()) {
      throw Error("cannot write " + path_ + " to load it (disk full?)");
    }
  }
  ~PrivateCopy() {
    std::error_code ignored;
    fs::remove_all(dir_, ignored);
  }
  PrivateCopy(const PrivateCopy&) = delete;
  PrivateCopy& operator=(const PrivateCopy&) = delete;
  const std::string& path() const { return path_; }

 private:
  std::string dir_, path_;
};

using Loader = torch::inductor::AOTIModelPackageLoader;

at::Tensor logits_on_cpu(const std::vector<at::Tensor>& outputs) {
  if (outputs.empty()) {
    throw Error("the AOTInductor package returned no output");
  }
  return outputs.front().to(at::kCPU, at::kFloat).contiguous();
}

RunnerOutput to_output(const at::Tensor& output) {
  RunnerOutput out;
  out.shape.assign(output.sizes().begin(), output.sizes().end());
  out.values.assign(output.data_ptr<float>(), output.data_ptr<float>() + output.numel());
  return out;
}

class AotiRunner : public Runner {
 public:
  AotiRunner(std::unique_ptr<Loader> loader, c10::Device device) : loader_(std::move(loader)), device_(device) {
    name_ = device_.is_cuda() && !device_.has_index() ? "cuda:0" : device_.str();
  }

  RunnerOutput forward(const float* data, const std::vector<int64_t>& shape) override {
    c10::InferenceMode guard;
    at::Tensor input = at::from_blob(const_cast<float*>(data), shape, at::kFloat).to(device_);
    return to_output(logits_on_cpu(loader_->run({input})));
  }

  std::string device() const override { return name_; }

 protected:
  std::unique_ptr<Loader> loader_;
  c10::Device device_;
  std::string name_;
};

#ifdef RESNET_EDGE_WITH_CUDA
// A fixed-batch package on a GPU, run once on a side stream to warm up, then captured as a CUDA
// graph that every forward() replays after copying the batch into the captured input tensor.
class AotiGraphRunner : public AotiRunner {
 public:
  AotiGraphRunner(std::unique_ptr<Loader> loader, c10::Device device, const std::vector<int64_t>& shape)
      : AotiRunner(std::move(loader), device), stream_(c10::cuda::getStreamFromPool(false, device.index())) {
    c10::InferenceMode guard;
    c10::cuda::CUDAStreamGuard on_stream(stream_);
    input_ = at::zeros(shape, at::TensorOptions().dtype(at::kFloat).device(device_));
    loader_->run({input_}, stream_.stream());  // warm-up: allocations and lazy initialisation outside capture
    stream_.synchronize();
    graph_.capture_begin();
    outputs_ = loader_->run({input_}, stream_.stream());
    graph_.capture_end();
    shape_ = shape;
  }

  RunnerOutput forward(const float* data, const std::vector<int64_t>& shape) override {
    if (shape != shape_) {
      return AotiRunner::forward(data, shape);
    }
    c10::InferenceMode guard;
    c10::cuda::CUDAStreamGuard on_stream(stream_);
    input_.copy_(at::from_blob(const_cast<float*>(data), shape, at::kFloat));
    graph_.replay();
    return to_output(logits_on_cpu(outputs_));
  }

 private:
  c10::cuda::CUDAStream stream_;
  at::cuda::CUDAGraph graph_;
  at::Tensor input_;
  std::vector<at::Tensor> outputs_;
  std::vector<int64_t> shape_;
};
#endif

std::unique_ptr<Runner> make_runner(std::unique_ptr<Loader> loader, const BundleInfo& info, c10::Device device,
                                    bool graph) {
#ifdef RESNET_EDGE_WITH_CUDA
  if (graph) {
    const int crop = info.preprocessing.crop;
    const std::vector<int64_t> shape = info.preprocessing.layout == "NCHW"
                                           ? std::vector<int64_t>{info.batch_min, 3, crop, crop}
                                           : std::vector<int64_t>{info.batch_min, crop, crop, 3};
    return std::make_unique<AotiGraphRunner>(std::move(loader), device, shape);
  }
#else
  (void)info;
  (void)graph;
#endif
  return std::make_unique<AotiRunner>(std::move(loader), device);
}

}  // namespace

std::string aoti_package(const BundleInfo& info) {
  if (info.backend == "aoti") {
    return info.artifacts.at("model");
  }
  if (info.backend == "tensorrt") {
    const auto it = info.artifacts.find("aoti_package");
    return it == info.artifacts.end() ? "" : it->second;
  }
  return "";
}

std::unique_ptr<Runner> make_aoti_runner(BundleInfo& info, const std::string& device, const ClassifierOptions& options) {
  const std::string artifact = aoti_package(info);
  if (info.backend == "tensorrt") {
    ensure_torchtrt_runtime(info.dir);  // the package calls Torch-TensorRT's engine op
  }
  check_package_host(info);
  const c10::Device chosen = resolve_device(info, device);
  if (info.requires_device != "cuda" && info.backend == "aoti" && chosen.is_cuda()) {
    throw Error("bundle " + info.dir + " is an AOTInductor package compiled for the CPU and runs only there; " +
                "use device cpu, or recompile it for the GPU");
  }
  if (info.requires_fused_ops) {
    ensure_fused_ops(info.dir);  // before the package: it resolves the ops when it loads
  }
  if (options.num_threads > 0) {
    at::set_num_threads(options.num_threads);
  }
  const std::string path = (fs::path(info.dir) / artifact).string();
  const bool graph = chosen.is_cuda() && options.cuda_graph && info.batch_min == info.batch_max;
  try {
    PrivateCopy copy(take_file(info, artifact), fs::path(artifact).filename().string());
    // run_single_threaded: no locking inside the loader, which CUDA graph capture requires.
    auto loader = std::make_unique<Loader>(copy.path(), "model", graph, 1, chosen.is_cuda() ? chosen.index() : -1);
    return make_runner(std::move(loader), info, chosen, graph);
  } catch (const Error&) {
    throw;
  } catch (const std::exception& error) {
    throw Error("cannot load " + path + " with libtorch " + TORCH_VERSION + " (" + first_line(error.what(), 200) + ")");
  }
}

}  // namespace resnet_edge
