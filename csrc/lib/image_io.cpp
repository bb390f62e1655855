// Decoding: an image file or cv::Mat -> the 8-bit BGR image the preprocessing works on, by the
// rule the Python side applies (resnet_edge/data/images.py; docs/cpp.md "Decoding"):
//
//   8-bit grey      -> replicated to three channels
//   alpha           -> dropped, never composited (BGRA, grey + alpha, palette transparency)
//   palette         -> the palette colour
//   16-bit samples  -> v/65535 of full scale, rounded: (v + 128) / 257 (32768 -> 128)
//   CMYK JPEG       -> OpenCV's conversion (Adobe polarity), which images.py reproduces
//   EXIF orientation-> applied to JPEG and PNG files (the formats both decoders read it from),
//                      ignored elsewhere
//   truncated JPEG  -> refused (an empty Mat), as Pillow refuses it
//
// cv::imread(IMREAD_COLOR | IMREAD_ANYDEPTH) already expands palettes, replicates grey and strips
// alpha inside libpng, keeping 16-bit samples as CV_16U; the scaling to 8 bits is done here,
// because OpenCV's own 8-bit read of a 16-bit PNG keeps only the high byte.

#include "preprocess.h"

#include "resnet_edge/classifier.h"

#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include <algorithm>
#include <cstdint>
#include <fstream>
#include <iterator>
#include <string>

namespace resnet_edge {
namespace {

// CV_16U -> CV_8U with the same number of channels: (v + 128) / 257, exactly round(v / 257).
cv::Mat scale16(const cv::Mat& image) {
  cv::Mat out(image.size(), CV_MAKETYPE(CV_8U, image.channels()));
  const int values = image.cols * image.channels();
  for (int y = 0; y < image.rows; ++y) {
    const uint16_t* src = image.ptr<uint16_t>(y);
    uint8_t* dst = out.ptr<uint8_t>(y);
    for (int x = 0; x < values; ++x) {
      dst[x] = static_cast<uint8_t>((static_cast<unsigned>(src[x]) + 128u) / 257u);
    }
  }
  return out;
}

bool is_jpeg(const std::string& path) {
  unsigned char head[3] = {};
  std::ifstream file(path, std::ios::binary);
  file.read(reinterpret_cast<char*>(head), sizeof(head));
  return file.gcount() == 3 && head[0] == 0xFF && head[1] == 0xD8 && head[2] == 0xFF;
}

// JPEG (FF D8 FF) and PNG files: the formats whose EXIF orientation both sides apply.
bool orientation_applies(const std::string& path) {
  unsigned char head[8] = {};
  std::ifstream file(path, std::ios::binary);
  file.read(reinterpret_cast<char*>(head), sizeof(head));
  const auto got = file.gcount();
  const bool jpeg = got >= 3 && head[0] == 0xFF && head[1] == 0xD8 && head[2] == 0xFF;
  const unsigned char png[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1A, '\n'};
  const bool is_png = got == 8 && std::equal(head, head + 8, png);
  return jpeg || is_png;
}

// A JPEG whose last scan (the last SOS marker, FF DA) has no end-of-image marker (FF D9) after it:
// cut short. libjpeg decodes such a file with grey filling the missing part and only a warning;
// Pillow refuses it ("image file is truncated"), and so does read_image. Inside entropy-coded data
// an FF byte is followed by 00 or a restart marker only, so neither marker can appear by accident
// there; an EXIF thumbnail's own markers come before the main image's scans.
bool jpeg_truncated(const std::string& path) {
  std::ifstream file(path, std::ios::binary);
  const std::string bytes((std::istreambuf_iterator<char>(file)), std::istreambuf_iterator<char>());
  const size_t scan = bytes.rfind("\xFF\xDA");
  return scan != std::string::npos && bytes.find("\xFF\xD9", scan) == std::string::npos;
}

}  // namespace

cv::Mat to_bgr8(const cv::Mat& image) {
  if (image.empty()) {
    throw Error("the image is empty (unreadable or zero-sized)", true);
  }
  if (image.depth() != CV_8U && image.depth() != CV_16U) {
    throw Error("only 8-bit and 16-bit images are supported (got OpenCV depth " + std::to_string(image.depth()) + ")",
                true);
  }
  const cv::Mat img8 = image.depth() == CV_16U ? scale16(image) : image;
  cv::Mat bgr;
  switch (img8.channels()) {
    case 3:
      bgr = img8;
      break;
    case 1:
      cv::cvtColor(img8, bgr, cv::COLOR_GRAY2BGR);  // PIL L -> RGB replicates the value
      break;
    case 4:
      cv::cvtColor(img8, bgr, cv::COLOR_BGRA2BGR);  // PIL RGBA -> RGB drops alpha
      break;
    default:
      throw Error("images must have 1, 3 or 4 channels (got " + std::to_string(img8.channels()) + ")", true);
  }
  return bgr.isContinuous() ? bgr : bgr.clone();
}

cv::Mat read_image(const std::string& path) {
  if (is_jpeg(path) && jpeg_truncated(path)) {
    return {};
  }
  const int orientation = orientation_applies(path) ? 0 : cv::IMREAD_IGNORE_ORIENTATION;
  cv::Mat image;
  try {
    image = cv::imread(path, cv::IMREAD_COLOR | cv::IMREAD_ANYDEPTH | orientation);
    if (!image.empty() && image.depth() != CV_8U && image.depth() != CV_16U) {
      // Float or 32-bit files (EXR, HDR, TIFF): OpenCV's own 8-bit conversion; outside the rule.
      image = cv::imread(path, cv::IMREAD_COLOR | orientation);
    }
  } catch (const cv::Exception&) {
    // imread throws (rather than returning nothing) for an image over OPENCV_IO_MAX_IMAGE_PIXELS,
    // i.e. a decompression bomb, before allocating it.
    return {};
  }
  return image.empty() ? image : to_bgr8(image);
}

}  // namespace resnet_edge
