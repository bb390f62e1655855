// resnet-edge-infer's sources: image files and directories, and everything cv::VideoCapture opens.
#pragma once

#include "args.h"
#include "output.h"

#include "resnet_edge/classifier.h"

#include <filesystem>
#include <vector>

namespace resnet_edge_infer {

// What --source names: image files (one, or a directory's in name order) or a capture source.
struct Source {
  std::vector<std::filesystem::path> files;
  bool capture = false;
};

// --source resolved; UsageError when it does not exist or a directory holds no image.
Source resolve_source(const Args& args);

// Images: one file, or every image of a directory. Returns the number of unreadable images.
int run_images(const Args& args, resnet_edge::Classifier& classifier, Reporter& reporter,
               const std::vector<std::filesystem::path>& files);

// Videos, cameras, streams and GStreamer pipelines through cv::VideoCapture: 0, or 1 after
// reporting a source that cannot be opened or read.
int run_capture(const Args& args, resnet_edge::Classifier& classifier, Reporter& reporter);

}  // namespace resnet_edge_infer
