#include "cudnn_plan_key.h"

#include <c10/util/Exception.h>
#include <c10/util/hash.h>

#include <sstream>

namespace resnet_edge::ops {
namespace {

void print_sizes(std::ostringstream& out, const std::array<int64_t, 4>& sizes) {
  out << '[' << sizes[0] << ',' << sizes[1] << ',' << sizes[2] << ',' << sizes[3] << ']';
}

std::array<int64_t, 4> sizes_of(const at::Tensor& t) {
  return {t.size(0), t.size(1), t.size(2), t.size(3)};
}

} // namespace

std::string ConvPlanKey::describe() const {
  std::ostringstream out;
  out << (device_index < 0 ? "cpu" : "cuda:" + std::to_string(device_index)) << ' ' << dtype << " NHWC x";
  print_sizes(out, input_sizes);
  out << " w";
  print_sizes(out, weight_sizes);
  out << " stride " << stride << " pad " << padding << " +bias" << (residual ? " +residual" : "")
      << (relu ? " relu" : "") << (allow_tf32 ? " tf32" : " ieee")
      << (deterministic ? " deterministic" : " nondeterministic");
  return out.str();
}

std::size_t ConvPlanKeyHash::operator()(const ConvPlanKey& key) const {
  std::size_t seed = c10::get_hash(key.device_index, static_cast<int>(key.dtype), key.stride, key.padding);
  for (const int64_t size : key.input_sizes) {
    seed = c10::hash_combine(seed, c10::get_hash(size));
  }
  for (const int64_t size : key.weight_sizes) {
    seed = c10::hash_combine(seed, c10::get_hash(size));
  }
  return c10::hash_combine(
      seed, c10::get_hash(key.residual, key.relu, key.allow_tf32, key.deterministic));
}

ConvPlanKey make_plan_key(
    const at::Tensor& input,
    const at::Tensor& weight,
    int64_t stride,
    bool residual,
    bool relu,
    const CudnnSettings& settings) {
  TORCH_CHECK(
      input.dim() == 4 && weight.dim() == 4 && input.is_contiguous(at::MemoryFormat::ChannelsLast),
      "a cuDNN plan key describes a 4-D channels_last-contiguous input and a 4-D weight, not ", input.sizes(),
      " with strides ", input.strides(), " and ", weight.sizes());
  return ConvPlanKey{
      input.is_cuda() ? static_cast<int>(input.get_device()) : -1,
      input.scalar_type(),
      sizes_of(input),
      sizes_of(weight),
      stride,
      weight.size(3) / 2,
      residual,
      relu,
      // TF32 only concerns FP32 inputs; FP16 plans are the same whatever the flag says.
      settings.allow_tf32 && input.scalar_type() == at::kFloat,
      settings.deterministic};
}

} // namespace resnet_edge::ops
