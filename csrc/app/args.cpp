// resnet-edge-infer's command line: the usage text and the option parser.

#include "args.h"

#include "app.h"

#include <cstdlib>
#include <iostream>
#include <string>
#include <vector>

namespace resnet_edge_infer {
namespace {

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
  --no-cuda-graph  run fixed-batch AOTInductor bundles on a GPU call by call instead of replaying
                   one captured CUDA graph
  --batch N        images per batch for directory sources (default 1)
  --max-frames N   stop after N frames (default: the whole source; cameras run until Ctrl-C)
  --repeat N       go through an image or directory source N times (timing)
  --warmup N       untimed runs on the first frame before timing starts (default 0)
  --save-input DIR write each frame's model input (after preprocessing) to DIR/frame_NNNNNN.npy,
                   float32 [3, crop, crop]: compare it with the Python pipeline's
  -h, --help       this text
)";

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

}  // namespace

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
    } else if (arg == "--no-cuda-graph") {
      args.cuda_graph = false;
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

}  // namespace resnet_edge_infer
