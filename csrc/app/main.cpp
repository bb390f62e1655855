// resnet-edge-infer: classify images, videos and camera frames with a resnet-edge bundle.
//
//   resnet-edge-infer BUNDLE --source IMAGE|DIR|VIDEO|/dev/videoN|N|URL|"gstreamer ... ! appsink"
//                     [--top-k 5] [--json [--logits]] [--device auto|cpu|cuda[:N]] [--threads N]
//                     [--batch N] [--max-frames N] [--repeat N] [--warmup N]
//
// Prints the top-k classes of every frame and the running FPS (frames / seconds since the first
// frame). With --json: one JSON object per frame on stdout, nothing else there. A usage problem
// exits 2, anything else that fails exits 1, each with one line on stderr.

#include "resnet_edge/classifier.h"

#include <nlohmann/json.hpp>
#include <opencv2/core/utils/logger.hpp>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/videoio.hpp>
#include <opencv2/videoio/registry.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdlib>
#include <cstdio>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <set>
#include <string>
#include <vector>

#include <fcntl.h>
#include <unistd.h>

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

namespace {

constexpr const char* kProgram = "resnet-edge-infer";

constexpr const char* kUsage = R"(usage: resnet-edge-infer BUNDLE --source SOURCE [options]

Classify images, videos or camera frames with a resnet-edge bundle (resnet-edge compile --out BUNDLE).

SOURCE is one of:
  IMAGE                   an image file (png, jpg, bmp, webp, tiff, ...)
  DIR                     every image in a directory, in name order
  VIDEO                   a video file OpenCV can read (mp4, mkv, avi, ...)
  /dev/videoN or N        a V4L2 camera
  rtsp://... http://...   a stream URL
  "... ! appsink"         a GStreamer pipeline, e.g. for a Jetson CSI camera:
                          "nvarguscamerasrc ! video/x-raw(memory:NVMM),width=1280,height=720,framerate=30/1
                           ! nvvidconv ! video/x-raw,format=BGRx ! videoconvert ! video/x-raw,format=BGR ! appsink"

options:
  --top-k K        classes to print per frame (default 5)
  --json           one JSON object per frame on stdout
  --logits         add the raw logits to each JSON object
  --device D       auto (default), cpu, cuda or cuda:N
  --threads N      CPU threads for libtorch (default: libtorch's choice)
  --batch N        images per batch for directory sources (default 1)
  --max-frames N   stop after N frames (default: the whole source; cameras run until Ctrl-C)
  --repeat N       go through an image or directory source N times (timing)
  --warmup N       untimed runs on the first frame before timing starts (default 0)
  --save-input DIR write each frame's model input (after preprocessing) to DIR/frame_NNNNNN.npy,
                   float32 [3, crop, crop]: compare it with the Python pipeline's
  -h, --help       this text
)";

std::atomic<bool> g_stop{false};

void on_signal(int) { g_stop = true; }

struct UsageError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

struct Args {
  std::string bundle;
  std::string source;
  int top_k = 5;
  bool json = false;
  bool logits = false;
  std::string device = "auto";
  int threads = 0;
  int batch = 1;
  long max_frames = 0;
  int repeat = 1;
  int warmup = 0;
  std::string save_input;
};

long parse_int(const std::string& option, const std::string& value, long minimum) {
  size_t used = 0;
  long number = 0;
  try {
    number = std::stol(value, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  if (used != value.size() || value.empty() || number < minimum) {
    throw UsageError(option + " takes an integer >= " + std::to_string(minimum) + ", got '" + value + "'");
  }
  return number;
}

Args parse_args(int argc, char** argv) {
  Args args;
  std::vector<std::string> positional;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    std::string value;
    bool has_inline = false;
    if (arg.rfind("--", 0) == 0 && arg.find('=') != std::string::npos) {
      value = arg.substr(arg.find('=') + 1);
      arg = arg.substr(0, arg.find('='));
      has_inline = true;
    }
    auto next = [&]() -> std::string {
      if (has_inline) {
        return value;
      }
      if (i + 1 >= argc) {
        throw UsageError(arg + " needs a value");
      }
      return argv[++i];
    };
    if (arg == "-h" || arg == "--help") {
      std::cout << kUsage;
      std::exit(0);
    } else if (arg == "--source") {
      args.source = next();
    } else if (arg == "--top-k") {
      args.top_k = static_cast<int>(parse_int(arg, next(), 1));
    } else if (arg == "--json") {
      args.json = true;
    } else if (arg == "--logits") {
      args.logits = true;
    } else if (arg == "--device") {
      args.device = next();
    } else if (arg == "--threads") {
      args.threads = static_cast<int>(parse_int(arg, next(), 1));
    } else if (arg == "--batch") {
      args.batch = static_cast<int>(parse_int(arg, next(), 1));
    } else if (arg == "--max-frames") {
      args.max_frames = parse_int(arg, next(), 1);
    } else if (arg == "--repeat") {
      args.repeat = static_cast<int>(parse_int(arg, next(), 1));
    } else if (arg == "--warmup") {
      args.warmup = static_cast<int>(parse_int(arg, next(), 0));
    } else if (arg == "--save-input") {
      args.save_input = next();
    } else if (arg.size() > 1 && arg[0] == '-') {
      throw UsageError("unknown option " + arg + " (see --help)");
    } else {
      positional.push_back(arg);
    }
  }
  if (positional.size() != 1) {
    throw UsageError(positional.empty() ? "missing BUNDLE (see --help)" : "one BUNDLE only (see --help)");
  }
  args.bundle = positional[0];
  if (args.source.empty()) {
    throw UsageError("missing --source IMAGE|DIR|VIDEO|/dev/videoN|\"pipeline ! appsink\" (see --help)");
  }
  if (args.logits && !args.json) {
    throw UsageError("--logits goes with --json");
  }
  return args;
}

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

double ms_since(Clock::time_point start) {
  return std::chrono::duration<double, std::milli>(Clock::now() - start).count();
}

// Prints one frame's result and keeps the running FPS.
class Reporter {
 public:
  Reporter(const Args& args, resnet_edge::Classifier& classifier) : args_(args), classifier_(classifier) {}

  void frame(long index, const std::string& file, const std::vector<float>& logits, double preprocess_ms,
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
      return;
    }
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

  void summary() const {
    if (frames_ == 0) {
      return;
    }
    const double elapsed = std::chrono::duration<double>(Clock::now() - start_).count();
    std::fprintf(stderr, "%s: %ld frame(s), %.1f fps, %.2f ms per frame (preprocess + inference); %s %s %s on %s\n",
                 kProgram, frames_, elapsed > 0 ? frames_ / elapsed : 0.0, total_ms_ / frames_,
                 classifier_.arch().c_str(), classifier_.precision().c_str(), classifier_.backend().c_str(),
                 classifier_.device().c_str());
  }

  long frames() const { return frames_; }

 private:
  const Args& args_;
  resnet_edge::Classifier& classifier_;
  long frames_ = 0;
  double total_ms_ = 0;
  Clock::time_point start_;
};

// NumPy .npy (format 1.0) of a little-endian float32 array.
void save_npy(const fs::path& path, const std::vector<float>& data, const std::vector<int>& shape) {
  std::string header = "{'descr': '<f4', 'fortran_order': False, 'shape': (";
  for (int dim : shape) {
    header += std::to_string(dim) + ", ";
  }
  header += "), }";
  const size_t unpadded = 10 + header.size() + 1;
  header.append((64 - unpadded % 64) % 64, ' ');
  header += '\n';
  std::ofstream out(path, std::ios::binary);
  const uint16_t length = static_cast<uint16_t>(header.size());
  out.write("\x93NUMPY\x01\x00", 8);
  const char length_bytes[2] = {static_cast<char>(length & 0xff), static_cast<char>(length >> 8)};
  out.write(length_bytes, 2);
  out.write(header.data(), static_cast<std::streamsize>(header.size()));
  out.write(reinterpret_cast<const char*>(data.data()), static_cast<std::streamsize>(data.size() * sizeof(float)));
  if (!out) {
    throw std::runtime_error("cannot write " + path.string());
  }
}

void maybe_save_input(const Args& args, const resnet_edge::Classifier& classifier, long index,
                      const std::vector<float>& input) {
  if (args.save_input.empty()) {
    return;
  }
  char name[32];
  std::snprintf(name, sizeof(name), "frame_%06ld.npy", index);
  const int crop = classifier.preprocessing().crop;
  const bool nchw = classifier.preprocessing().layout == "NCHW";
  save_npy(fs::path(args.save_input) / name, input, nchw ? std::vector<int>{3, crop, crop} : std::vector<int>{crop, crop, 3});
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
  return cv::imread(path.string(), cv::IMREAD_COLOR | cv::IMREAD_IGNORE_ORIENTATION);
}

void error_line(const std::string& message) { std::fprintf(stderr, "%s: error: %s\n", kProgram, message.c_str()); }

void warmup(resnet_edge::Classifier& classifier, const cv::Mat& image, int runs) {
  for (int i = 0; i < runs; ++i) {
    classifier.logits(image);
  }
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
        error_line("cannot read image " + path.string() + " (not an image OpenCV can decode, or corrupt)");
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

// Videos, cameras, streams and GStreamer pipelines through cv::VideoCapture.
int run_capture(const Args& args, resnet_edge::Classifier& classifier, Reporter& reporter) {
  const std::string& source = args.source;
  cv::VideoCapture capture;
  std::string kind = "video";
  try {
    if (source.find('!') != std::string::npos) {
      kind = "GStreamer pipeline";
      if (!cv::videoio_registry::hasBackend(cv::CAP_GSTREAMER)) {
        error_line("this OpenCV " + std::string(CV_VERSION) +
                   " was built without GStreamer, so it cannot open a pipeline; use an OpenCV with GStreamer "
                   "(JetPack's, or Debian's libopencv-videoio with gstreamer1.0 plugins)");
        return 1;
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
    return 1;
  }
  if (!capture.isOpened()) {
    const char* why = kind == "camera"               ? " (no such device, busy, or no permission)"
                      : kind == "GStreamer pipeline" ? " (a malformed pipeline, a missing GStreamer element, or no appsink)"
                      : kind == "stream"             ? " (unreachable, or no OpenCV backend reads it)"
                                                     : " (not a video, or no OpenCV backend reads it)";
    error_line("cannot open " + kind + " " + source + why);
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

int run(const Args& args) {
  std::error_code ec;
  const fs::path source(args.source);
  std::vector<fs::path> files;
  bool capture = false;
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
    capture = true;
  } else {
    throw UsageError("source " + args.source + " does not exist");
  }

  if (!args.save_input.empty()) {
    fs::create_directories(args.save_input, ec);
    if (!fs::is_directory(args.save_input, ec)) {
      throw UsageError("--save-input " + args.save_input + " is not a directory that can be created");
    }
  }
  resnet_edge::ClassifierOptions options;
  options.num_threads = args.threads;
  resnet_edge::Classifier classifier(args.bundle, args.device, options);
  Reporter reporter(args, classifier);
  const int failures = capture ? run_capture(args, classifier, reporter) : run_images(args, classifier, reporter, files);
  reporter.summary();
  return failures > 0 ? 1 : 0;
}

}  // namespace

int main(int argc, char** argv) {
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
