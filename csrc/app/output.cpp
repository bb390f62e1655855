// resnet-edge-infer's output: the per-frame line or JSON object, the summary line and --save-input.

#include "output.h"

#include <nlohmann/json.hpp>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <stdexcept>

namespace fs = std::filesystem;

namespace resnet_edge_infer {

void Reporter::frame(long index, const std::string& file, const std::vector<float>& logits, double preprocess_ms,
                     double inference_ms) {
  if (frames_ == 0) {
    start_ = Clock::now() - std::chrono::microseconds(static_cast<long>((preprocess_ms + inference_ms) * 1000));
  }
  ++frames_;
  total_ms_ += preprocess_ms + inference_ms;
  const double elapsed = std::chrono::duration<double>(Clock::now() - start_).count();
  const double fps = elapsed > 0 ? frames_ / elapsed : 0.0;
  const auto top = classifier_.top_k(logits, args_.top_k);
  if (args_.json) {
    print_json(index, file, top, logits, preprocess_ms, inference_ms, fps);
  } else {
    print_text(index, file, top, preprocess_ms, inference_ms, fps);
  }
}

void Reporter::print_json(long index, const std::string& file, const std::vector<resnet_edge::Prediction>& top,
                          const std::vector<float>& logits, double preprocess_ms, double inference_ms,
                          double fps) const {
  nlohmann::ordered_json out;
  out["frame"] = index;
  out["source"] = args_.source;
  if (!file.empty()) {
    out["file"] = file;
  }
  nlohmann::ordered_json classes = nlohmann::ordered_json::array();
  for (const auto& p : top) {
    classes.push_back({{"index", p.index}, {"label", p.label}, {"score", p.score}});
  }
  out["top_k"] = classes;
  out["latency_ms"] = {{"preprocess", preprocess_ms}, {"inference", inference_ms}, {"total", preprocess_ms + inference_ms}};
  out["fps"] = fps;
  if (args_.logits) {
    std::vector<double> values(logits.begin(), logits.end());  // exact, printed with 17 digits
    out["logits"] = values;
  }
  std::cout << out.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace) << '\n' << std::flush;
}

void Reporter::print_text(long index, const std::string& file, const std::vector<resnet_edge::Prediction>& top,
                          double preprocess_ms, double inference_ms, double fps) const {
  std::printf("frame %ld", index);
  if (!file.empty()) {
    std::printf(" %s", file.c_str());
  }
  std::printf("  %.2f ms  %.1f fps  |", preprocess_ms + inference_ms, fps);
  for (size_t i = 0; i < top.size(); ++i) {
    std::printf("%s %s %.4f (%d)", i == 0 ? "" : ",", top[i].label.c_str(), top[i].score, top[i].index);
  }
  std::printf("\n");
  std::fflush(stdout);
}

void Reporter::summary() const {
  if (frames_ == 0) {
    return;
  }
  const double elapsed = std::chrono::duration<double>(Clock::now() - start_).count();
  std::fprintf(stderr, "%s: %ld frame(s), %.1f fps, %.2f ms per frame (preprocess + inference); %s %s %s on %s\n",
               kProgram, frames_, elapsed > 0 ? frames_ / elapsed : 0.0, total_ms_ / frames_,
               classifier_.arch().c_str(), classifier_.precision().c_str(), classifier_.backend().c_str(),
               classifier_.device().c_str());
}

namespace {

// NumPy .npy (format 1.0) of a little-endian float32 array, written to a temporary name and renamed
// into place: a frame's file is either absent or complete.
void save_npy(const fs::path& path, const std::vector<float>& data, const std::vector<int>& shape) {
  std::string header = "{'descr': '<f4', 'fortran_order': False, 'shape': (";
  for (int dim : shape) {
    header += std::to_string(dim) + ", ";
  }
  header += "), }";
  const size_t unpadded = 10 + header.size() + 1;
  header.append((64 - unpadded % 64) % 64, ' ');
  header += '\n';
  const fs::path partial = path.string() + ".partial";
  std::ofstream out(partial, std::ios::binary);
  const uint16_t length = static_cast<uint16_t>(header.size());
  out.write("\x93NUMPY\x01\x00", 8);
  const char length_bytes[2] = {static_cast<char>(length & 0xff), static_cast<char>(length >> 8)};
  out.write(length_bytes, 2);
  out.write(header.data(), static_cast<std::streamsize>(header.size()));
  out.write(reinterpret_cast<const char*>(data.data()), static_cast<std::streamsize>(data.size() * sizeof(float)));
  out.close();
  std::error_code ec;
  if (!out) {
    fs::remove(partial, ec);
    throw std::runtime_error("cannot write " + path.string() + " (disk full or not writable)");
  }
  fs::rename(partial, path, ec);
  if (ec) {
    fs::remove(partial, ec);
    throw std::runtime_error("cannot write " + path.string() + " (" + ec.message() + ")");
  }
}

}  // namespace

void maybe_save_input(const Args& args, const resnet_edge::Classifier& classifier, long index,
                      const std::vector<float>& input) {
  if (args.save_input.empty()) {
    return;
  }
  std::error_code ec;
  if (!fs::is_directory(args.save_input, ec) && (!fs::create_directories(args.save_input, ec) || ec)) {
    throw std::runtime_error("cannot create --save-input directory " + args.save_input + " (" + ec.message() + ")");
  }
  char name[32];
  std::snprintf(name, sizeof(name), "frame_%06ld.npy", index);
  const int crop = classifier.preprocessing().crop;
  const bool nchw = classifier.preprocessing().layout == "NCHW";
  save_npy(fs::path(args.save_input) / name, input, nchw ? std::vector<int>{3, crop, crop} : std::vector<int>{crop, crop, 3});
}

}  // namespace resnet_edge_infer
