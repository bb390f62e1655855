// Internal: reading and checking a bundle directory (manifest.json, labels.txt, file hashes).
// No libtorch here. The schema is docs/bundle-manifest.md.
//
// Every file the Classifier uses (the artifacts and labels.txt) is read ONCE into memory, hashed
// from those bytes and used from them: a file that changes on disk after the check cannot change
// what runs (no time-of-check/time-of-use gap).
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
  // File name -> its bytes, read once (and, with verify_files, checked against the manifest's
  // sha256): every artifact and labels.txt. The runners load the model from these bytes.
  std::map<std::string, std::string> contents;
};

// Largest manifest.json read (a manifest is a few kB; 1000 class names about 30 kB).
constexpr std::uintmax_t kMaxManifestBytes = 16u << 20;

// Read and check `dir`'s manifest (schema version, required keys, shapes), labels.txt and, with
// `verify_files`, every file's sha256. Throws resnet_edge::Error with one line.
BundleInfo read_bundle(const std::string& dir, bool verify_files);

// The TorchScript module of a TensorRT bundle (manifest tensorrt.formats.torchscript), or "".
std::string tensorrt_torchscript(const nlohmann::json& manifest);

// Lower-case hex sha256 of `bytes`.
std::string sha256_hex(const std::string& bytes);

// A file's bytes in one read; Error (one line) when it cannot be read.
std::string read_file_bytes(const std::string& path);

// The bytes of the bundle's file `name` read by read_bundle, moved out (the runners own them
// from then on); Error when read_bundle did not read it.
std::string take_file(BundleInfo& info, const std::string& name);

// Every listed name inside the bundle (no '..', absolute path, '\\', ':' or NUL; no symlink out of
// the directory), every listed file present and, with `verify`, matching its sha256; the artifacts
// and labels.txt (and `extra` names) kept in info.contents. bundle_files.cpp.
void read_and_check_files(BundleInfo& info, const std::string& where, bool verify,
                          const std::vector<std::string>& extra);

}  // namespace resnet_edge
