// Internal: reading and checking a bundle directory (manifest.json, labels.txt, file hashes).
// No libtorch here. The schema is docs/bundle-manifest.md.
#pragma once

#include "resnet_edge/classifier.h"

#include <nlohmann/json.hpp>

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace resnet_edge {

constexpr int kSchemaVersion = 1;

struct BundleInfo {
  std::string dir;
  nlohmann::json manifest;
  std::string arch, backend, precision, target;
  int num_classes = 0;
  Preprocessing preprocessing;
  std::vector<std::string> labels;
  std::vector<int64_t> input_shape;  // [N, 3, crop, crop]
  int batch_min = 1, batch_opt = 1, batch_max = 1;
  std::map<std::string, std::string> artifacts;  // role -> file name
  std::string requires_device = "any";           // any | cuda
  bool requires_fused_ops = false;
};

// Read and check `dir`'s manifest (schema version, required keys, shapes), labels.txt and, with
// `verify_files`, every file's sha256. Throws resnet_edge::Error with one line.
BundleInfo read_bundle(const std::string& dir, bool verify_files);

// Lower-case hex sha256 of a file's bytes.
std::string sha256_file(const std::string& path);

}  // namespace resnet_edge
