// resnet-edge-infer: classify images, videos and camera frames with a resnet-edge bundle.
//
//   resnet-edge-infer BUNDLE --source IMAGE|DIR|VIDEO|/dev/videoN|N|URL|"gstreamer ... ! appsink"
//                     [--top-k 5] [--json [--logits]] [--device auto|cpu|cuda[:N]] [--threads N]
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
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>

namespace fs = std::filesystem;

namespace resnet_edge_infer {

std::atomic<bool> g_stop{false};

void error_line(const std::string& message) { std::fprintf(stderr, "%s: error: %s\n", kProgram, message.c_str()); }

namespace {

void on_signal(int) { g_stop = true; }

int run(const Args& args) {
  const Source source = resolve_source(args);
  if (!args.save_input.empty()) {
    std::error_code ec;
    fs::create_directories(args.save_input, ec);
    if (!fs::is_directory(args.save_input, ec)) {
      throw UsageError("--save-input " + args.save_input + " is not a directory that can be created");
    }
  }
  resnet_edge::ClassifierOptions options;
  options.num_threads = args.threads;
  resnet_edge::Classifier classifier(args.bundle, args.device, options);
  Reporter reporter(args, classifier);
  const int failures = source.capture ? run_capture(args, classifier, reporter)
                                      : run_images(args, classifier, reporter, source.files);
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
  std::signal(SIGINT, on_signal);
  std::signal(SIGTERM, on_signal);
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
