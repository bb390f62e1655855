// resnet-edge-infer's command line (see kUsage).
#pragma once

#include <string>

namespace resnet_edge_infer {

struct Args {
  std::string bundle;
  std::string source;
  int top_k = 5;
  bool json = false;
  bool logits = false;
  std::string device = "auto";
  int threads = 0;
  bool cuda_graph = true;
  int batch = 1;
  long max_frames = 0;
  int repeat = 1;
  int warmup = 0;
  std::string save_input;
};

// The options, or UsageError; -h/--help prints the usage and exits 0.
Args parse_args(int argc, char** argv);

}  // namespace resnet_edge_infer
