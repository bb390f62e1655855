// resnet-edge-make-video OUT FPS IMAGE... : write the images (all the same size) as a lossless
// FFV1 video with OpenCV's VideoWriter, read it back and check every frame is bit-identical.
// A test helper for the parity test; exits 1 with one line on stderr if anything differs.

#include <opencv2/core.hpp>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/videoio.hpp>

#include <cstdio>
#include <string>
#include <vector>

int main(int argc, char** argv) {
  if (argc < 4) {
    std::fprintf(stderr, "usage: resnet-edge-make-video OUT.mkv FPS IMAGE...\n");
    return 2;
  }
  const std::string out = argv[1];
  const double fps = std::stod(argv[2]);
  std::vector<cv::Mat> frames;
  for (int i = 3; i < argc; ++i) {
    cv::Mat image = cv::imread(argv[i], cv::IMREAD_COLOR | cv::IMREAD_IGNORE_ORIENTATION);
    if (image.empty()) {
      std::fprintf(stderr, "resnet-edge-make-video: cannot read %s\n", argv[i]);
      return 1;
    }
    if (!frames.empty() && image.size() != frames[0].size()) {
      std::fprintf(stderr, "resnet-edge-make-video: %s has another size than the first image\n", argv[i]);
      return 1;
    }
    frames.push_back(image);
  }
  cv::VideoWriter writer(out, cv::CAP_FFMPEG, cv::VideoWriter::fourcc('F', 'F', 'V', '1'), fps, frames[0].size());
  if (!writer.isOpened()) {
    std::fprintf(stderr, "resnet-edge-make-video: OpenCV cannot write FFV1 to %s (no FFmpeg backend?)\n", out.c_str());
    return 1;
  }
  for (const auto& frame : frames) {
    writer.write(frame);
  }
  writer.release();

  cv::VideoCapture reader(out, cv::CAP_FFMPEG);
  cv::Mat frame;
  size_t count = 0;
  while (reader.read(frame)) {
    if (count >= frames.size() || frame.size() != frames[count].size() || frame.type() != frames[count].type() ||
        cv::norm(frame, frames[count], cv::NORM_INF) != 0) {
      std::fprintf(stderr, "resnet-edge-make-video: frame %zu of %s does not read back exactly\n", count, out.c_str());
      return 1;
    }
    ++count;
  }
  if (count != frames.size()) {
    std::fprintf(stderr, "resnet-edge-make-video: %s reads back %zu of %zu frames\n", out.c_str(), count, frames.size());
    return 1;
  }
  std::printf("%s: %zu lossless frames\n", out.c_str(), count);
  return 0;
}
