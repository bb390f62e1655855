// resnet-edge-infer's output: one line or JSON object per frame, the summary, saved model inputs.
#pragma once

#include "app.h"
#include "args.h"

#include "resnet_edge/classifier.h"

#include <string>
#include <vector>

namespace resnet_edge_infer {

// Prints one frame's result and keeps the running FPS.
class Reporter {
 public:
  Reporter(const Args& args, resnet_edge::Classifier& classifier) : args_(args), classifier_(classifier) {}

  // Frame `index` (from `file` when not empty): top-k line or JSON object on stdout.
  void frame(long index, const std::string& file, const std::vector<float>& logits, double preprocess_ms,
             double inference_ms);
  // The frames / fps / latency line on stderr (nothing when no frame was reported).
  void summary() const;
  long frames() const { return frames_; }

 private:
  void print_json(long index, const std::string& file, const std::vector<resnet_edge::Prediction>& top,
                  const std::vector<float>& logits, double preprocess_ms, double inference_ms, double fps) const;
  void print_text(long index, const std::string& file, const std::vector<resnet_edge::Prediction>& top,
                  double preprocess_ms, double inference_ms, double fps) const;

  const Args& args_;
  resnet_edge::Classifier& classifier_;
  long frames_ = 0;
  double total_ms_ = 0;
  Clock::time_point start_;
};

// With --save-input: frame `index`'s model input as DIR/frame_NNNNNN.npy (float32).
void maybe_save_input(const Args& args, const resnet_edge::Classifier& classifier, long index,
                      const std::vector<float>& input);

}  // namespace resnet_edge_infer
