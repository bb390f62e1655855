"""``resnet-edge compile``: weights + (calibration data) -> a verified deployment bundle.

The order matters for "checked at the door, nothing half-written": every flag, the output directory,
the backend and its config are checked before anything heavy runs; the weights and calibration images
are checked before the build; the build happens in a private directory that becomes ``--out`` only
when the artifact has been loaded back and compared with the FP32 model.
"""

from __future__ import annotations

import math
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import torch
from torch.utils.data import DataLoader, Dataset, Subset

from . import bundle as bundle_io
from .core import hostinfo
from .backends import TARGETS, Backend, BatchSpec, BuildConfig, CalibrationData, choose_backend
from .checkpoint import LoadedWeights, file_sha256, load_weights
from .data import Preprocessing, eval_transform, open_data
from .core.errors import CheckFailed, UsageError
from .models import create_model, get_spec

DEFAULT_CALIB_IMAGES = 512
DEFAULT_CALIB_METHOD = "entropy"
CALIBRATION_SET_FILE = "calibration-set.json"
LOADER_BATCH = 32
CHECK_IMAGES = 64


@dataclass
class CompileOptions:
    """The ``compile`` command's options, as plain values (the CLI fills this in)."""

    arch: str
    out: Path
    precision: str = "fp32"
    weights: Path | None = None
    random_weights: bool = False
    calib_data: str | None = None
    calib_set: Path | None = None
    calib_images: int | None = None
    calib_method: str = DEFAULT_CALIB_METHOD
    calib_seed: int = 0
    backend: str = "auto"
    target: str | None = None  # None: the backend's natural target for this host
    batch: int | None = None
    dynamic_batch: str | None = None
    dla_core: int | None = None
    workspace_mb: int | None = None
    fused: bool | None = None  # None: the backend's default
    force: bool = False
    val_data: str | None = None
    val_images: int | None = None
    max_top1_drop: float | None = None  # INT8: keep sensitive layers in float until within this (points)
    command: str | None = None  # the command line, recorded in the manifest


@dataclass
class CompileResult:
    path: Path
    manifest: dict
    warnings: list[str] = field(default_factory=list)


# ------------------------------------------------------------------------------------------ weights


def torchvision_cached_weights(arch: str):
    """(path, torchvision weights enum member) of a cached torchvision checkpoint for ``arch``, or None."""
    try:
        from torchvision.models import get_model_weights

        members = list(get_model_weights(arch))
    except (ValueError, KeyError):
        return None
    directory = Path(torch.hub.get_dir()) / "checkpoints"
    for member in members:  # IMAGENET1K_V1 first, then V2
        path = directory / member.url.rsplit("/", 1)[-1]
        if path.is_file():
            return path, member
    return None


def _imagenet_categories() -> list[str]:
    from torchvision.models import ResNet50_Weights

    return list(ResNet50_Weights.IMAGENET1K_V1.meta["categories"])


def _torchvision_preprocessing(member) -> Preprocessing:
    transforms = member.transforms()
    return Preprocessing(
        name=f"torchvision-{member.name}",
        resize=int(transforms.resize_size[0]),
        crop=int(transforms.crop_size[0]),
        mean=tuple(float(v) for v in transforms.mean),
        std=tuple(float(v) for v in transforms.std),
        interpolation=transforms.interpolation.value,
    )


def resolve_weights(options: CompileOptions, log: Callable[[str], None]) -> LoadedWeights:
    """The FP32 reference: ``--weights``, else torchvision's local cache, else ``--random-weights``."""
    spec = get_spec(options.arch)
    if options.weights is not None and options.random_weights:
        raise UsageError("pass either --weights or --random-weights, not both")
    if options.weights is not None:
        loaded = load_weights(Path(options.weights), options.arch)
    elif options.random_weights:
        torch.manual_seed(0)
        model = create_model(options.arch).eval()
        from .data import get_preset

        classes = [str(i) for i in range(spec.default_num_classes)]
        loaded = LoadedWeights(model, options.arch, classes, get_preset(spec.preprocessing), "random")
        log("warning: --random-weights: this bundle is for speed measurements only; its outputs mean nothing")
        return loaded
    else:
        cached = torchvision_cached_weights(options.arch)
        if cached is None:
            hint = ""
            try:
                from torchvision.models import get_model_weights

                first = next(iter(get_model_weights(options.arch)))
                hint = f", put torchvision's {first.url.rsplit('/', 1)[-1]} in {Path(torch.hub.get_dir()) / 'checkpoints'}"
            except (ValueError, KeyError, StopIteration):
                pass
            raise UsageError(
                f"no weights for {options.arch}: pass --weights PATH (a resnet-edge checkpoint or torchvision state_dict)"
                f"{hint}, or --random-weights for speed measurements only"
            )
        path, member = cached
        log(f"weights: torchvision {member} from {path}")
        loaded = load_weights(path, options.arch)
        loaded.preprocessing = _torchvision_preprocessing(member)
    if loaded.source == "torchvision" and len(loaded.classes) == 1000 and spec.family == "imagenet":
        loaded.classes = _imagenet_categories()
    return loaded


# -------------------------------------------------------------------------------------- calibration


@dataclass
class PreparedCalibration:
    data: CalibrationData
    manifest: dict  # the ``calibration`` manifest section
    set_manifest: dict  # the calibration-set manifest, copied into the bundle
    dataset: Dataset


def _loader(dataset: Dataset, batch_size: int = LOADER_BATCH) -> DataLoader:
    return DataLoader(dataset, batch_size=batch_size, shuffle=False, num_workers=0)


def prepare_calibration(options: CompileOptions, loaded: LoadedWeights, log: Callable[[str], None]) -> PreparedCalibration:
    """Load (or draw) the calibration set, verify its images and warn about coverage."""
    from .quantize.calibset import load_calibset, make_calibset

    if options.calib_set is not None:
        calibset = load_calibset(Path(options.calib_set))
        limit = options.calib_images
        origin = str(calibset.path)
    else:
        count = options.calib_images or DEFAULT_CALIB_IMAGES
        calibset = make_calibset(options.calib_data, count=count, seed=options.calib_seed, split="train")
        limit = None
        origin = None
    images = calibset.images[:limit] if limit else calibset.images
    if limit and limit > len(calibset.images):
        log(f"warning: --calib-images {limit} but the set has {len(calibset.images)} images; using all of them")
    set_classes = calibset.classes
    used = {entry.get("class", set_classes[entry["label"]] if "label" in entry else None) for entry in images}
    if set_classes == list(loaded.classes):
        missing = [name for name in set_classes if name not in used]
        if missing:
            shown = ", ".join(missing[:10]) + (f" and {len(missing) - 10} more" if len(missing) > 10 else "")
            log(f"warning: {len(missing)} of {len(set_classes)} classes have no calibration image ({shown}); "
                f"INT8 ranges may not fit them: use calibset --per-class")
    else:
        missing = []
        log(
            f"warning: the calibration data's {len(set_classes)} classes are not the model's {len(loaded.classes)} classes; "
            f"calibrate with images from the data the model was trained on"
        )
    if calibset.preprocessing.to_dict() != loaded.preprocessing.to_dict():
        log(f"note: the calibration set names preprocessing {calibset.preprocessing.name!r}; the model's "
            f"({loaded.preprocessing.name!r}) is applied")
    log(f"calibration set: {calibset.summary()}{'' if not limit else f', using the first {len(images)}'}")
    dataset = calibset.open(transform=eval_transform(loaded.preprocessing), limit=len(images))
    data = CalibrationData(
        method=options.calib_method,
        batches=lambda: (batch for batch, _ in _loader(dataset)),
        num_images=len(dataset),
    )
    section = {
        "method": options.calib_method,
        "num_images": len(dataset),
        "set_hash": calibset.hash,
        "set_manifest": origin,
        "set_images": len(calibset.images),
        "data": calibset.data,
        "split": calibset.split,
        "missing_classes": missing,
        "classes_match": set_classes == list(loaded.classes),
    }
    return PreparedCalibration(data, section, calibset.manifest, dataset)


# ------------------------------------------------------------------------------------- verification


def _logits(model: torch.nn.Module, batch: torch.Tensor) -> torch.Tensor:
    with torch.inference_mode():
        return model(batch).float()


def agreement_check(reference: torch.nn.Module, run: Callable, inputs: torch.Tensor, source: str) -> dict:
    """Compare the artifact with the FP32 model on ``inputs``: max/mean |diff| of logits, top-1 agreement."""
    expected = _logits(reference, inputs)
    actual = run(inputs)
    if not torch.isfinite(actual).all():
        raise CheckFailed("the compiled model produced NaN or infinite logits; the build is broken (try another precision or calibration method)")
    diff = (actual - expected).abs()
    scale = expected.abs().max().clamp(min=1e-12)
    return {
        "images": int(inputs.shape[0]),
        "inputs": source,
        "max_abs_diff": round(float(diff.max()), 6),
        "mean_abs_diff": round(float(diff.mean()), 6),
        "max_rel_diff": round(float(diff.max() / scale), 6),
        "top1_agreement": round(float((actual.argmax(1) == expected.argmax(1)).float().mean()) * 100, 2),
    }


def evaluate(run: Callable, loader: DataLoader) -> float:
    """Top-1 accuracy in percent of ``run`` (batch -> logits) over ``loader``."""
    correct = total = 0
    for images, labels in loader:
        predictions = run(images).argmax(1)
        correct += int((predictions == labels).sum())
        total += int(labels.numel())
    return round(100.0 * correct / max(total, 1), 2)


def _validation_loader(options: CompileOptions, loaded: LoadedWeights, log: Callable[[str], None]) -> tuple[DataLoader, dict]:
    source = open_data(options.val_data)
    if len(source.classes) != len(loaded.classes):
        raise UsageError(
            f"--val-data {options.val_data} has {len(source.classes)} classes and the model {len(loaded.classes)}; "
            f"validate on data with the model's classes"
        )
    if list(source.classes) != list(loaded.classes) and loaded.source == "checkpoint":
        log("warning: --val-data class names differ from the checkpoint's; labels are compared by index")
    dataset = source.split("val", transform=eval_transform(loaded.preprocessing))
    if options.val_images and options.val_images < len(dataset):
        dataset = Subset(dataset, range(options.val_images))
    return _loader(dataset, 64), {"data": options.val_data, "split": "val", "num_images": len(dataset)}


# ------------------------------------------------------------------------------------------ compile


def _check_options(options: CompileOptions) -> None:
    if options.precision not in ("fp32", "fp16", "int8"):
        raise UsageError(f"unknown precision {options.precision!r}; pass --fp32, --fp16 or --int8")
    if options.calib_data and options.calib_set:
        raise UsageError("pass either --calib-data or --calib-set, not both")
    if options.precision == "int8" and not (options.calib_data or options.calib_set):
        raise UsageError(
            "INT8 needs real calibration images: pass --calib-data SPEC or --calib-set calibration/NAME.json "
            "(random calibration is refused: it gives ranges that fit no real image)"
        )
    if options.calib_images is not None and options.calib_images < 1:
        raise UsageError("--calib-images must be at least 1")
    if options.batch is not None and options.dynamic_batch is not None:
        raise UsageError("pass either --batch N or --dynamic-batch MIN:OPT:MAX, not both")
    if options.batch is not None and options.batch < 1:
        raise UsageError("--batch must be at least 1")
    if options.target is not None and options.target not in TARGETS:
        raise UsageError(f"unknown target {options.target!r}; choose one of: {', '.join(TARGETS)}")
    if options.val_images is not None and options.val_images < 1:
        raise UsageError("--val-images must be at least 1")
    if options.val_images and not options.val_data:
        raise UsageError("--val-images needs --val-data")
    if options.max_top1_drop is not None:
        if options.precision != "int8":
            raise UsageError("--max-top1-drop chooses which layers stay out of INT8; it needs --int8")
        if not options.val_data:
            raise UsageError("--max-top1-drop needs --val-data SPEC: the images the top-1 drop is measured on")
        if not math.isfinite(options.max_top1_drop) or options.max_top1_drop < 0:
            raise UsageError(f"--max-top1-drop is in percentage points and must be >= 0, got {options.max_top1_drop}")


def _default_target(backend: Backend) -> str:
    if "cpu" not in backend.targets:  # a GPU-only backend: this Jetson module, else a datacenter GPU
        jetson = hostinfo.jetson_model()
        return jetson if jetson in TARGETS else "datacenter"
    return "cpu"


def _build_device(backend: Backend, target: str, precision: str) -> str:
    if not torch.cuda.is_available():
        return "cpu"
    return "cuda" if (target != "cpu" or precision == "fp16" or "cpu" not in backend.targets) else "cpu"


def compile_bundle(options: CompileOptions, log: Callable[[str], None] | None = None) -> CompileResult:
    """Build the bundle ``options`` describe at ``options.out``; see the module docstring for the order."""
    messages: list[str] = []

    def say(message: str) -> None:
        messages.append(message)
        (log or (lambda text: print(text, file=sys.stderr)))(message)

    started = time.time()
    spec = get_spec(options.arch)
    _check_options(options)
    out = bundle_io.check_out_dir(Path(options.out), options.force)
    backend, why = choose_backend(options.backend)
    say(why)
    target = options.target or _default_target(backend)
    for flag, value in (("workspace_mb", options.workspace_mb), ("dla_core", options.dla_core)):
        if value is not None and flag not in backend.build_options:
            raise UsageError(f"--{flag.replace('_', '-')} applies to TensorRT builds only; drop it for the {backend.name} backend")
    if options.precision != "int8" and (options.calib_data or options.calib_set):
        say(f"note: calibration data is only used for --int8; ignored for --{options.precision}")
    if options.batch is not None:
        batch = BatchSpec.fixed(options.batch)
    elif options.dynamic_batch is not None:
        batch = BatchSpec.parse(options.dynamic_batch)
    else:
        batch = backend.default_batch
    fused = backend.default_fused() if options.fused is None else options.fused
    device = _build_device(backend, target, options.precision)
    # A first check of the config with the arch's default input, before loading anything.
    config = BuildConfig(
        arch=options.arch,
        precision=options.precision,
        target=target,
        input_shape=(3, spec.input_size, spec.input_size),
        batch=batch,
        fused=fused,
        device=device,
        workspace_mb=options.workspace_mb,
        dla_core=options.dla_core,
        log=say,
    )
    backend.check_config(config)

    loaded = resolve_weights(options, say)
    model = loaded.model.float().cpu().eval()
    config.input_shape = (3, loaded.preprocessing.crop, loaded.preprocessing.crop)
    calibration = None
    if options.precision == "int8":
        calibration = prepare_calibration(options, loaded, say)
        config.calibration = calibration.data
    validation = _validation_loader(options, loaded, say) if options.val_data else None
    fallback = None
    if options.max_top1_drop is not None:
        from .quantize.fallback import plan_for_compile

        fallback = plan_for_compile(model, calibration.data, validation[0], options.max_top1_drop, config, say)

    with bundle_io.staging(out, options.force) as tmp:
        say(f"building {options.arch} {options.precision} with {backend.name} for {target} in {tmp.name}")
        build_started = time.time()
        result = backend.build(model, config, tmp)
        build_seconds = round(time.time() - build_started, 1)
        artifacts = dict(result.artifacts)
        if calibration is not None:
            import json

            from .quantize.calibset import canonical_json

            (tmp / CALIBRATION_SET_FILE).write_text(json.dumps(calibration.set_manifest, indent=1, ensure_ascii=False) + "\n")
            assert canonical_json(json.loads((tmp / CALIBRATION_SET_FILE).read_text())) == canonical_json(calibration.set_manifest)
            artifacts["calibration_set"] = CALIBRATION_SET_FILE
        manifest = _manifest(options, loaded, backend, config, artifacts, calibration)
        for key, value in result.manifest.items():
            if key in ("schema_version", "arch", "classes", "num_classes", "files", "artifacts", "backend", "precision", "reference"):
                raise RuntimeError(f"backend {backend.name} may not set manifest field {key!r}")
            if key == "quantization" and manifest.get("quantization"):
                manifest["quantization"].update(value)
            else:
                manifest[key] = value
        if fallback is not None:
            from .quantize.fallback import record_in_manifest

            record_in_manifest(fallback, manifest, backend.name)

        # Load the artifact back exactly as a consumer will, and compare it with the FP32 model.
        bundle_io.check_host(tmp, manifest)
        predictor = backend.load(tmp, manifest, "auto")
        runner = bundle_io.Bundle(tmp, manifest, backend, predictor)
        inputs, source = _check_inputs(calibration, validation, config)
        manifest["check"] = agreement_check(model, runner.predict, inputs, source)
        check = manifest["check"]
        say(f"check vs FP32 on {check['images']} {source} images: top-1 agreement {check['top1_agreement']}%, "
            f"max |diff| {check['max_abs_diff']:.4g} (relative {check['max_rel_diff']:.3g})")
        if options.precision == "fp32" and check["max_rel_diff"] > 1e-3:
            raise CheckFailed(f"the FP32 {backend.name} artifact disagrees with PyTorch (max relative diff {check['max_rel_diff']}); this is a bug, please report it")

        if validation is not None:
            loader, info = validation
            say(f"measuring top-1 on {info['num_images']} images of {info['data']} ({info['split']})")
            info["fp32_top1"] = evaluate(lambda batch: _logits(model, batch), loader)
            info["top1"] = evaluate(runner.predict, loader)
            info["simulated_top1"] = None
            simulator = backend.simulator(tmp, manifest)
            if simulator is not None:
                simulated = bundle_io.Bundle(tmp, manifest, backend, simulator)
                info["simulated_top1"] = evaluate(simulated.predict, loader)
                manifest["quantization"]["simulated_top1"] = info["simulated_top1"]
            manifest["accuracy"] = info
            manifest["reference"]["top1"] = info["fp32_top1"]
            say(
                f"top-1: FP32 {info['fp32_top1']:.2f}%, {options.precision} {backend.name} {info['top1']:.2f}%"
                + (f", simulated INT8 (exact scales) {info['simulated_top1']:.2f}%" if info["simulated_top1"] is not None else "")
            )
            if fallback is not None:
                from .quantize.fallback import check_budget

                check_budget(fallback, info)
        manifest["build"] = {"seconds": round(time.time() - started, 1), "backend_seconds": build_seconds, "command": options.command}
        written = bundle_io.write_manifest(tmp, manifest)
    return CompileResult(out, written, [m for m in messages if m.startswith("warning")])


def _check_inputs(calibration, validation, config: BuildConfig) -> tuple[torch.Tensor, str]:
    if validation is not None:
        loader, _ = validation
        return _first_images(loader.dataset, CHECK_IMAGES), "validation"
    if calibration is not None:
        return _first_images(calibration.dataset, CHECK_IMAGES), "calibration"
    generator = torch.Generator().manual_seed(0)
    return torch.randn((8, *config.input_shape), generator=generator), "random"


def _first_images(dataset: Dataset, count: int) -> torch.Tensor:
    count = min(count, len(dataset))
    return torch.stack([dataset[i][0] for i in range(count)])


def _manifest(options, loaded: LoadedWeights, backend: Backend, config: BuildConfig, artifacts: dict, calibration) -> dict:
    classes = list(loaded.classes)
    weights = loaded.path
    reference = {
        "weights": str(Path(weights).expanduser().absolute()) if weights else None,
        "sha256": loaded.sha256 or (file_sha256(weights) if weights else None),
        "source": loaded.source,
        "random_weights": loaded.source == "random",
        "top1": None,
    }
    recorded = loaded.metadata.get("val_acc1") if loaded.metadata else None
    if isinstance(recorded, (int, float)) and math.isfinite(recorded):
        reference["checkpoint_top1"] = recorded
    return {
        "arch": options.arch,
        "shortcut": getattr(loaded.model, "shortcut", None),
        "num_classes": len(classes),
        "classes": classes,
        "preprocessing": loaded.preprocessing.to_dict(),
        "input": {
            "name": config.input_name,
            "dtype": "float32",
            "shape": [config.batch.opt, *config.input_shape],
            "batch": config.batch.to_dict(),
        },
        "output": {"name": config.output_name, "dtype": "float32", "shape": [config.batch.opt, len(classes)]},
        "precision": config.precision,
        "backend": backend.name,
        "target": config.target,
        "fused": bool(config.fused),
        "artifacts": artifacts,
        "build_host": hostinfo.host_facts(),
        "calibration": calibration.manifest if calibration is not None else None,
        "quantization": None,
        "reference": reference,
        "requires": {"device": "any", "gpu": None, "tensorrt": None, "fused_ops": bool(config.fused)},
        "accuracy": None,
    }
