// Reading a bundle's files once: sha256 of the bytes in memory, the bytes kept for the runners.

#include "bundle.h"

#include <openssl/evp.h>

#include <array>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <set>

namespace fs = std::filesystem;
using nlohmann::json;

namespace resnet_edge {
namespace {

[[noreturn]] void fail(const std::string& message) { throw Error(message); }

// A listed name that is absolute or climbs out of the bundle directory.
bool escapes(const std::string& name) {
  const fs::path path(name);
  if (name.empty() || path.is_absolute()) {
    return true;
  }
  for (const auto& part : path) {
    if (part == "..") {
      return true;
    }
  }
  return false;
}

}  // namespace

std::string sha256_hex(const std::string& bytes) {
  std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> ctx(EVP_MD_CTX_new(), EVP_MD_CTX_free);
  std::array<unsigned char, EVP_MAX_MD_SIZE> digest{};
  unsigned int length = 0;
  if (!ctx || EVP_DigestInit_ex(ctx.get(), EVP_sha256(), nullptr) != 1 ||
      EVP_DigestUpdate(ctx.get(), bytes.data(), bytes.size()) != 1 ||
      EVP_DigestFinal_ex(ctx.get(), digest.data(), &length) != 1) {
    fail("OpenSSL cannot compute sha256");
  }
  static const char* hex = "0123456789abcdef";
  std::string out;
  for (unsigned int i = 0; i < length; ++i) {
    out += hex[digest[i] >> 4];
    out += hex[digest[i] & 15];
  }
  return out;
}

std::string read_file_bytes(const std::string& path) {
  errno = 0;
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    fail("cannot read " + path + " (" + std::string(errno != 0 ? std::strerror(errno) : "cannot open") + ")");
  }
  std::string bytes;
  std::error_code ec;
  const auto size = fs::file_size(path, ec);
  if (!ec) {
    bytes.reserve(static_cast<size_t>(size));
  }
  bytes.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  if (in.bad()) {
    fail("error reading " + path);
  }
  return bytes;
}

std::string take_file(BundleInfo& info, const std::string& name) {
  auto it = info.contents.find(name);
  if (it == info.contents.end()) {
    fail("bundle " + info.dir + ": " + name + " was not read with the manifest; rebuild the bundle");
  }
  std::string bytes = std::move(it->second);
  info.contents.erase(it);
  return bytes;
}

void read_and_check_files(BundleInfo& info, const std::string& where, bool verify,
                          const std::vector<std::string>& extra) {
  std::map<std::string, std::string> files;
  try {
    files = info.manifest["files"].get<std::map<std::string, std::string>>();
  } catch (const json::exception&) {
    fail(where + ": files is not an object of sha256 strings; rebuild the bundle");
  }
  std::set<std::string> keep = {"labels.txt"};
  for (const auto& [role, name] : info.artifacts) {
    if (files.find(name) == files.end()) {
      fail(where + ": artifact " + name + " (" + role + ") is not listed in files; rebuild the bundle");
    }
    keep.insert(name);
  }
  keep.insert(extra.begin(), extra.end());
  std::error_code ec;
  auto read = [&](const std::string& name) {
    const fs::path file = fs::path(info.dir) / name;
    if (escapes(name)) {
      fail(where + ": file name '" + name + "' leaves the bundle directory; rebuild the bundle");
    }
    if (!fs::is_regular_file(file, ec)) {
      fail("bundle " + info.dir + " is incomplete: " + name + " is missing; rebuild or re-copy it");
    }
    return read_file_bytes(file.string());
  };
  if (verify) {
    for (const auto& [name, digest] : files) {
      std::string bytes = read(name);  // read once: these bytes are hashed AND used
      if (sha256_hex(bytes) != digest) {
        fail("bundle " + info.dir + ": " + name +
             " does not match its sha256 in the manifest (corrupt or edited); rebuild or re-copy it");
      }
      if (keep.count(name) > 0) {
        info.contents[name] = std::move(bytes);
      }
    }
  }
  for (const std::string& name : keep) {
    if (info.contents.find(name) == info.contents.end() && (!verify || files.find(name) == files.end())) {
      if (name == "labels.txt" && !fs::is_regular_file(fs::path(info.dir) / name, ec)) {
        fail("bundle " + info.dir + " has no readable labels.txt; rebuild or re-copy it");
      }
      info.contents[name] = read(name);
    }
  }
}

}  // namespace resnet_edge
