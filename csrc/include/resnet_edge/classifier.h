// resnet_edge::Classifier: run a resnet-edge bundle (manifest.json + labels.txt + artifact) on
// OpenCV images from C++. The header needs OpenCV's core only; libtorch stays an implementation
// detail of libresnet_edge.
//
//   resnet_edge::Classifier clf("build/r20", "auto");        // checks the manifest and file hashes
//   cv::Mat bgr = resnet_edge::read_image("cat.png");      // decoded as the Python side does
//   for (const auto& p : clf.classify(bgr, 5)) std::cout << p.label << ' ' << p.score << '\n';
//
// Preprocessing is exactly the manifest's (see docs/bundle-manifest.md): BGR -> RGB, resize of
// the shorter side with Pillow's antialiased filters (bit-exact on uint8), centre crop, /255,
// normalise, NCHW. Every failure is a resnet_edge::Error with a one-line message.
//
// Backends: aoti (model.pt2, AOTInductor) and torchscript; tensorrt (model.aoti.pt2, else model.ts)
// with Torch-TensorRT's runtime; openvino (model.xml + model.bin, CPU) when libresnet_edge was
// built with OpenVINO. The model is loaded from the bytes
// whose sha256 was checked, so a file replaced on disk after the check cannot run.

#pragma once

#include <opencv2/core.hpp>

#include <array>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

namespace resnet_edge {

// A one-line, user-facing failure. `usage()` is true for bad input (a missing bundle, an image
// that cannot be used) and false for a failed check (a hash mismatch, a backend this build lacks).
class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& message, bool usage = false)
      : std::runtime_error(message), usage_(usage) {}
  bool usage() const noexcept { return usage_; }

 private:
  bool usage_;
};

struct Prediction {
  int index;          // class index (row of labels.txt)
  std::string label;  // class name
  float score;        // softmax probability
};

// The manifest's `preprocessing` object.
struct Preprocessing {
  std::string name;
  int resize = 0;  // shorter side
  int crop = 0;    // square centre crop
  std::array<float, 3> mean{};
  std::array<float, 3> std{};
  std::string interpolation = "bilinear";
  std::string channel_order = "RGB";
  std::string layout = "NCHW";
};

struct ClassifierOptions {
  bool verify_files = true;  // check every file's sha256 against the manifest (refuse on mismatch)
  int num_threads = 0;       // intra-op CPU threads; 0 keeps libtorch's default
  bool cuda_graph = true;    // fixed-batch AOTInductor bundles on a GPU: capture one CUDA graph, replay it
};

class Classifier {
 public:
  // `device`: "auto" (a GPU when the bundle wants one and one is visible), "cpu", "cuda", "cuda:N".
  explicit Classifier(const std::string& bundle_dir, const std::string& device = "auto",
                      const ClassifierOptions& options = {});
  ~Classifier();
  Classifier(Classifier&&) noexcept;
  Classifier& operator=(Classifier&&) noexcept;
  Classifier(const Classifier&) = delete;
  Classifier& operator=(const Classifier&) = delete;

  // Top-k of one image (8- or 16-bit BGR, BGRA or grayscale, any size; 16-bit v reads as
  // (v + 128) / 257, alpha is dropped).
  std::vector<Prediction> classify(const cv::Mat& image, int top_k = 5);
  // Top-k of each image; runs batches within the bundle's batch range.
  std::vector<std::vector<Prediction>> classify(const std::vector<cv::Mat>& images, int top_k = 5);

  // Raw float32 logits, [num_classes] per image.
  std::vector<float> logits(const cv::Mat& image);
  std::vector<std::vector<float>> logits(const std::vector<cv::Mat>& images);

  // The model input of one image: float32 3 x crop x crop (channel-major, NCHW without N) laid
  // out as the manifest says; what `logits` feeds the model.
  std::vector<float> preprocess(const cv::Mat& image) const;
  // Logits of preprocessed inputs (each `preprocess`-shaped), for timing the two halves apart.
  std::vector<std::vector<float>> run(const std::vector<std::vector<float>>& inputs);

  // Top-k of a logits vector (softmax scores, highest first).
  std::vector<Prediction> top_k(const std::vector<float>& logits, int k) const;

  const std::vector<std::string>& labels() const;
  const Preprocessing& preprocessing() const;
  int num_classes() const;
  const std::string& arch() const;
  const std::string& backend() const;
  const std::string& precision() const;
  const std::string& device() const;  // the device it runs on: "cpu", "cuda:0"...
  const std::string& bundle_dir() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// The resize + crop half of the preprocessing on 8-bit images, exposed for tests and for callers
// that preprocess on their own: Pillow's Image.resize (as torchvision's Resize uses on PIL images)
// of the shorter side to `resize`, then torchvision's CenterCrop to `crop`. Channels are kept in
// their order; the result is CV_8UC3. `interpolation`: bilinear, bicubic, box, hamming, lanczos.
cv::Mat resize_and_crop(const cv::Mat& image, int resize, int crop,
                        const std::string& interpolation = "bilinear");

// An image file decoded by the rule the Python side uses (docs/cpp.md "Decoding"): CV_8UC3 BGR,
// grey replicated, alpha dropped, palettes expanded, 16-bit samples v -> (v + 128) / 257, CMYK JPEG
// by OpenCV's conversion, EXIF orientation applied to JPEG and PNG files. An empty Mat when the
// file cannot be read or decoded, is a truncated JPEG, or has more pixels than
// OPENCV_IO_MAX_IMAGE_PIXELS (resnet-edge-infer sets it to Pillow's limit, 178956970).
cv::Mat read_image(const std::string& path);

// Version string of this library.
const char* version();

}  // namespace resnet_edge
