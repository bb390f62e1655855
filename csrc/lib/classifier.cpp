// resnet_edge::Classifier: the libtorch half (loading the artifact, running batches).
// Manifest reading lives in bundle.cpp, the preprocessing in preprocess.cpp.

#include "resnet_edge/classifier.h"

#include "bundle.h"
#include "preprocess.h"

#include <ATen/Parallel.h>
#include <ATen/core/dispatch/Dispatcher.h>
#include <torch/cuda.h>
#include <torch/script.h>
#include <torch/version.h>

#include <dlfcn.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <numeric>

#ifndef RESNET_EDGE_VERSION
#define RESNET_EDGE_VERSION "unknown"
#endif

namespace fs = std::filesystem;

namespace resnet_edge {
namespace {

const char* const kOpsLibrary = "libresnet_edge_ops.so";
const char* const kTorchTrtRuntime = "libtorchtrt_runtime.so";

std::string first_line(const std::string& text, size_t limit = 240) {
  std::string line = text.substr(0, text.find('\n'));
  return line.size() > limit ? line.substr(0, limit) + "..." : line;
}

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

bool torchtrt_runtime_registered() {
  try {
    return torch::getCustomClass("__torch__.torch.classes.tensorrt.Engine") != nullptr;
  } catch (const std::exception&) {
    return false;
  }
}

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

// The artifact file libtorch loads for this bundle.
std::string torchscript_artifact(const BundleInfo& info) {
  if (info.backend == "torchscript") {
    return info.artifacts.at("model");
  }
  if (info.backend == "tensorrt") {
    const auto& m = info.manifest;
    if (m.contains("tensorrt") && m["tensorrt"].is_object() && m["tensorrt"].contains("formats") &&
        m["tensorrt"]["formats"].is_object() && m["tensorrt"]["formats"].contains("torchscript")) {
      return m["tensorrt"]["formats"]["torchscript"].get<std::string>();
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
              " bundle, which the C++ Classifier does not run (it runs torchscript bundles, and tensorrt ones when "
              "built with Torch-TensorRT); compile one with resnet-edge compile --backend torchscript");
}

}  // namespace

struct Classifier::Impl {
  BundleInfo info;
  NormalizeTable table{};
  torch::jit::Module module;
  torch::Device device{torch::kCPU};
  std::string device_name;

  size_t input_size() const {
    return static_cast<size_t>(3) * info.preprocessing.crop * info.preprocessing.crop;
  }

  // Logits of `count` preprocessed images stored back to back in `data`.
  std::vector<std::vector<float>> forward(const float* data, int count) {
    std::vector<std::vector<float>> results;
    results.reserve(count);
    const int crop = info.preprocessing.crop;
    const bool nchw = info.preprocessing.layout == "NCHW";
    for (int start = 0; start < count; start += info.batch_max) {
      const int n = std::min(info.batch_max, count - start);
      const int padded = std::max(n, info.batch_min);
      std::vector<float> buffer;
      const float* chunk = data + static_cast<size_t>(start) * input_size();
      if (padded != n) {  // repeat the last image up to the artifact's smallest batch
        buffer.assign(chunk, chunk + static_cast<size_t>(n) * input_size());
        for (int i = n; i < padded; ++i) {
          buffer.insert(buffer.end(), chunk + (n - 1) * input_size(), chunk + n * input_size());
        }
        chunk = buffer.data();
      }
      const std::vector<int64_t> shape = nchw ? std::vector<int64_t>{padded, 3, crop, crop}
                                              : std::vector<int64_t>{padded, crop, crop, 3};
      torch::Tensor output;
      try {
        c10::InferenceMode guard;
        torch::Tensor input = torch::from_blob(const_cast<float*>(chunk), shape, torch::kFloat32).to(device);
        c10::IValue value = module.forward({input});
        if (value.isTuple()) {
          value = value.toTupleRef().elements().at(0);
        }
        output = value.toTensor().to(torch::kCPU, torch::kFloat32).contiguous();
      } catch (const std::exception& error) {
        throw Error("the model failed on a batch of " + std::to_string(padded) + " (" + first_line(error.what()) + ")");
      }
      if (output.dim() != 2 || output.size(0) != padded || output.size(1) != info.num_classes) {
        throw Error("the model returned shape " + c10::str(output.sizes()) + ", expected [" + std::to_string(padded) +
                    ", " + std::to_string(info.num_classes) + "]");
      }
      const float* values = output.data_ptr<float>();
      for (int i = 0; i < n; ++i) {
        results.emplace_back(values + static_cast<size_t>(i) * info.num_classes,
                             values + static_cast<size_t>(i + 1) * info.num_classes);
      }
    }
    return results;
  }
};

Classifier::Classifier(const std::string& bundle_dir, const std::string& device, const ClassifierOptions& options)
    : impl_(std::make_unique<Impl>()) {
  Impl& s = *impl_;
  s.info = read_bundle(bundle_dir, options.verify_files);
  const BundleInfo& info = s.info;
  check_preprocessing(info.preprocessing);
  s.table = make_normalize_table(info.preprocessing);
  // The backend first: a bundle this build cannot run is refused before anything else is tried.
  if (info.backend != "torchscript" && info.backend != "tensorrt") {
    torchscript_artifact(info);  // throws the explanation
  }
  if (info.backend == "tensorrt") {
    ensure_torchtrt_runtime(bundle_dir);
  }

  const bool cuda = torch::cuda::is_available();
  std::string wanted = device;
  if (wanted == "auto") {
    const bool wants_gpu = info.precision == "fp16" || info.target != "cpu" || info.backend == "tensorrt" ||
                           info.requires_device == "cuda";
    wanted = wants_gpu && cuda ? "cuda" : "cpu";
  }
  try {
    s.device = torch::Device(wanted);
  } catch (const std::exception&) {
    throw Error("unknown device '" + device + "'; use auto, cpu, cuda or cuda:N", true);
  }
  if (!s.device.is_cpu() && !s.device.is_cuda()) {
    throw Error("unknown device '" + device + "'; use auto, cpu, cuda or cuda:N", true);
  }
  if (s.device.is_cuda() && !cuda) {
    throw Error("device " + wanted + " was asked for and no CUDA GPU is visible to libtorch");
  }
  if (!s.device.is_cuda()) {
    if (info.backend == "tensorrt") {
      throw Error("bundle " + bundle_dir + " is a TensorRT engine and runs on a CUDA GPU only" +
                  (cuda ? std::string("; use device cuda") : std::string("; none is visible here")));
    }
    if (info.precision == "fp16" || info.requires_device == "cuda") {
      throw Error("bundle " + bundle_dir + " (" + info.precision + ") needs a CUDA GPU to run" +
                  (cuda ? std::string("; use device cuda") : std::string(" and none is visible here")));
    }
  }
  if (info.requires_fused_ops) {
    ensure_fused_ops(bundle_dir);
  }
  if (options.num_threads > 0) {
    at::set_num_threads(options.num_threads);
  }
  const std::string path = (fs::path(bundle_dir) / torchscript_artifact(info)).string();
  try {
    s.module = torch::jit::load(path, s.device);
    s.module.eval();
  } catch (const std::exception& error) {
    throw Error("cannot load " + path + " with libtorch " + TORCH_VERSION + " (" + first_line(error.what(), 200) + ")");
  }
  s.device_name = s.device.str();
  if (s.device.is_cuda() && !s.device.has_index()) {
    s.device_name = "cuda:0";
  }
}

Classifier::~Classifier() = default;
Classifier::Classifier(Classifier&&) noexcept = default;
Classifier& Classifier::operator=(Classifier&&) noexcept = default;

std::vector<float> Classifier::preprocess(const cv::Mat& image) const {
  std::vector<float> out(impl_->input_size());
  preprocess_into(image, impl_->info.preprocessing, impl_->table, out.data());
  return out;
}

std::vector<std::vector<float>> Classifier::run(const std::vector<std::vector<float>>& inputs) {
  std::vector<float> data;
  data.reserve(inputs.size() * impl_->input_size());
  for (const auto& input : inputs) {
    if (input.size() != impl_->input_size()) {
      throw Error("Classifier::run: an input has " + std::to_string(input.size()) + " values, expected " +
                      std::to_string(impl_->input_size()),
                  true);
    }
    data.insert(data.end(), input.begin(), input.end());
  }
  return impl_->forward(data.data(), static_cast<int>(inputs.size()));
}

std::vector<std::vector<float>> Classifier::logits(const std::vector<cv::Mat>& images) {
  std::vector<float> data(images.size() * impl_->input_size());
  for (size_t i = 0; i < images.size(); ++i) {
    preprocess_into(images[i], impl_->info.preprocessing, impl_->table, data.data() + i * impl_->input_size());
  }
  return impl_->forward(data.data(), static_cast<int>(images.size()));
}

std::vector<float> Classifier::logits(const cv::Mat& image) {
  return logits(std::vector<cv::Mat>{image}).at(0);
}

std::vector<Prediction> Classifier::top_k(const std::vector<float>& logits, int k) const {
  const int n = static_cast<int>(logits.size());
  k = std::max(0, std::min(k, n));
  std::vector<int> order(n);
  std::iota(order.begin(), order.end(), 0);
  std::partial_sort(order.begin(), order.begin() + k, order.end(), [&](int a, int b) {
    return logits[a] > logits[b] || (logits[a] == logits[b] && a < b);
  });
  const float top = n > 0 ? logits[order[0]] : 0.0f;
  double sum = 0.0;
  for (float value : logits) {
    sum += std::exp(static_cast<double>(value) - top);
  }
  std::vector<Prediction> out;
  out.reserve(k);
  for (int i = 0; i < k; ++i) {
    const int index = order[i];
    const std::string& label = index < static_cast<int>(impl_->info.labels.size()) ? impl_->info.labels[index] : "";
    out.push_back({index, label, static_cast<float>(std::exp(static_cast<double>(logits[index]) - top) / sum)});
  }
  return out;
}

std::vector<std::vector<Prediction>> Classifier::classify(const std::vector<cv::Mat>& images, int k) {
  std::vector<std::vector<Prediction>> out;
  for (const auto& row : logits(images)) {
    out.push_back(top_k(row, k));
  }
  return out;
}

std::vector<Prediction> Classifier::classify(const cv::Mat& image, int k) { return top_k(logits(image), k); }

const std::vector<std::string>& Classifier::labels() const { return impl_->info.labels; }
const Preprocessing& Classifier::preprocessing() const { return impl_->info.preprocessing; }
int Classifier::num_classes() const { return impl_->info.num_classes; }
const std::string& Classifier::arch() const { return impl_->info.arch; }
const std::string& Classifier::backend() const { return impl_->info.backend; }
const std::string& Classifier::precision() const { return impl_->info.precision; }
const std::string& Classifier::device() const { return impl_->device_name; }
const std::string& Classifier::bundle_dir() const { return impl_->info.dir; }

const char* version() { return RESNET_EDGE_VERSION; }

}  // namespace resnet_edge
