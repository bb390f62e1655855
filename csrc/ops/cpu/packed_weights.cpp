#include "packed_weights.h"

#include <ATen/core/dispatch/Dispatcher.h>
#include <c10/util/intrusive_ptr.h>

#include <deque>
#include <mutex>
#include <unordered_map>
#include <vector>

namespace resnet_edge::ops::cpu {
namespace {

// A block sees at most a few input shapes (batch sizes) in practice; bound the copies anyway.
constexpr size_t kMaxLayoutsPerWeight = 4;

struct Layout {
  std::vector<int64_t> input_sizes;
  int64_t stride;
  int64_t padding;
  at::Tensor packed;
};

struct Entry {
  // Weak, so the cache never keeps a weight's storage alive; it also keeps the TensorImpl's
  // address from being reused while the entry exists, which makes the address a safe key.
  c10::weak_intrusive_ptr<c10::TensorImpl, c10::UndefinedTensorImpl> owner;
  int64_t version;
  const void* data;
  std::deque<Layout> layouts;
};

std::mutex cache_mutex;
std::unordered_map<const c10::TensorImpl*, Entry> cache;

at::Tensor reorder(const at::Tensor& weight, at::IntArrayRef input_sizes, int64_t stride, int64_t padding) {
  static const auto op =
      c10::Dispatcher::singleton()
          .findSchemaOrThrow("mkldnn::_reorder_convolution_weight", "")
          .typed<at::Tensor(
              const at::Tensor&, at::IntArrayRef, at::IntArrayRef, at::IntArrayRef, int64_t, at::OptionalIntArrayRef)>();
  const int64_t pad[] = {padding, padding};
  const int64_t strides[] = {stride, stride};
  const int64_t dilation[] = {1, 1};
  return op.call(weight, pad, strides, dilation, /*groups=*/1, input_sizes);
}

void drop_freed_weights() {
  for (auto it = cache.begin(); it != cache.end();) {
    it = it->second.owner.expired() ? cache.erase(it) : std::next(it);
  }
}

} // namespace

at::Tensor packed_conv_weight(const at::Tensor& weight, at::IntArrayRef input_sizes, int64_t stride, int64_t padding) {
  if (weight.is_inference()) {
    return weight;
  }
  const int64_t version = weight._version();
  const void* data = weight.const_data_ptr();
  std::lock_guard<std::mutex> lock(cache_mutex);
  auto it = cache.find(weight.unsafeGetTensorImpl());
  if (it == cache.end()) {
    drop_freed_weights();
  }
  if (it == cache.end() || it->second.version != version || it->second.data != data) {
    Entry fresh{c10::weak_intrusive_ptr<c10::TensorImpl, c10::UndefinedTensorImpl>(weight.getIntrusivePtr()), version,
                data, {}};
    it = cache.insert_or_assign(weight.unsafeGetTensorImpl(), std::move(fresh)).first;
  }
  auto& layouts = it->second.layouts;
  for (const auto& layout : layouts) {
    if (layout.stride == stride && layout.padding == padding && input_sizes.equals(layout.input_sizes)) {
      return layout.packed;
    }
  }
  at::Tensor packed = reorder(weight, input_sizes, stride, padding);
  layouts.push_back({input_sizes.vec(), stride, padding, packed});
  if (layouts.size() > kMaxLayoutsPerWeight) {
    layouts.pop_front();
  }
  return packed;
}

} // namespace resnet_edge::ops::cpu
