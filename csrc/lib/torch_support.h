// Internal: what the libtorch runners share (torch_runner.cpp for TorchScript, aoti_runner.cpp for
// AOTInductor packages): loading the ops and Torch-TensorRT libraries a bundle needs, and choosing
// the torch::Device a bundle runs on. Defined in torch_runner.cpp.
#pragma once

#include "bundle.h"

#include <c10/core/Device.h>

#include <string>

namespace resnet_edge {

// The fused resnet_edge:: ops registered in this process (libresnet_edge_ops.so dlopen()ed if
// needed); Error naming what to do when they cannot be.
void ensure_fused_ops(const std::string& bundle_dir);

// Torch-TensorRT's runtime (libtorchtrt_runtime.so) registered; Error when it cannot be loaded.
void ensure_torchtrt_runtime(const std::string& bundle_dir);

// The device `device` ("auto", "cpu", "cuda", "cuda:N") names for this bundle; Error when it is
// unknown, absent, or one the bundle cannot run on.
c10::Device resolve_device(const BundleInfo& info, const std::string& device);

}  // namespace resnet_edge
