// The manifest's preprocessing on decoded 8-bit images (image_io.cpp: to_bgr8), bit-exact with the Python side
// (resnet_edge.data.presets.eval_transform on a PIL image):
//
//   v2.RGB()                  -> 3 channels (grayscale replicated, alpha dropped)
//   v2.Resize(resize)         -> torchvision's output size, then PIL Image.resize with the
//                                interpolation's filter (Pillow's ImagingResample, below)
//   v2.CenterCrop(crop)       -> torchvision's anchor (Python round(), zero padding when smaller)
//   ToImage/ToDtype(scale)    -> float32(v) * float32(1/255)
//   Normalize(mean, std)      -> (x - float32(mean)) / float32(std)
//
// The resampler follows Pillow's src/libImaging/Resample.c (precompute_coeffs,
// normalize_coeffs_8bpc, ImagingResampleHorizontal/Vertical_8bpc, ImagingResampleInner): a
// separable filter whose support is scaled by the downscale factor (that is the antialiasing),
// double-precision weights rounded to 22-bit fixed point, integer accumulation and the same
// rounding and clipping, horizontal pass first over only the rows the vertical pass reads. This
// file is compiled with -ffp-contract=off so no multiply-add is fused differently from Pillow.

#include "preprocess.h"

#include "resnet_edge/classifier.h"

#include <opencv2/core.hpp>
#include <opencv2/imgproc.hpp>

#include <cmath>
#include <cstdint>
#include <vector>

namespace resnet_edge {
namespace {

// ---------------------------------------------------------------------------- Pillow's filters

double box_filter(double x) {
  if (x > -0.5 && x <= 0.5) {
    return 1.0;
  }
  return 0.0;
}

double bilinear_filter(double x) {
  if (x < 0.0) {
    x = -x;
  }
  if (x < 1.0) {
    return 1.0 - x;
  }
  return 0.0;
}

double hamming_filter(double x) {
  if (x < 0.0) {
    x = -x;
  }
  if (x == 0.0) {
    return 1.0;
  }
  if (x >= 1.0) {
    return 0.0;
  }
  x = x * M_PI;
  return std::sin(x) / x * (0.54f + 0.46f * std::cos(x));
}

double bicubic_filter(double x) {
  constexpr double a = -0.5;
  if (x < 0.0) {
    x = -x;
  }
  if (x < 1.0) {
    return ((a + 2.0) * x - (a + 3.0)) * x * x + 1;
  }
  if (x < 2.0) {
    return (((x - 5) * x + 8) * x - 4) * a;
  }
  return 0.0;
}

double sinc_filter(double x) {
  if (x == 0.0) {
    return 1.0;
  }
  x = x * M_PI;
  return std::sin(x) / x;
}

double lanczos_filter(double x) {
  if (-3.0 <= x && x < 3.0) {
    return sinc_filter(x) * sinc_filter(x / 3);
  }
  return 0.0;
}

struct Filter {
  double (*fn)(double);
  double support;
};

Filter filter_for(const std::string& interpolation) {
  if (interpolation == "bilinear") return {bilinear_filter, 1.0};
  if (interpolation == "bicubic") return {bicubic_filter, 2.0};
  if (interpolation == "box") return {box_filter, 0.5};
  if (interpolation == "hamming") return {hamming_filter, 1.0};
  if (interpolation == "lanczos") return {lanczos_filter, 3.0};
  throw Error("preprocessing interpolation '" + interpolation +
                  "' is not supported by the C++ Classifier (bilinear, bicubic, box, hamming, lanczos are)",
              true);
}

// 8 bits for the result, two for overflow and sign.
constexpr int kPrecisionBits = 32 - 8 - 2;

inline uint8_t clip8(int in) {
  // Pillow: a lookup table indexed by in >> PRECISION_BITS (arithmetic shift), clamped to [0, 255].
  const int v = in >> kPrecisionBits;
  return static_cast<uint8_t>(v < 0 ? 0 : (v > 255 ? 255 : v));
}

struct Coeffs {
  int ksize = 0;
  std::vector<int> bounds;  // (xmin, count) per output pixel
  std::vector<int32_t> k;   // ksize fixed-point weights per output pixel
};

Coeffs precompute_coeffs(int in_size, float in0, float in1, int out_size, const Filter& filter) {
  double scale = static_cast<double>(in1 - in0) / out_size;
  double filterscale = scale;
  if (filterscale < 1.0) {
    filterscale = 1.0;
  }
  const double support = filter.support * filterscale;
  const int ksize = static_cast<int>(std::ceil(support)) * 2 + 1;
  std::vector<double> kk(static_cast<size_t>(out_size) * ksize, 0.0);
  Coeffs c;
  c.ksize = ksize;
  c.bounds.resize(static_cast<size_t>(out_size) * 2);
  for (int xx = 0; xx < out_size; ++xx) {
    const double center = in0 + (xx + 0.5) * scale;
    double ww = 0.0;
    const double ss = 1.0 / filterscale;
    int xmin = static_cast<int>(center - support + 0.5);
    if (xmin < 0) {
      xmin = 0;
    }
    int xmax = static_cast<int>(center + support + 0.5);
    if (xmax > in_size) {
      xmax = in_size;
    }
    xmax -= xmin;
    double* k = &kk[static_cast<size_t>(xx) * ksize];
    for (int x = 0; x < xmax; ++x) {
      const double w = filter.fn((x + xmin - center + 0.5) * ss);
      k[x] = w;
      ww += w;
    }
    for (int x = 0; x < xmax; ++x) {
      if (ww != 0.0) {
        k[x] /= ww;
      }
    }
    c.bounds[xx * 2 + 0] = xmin;
    c.bounds[xx * 2 + 1] = xmax;
  }
  // normalize_coeffs_8bpc
  c.k.resize(kk.size());
  for (size_t i = 0; i < kk.size(); ++i) {
    if (kk[i] < 0) {
      c.k[i] = static_cast<int32_t>(-0.5 + kk[i] * (1 << kPrecisionBits));
    } else {
      c.k[i] = static_cast<int32_t>(0.5 + kk[i] * (1 << kPrecisionBits));
    }
  }
  return c;
}

// ImagingResampleHorizontal_8bpc on 3-channel rows [offset, offset + out.rows).
void resample_horizontal(const cv::Mat& in, cv::Mat& out, int offset, const Coeffs& c) {
  for (int yy = 0; yy < out.rows; ++yy) {
    const uint8_t* src = in.ptr<uint8_t>(yy + offset);
    uint8_t* dst = out.ptr<uint8_t>(yy);
    for (int xx = 0; xx < out.cols; ++xx) {
      const int xmin = c.bounds[xx * 2 + 0];
      const int xmax = c.bounds[xx * 2 + 1];
      const int32_t* k = &c.k[static_cast<size_t>(xx) * c.ksize];
      int ss0 = 1 << (kPrecisionBits - 1);
      int ss1 = ss0;
      int ss2 = ss0;
      for (int x = 0; x < xmax; ++x) {
        const uint8_t* px = src + (x + xmin) * 3;
        ss0 += px[0] * k[x];
        ss1 += px[1] * k[x];
        ss2 += px[2] * k[x];
      }
      dst[xx * 3 + 0] = clip8(ss0);
      dst[xx * 3 + 1] = clip8(ss1);
      dst[xx * 3 + 2] = clip8(ss2);
    }
  }
}

// ImagingResampleVertical_8bpc.
void resample_vertical(const cv::Mat& in, cv::Mat& out, const Coeffs& c) {
  for (int yy = 0; yy < out.rows; ++yy) {
    const int32_t* k = &c.k[static_cast<size_t>(yy) * c.ksize];
    const int ymin = c.bounds[yy * 2 + 0];
    const int ymax = c.bounds[yy * 2 + 1];
    uint8_t* dst = out.ptr<uint8_t>(yy);
    for (int xx = 0; xx < out.cols * 3; xx += 3) {
      int ss0 = 1 << (kPrecisionBits - 1);
      int ss1 = ss0;
      int ss2 = ss0;
      for (int y = 0; y < ymax; ++y) {
        const uint8_t* px = in.ptr<uint8_t>(y + ymin) + xx;
        ss0 += px[0] * k[y];
        ss1 += px[1] * k[y];
        ss2 += px[2] * k[y];
      }
      dst[xx + 0] = clip8(ss0);
      dst[xx + 1] = clip8(ss1);
      dst[xx + 2] = clip8(ss2);
    }
  }
}

// Pillow's Image.resize((xsize, ysize), filter) of a CV_8UC3 image (ImagingResampleInner with
// the default box (0, 0, width, height)).
cv::Mat pil_resize(const cv::Mat& in, int xsize, int ysize, const Filter& filter) {
  const bool need_horizontal = xsize != in.cols;
  const bool need_vertical = ysize != in.rows;
  if (!need_horizontal && !need_vertical) {
    return in.clone();
  }
  Coeffs vert = precompute_coeffs(in.rows, 0.0f, static_cast<float>(in.rows), ysize, filter);
  const int ybox_first = vert.bounds[0];
  const int ybox_last = vert.bounds[ysize * 2 - 2] + vert.bounds[ysize * 2 - 1];
  cv::Mat source = in;
  if (need_horizontal) {
    Coeffs horiz = precompute_coeffs(in.cols, 0.0f, static_cast<float>(in.cols), xsize, filter);
    for (int i = 0; i < ysize; ++i) {
      vert.bounds[i * 2] -= ybox_first;
    }
    cv::Mat temp(ybox_last - ybox_first, xsize, CV_8UC3);
    resample_horizontal(in, temp, ybox_first, horiz);
    source = temp;
  }
  if (!need_vertical) {
    return source;
  }
  cv::Mat out(ysize, source.cols, CV_8UC3);
  resample_vertical(source, out, vert);
  return out;
}

// Python's int(round(d / 2.0)) for d >= 0: round half to even.
int half_round_even(int d) {
  int half = d / 2;
  if (d % 2 != 0 && half % 2 != 0) {
    half += 1;
  }
  return half;
}

}  // namespace

cv::Mat resize_and_crop(const cv::Mat& image, int resize, int crop, const std::string& interpolation) {
  const Filter filter = filter_for(interpolation);
  if (resize <= 0 || crop <= 0) {
    throw Error("preprocessing resize and crop must be positive", true);
  }
  cv::Mat img = to_bgr8(image);
  // torchvision's _compute_resized_output_size for an int size (the shorter side).
  const int h = img.rows;
  const int w = img.cols;
  const int shorter = w <= h ? w : h;
  const int longer = w <= h ? h : w;
  const int new_short = resize;
  const int new_long = static_cast<int>(static_cast<double>(static_cast<long long>(resize) * longer) / shorter);
  const int new_w = w <= h ? new_short : new_long;
  const int new_h = w <= h ? new_long : new_short;
  if (new_w != w || new_h != h) {
    img = pil_resize(img, new_w, new_h, filter);
  }
  // torchvision's center_crop on a PIL image.
  if (crop > img.rows || crop > img.cols) {
    const int left = crop > img.cols ? (crop - img.cols) / 2 : 0;
    const int top = crop > img.rows ? (crop - img.rows) / 2 : 0;
    const int right = crop > img.cols ? (crop - img.cols + 1) / 2 : 0;
    const int bottom = crop > img.rows ? (crop - img.rows + 1) / 2 : 0;
    cv::Mat padded;
    cv::copyMakeBorder(img, padded, top, bottom, left, right, cv::BORDER_CONSTANT, cv::Scalar::all(0));
    img = padded;
    if (img.rows == crop && img.cols == crop) {
      return img;
    }
  }
  const int top = half_round_even(img.rows - crop);
  const int left = half_round_even(img.cols - crop);
  return img(cv::Rect(left, top, crop, crop)).clone();
}

void check_preprocessing(const Preprocessing& pre) { filter_for(pre.interpolation); }

NormalizeTable make_normalize_table(const Preprocessing& pre) {
  NormalizeTable table;
  const float inv255 = static_cast<float>(1.0 / 255.0);
  for (int c = 0; c < 3; ++c) {
    for (int v = 0; v < 256; ++v) {
      const float scaled = static_cast<float>(v) * inv255;
      const float centred = scaled - pre.mean[c];
      table.values[c][v] = centred / pre.std[c];
    }
  }
  return table;
}

void preprocess_into(const cv::Mat& image, const Preprocessing& pre, const NormalizeTable& table, float* out) {
  const cv::Mat img = resize_and_crop(image, pre.resize, pre.crop, pre.interpolation);
  const bool rgb = pre.channel_order == "RGB";
  const bool nchw = pre.layout == "NCHW";
  const int n = pre.crop * pre.crop;
  for (int y = 0; y < pre.crop; ++y) {
    const uint8_t* row = img.ptr<uint8_t>(y);
    for (int x = 0; x < pre.crop; ++x) {
      const int p = y * pre.crop + x;
      for (int c = 0; c < 3; ++c) {
        // Output channel c reads BGR channel (2 - c) for RGB models, c for BGR ones.
        const uint8_t v = row[x * 3 + (rgb ? 2 - c : c)];
        const float value = table.values[c][v];
        if (nchw) {
          out[c * n + p] = value;
        } else {
          out[p * 3 + c] = value;
        }
      }
    }
  }
}

}  // namespace resnet_edge
