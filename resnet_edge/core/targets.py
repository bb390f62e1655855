"""Deployment targets for GPU engines: what ``--target jetson-orin|jetson-xavier|datacenter`` means.

A TensorRT engine is built on the GPU that will run it: the builder times kernels on that GPU and
the plan only deserialises on the same GPU model and TensorRT version. So a target is not a cross-
compilation switch; it names the device this build runs on, sets defaults that suit it (builder
workspace, DLA), and lets ``resnet-edge compile`` refuse a build whose GPU is not the one named,
with an explanation, instead of producing an engine that will not load on the device.

Nothing here imports TensorRT; GPU facts come from ``resnet_edge.core.hostinfo``.
"""

from __future__ import annotations

from dataclasses import dataclass

from .errors import UsageError

# Integrated (Tegra) GPUs: Xavier (Volta, 7.2), Orin (Ampere, 8.7), Thor (Blackwell, 11.0 under CUDA 13, 10.1 before).
TEGRA_COMPUTE_CAPABILITIES = ("7.2", "8.7", "10.1", "11.0")


@dataclass(frozen=True)
class Target:
    """One deployment target for GPU engines.

    Attributes:
        name: the ``--target`` value, as recorded in the manifest.
        description: what hardware it is.
        compute_capabilities: the GPU compute capabilities it has (``None``: any non-Tegra GPU).
        dla_cores: NVDLA cores on the largest module of the family (the builder reports the real
            count on the device: AGX Orin 2, Orin NX 16GB 2, Orin NX 8GB 1, Orin Nano 0).
        workspace_mb: default TensorRT builder workspace; ``None`` leaves TensorRT's default (all of
            the GPU's memory). Jetson memory is shared with the CPU, so the builder gets a bounded slice.
        software: the stack that was written and reviewed for it (see docs/jetson.md, docs/datacenter.md).
    """

    name: str
    description: str
    compute_capabilities: tuple[str, ...] | None
    dla_cores: int
    workspace_mb: int | None
    software: str

    @property
    def is_jetson(self) -> bool:
        return self.name.startswith("jetson")

    def accepts(self, compute_capability: str) -> bool:
        if self.compute_capabilities is None:
            return compute_capability not in TEGRA_COMPUTE_CAPABILITIES
        return compute_capability in self.compute_capabilities

    def to_manifest(self) -> dict:
        return {
            "name": self.name,
            "compute_capabilities": list(self.compute_capabilities) if self.compute_capabilities else None,
            "dla_cores_max": self.dla_cores,
            "workspace_mb": self.workspace_mb,
        }


GPU_TARGETS: dict[str, Target] = {
    "jetson-orin": Target(
        "jetson-orin",
        "NVIDIA Jetson AGX Orin / Orin NX / Orin Nano (Ampere iGPU, sm_87)",
        ("8.7",),
        dla_cores=2,
        workspace_mb=1024,
        software="JetPack 6 (L4T r36): torch 2.8, torch-tensorrt 2.8, TensorRT 10.3 from the jetson-ai-lab wheels",
    ),
    "jetson-xavier": Target(
        "jetson-xavier",
        "NVIDIA Jetson AGX Xavier / Xavier NX (Volta iGPU, sm_72)",
        ("7.2",),
        dla_cores=2,
        workspace_mb=512,
        software="JetPack 5 (L4T r35): TensorRT 8.5; no torch-tensorrt >= 2.8 wheel exists for it",
    ),
    "datacenter": Target(
        "datacenter",
        "a discrete NVIDIA GPU (T4, A10, L4, A100, H100, ...)",
        None,
        dla_cores=0,
        workspace_mb=None,
        software="torch 2.14, torch-tensorrt 2.14, TensorRT 11 (pip)",
    ),
}


def get_target(name: str) -> Target:
    """The GPU target called ``name``; a ``UsageError`` naming the choices otherwise."""
    try:
        return GPU_TARGETS[name]
    except KeyError:
        hint = " (cpu is for the onnxruntime and torchscript backends)" if name == "cpu" else ""
        raise UsageError(f"--target {name} is not a GPU target{hint}; choose one of: {', '.join(GPU_TARGETS)}") from None


def target_for_gpu(gpu: dict | None) -> str | None:
    """The target that matches a ``hostinfo.gpu_info()`` record, or ``None`` without a GPU / for an unknown Tegra."""
    if not gpu:
        return None
    capability = gpu.get("compute_capability")
    for target in GPU_TARGETS.values():
        if target.compute_capabilities and capability in target.compute_capabilities:
            return target.name
    return "datacenter" if capability not in TEGRA_COMPUTE_CAPABILITIES else None


def check_gpu(target: Target, gpu: dict | None) -> None:
    """Refuse to build for ``target`` on this host's GPU, with the reason, unless they match.

    ``gpu`` is ``hostinfo.gpu_info()``: ``None`` when no CUDA GPU is visible.
    """
    if gpu is None:
        raise UsageError(
            f"--target {target.name} needs its GPU ({target.description}) and no CUDA GPU is visible here; "
            f"TensorRT engines are built on the device that runs them: run compile there, "
            f"or use --backend onnxruntime for a portable model"
        )
    capability = gpu.get("compute_capability", "?")
    if target.accepts(capability):
        return
    found = target_for_gpu(gpu)
    suggestion = f"; this GPU is a --target {found}" if found else ""
    wanted = (
        f"compute capability {' or '.join(target.compute_capabilities)}"
        if target.compute_capabilities
        else "a discrete (non-Jetson) GPU"
    )
    raise UsageError(
        f"--target {target.name} means {target.description}, {wanted}, but this host has "
        f"{gpu.get('name', 'a GPU')} (compute capability {capability}){suggestion}. A TensorRT engine only runs on "
        f"the GPU model it was built on: build on the {target.name} itself"
    )


def check_dla(target: Target, dla_core: int | None, precision: str, available_cores: int | None) -> None:
    """Refuse a DLA request the target or precision cannot honour.

    ``available_cores`` is what TensorRT's builder reports on this device (``None``: unknown).
    """
    if dla_core is None:
        return
    if target.dla_cores == 0:
        raise UsageError(f"--dla-core: {target.name} GPUs have no DLA (deep learning accelerator); DLA exists on Jetson AGX/NX modules")
    if precision == "fp32":
        raise UsageError("--dla-core needs --fp16 or --int8: the DLA runs FP16 and INT8 layers only")
    if dla_core < 0:
        raise UsageError(f"--dla-core must be 0 or more, got {dla_core}")
    if available_cores is not None and dla_core >= available_cores:
        have = f"{available_cores} DLA core{'s' if available_cores != 1 else ''}" if available_cores else "no DLA cores"
        raise UsageError(f"--dla-core {dla_core}: TensorRT reports {have} on this device (Orin Nano has none)")
