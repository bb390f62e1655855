// Embedding resnet_edge::Classifier: print the top-3 classes of every frame of a camera or video.
#include <resnet_edge/classifier.h>

#include <opencv2/videoio.hpp>

#include <iostream>

int main(int argc, char** argv) {
  if (argc != 3) return std::cerr << "usage: " << argv[0] << " BUNDLE VIDEO|/dev/videoN\n", 2;
  try {
    resnet_edge::Classifier classifier(argv[1]);  // checks manifest.json and hashes, loads the model
    cv::VideoCapture capture(argv[2]);
    if (!capture.isOpened()) return std::cerr << "cannot open " << argv[2] << "\n", 1;
    for (cv::Mat frame; capture.read(frame);) {  // BGR frames, any size
      for (const auto& p : classifier.classify(frame, 3)) std::cout << p.label << ' ' << p.score << "  ";
      std::cout << '\n';
    }
  } catch (const resnet_edge::Error& error) {  // one line: bad bundle, wrong backend, no GPU...
    return std::cerr << error.what() << '\n', 1;
  }
}
