// Internal: what runs a bundle's model. One runner per artifact kind: libtorch's AOTInductor
// package loader (aoti bundles' model.pt2, and tensorrt bundles' model.pt2 when they carry one) in
// aoti_runner.cpp; TorchScript (torchscript bundles, and tensorrt bundles' model.ts through
// Torch-TensorRT's runtime) in torch_runner.cpp; OpenVINO (openvino bundles) in openvino_runner.cpp
// when OpenVINO's C++ runtime was found at configure time (RESNET_EDGE_WITH_OPENVINO). Classifier (classifier.cpp) splits and pads batches
// and checks the output shape; a runner only runs one batch.
#pragma once

#include "bundle.h"

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace resnet_edge {

struct RunnerOutput {
  std::vector<float> values;  // row-major
  std::vector<int64_t> shape;
};

class Runner {
 public:
  virtual ~Runner() = default;
  // The model's output for one batch of float32 inputs laid out as `shape` (NCHW or NHWC).
  virtual RunnerOutput forward(const float* data, const std::vector<int64_t>& shape) = 0;
  // The device it runs on: "cpu", "cuda:0"...
  virtual std::string device() const = 0;
};

// The runners load the model from the bytes read_bundle checked (info.contents; moved out), never
// from the path again. Each throws resnet_edge::Error with one line.
std::unique_ptr<Runner> make_torch_runner(BundleInfo& info, const std::string& device, const ClassifierOptions& options);
std::unique_ptr<Runner> make_aoti_runner(BundleInfo& info, const std::string& device, const ClassifierOptions& options);
std::unique_ptr<Runner> make_openvino_runner(BundleInfo& info, const std::string& device,
                                             const ClassifierOptions& options);

// The AOTInductor package this bundle runs through make_aoti_runner ("" when none): an aoti
// bundle's model, or the model.pt2 a tensorrt bundle carries besides model.ts (preferred to it).
std::string aoti_package(const BundleInfo& info);

// The first line of `text`, at most `limit` characters.
std::string first_line(const std::string& text, size_t limit = 240);

}  // namespace resnet_edge
