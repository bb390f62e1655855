"""``diagnose`` on TensorRT bundles: a *probe engine*, the bundle's build again with the residual-block
outputs marked as engine outputs, nothing else.

A built engine keeps only the tensors that were marked as outputs when it was built, so the block
outputs cannot be read from the saved engine: the probe engine is rebuilt from the same source graph
with the same settings, on the GPU that runs the bundle:

* source graph: INT8, the bundle's own ``modelopt_int8.pth`` (the exact ranges of the deployed engine;
  turned into ``int8_residual_block`` ops again when the bundle was ``--fused``); FP32/FP16, the FP32
  reference folded (or fused) by ``graph.prepare_model``, cast to half where the precision plan says so.
* Torch-TensorRT bundles: ``BlockOutputs`` returns ``(logits, *block outputs)``; it is exported as the
  build exported (``graph.export_program``; INT8: ``export_for_tensorrt``) and compiled by
  ``torch_tensorrt.dynamo.compile`` with the manifest's ``compile_arguments`` (precision plan, workspace,
  optimization level, TF32, timing cache). Torch-TensorRT marks every graph output as an engine output
  (``_TRTInterpreter.output`` in 2.14 calls ``mark_output`` for each).
* DLA bundles (a raw engine from TensorRT's builder): the ONNX export of ``dla.export_onnx``, the block
  output tensors found by name (``onnx_graph.onnx_block_tensors``) and marked (``dla.mark_outputs``), built
  with the recorded builder settings and run by ``EngineRunner``.

Only the block outputs are marked: marking a tensor makes TensorRT write it to memory, and a block
output is where its conv + add + ReLU fusion ends anyway, so the kernels stay those of the deployed
engine (marking every layer, Polygraphy's ``mark all``, breaks every fusion and measures another
engine). In an INT8 graph the tensor marked is the float block output before the next QuantizeLinear,
the tensor the simulator's hooks read too.
"""

from __future__ import annotations

import tempfile
import warnings
from functools import partial
from pathlib import Path
from typing import Callable, Sequence

import torch
from torch import nn

from ...core.errors import CheckFailed
from ...fuse.int8 import fuse_quantized_model
from ...quantize import modelopt_ptq
from ..base import BatchSpec, BuildConfig
from ..onnx_graph import onnx_block_tensors
from . import api, dla, graph, int8
from .environment import import_torch_tensorrt
from .logcapture import capture_tensorrt_log
from .runner import EngineRunner
from .timing_cache import CACHE_DIR


class BlockOutputs(nn.Module):
    """``model`` returning ``(logits, *block outputs)``, the blocks in ``blocks`` order (forward hooks).

    ``dtype``: what the graph computes in; the input is cast to it and the logits back to float32, as
    ``FloatIO`` does for the deployed FP16 graph. The block outputs stay in ``dtype`` (no extra cast
    layer in the engine); the probe casts them on the host.
    """

    def __init__(self, model: nn.Module, blocks: Sequence[str], dtype: torch.dtype = torch.float32) -> None:
        super().__init__()
        self.model, self.blocks, self.dtype = model, list(blocks), dtype
        self._captured: dict[str, torch.Tensor] = {}
        for block in self.blocks:
            model.get_submodule(block).register_forward_hook(partial(self._keep, block))

    def _keep(self, block: str, _module, _inputs, output: torch.Tensor) -> None:
        self._captured[block] = output

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        self._captured.clear()
        logits = self.model(x.to(self.dtype)).float()
        return (logits, *(self._captured.pop(block) for block in self.blocks))


class ProbeEngine:
    """A ``blocks.Probe`` over a probe engine: ``run(batch)`` gives ``(logits, *block outputs)``;
    ``outputs`` returns the logits as well (to compare with the saved engine)."""

    def __init__(self, run: Callable[[torch.Tensor], Sequence], blocks: Sequence[str]) -> None:
        self._run, self.blocks = run, list(blocks)

    def outputs(self, batch: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """(float32 CPU logits, ``{block: float32 CPU tensor}``) for an NCHW float32 batch."""
        with torch.no_grad():
            logits, *values = self._run(batch)
        as_tensor = lambda value: torch.as_tensor(value).float().cpu()  # noqa: E731 (GPU tensors and numpy arrays)
        return as_tensor(logits), {block: as_tensor(value) for block, value in zip(self.blocks, values)}

    def __call__(self, batch: torch.Tensor) -> dict[str, torch.Tensor]:
        return self.outputs(batch)[1]


def probe_config(manifest: dict) -> BuildConfig:
    """The build's ``BuildConfig`` as the manifest records it: input name and shape, batch, precision, fusion."""
    spec = manifest["input"]
    return BuildConfig(
        arch=manifest["arch"], precision=manifest["precision"], target=manifest["target"], input_shape=tuple(spec["shape"][1:]),
        batch=BatchSpec.from_dict(spec["batch"]), input_name=spec["name"], output_name=manifest["output"]["name"],
        fused=bool(manifest.get("fused")), device="cuda",
    )


def timing_cache(section: dict, bundle_dir: Path) -> Path | None:
    """The builder's timing cache the build used (``timing_cache``: beside the bundle), or None."""
    name = section.get("timing_cache")
    return Path(bundle_dir).resolve().parent / CACHE_DIR / name if name else None


def recorded_arguments(section: dict, bundle_dir: Path) -> dict:
    """``dynamo.compile`` keywords as the manifest's ``compile_arguments`` records them (``api.manifest_arguments``),
    turned back into values: precisions into torch dtypes, the timing cache into its path."""
    kwargs = dict(section["compile_arguments"])
    if "enabled_precisions" in kwargs:
        kwargs["enabled_precisions"] = {getattr(torch, name.removeprefix("torch.")) for name in kwargs["enabled_precisions"]}
    if "timing_cache_path" in kwargs:
        kwargs["timing_cache_path"] = str(timing_cache({"timing_cache": kwargs["timing_cache_path"]}, bundle_dir))
    return kwargs


def source_model(bundle_dir: Path, manifest: dict, reference: nn.Module | None) -> nn.Module:
    """The model the bundle's engine was compiled from, before export: INT8 the bundle's ModelOpt model
    (restored on the CPU), FP32/FP16 the folded (or fused) reference on the GPU."""
    if manifest["precision"] == "int8":
        model = int8.load_simulator(Path(bundle_dir) / manifest["artifacts"]["quantized_model"], manifest).module
        if manifest.get("fused"):
            graph.register_converters()
            model = fuse_quantized_model(model)
        return model
    if reference is None:
        raise CheckFailed("rebuilding a TensorRT FP32/FP16 engine with its block outputs marked needs the FP32 reference model")
    return graph.prepare_model(reference, probe_config(manifest))


def probe_program(model: nn.Module, manifest: dict, blocks: Sequence[str], example: torch.Tensor) -> torch.export.ExportedProgram:
    """``BlockOutputs`` of ``model`` (on the example's GPU) exported as the build exported the bundle's graph."""
    batch = probe_config(manifest).batch
    if manifest["precision"] == "int8":
        dynamic = None if batch.static else (batch.min, batch.opt, batch.max)
        return modelopt_ptq.export_for_tensorrt(BlockOutputs(model, blocks), example, dynamic)
    plan = api.precision_plan(manifest["tensorrt"]["precision"]["api"], manifest["precision"])
    half = plan.graph_dtype == torch.float16
    return graph.export_program(BlockOutputs(model.half() if half else model, blocks, plan.graph_dtype), example, batch)


def _compile(torch_tensorrt, program, manifest: dict, bundle_dir: Path, cuda: torch.device) -> nn.Module:
    """``torch_tensorrt.dynamo.compile`` of the probe program with the bundle's recorded arguments."""
    compile_ = torch_tensorrt.dynamo.compile
    kwargs = dict(recorded_arguments(manifest["tensorrt"], bundle_dir), device=torch_tensorrt.Device(f"cuda:{cuda.index or 0}"))
    api.drop_optional_keywords(kwargs, compile_)
    api.check_keywords(compile_, kwargs, "torch_tensorrt.dynamo.compile")
    inputs = graph.input_specs(torch_tensorrt, probe_config(manifest))
    with capture_tensorrt_log(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return compile_(program, arg_inputs=inputs, **kwargs)


def _dla_probe(model: nn.Module, manifest: dict, blocks: Sequence[str], bundle_dir: Path, cuda: torch.device) -> ProbeEngine:
    """The DLA bundle's builder run again on the same ONNX export, the block tensors marked, run by ``EngineRunner``."""
    import onnx

    section = manifest["tensorrt"]
    with tempfile.TemporaryDirectory(prefix="resnet-edge-probe-") as work:
        path = Path(work) / dla.ONNX_FILE
        dla.export_onnx(model, probe_config(manifest), path)
        names = onnx_block_tensors(onnx.load(str(path)).graph, blocks)
        plan = dla.build_engine(path, section["dla"]["builder"], timing_cache(section, bundle_dir), extra_outputs=list(names.values()))
    runner = EngineRunner(plan, device=cuda.index or 0, dla_core=section["dla"]["core"], io_names=section.get("engine_io"),
                          extra_outputs=list(names.values()))

    def run(batch: torch.Tensor) -> list:
        values = runner.outputs(batch.float().cpu().numpy())
        return [values[runner.output_name]] + [values[names[block]] for block in blocks]

    return ProbeEngine(run, blocks)


def probe_engine(bundle_dir: Path, manifest: dict, blocks: Sequence[str], reference: nn.Module | None, cuda: torch.device) -> ProbeEngine:
    """Build the probe engine of a TensorRT bundle on ``cuda`` (a whole TensorRT build: minutes for a large model)."""
    model = source_model(bundle_dir, manifest, reference).to(cuda).eval()
    if manifest["tensorrt"].get("dla"):
        return _dla_probe(model, manifest, blocks, bundle_dir, cuda)
    torch_tensorrt = import_torch_tensorrt()
    config = probe_config(manifest)
    example = config.example_input(graph.example_batch(config.batch)).to(cuda)
    compiled = _compile(torch_tensorrt, probe_program(model, manifest, blocks, example), manifest, bundle_dir, cuda)
    return ProbeEngine(lambda batch: compiled(batch.to(cuda, torch.float32)), blocks)


def reading(manifest: dict, blocks: Sequence[str]) -> str:
    """How the artifact series of a TensorRT bundle is read, for the ``diagnose`` report."""
    section = manifest.get("tensorrt") or {}
    if manifest["precision"] == "int8":
        source = f"the bundle's {manifest['artifacts'].get('quantized_model', int8.MODELOPT_FILE)}"
    else:
        source = f"the FP32 reference, folded, {manifest['precision'].upper()} as the bundle's precision plan says"
    how = ("TensorRT's builder from the ONNX export with the recorded builder settings" if section.get("dla")
           else "torch_tensorrt.dynamo.compile with the manifest's compile_arguments")
    return (f"TensorRT engine rebuilt from {source} with the {len(blocks)} block outputs marked as engine outputs "
            f"({how}); the same build as the saved engine, not the saved engine itself")
