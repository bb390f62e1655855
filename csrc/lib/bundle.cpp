#include "bundle.h"

#include <array>
#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>

namespace fs = std::filesystem;
using nlohmann::json;

namespace resnet_edge {
namespace {

// The keys resnet_edge.bundle.REQUIRED_KEYS lists.
const char* const kRequiredKeys[] = {
    "schema_version", "created", "arch",      "num_classes", "classes", "preprocessing", "input", "output",
    "precision",      "backend", "target",    "artifacts",   "files",   "build_host",    "reference",
};

[[noreturn]] void fail(const std::string& message, bool usage = false) { throw Error(message, usage); }

const json& need(const json& object, const char* key, const std::string& where) {
  auto it = object.find(key);
  if (it == object.end()) {
    fail(where + " lacks " + key + "; rebuild the bundle");
  }
  return *it;
}

template <typename T>
T get_as(const json& value, const std::string& what) {
  try {
    return value.get<T>();
  } catch (const json::exception&) {
    fail(what + " has the wrong type (" + std::string(value.type_name()) + "); rebuild the bundle");
  }
}

Preprocessing read_preprocessing(const json& p, const std::string& where) {
  if (!p.is_object()) {
    fail(where + ": preprocessing is not an object; rebuild the bundle");
  }
  Preprocessing pre;
  pre.name = get_as<std::string>(need(p, "name", where + " preprocessing"), "preprocessing.name");
  pre.resize = get_as<int>(need(p, "resize", where + " preprocessing"), "preprocessing.resize");
  pre.crop = get_as<int>(need(p, "crop", where + " preprocessing"), "preprocessing.crop");
  const auto mean = get_as<std::vector<double>>(need(p, "mean", where + " preprocessing"), "preprocessing.mean");
  const auto std = get_as<std::vector<double>>(need(p, "std", where + " preprocessing"), "preprocessing.std");
  if (mean.size() != 3 || std.size() != 3) {
    fail(where + ": preprocessing mean and std must have 3 values each");
  }
  for (int c = 0; c < 3; ++c) {
    pre.mean[c] = static_cast<float>(mean[c]);  // torch.as_tensor(mean, dtype=float32)
    pre.std[c] = static_cast<float>(std[c]);
    if (pre.std[c] == 0.0f) {
      fail(where + ": preprocessing std has a zero; rebuild the bundle");
    }
  }
  pre.interpolation = p.value("interpolation", std::string("bilinear"));
  pre.channel_order = p.value("channel_order", std::string("RGB"));
  pre.layout = p.value("layout", std::string("NCHW"));
  if (pre.resize <= 0 || pre.crop <= 0) {
    fail(where + ": preprocessing resize and crop must be positive");
  }
  if (pre.channel_order != "RGB" && pre.channel_order != "BGR") {
    fail(where + ": preprocessing channel_order '" + pre.channel_order + "' is not RGB or BGR");
  }
  if (pre.layout != "NCHW" && pre.layout != "NHWC") {
    fail(where + ": preprocessing layout '" + pre.layout + "' is not NCHW or NHWC");
  }
  return pre;
}

// labels.txt's lines (the bytes read_bundle read and checked).
std::vector<std::string> read_labels(const std::string& text, const std::string& path, int num_classes) {
  std::vector<std::string> labels;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    if (!line.empty() && line.back() == '\r') {
      line.pop_back();
    }
    labels.push_back(line);
  }
  if (static_cast<int>(labels.size()) != num_classes) {
    fail(path + " has " + std::to_string(labels.size()) + " labels but the manifest says num_classes " +
         std::to_string(num_classes) + "; rebuild the bundle");
  }
  return labels;
}

}  // namespace

namespace {

// manifest.json of the bundle directory `dir_arg`, parsed, with a schema version this library reads
// and every required key.
json read_manifest(const std::string& dir_arg) {
  const fs::path dir(dir_arg);
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) {
    fail("bundle " + dir_arg + " does not exist; build one with resnet-edge compile --out " + dir_arg, true);
  }
  const fs::path manifest_path = dir / "manifest.json";
  if (!fs::is_regular_file(manifest_path, ec)) {
    fail(dir_arg + " is not a bundle (no manifest.json); pass the directory resnet-edge compile wrote", true);
  }
  const std::string where = manifest_path.string();
  const auto size = fs::file_size(manifest_path, ec);
  if (!ec && size > kMaxManifestBytes) {
    fail(where + " is " + std::to_string(size) + " bytes, more than a manifest may have (" +
         std::to_string(kMaxManifestBytes) + "); rebuild the bundle");
  }
  json m;
  const std::string text = read_file_bytes(where);
  if (text.size() > kMaxManifestBytes) {  // grew since the size check
    fail(where + " is larger than a manifest may have; rebuild the bundle");
  }
  try {
    m = json::parse(text);
  } catch (const json::parse_error& error) {
    std::string what = error.what();
    fail(where + " is not valid JSON (" + what.substr(0, 160) + "); rebuild the bundle");
  }
  if (!m.is_object()) {
    fail(where + " is not a manifest object; rebuild the bundle");
  }
  auto version = m.find("schema_version");
  if (version == m.end() || !version->is_number_integer()) {
    fail(where + " has no integer schema_version; rebuild the bundle");
  }
  if (version->get<int>() > kSchemaVersion) {
    fail("bundle " + dir_arg + " uses manifest schema_version " + std::to_string(version->get<int>()) +
         ", newer than this libresnet_edge reads (" + std::to_string(kSchemaVersion) + "); upgrade resnet-edge");
  }
  std::string absent;
  for (const char* key : kRequiredKeys) {
    if (!m.contains(key)) {
      absent += (absent.empty() ? "" : ", ") + std::string(key);
    }
  }
  if (!absent.empty()) {
    fail(where + " lacks " + absent + "; rebuild the bundle");
  }
  return m;
}

// The manifest's input (shape, batch range) and requires sections into `info`.
void read_input_and_requirements(BundleInfo& info, const std::string& where) {
  const json& m = info.manifest;
  const json& input = m["input"];
  info.input_shape = get_as<std::vector<int64_t>>(need(input, "shape", where + " input"), "input.shape");
  const int crop = info.preprocessing.crop;
  const bool nchw = info.preprocessing.layout == "NCHW";
  const std::vector<int64_t> expected =
      nchw ? std::vector<int64_t>{3, crop, crop} : std::vector<int64_t>{crop, crop, 3};
  if (info.input_shape.size() != 4 || !std::equal(expected.begin(), expected.end(), info.input_shape.begin() + 1)) {
    fail(where + ": input.shape does not match the preprocessing crop " + std::to_string(crop) + "; rebuild the bundle");
  }
  if (input.contains("batch")) {
    const json& batch = input["batch"];
    info.batch_min = batch.value("min", 1);
    info.batch_opt = batch.value("opt", info.batch_min);
    info.batch_max = batch.value("max", info.batch_opt);
  }
  if (info.batch_min < 1 || info.batch_max < info.batch_min) {
    fail(where + ": input.batch range is invalid; rebuild the bundle");
  }
  if (m.contains("requires") && m["requires"].is_object()) {
    const json& req = m["requires"];
    if (req.contains("device") && req["device"].is_string()) {
      info.requires_device = req["device"].get<std::string>();
    }
    info.requires_fused_ops = req.value("fused_ops", false);
  } else {
    info.requires_fused_ops = m.value("fused", false);
  }
}

}  // namespace

// The TorchScript module of a TensorRT bundle (manifest tensorrt.formats.torchscript), or "".
std::string tensorrt_torchscript(const json& m) {
  if (m.contains("tensorrt") && m["tensorrt"].is_object() && m["tensorrt"].contains("formats") &&
      m["tensorrt"]["formats"].is_object() && m["tensorrt"]["formats"].contains("torchscript") &&
      m["tensorrt"]["formats"]["torchscript"].is_string()) {
    return m["tensorrt"]["formats"]["torchscript"].get<std::string>();
  }
  return "";
}

BundleInfo read_bundle(const std::string& dir_arg, bool verify_files) {
  BundleInfo info;
  info.dir = dir_arg;
  info.manifest = read_manifest(dir_arg);
  const std::string where = (fs::path(dir_arg) / "manifest.json").string();
  const json& m = info.manifest;
  info.arch = get_as<std::string>(m["arch"], "arch");
  info.backend = get_as<std::string>(m["backend"], "backend");
  info.precision = get_as<std::string>(m["precision"], "precision");
  info.target = get_as<std::string>(m["target"], "target");
  info.num_classes = get_as<int>(m["num_classes"], "num_classes");
  if (info.num_classes <= 0) {
    fail(where + ": num_classes must be positive");
  }
  info.preprocessing = read_preprocessing(m["preprocessing"], where);
  info.artifacts = get_as<std::map<std::string, std::string>>(m["artifacts"], "artifacts");
  if (info.artifacts.find("model") == info.artifacts.end()) {
    fail(where + ": artifacts has no model; rebuild the bundle");
  }
  read_input_and_requirements(info, where);
  std::vector<std::string> extra;
  if (const std::string ts = tensorrt_torchscript(m); !ts.empty()) {
    extra.push_back(ts);
  }
  read_and_check_files(info, where, verify_files, extra);
  info.labels = read_labels(take_file(info, "labels.txt"), (fs::path(dir_arg) / "labels.txt").string(), info.num_classes);
  return info;
}

}  // namespace resnet_edge
