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

// The containment rule (docs/bundle-manifest.md; resnet_edge/bundle/containment.py applies the same
// one with the same messages): a listed name is a relative, '/'-separated path with no empty, "." or
// ".." part and none of '\\', ':' or NUL (a Windows separator, a drive letter, the end of a C path).
bool leaves_bundle(const std::string& name) {
  if (name.find_first_of(std::string("\\:\0", 3)) != std::string::npos) {
    return true;
  }
  size_t start = 0;
  while (true) {
    const size_t end = name.find('/', start);
    const std::string part = name.substr(start, end == std::string::npos ? std::string::npos : end - start);
    if (part.empty() || part == "." || part == "..") {
      return true;
    }
    if (end == std::string::npos) {
      return false;
    }
    start = end + 1;
  }
}

// Where `dir / name` resolves when a symlink takes it outside `dir`, or "" when it stays inside (a
// missing file, or one that cannot be resolved, is reported as missing when it is read).
std::string escaping_target(const std::string& dir, const std::string& name) {
  std::error_code root_error, target_error;
  const fs::path root = fs::weakly_canonical(dir, root_error);
  const fs::path target = fs::weakly_canonical(fs::path(dir) / name, target_error);
  if (root_error || target_error) {
    return "";
  }
  const fs::path relative = target.lexically_relative(root);
  return !relative.empty() && *relative.begin() != ".." ? "" : target.string();
}

// Refuse a name that leaves the bundle, by its spelling or through a symlink: a bundle is copied
// between machines and must carry every file it names.
void check_contained(const BundleInfo& info, const std::string& where, const std::string& name) {
  if (leaves_bundle(name)) {
    fail(where + ": file name " + json(name).dump() + " leaves the bundle directory; rebuild the bundle");
  }
  if (const std::string target = escaping_target(info.dir, name); !target.empty()) {
    fail("bundle " + info.dir + ": " + name + " is a symlink that leaves the bundle (to " + target +
         "); a copied bundle would break: copy the file in");
  }
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
      fail(where + ": artifact " + json(name).dump() + " (" + role + ") is not listed in files; rebuild the bundle");
    }
    keep.insert(name);
  }
  keep.insert(extra.begin(), extra.end());
  for (const auto& entry : files) {  // every listed name, hashes checked or not
    check_contained(info, where, entry.first);
  }
  for (const std::string& name : keep) {
    check_contained(info, where, name);
  }
  std::error_code ec;
  auto read = [&](const std::string& name) {
    const fs::path file = fs::path(info.dir) / name;
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
