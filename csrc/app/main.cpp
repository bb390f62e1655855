// resnet-edge-infer: classify images, videos and camera frames with a resnet-edge bundle.
//
//   resnet-edge-infer BUNDLE --source IMAGE|DIR|VIDEO|/dev/videoN|N|URL|"gstreamer ... ! appsink"
//                     [--top-k 5] [--json [--logits]] [--device auto|cpu|cuda[:N]] [--threads N] [--no-cuda-graph]
//                     [--batch N] [--max-frames N] [--repeat N] [--warmup N]
//
// Prints the top-k classes of every frame and the running FPS (frames / seconds since the first
// frame). With --json: one JSON object per frame on stdout, nothing else there. A usage problem
// exits 2, anything else that fails exits 1, each with one line on stderr.
//
// The parts: args.cpp (the command line), sources.cpp (image files, directories and capture
// sources), output.cpp (per-frame lines, JSON, the summary, --save-input), this file (wiring and
// exit codes).

#include "app.h"
#include "args.h"
#include "output.h"
#include "sources.h"

#include "resnet_edge/classifier.h"

#include <opencv2/core/utils/logger.hpp>

#include <csignal>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <string>

#include <unistd.h>

namespace fs = std::filesystem;

namespace resnet_edge_infer {

std::atomic<bool> g_stop{false};
std::atomic<int> g_signal{0};

void error_line(const std::string& message) { std::fprintf(stderr, "%s: error: %s\n", kProgram, message.c_str()); }

namespace {

void on_signal(int signum) {
  g_signal = signum;
  g_stop = true;
}

// --save-input DIR: a directory, or one that can be created (its nearest existing ancestor is a
// writable directory). Checked before the model loads; created with the first frame saved
// (output.cpp), so a run that classifies nothing leaves nothing behind.
void check_save_input(const std::string& dir) {
  std::error_code ec;
  fs::path existing = fs::absolute(dir, ec);
  while (!existing.empty() && !fs::exists(existing, ec) && existing != existing.parent_path()) {
    existing = existing.parent_path();
  }
  if (!fs::is_directory(existing, ec)) {
    throw UsageError("--save-input " + dir + " is not a directory that can be created (" + existing.string() +
                     " is not a directory)");
  }
  if (access(existing.c_str(), W_OK | X_OK) != 0) {
    throw UsageError("--save-input " + dir + " is not writable (" + existing.string() + ": " + std::strerror(errno) +
                     ")");
  }
}

int run(const Args& args) {
  const Source source = resolve_source(args);
  if (!args.save_input.empty()) {
    check_save_input(args.save_input);
  }
  resnet_edge::ClassifierOptions options;
  options.num_threads = args.threads;
  options.cuda_graph = args.cuda_graph;
  resnet_edge::Classifier classifier(args.bundle, args.device, options);
  Reporter reporter(args, classifier);
  const int failures = source.capture ? run_capture(args, classifier, reporter)
                                      : run_images(args, classifier, reporter, source.files);
  if (g_signal != 0) {  // one line instead of the summary
    const char* name = sigabbrev_np(g_signal);
    error_line("stopped by " + (name != nullptr ? "SIG" + std::string(name) : "signal " + std::to_string(g_signal)) +
               " after " + std::to_string(reporter.frames()) + " frame(s); every frame reported and saved is complete");
    return 128 + g_signal;
  }
  reporter.summary();
  return failures > 0 ? 1 : 0;
}

}  // namespace
}  // namespace resnet_edge_infer

int main(int argc, char** argv) {
  using namespace resnet_edge_infer;
  // OpenCV logs its own warnings (a camera it cannot open, a file it cannot decode) to stderr;
  // this app reports those itself, in one line. OPENCV_LOG_LEVEL still wins when set.
  if (std::getenv("OPENCV_LOG_LEVEL") == nullptr) {
    cv::utils::logging::setLogLevel(cv::utils::logging::LOG_LEVEL_SILENT);
  }
  setenv("OPENCV_IO_MAX_IMAGE_PIXELS", kMaxImagePixels, 0);  // before the first decode reads it
  std::signal(SIGINT, on_signal);
  std::signal(SIGTERM, on_signal);
  std::signal(SIGHUP, on_signal);
  try {
    return run(parse_args(argc, argv));
  } catch (const UsageError& error) {
    error_line(error.what());
    return 2;
  } catch (const resnet_edge::Error& error) {
    error_line(error.what());
    return error.usage() ? 2 : 1;
  } catch (const cv::Exception& error) {
    error_line("OpenCV: " + error.err);
    return 1;
  } catch (const std::exception& error) {
    std::string what = error.what();
    error_line(what.substr(0, what.find('\n')));
    return 1;
  }
}
