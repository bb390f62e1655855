"""A Gst-nvinfer (DeepStream) classifier config for a bundle, and the one scale nvinfer can apply.

nvinfer normalises every pixel as ``y = net-scale-factor * (x - offsets[c])`` with x in [0, 255] and
ONE scale for all channels. The bundle's exact preprocessing is ``y = (x/255 - mean[c]) / std[c]``
= ``k[c] * (x - 255 mean[c])`` with ``k[c] = 1 / (255 std[c])``. The offsets are exact
(``255 mean[c]``); only the scale is approximated. A single scale ``s`` scales channel c by
``s / k[c]``, a relative error ``e[c] = |s / k[c] - 1|``. We minimise the largest of them:
``max_c |s/k[c] - 1|`` is smallest where the errors of the smallest and largest ``k`` are equal and
opposite, ``s/k_min - 1 = 1 - s/k_max``, so ``s = 2 k_min k_max / (k_min + k_max)`` (the harmonic
mean of the extremes) and the worst channel is off by ``(k_max - k_min) / (k_max + k_min)``: 1.1 %
for ImageNet's std (0.229, 0.224, 0.225). The least-squares choice (``s = sum(1/k) / sum(1/k^2)``)
lowers the mean error slightly but leaves a larger worst channel; a network's accuracy is limited by
its most-distorted input channel, so the minimax scale is the default. ``export-config --data``
measures what either costs in top-1.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ...core.errors import UsageError

NETWORK_MODES = {"fp32": 0, "int8": 1, "fp16": 2}
COLOR_FORMATS = {"RGB": 0, "BGR": 1, "GRAY": 2}
# NvBufSurfTransform_Inter: 0 nearest, 1 bilinear. The bundle's preprocessing resizes bilinearly.
SCALING_FILTERS = {"nearest": 0, "bilinear": 1}
CONFIG_NAME = "config_infer_primary.txt"


@dataclass(frozen=True)
class ScaleChoice:
    """The single net-scale-factor, the exact per-channel scales and the relative errors it leaves."""

    scale: float
    exact: tuple[float, ...]
    offsets: tuple[float, ...]
    max_rel_error: float
    mean_rel_error: float
    rule: str


def per_channel_scales(std) -> tuple[float, ...]:
    """``1 / (255 std[c])``: what nvinfer's scale would be for each channel alone."""
    return tuple(1.0 / (255.0 * float(s)) for s in std)


def choose_scale(mean, std, rule: str = "minimax") -> ScaleChoice:
    """The single scale for ``rule`` ``minimax`` (smallest worst-channel relative error, the default)
    or ``least-squares`` (smallest mean squared relative error); offsets are ``255 mean`` exactly."""
    exact = per_channel_scales(std)
    if rule == "minimax":
        low, high = min(exact), max(exact)
        scale = 2.0 * low * high / (low + high)
    elif rule == "least-squares":
        scale = sum(1.0 / k for k in exact) / sum(1.0 / (k * k) for k in exact)
    else:
        raise UsageError(f"unknown scale rule {rule!r}; choose minimax or least-squares")
    errors = [abs(scale / k - 1.0) for k in exact]
    return ScaleChoice(scale, exact, tuple(255.0 * float(m) for m in mean), max(errors), sum(errors) / len(errors), rule)


@dataclass
class DeepStreamConfig:
    """The nvinfer config's ``[property]`` entries, files to copy (config name -> bundle name), notes."""

    properties: dict
    labels: str
    files: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    scale: ScaleChoice | None = None

    def text(self) -> str:
        """The config file: ``[property]`` keys, then ``[class-attrs-all]``."""
        lines = ["# Gst-nvinfer classifier config written by resnet-edge export-config.",
                 "# y = net-scale-factor * (x - offsets): see the comment on net-scale-factor.", "[property]"]
        for key, value in self.properties.items():
            if key.startswith("#"):
                lines.append(f"# {value}")
            else:
                lines.append(f"{key}={value}")
        lines += ["", "[class-attrs-all]", f"classifier-threshold={self.properties.get('classifier-threshold', 0.0)}", ""]
        return "\n".join(lines)


def _model_files(manifest: dict, notes: list[str]) -> tuple[dict, dict]:
    backend, artifacts = manifest["backend"], manifest["artifacts"]
    if backend == "onnxruntime":
        quant = manifest.get("quantization") or {}
        if manifest["precision"] == "int8" and quant.get("placement") != "tensorrt":
            raise UsageError("this INT8 ONNX bundle has CPU Q/DQ placement (asymmetric uint8), which TensorRT cannot build; "
                             "compile it for a GPU --target (jetson-orin, jetson-xavier or datacenter)")
        notes.append("nvinfer builds a TensorRT engine from model.onnx on first run and saves it beside the config")
        return {"onnx-file": "model.onnx"}, {"model.onnx": artifacts["model"]}
    if backend == "tensorrt" and "engine" in artifacts:
        versions = (manifest.get("build_host") or {}).get("versions") or {}
        notes.append(f"model.engine runs only under TensorRT {versions.get('tensorrt') or '?'} on the GPU model that built it")
        return {"model-engine-file": "model.engine"}, {"model.engine": artifacts["engine"]}
    raise UsageError(f"DeepStream's nvinfer runs TensorRT engines or ONNX files; this {backend} bundle has neither "
                     "(compile with --backend onnxruntime or tensorrt)")


def _output_name(manifest: dict) -> str:
    """The engine's output binding: TensorRT's own name on torch-tensorrt 2.8-2.13 engines (``engine_io``)."""
    io = (manifest.get("tensorrt") or {}).get("engine_io") if "engine" in manifest["artifacts"] else None
    return io["output"] if io else manifest["output"]["name"]


def _dla_properties(manifest: dict) -> dict:
    """A DLA engine must be run on the DLA core it was built for."""
    dla = (manifest.get("tensorrt") or {}).get("dla") or {}
    return {"enable-dla": 1, "use-dla-core": int(dla["core"])} if dla.get("core") is not None else {}


def deepstream_config(manifest: dict, rule: str = "minimax", scaling_filter: str = "bilinear", threshold: float = 0.0) -> DeepStreamConfig:
    """The nvinfer config for a bundle's manifest (nothing is written here)."""
    notes: list[str] = []
    model, files = _model_files(manifest, notes)
    pre = manifest["preprocessing"]
    choice = choose_scale(pre["mean"], pre["std"], rule)
    channels, height, width = (int(v) for v in manifest["input"]["shape"][1:])
    batch = manifest["input"]["batch"]
    properties = {
        "gpu-id": 0,
        "#scale": (f"one scale for all channels ({rule}): the exact ones are {', '.join(f'{k:.9g}' for k in choice.exact)}; "
                   f"worst channel off by {100 * choice.max_rel_error:.3f} %"),
        "net-scale-factor": f"{choice.scale:.9g}",
        "offsets": ";".join(f"{o:.6g}" for o in choice.offsets),
        "model-color-format": COLOR_FORMATS[pre.get("channel_order", "RGB")],
        **model,
        "labelfile-path": "labels.txt",
        "batch-size": int(batch["opt"]),
        "#mode": "network-mode: 0 FP32, 1 INT8, 2 FP16",
        "network-mode": NETWORK_MODES[manifest["precision"]],
        "network-type": 1,
        "process-mode": 1,
        "infer-dims": f"{channels};{height};{width}",
        "maintain-aspect-ratio": 0,
        "scaling-filter": SCALING_FILTERS[scaling_filter],
        "classifier-threshold": threshold,
        "output-blob-names": _output_name(manifest),
        **_dla_properties(manifest),
    }
    if manifest["precision"] == "int8":
        calib = manifest["artifacts"].get("tensorrt_calibration_table")
        if calib:
            properties["int8-calib-file"] = "calib.table"
            files["calib.table"] = calib
        else:
            properties["#int8"] = "INT8 from the model's own Q/DQ scales (explicit quantization): no int8-calib-file applies"
    if batch["min"] > 1 or batch["max"] < batch["opt"]:
        notes.append(f"the artifact takes batches of {batch['min']} to {batch['max']}: set the muxer's batch-size to {batch['opt']}")
    notes.append("nvinfer scales the whole frame (or object) to the network size: the bundle's resize-then-centre-crop "
                 "is not reproduced; crop upstream (e.g. nvvideoconvert src-crop) to match it")
    # Classifier label files are one line of ';'-separated labels per classifier head.
    labels = ";".join(str(name).replace(";", ",") for name in manifest["classes"]) + "\n"
    return DeepStreamConfig(properties, labels, files, notes, choice)
