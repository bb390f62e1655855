// Internal: the manifest's preprocessing (see preprocess.cpp). No libtorch here.
#pragma once

#include "resnet_edge/classifier.h"

#include <opencv2/core.hpp>

namespace resnet_edge {

// (float32(v) * float32(1/255) - mean[c]) / std[c] for every 8-bit value v and output channel c,
// computed with torchvision's float32 operations in torchvision's order.
struct NormalizeTable {
  float values[3][256];
};

NormalizeTable make_normalize_table(const Preprocessing& pre);

// resnet_edge::Error when the C++ side cannot apply `pre` exactly (an unsupported interpolation).
void check_preprocessing(const Preprocessing& pre);

// 1/3/4-channel 8- or 16-bit image -> continuous CV_8UC3 BGR by the decoding rule (image_io.cpp:
// grey replicated, alpha dropped, 16-bit v -> (v + 128) / 257); resnet_edge::Error for anything else.
cv::Mat to_bgr8(const cv::Mat& image);

// Resize, crop, channel order, normalise and layout of one image into `out` (3 * crop * crop floats).
void preprocess_into(const cv::Mat& image, const Preprocessing& pre, const NormalizeTable& table, float* out);

}  // namespace resnet_edge
