// resnet_edge::Classifier: the bundle (bundle.cpp), the preprocessing (preprocess.cpp) and a runner
// for its backend (runner.h: AOTInductor in aoti_runner.cpp, TorchScript in torch_runner.cpp,
// OpenVINO in openvino_runner.cpp). This file splits and pads batches to the bundle's range and
// checks what the model returns.

#include "resnet_edge/classifier.h"

#include "bundle.h"
#include "preprocess.h"
#include "runner.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <sstream>

#ifndef RESNET_EDGE_VERSION
#define RESNET_EDGE_VERSION "unknown"
#endif

namespace resnet_edge {

std::string first_line(const std::string& text, size_t limit) {
  std::string line = text.substr(0, text.find('\n'));
  return line.size() > limit ? line.substr(0, limit) + "..." : line;
}

#ifndef RESNET_EDGE_WITH_OPENVINO
std::unique_ptr<Runner> make_openvino_runner(BundleInfo& info, const std::string&, const ClassifierOptions&) {
  throw Error("bundle " + info.dir +
              " is an OpenVINO bundle and this build of libresnet_edge has no OpenVINO runtime; rebuild it with "
              "OpenVINO (pip install openvino in the venv, then cmake with csrc/app/cmake_args.py) or compile a "
              "torchscript bundle");
}
#endif

namespace {

std::string shape_text(const std::vector<int64_t>& shape) {
  std::ostringstream out;
  out << '[';
  for (size_t i = 0; i < shape.size(); ++i) {
    out << (i ? ", " : "") << shape[i];
  }
  out << ']';
  return out.str();
}

}  // namespace

struct Classifier::Impl {
  BundleInfo info;
  NormalizeTable table{};
  std::unique_ptr<Runner> runner;
  std::string device_name;

  size_t input_size() const {
    return static_cast<size_t>(3) * info.preprocessing.crop * info.preprocessing.crop;
  }

  // One padded batch of `padded` inputs; its logits rows, checked for shape.
  std::vector<float> run_batch(const float* chunk, int padded) {
    const int crop = info.preprocessing.crop;
    const std::vector<int64_t> shape = info.preprocessing.layout == "NCHW" ? std::vector<int64_t>{padded, 3, crop, crop}
                                                                           : std::vector<int64_t>{padded, crop, crop, 3};
    RunnerOutput output;
    try {
      output = runner->forward(chunk, shape);
    } catch (const std::exception& error) {
      throw Error("the model failed on a batch of " + std::to_string(padded) + " (" + first_line(error.what()) + ")");
    }
    if (output.shape.size() != 2 || output.shape[0] != padded || output.shape[1] != info.num_classes) {
      throw Error("the model returned shape " + shape_text(output.shape) + ", expected [" + std::to_string(padded) +
                  ", " + std::to_string(info.num_classes) + "]");
    }
    return std::move(output.values);
  }

  // Logits of `count` preprocessed images stored back to back in `data`.
  std::vector<std::vector<float>> forward(const float* data, int count) {
    std::vector<std::vector<float>> results;
    results.reserve(count);
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
      const std::vector<float> values = run_batch(chunk, padded);
      for (int i = 0; i < n; ++i) {
        results.emplace_back(values.begin() + static_cast<size_t>(i) * info.num_classes,
                             values.begin() + static_cast<size_t>(i + 1) * info.num_classes);
      }
    }
    return results;
  }
};

Classifier::Classifier(const std::string& bundle_dir, const std::string& device, const ClassifierOptions& options)
    : impl_(std::make_unique<Impl>()) {
  Impl& s = *impl_;
  s.info = read_bundle(bundle_dir, options.verify_files);
  check_preprocessing(s.info.preprocessing);
  s.table = make_normalize_table(s.info.preprocessing);
  if (s.info.backend == "openvino") {
    s.runner = make_openvino_runner(s.info, device, options);
  } else if (!aoti_package(s.info).empty()) {  // aoti bundles; tensorrt ones carrying a package (preferred to model.ts)
    s.runner = make_aoti_runner(s.info, device, options);
  } else {
    s.runner = make_torch_runner(s.info, device, options);
  }
  s.info.contents.clear();  // what the runner did not take is no longer needed
  s.device_name = s.runner->device();
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
