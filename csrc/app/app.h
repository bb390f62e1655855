// Internal to resnet-edge-infer: what its parts (args, sources, output, main) share.
#pragma once

#include <atomic>
#include <chrono>
#include <stdexcept>
#include <string>

namespace resnet_edge_infer {

constexpr const char* kProgram = "resnet-edge-infer";

using Clock = std::chrono::steady_clock;

// Set by SIGINT/SIGTERM/SIGHUP: the sources stop after the current frame; g_signal says which.
extern std::atomic<bool> g_stop;
extern std::atomic<int> g_signal;

// Images with more pixels than this are not decoded (Pillow's DecompressionBombError limit, which
// the Python side applies): set as OPENCV_IO_MAX_IMAGE_PIXELS unless the environment sets it.
constexpr const char* kMaxImagePixels = "178956970";

// A usage problem: exit 2.
struct UsageError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// "resnet-edge-infer: error: MESSAGE" on stderr.
void error_line(const std::string& message);

inline double ms_since(Clock::time_point start) {
  return std::chrono::duration<double, std::milli>(Clock::now() - start).count();
}

}  // namespace resnet_edge_infer
