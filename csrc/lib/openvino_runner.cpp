// The OpenVINO runner: openvino bundles (artifacts {"model": "model.xml", "weights": "model.bin"},
// OpenVINO IR) on the CPU, through the C++ runtime the openvino pip wheel ships. Built only when
// CMake found OpenVINO (RESNET_EDGE_WITH_OPENVINO); classifier.cpp refuses such bundles otherwise.
// The IR is read from the bytes read_bundle hashed (Core::read_model from a string and a tensor),
// not from the files again.

#include "runner.h"

#include <openvino/openvino.hpp>

namespace resnet_edge {
namespace {

// manifest[section][key] as a string, or `fallback`.
std::string manifest_string(const nlohmann::json& m, const char* section, const char* key, const std::string& fallback) {
  if (m.contains(section) && m[section].is_object() && m[section].contains(key) && m[section][key].is_string()) {
    return m[section][key].get<std::string>();
  }
  return fallback;
}

class OpenVinoRunner : public Runner {
 public:
  OpenVinoRunner(BundleInfo& info, const ClassifierOptions& options) {
    const std::string xml_name = info.artifacts.at("model");
    auto weights = info.artifacts.find("weights");
    if (weights == info.artifacts.end()) {
      throw Error("bundle " + info.dir + ": an openvino bundle needs artifacts.weights (model.bin); rebuild it");
    }
    const std::string xml = take_file(info, xml_name);
    weights_ = take_file(info, weights->second);  // kept alive: the model's constants may point into it
    input_name_ = manifest_string(info.manifest, "input", "name", "");
    output_name_ = manifest_string(info.manifest, "output", "name", "");
    ov::AnyMap config;
    if (options.num_threads > 0) {
      config.emplace(ov::inference_num_threads(options.num_threads));
    }
    // FP32 bundles stay FP32: the CPU plugin would otherwise pick bf16 on CPUs that have it.
    const std::string precision = manifest_string(info.manifest, "openvino", "inference_precision",
                                                  info.precision == "fp32" ? "f32" : "");
    if (!precision.empty()) {
      config.emplace(ov::hint::inference_precision(ov::element::Type(precision)));
    }
    try {
      ov::Tensor weight_tensor(ov::element::u8, ov::Shape{weights_.size()}, weights_.data());
      std::shared_ptr<ov::Model> model = core_.read_model(xml, weight_tensor);
      compiled_ = core_.compile_model(model, "CPU", config);
      request_ = compiled_.create_infer_request();
    } catch (const std::exception& error) {
      throw Error("cannot load " + info.dir + "/" + xml_name + " with OpenVINO " + ov::get_openvino_version().buildNumber +
                  " (" + first_line(error.what(), 200) + ")");
    }
  }

  RunnerOutput forward(const float* data, const std::vector<int64_t>& shape) override {
    ov::Shape ov_shape(shape.begin(), shape.end());
    ov::Tensor input(ov::element::f32, ov_shape, const_cast<float*>(data));
    if (input_name_.empty() || compiled_.inputs().size() == 1) {
      request_.set_input_tensor(input);
    } else {
      request_.set_tensor(input_name_, input);
    }
    request_.infer();
    const ov::Tensor output = output_name_.empty() || compiled_.outputs().size() == 1
                                  ? request_.get_output_tensor()
                                  : request_.get_tensor(output_name_);
    if (output.get_element_type() != ov::element::f32) {
      throw Error("the OpenVINO model returned " + output.get_element_type().get_type_name() + ", expected f32");
    }
    RunnerOutput out;
    const ov::Shape out_shape = output.get_shape();
    out.shape.assign(out_shape.begin(), out_shape.end());
    const float* values = output.data<const float>();
    out.values.assign(values, values + output.get_size());
    return out;
  }

  std::string device() const override { return "cpu"; }

 private:
  std::string weights_;
  std::string input_name_, output_name_;
  ov::Core core_;
  ov::CompiledModel compiled_;
  ov::InferRequest request_;
};

}  // namespace

std::unique_ptr<Runner> make_openvino_runner(BundleInfo& info, const std::string& device,
                                             const ClassifierOptions& options) {
  if (device != "auto" && device != "cpu") {
    throw Error("bundle " + info.dir + " is an OpenVINO bundle, which this app runs on the CPU; use --device cpu or auto (got '" +
                device + "')");
  }
  return std::make_unique<OpenVinoRunner>(info, options);
}

}  // namespace resnet_edge
