// resnet-edge-infer's sources: which kind --source names, and the loops that classify image files
// (decoded by resnet_edge::read_image, the rule the Python side shares) and capture frames.

#include "sources.h"

#include "app.h"

#include <opencv2/imgcodecs.hpp>
#include <opencv2/videoio.hpp>
#include <opencv2/videoio/registry.hpp>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <set>
#include <string>

#include <fcntl.h>
#include <unistd.h>

namespace fs = std::filesystem;

namespace resnet_edge_infer {
namespace {

bool is_image_file(const fs::path& path) {
  static const std::set<std::string> extensions = {".bmp", ".dib", ".jpeg", ".jpg", ".jpe", ".jp2", ".png",
                                                   ".webp", ".pbm", ".pgm", ".ppm", ".pxm", ".pnm", ".sr",
                                                   ".ras", ".tiff", ".tif", ".exr", ".hdr", ".pic"};
  std::string ext = path.extension().string();
  std::transform(ext.begin(), ext.end(), ext.begin(), [](unsigned char c) { return std::tolower(c); });
  return extensions.count(ext) > 0;
}

bool all_digits(const std::string& text) {
  return !text.empty() && std::all_of(text.begin(), text.end(), [](unsigned char c) { return std::isdigit(c); });
}

// Sends stderr to /dev/null while it lives: libpng and libjpeg print their own warnings for a
// corrupt file, which this app reports itself in one line.
class QuietStderr {
 public:
  QuietStderr() {
    std::fflush(stderr);
    saved_ = dup(STDERR_FILENO);
    const int null = open("/dev/null", O_WRONLY);
    if (saved_ >= 0 && null >= 0) {
      dup2(null, STDERR_FILENO);
    }
    if (null >= 0) {
      close(null);
    }
  }
  ~QuietStderr() {
    std::fflush(stderr);
    if (saved_ >= 0) {
      dup2(saved_, STDERR_FILENO);
      close(saved_);
    }
  }
  QuietStderr(const QuietStderr&) = delete;
  QuietStderr& operator=(const QuietStderr&) = delete;

 private:
  int saved_ = -1;
};

cv::Mat read_image(const fs::path& path) {
  const QuietStderr quiet;
  return resnet_edge::read_image(path.string());
}

// Why read_image returned nothing for `path`: the file cannot be opened, or cannot be decoded.
std::string unreadable_reason(const fs::path& path) {
  errno = 0;
  if (FILE* file = std::fopen(path.c_str(), "rb"); file != nullptr) {
    std::fclose(file);
    const char* limit = std::getenv("OPENCV_IO_MAX_IMAGE_PIXELS");
    return std::string("not an image OpenCV can decode, corrupt, or over ") + (limit ? limit : kMaxImagePixels) +
           " pixels";
  }
  return std::strerror(errno);
}

void warmup(resnet_edge::Classifier& classifier, const cv::Mat& image, int runs) {
  for (int i = 0; i < runs; ++i) {
    classifier.logits(image);
  }
}

}  // namespace

Source resolve_source(const Args& args) {
  std::error_code ec;
  const fs::path source(args.source);
  Source result;
  std::vector<fs::path>& files = result.files;
  if (fs::is_directory(source, ec)) {
    for (const auto& entry : fs::directory_iterator(source, ec)) {
      if (entry.is_regular_file(ec) && is_image_file(entry.path())) {
        files.push_back(entry.path());
      }
    }
    if (ec) {
      throw UsageError("cannot list directory " + args.source + " (" + ec.message() + ")");
    }
    std::sort(files.begin(), files.end());
    if (files.empty()) {
      throw UsageError("no images in directory " + args.source);
    }
  } else if (fs::is_regular_file(source, ec) && is_image_file(source)) {
    files.push_back(source);
  } else if (fs::exists(source, ec) || args.source.find('!') != std::string::npos ||
             args.source.find("://") != std::string::npos || all_digits(args.source) ||
             args.source.rfind("/dev/video", 0) == 0) {
    result.capture = true;
  } else {
    throw UsageError("source " + args.source + " does not exist");
  }
  return result;
}

// Images: one file, or every image of a directory. Returns the number of unreadable images.
int run_images(const Args& args, resnet_edge::Classifier& classifier, Reporter& reporter,
               const std::vector<fs::path>& files) {
  int failures = 0;
  bool warmed = args.warmup == 0;
  long index = 0;
  struct Item {
    std::string file;
    cv::Mat image;
  };
  std::vector<Item> pending;
  auto flush = [&]() {
    if (pending.empty()) {
      return;
    }
    const auto t0 = Clock::now();
    std::vector<std::vector<float>> inputs;
    for (const auto& item : pending) {
      inputs.push_back(classifier.preprocess(item.image));
    }
    const double preprocess_ms = ms_since(t0);
    const auto t1 = Clock::now();
    const auto logits = classifier.run(inputs);
    const double inference_ms = ms_since(t1);
    const double n = static_cast<double>(pending.size());
    for (size_t i = 0; i < pending.size(); ++i) {
      maybe_save_input(args, classifier, index, inputs[i]);
      reporter.frame(index++, pending[i].file, logits[i], preprocess_ms / n, inference_ms / n);
    }
    pending.clear();
  };
  for (int pass = 0; pass < args.repeat && !g_stop; ++pass) {
    for (const auto& path : files) {
      if (g_stop || (args.max_frames > 0 && index + static_cast<long>(pending.size()) >= args.max_frames)) {
        break;
      }
      cv::Mat image = read_image(path);
      if (image.empty()) {
        error_line("cannot read image " + path.string() + " (" + unreadable_reason(path) + ")");
        ++failures;
        continue;
      }
      if (!warmed) {
        warmup(classifier, image, args.warmup);
        warmed = true;
      }
      pending.push_back({path.string(), image});
      if (static_cast<int>(pending.size()) >= args.batch) {
        flush();
      }
    }
  }
  flush();
  return failures;
}


namespace {

// Opens --source with the backend its form asks for; false after reporting why it cannot be.
bool open_capture(const std::string& source, cv::VideoCapture& capture, std::string& kind) {
  kind = "video";
  try {
    if (source.find('!') != std::string::npos) {
      kind = "GStreamer pipeline";
      if (!cv::videoio_registry::hasBackend(cv::CAP_GSTREAMER)) {
        error_line("this OpenCV " + std::string(CV_VERSION) +
                   " was built without GStreamer, so it cannot open a pipeline; use an OpenCV with GStreamer "
                   "(JetPack's, or Debian's libopencv-videoio with gstreamer1.0 plugins)");
        return false;
      }
      capture.open(source, cv::CAP_GSTREAMER);
    } else if (all_digits(source)) {
      kind = "camera";
      capture.open(std::stoi(source), cv::CAP_ANY);
    } else if (source.rfind("/dev/video", 0) == 0) {
      kind = "camera";
      capture.open(source, cv::CAP_V4L2);
    } else {
      kind = source.find("://") != std::string::npos ? "stream" : "video";
      capture.open(source, cv::CAP_ANY);
    }
  } catch (const cv::Exception& error) {
    error_line("cannot open " + kind + " " + source + " (" + error.err + ")");
    return false;
  }
  if (!capture.isOpened()) {
    const char* why = kind == "camera"               ? " (no such device, busy, or no permission)"
                      : kind == "GStreamer pipeline" ? " (a malformed pipeline, a missing GStreamer element, or no appsink)"
                      : kind == "stream"             ? " (unreachable, or no OpenCV backend reads it)"
                                                     : " (not a video, or no OpenCV backend reads it)";
    error_line("cannot open " + kind + " " + source + why);
    return false;
  }
  return true;
}

}  // namespace

int run_capture(const Args& args, resnet_edge::Classifier& classifier, Reporter& reporter) {
  const std::string& source = args.source;
  cv::VideoCapture capture;
  std::string kind;
  if (!open_capture(source, capture, kind)) {
    return 1;
  }
  long index = 0;
  bool warmed = args.warmup == 0;
  cv::Mat frame;
  while (!g_stop && (args.max_frames == 0 || index < args.max_frames)) {
    bool ok = false;
    try {
      ok = capture.read(frame);
    } catch (const cv::Exception& error) {
      error_line("reading " + kind + " " + source + " failed (" + error.err + ")");
      return 1;
    }
    if (!ok || frame.empty()) {
      if (index == 0) {
        error_line(kind + " " + source + " opened but delivered no frame");
        return 1;
      }
      break;  // end of the video
    }
    if (!warmed) {
      warmup(classifier, frame, args.warmup);
      warmed = true;
    }
    const auto t0 = Clock::now();
    const std::vector<float> input = classifier.preprocess(frame);
    const double preprocess_ms = ms_since(t0);
    const auto t1 = Clock::now();
    const auto logits = classifier.run({input});
    const double inference_ms = ms_since(t1);
    maybe_save_input(args, classifier, index, input);
    reporter.frame(index++, "", logits[0], preprocess_ms, inference_ms);
  }
  return 0;
}

}  // namespace resnet_edge_infer
