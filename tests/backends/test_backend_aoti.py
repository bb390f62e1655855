"""AOTInductor backend (issue 23): ``model.pt2`` packages compiled from the (fused) model.

One package per session (``helpers.aoti_bundles``: the trained ResNet-20, batch 1..16); the tests
read it, copy it, edit copies of its manifest, and compile the same graph once more to see the cache
answer. The probe package of ``diagnose`` is a second compile and is ``slow``; FP16/BF16 need a GPU.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner
from torch._inductor import config as inductor_config

from helpers.aoti_bundles import FUSED, REPO, aoti_resnet20, run_compile
from resnet_edge import bundle
from resnet_edge.backends import BatchSpec, BuildConfig, get_backend
from resnet_edge.backends.aoti import cache, compiler, host
from resnet_edge.cli import main
from resnet_edge.core.errors import CheckFailed, UsageError
from resnet_edge.models import create_model
from resnet_edge.weights import load_weights

BLOCKS = [f"layer{stage}.{index}" for stage in (1, 2, 3) for index in range(3)]


@pytest.fixture(scope="module")
def package(tmp_path_factory, trained_resnet20_checkpoint):
    return aoti_resnet20(tmp_path_factory, trained_resnet20_checkpoint)


def _reference(package) -> torch.nn.Module:
    manifest = json.loads((package.path / "manifest.json").read_text())
    return load_weights(Path(manifest["reference"]["weights"]), "resnet20", num_classes=manifest["num_classes"]).model.eval()


def _edited_copy(package, tmp_path: Path, **requires) -> Path:
    copy = tmp_path / "copy"
    shutil.copytree(package.path, copy)
    manifest = json.loads((copy / "manifest.json").read_text())
    manifest["requires"].update(requires)
    (copy / "manifest.json").write_text(json.dumps(manifest))
    return copy


def test_package_matches_the_reference_at_every_batch_size(package):
    manifest = json.loads((package.path / "manifest.json").read_text())
    assert manifest["backend"] == "aoti" and manifest["artifacts"] == {"model": "model.pt2"}
    requires = manifest["requires"]
    assert requires["torch"] == torch.__version__ and requires["cpu_arch"] and requires["device"] == "cpu"
    assert requires["fused_ops"] is FUSED and requires["cpu_isa"] == host.cpu_isa_flags()
    section = manifest["aoti"]
    assert section["dynamic_batch"] is True and section["example_batch"] == 4 and section["cache"] == "miss"
    assert set(section["seconds"]) == {"export", "lowering", "cpp_compile"} and section["seconds"]["cpp_compile"] > 0
    assert manifest["check"]["max_rel_diff"] < 1e-4
    loaded = bundle.load(package.path)
    reference = _reference(package)
    images = torch.randn(21, 3, 32, 32, generator=torch.Generator().manual_seed(3))
    with torch.inference_mode():
        expected = reference(images)
    for size in (1, 2, 7, 16, 21):  # 21: split into 16 + 5 by Bundle.predict
        got = loaded.predict(images[:size])
        assert got.shape == (size, manifest["num_classes"]) and (got - expected[:size]).abs().max() < 1e-4 * expected.abs().max()
    assert loaded.predictor.device == torch.device("cpu") and loaded.predictor.module is None


def test_compile_logs_each_phase(package):
    lines = [line for line in package.stderr.splitlines() if "aoti:" in line]
    for phase in ("aoti: exporting resnet20", "aoti: lowering the graph", "aoti: compiling the C++ wrapper", "aoti: compiled in"):
        assert any(phase in line for line in lines), (phase, package.stderr[-2000:])


def test_a_second_compile_of_the_same_graph_comes_from_the_cache(package, tmp_path):
    result = run_compile(tmp_path / "again", package.args, package.cache_dir)
    assert result.returncode == 0, result.stderr
    again = json.loads((tmp_path / "again" / "manifest.json").read_text())
    first = json.loads((package.path / "manifest.json").read_text())
    assert again["aoti"]["cache"] == "hit" and again["aoti"]["key"] == first["aoti"]["key"]
    assert again["files"]["model.pt2"] == first["files"]["model.pt2"]
    assert "compiled before" in result.stderr and "aoti: lowering" not in result.stderr
    assert [p.name for p in package.cache_dir.joinpath("aoti").iterdir()] == [f"{first['aoti']['key']}.pt2"]


@pytest.mark.parametrize("requires, message", [
    ({"torch": "2.0.0"}, "built with torch 2.0.0 and this host has torch"),
    ({"cpu_arch": "riscv64"}, "compiled for riscv64 CPUs and this host is"),
    ({"cpu_isa": ["avx512f", "imaginary_isa"]}, "compiled for a CPU with imaginary_isa, which this CPU lacks"),
])
def test_a_package_for_another_host_is_refused_naming_what_differs(package, tmp_path, requires, message):
    with pytest.raises(CheckFailed, match=message):
        bundle.load(_edited_copy(package, tmp_path, **requires))


def test_a_changed_package_is_refused(package, tmp_path):
    copy = _edited_copy(package, tmp_path)
    with (copy / "model.pt2").open("r+b") as stream:
        stream.seek(4096)
        stream.write(b"\x00\x01\x02")
    with pytest.raises(CheckFailed, match="model.pt2 does not match its sha256"):
        bundle.load(copy)


def test_a_cpu_package_is_not_run_on_a_gpu(package):
    with pytest.raises(CheckFailed, match="compiled for the CPU and runs only there, not on cuda"):
        bundle.load(package.path, device="cuda")


def test_profile_rows_are_the_blocks_between_stem_and_head(package):
    if not FUSED:
        pytest.skip("per-block times come from the fused ops' profiler records")
    loaded = bundle.load(package.path)
    rows = loaded.backend.profile_blocks(loaded.path, loaded.manifest, BLOCKS, torch.randn(2, 3, 32, 32), iters=3)
    assert list(rows) == ["conv1", *BLOCKS, "fc"] and all(ms >= 0 for ms in rows.values()) and rows["layer1.0"] > 0


def test_bench_measures_the_package(package, tmp_path):
    report = tmp_path / "bench.json"
    command = [sys.executable, "-m", "resnet_edge", "bench", str(package.path), "--batch-sizes", "1,4", "--warmup", "2",
               "--iters", "10", "--rounds", "2", "--no-baseline", "--report", str(report)]
    result = subprocess.run(command, capture_output=True, text=True, timeout=600, cwd=REPO)
    assert result.returncode == 0, result.stderr
    text = report.read_text()
    assert '"aoti"' in text and "p50" in text


def test_serving_configs_are_refused_in_one_line(package, tmp_path):
    """Triton's PyTorch backend has no AOTInductor loader (triton-inference-server/server#8414); nvinfer runs
    engines and ONNX: both refuse an aoti bundle with one line and write nothing."""
    for flag in ("--triton", "--deepstream"):
        command = [sys.executable, "-m", "resnet_edge", "export-config", str(package.path), flag, str(tmp_path / flag)]
        result = subprocess.run(command, capture_output=True, text=True, timeout=300, cwd=REPO)
        assert result.returncode == 2 and len(result.stderr.strip().splitlines()) == 1, result.stderr
        assert "aoti" in result.stderr and not (tmp_path / flag).exists()


def test_refused_configs_say_what_to_do():
    backend = get_backend("aoti")
    base = dict(arch="resnet20", target="cpu", input_shape=(3, 32, 32))
    for precision, message in (("int8", "does not build int8"), ("fp16", "run on a CUDA GPU and none is visible"),
                               ("bf16", "run on a CUDA GPU and none is visible")):
        if precision != "int8" and torch.cuda.is_available():
            continue
        with pytest.raises(UsageError, match=message):
            backend.check_config(BuildConfig(precision=precision, **base))
    if not torch.cuda.is_available():
        with pytest.raises(UsageError, match="for --target datacenter holds CUDA kernels"):
            backend.check_config(BuildConfig(precision="fp32", **{**base, "target": "datacenter"}))


def test_bf16_is_refused_with_the_fused_ops_whose_cuda_kernels_are_float_and_half():
    """The check needs no GPU: a build device of cuda gets past the GPU check to the fused-ops one."""
    config = BuildConfig(arch="resnet20", precision="bf16", target="datacenter", input_shape=(3, 32, 32), fused=True, device="cuda")
    with pytest.raises(UsageError, match="not bfloat16; pass --no-fused"):
        get_backend("aoti").check_config(config)


def test_compile_offers_bf16_and_names_every_precision_flag(tmp_path):
    result = CliRunner().invoke(main, ["compile", "--arch", "resnet20", "--random-weights", "--fp16", "--bf16", "--out", str(tmp_path / "b")])
    assert result.exit_code == 2 and "pass only one of --fp32, --fp16, --bf16 or --int8 (got --fp16 and --bf16)" in result.output
    assert not (tmp_path / "b").exists()


def test_no_cxx_compiler_is_refused_before_any_work(tmp_path):
    with inductor_config.patch({"cpp.cxx": (None, "no-such-c++")}):
        ok, reason = get_backend("aoti").available()
    assert not ok and "no C++ compiler was found" in reason
    result = run_compile(tmp_path / "b", ("--backend", "aoti", "--fp32", "--arch", "resnet20", "--random-weights"),
                         tmp_path / "cache", env={"CXX": "no-such-c++"})
    assert result.returncode == 2 and "no C++ compiler was found" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and not (tmp_path / "b").exists() and not (tmp_path / "cache").exists()


def test_cpu_isa_flags_read_x86_and_arm_cpuinfo():
    x86 = "processor : 0\nflags : fpu vme avx2 avx512f hypervisor fma constant_tsc sse4_2\n"
    assert host.cpu_isa_flags(x86) == ["avx2", "avx512f", "fma", "sse4_2"]
    assert host.cpu_isa_flags("Features : fp asimd sve bf16\n") == ["asimd", "bf16", "fp", "sve"]


def test_an_interrupted_store_leaves_no_cache_entry(tmp_path, monkeypatch):
    monkeypatch.setenv("RESNET_EDGE_CACHE_DIR", str(tmp_path / "cache"))
    package = tmp_path / "model.pt2"
    package.write_bytes(b"x" * 1000)

    def interrupted(source, destination):
        Path(destination).write_bytes(b"x" * 10)
        raise KeyboardInterrupt

    monkeypatch.setattr(cache.shutil, "copyfile", interrupted)
    with pytest.raises(KeyboardInterrupt):
        cache.store("k" * 64, package)
    assert list((tmp_path / "cache" / "aoti").iterdir()) == []


def test_an_interrupted_compile_leaves_no_cache_entry(tmp_path, monkeypatch, caplog):
    monkeypatch.setenv("RESNET_EDGE_CACHE_DIR", str(tmp_path / "cache"))

    def interrupted(program, package_path, inductor_configs):
        Path(package_path).write_bytes(b"partial")
        raise KeyboardInterrupt

    monkeypatch.setattr(compiler.torch._inductor, "aoti_compile_and_package", interrupted)
    config = BuildConfig(arch="resnet20", precision="fp32", target="cpu", input_shape=(3, 32, 32), batch=BatchSpec(1, 2, 4))
    out = tmp_path / "staging"
    out.mkdir()
    with caplog.at_level(logging.INFO), pytest.raises(KeyboardInterrupt):
        get_backend("aoti").build(create_model("resnet20").eval(), config, out)
    assert not (tmp_path / "cache" / "aoti").exists() or list((tmp_path / "cache" / "aoti").iterdir()) == []
    assert "aoti: lowering the graph" in caplog.text


def test_cache_off_and_pruning(tmp_path, monkeypatch):
    monkeypatch.setenv("RESNET_EDGE_AOTI_CACHE", "0")
    assert cache.cache_dir() is None
    monkeypatch.delenv("RESNET_EDGE_AOTI_CACHE")
    monkeypatch.setenv("RESNET_EDGE_CACHE_DIR", str(tmp_path))
    monkeypatch.setattr(cache, "MAX_BYTES", 2500)
    package = tmp_path / "p.pt2"
    package.write_bytes(b"x" * 1000)
    for key in ("a", "b", "c"):
        cache.store(key * 64, package)
        entry = tmp_path / "aoti" / f"{key * 64}.pt2"
        entry.touch()
    assert sorted(p.name[0] for p in (tmp_path / "aoti").iterdir()) == ["b", "c"]  # the oldest went
    assert cache.fetch("b" * 64, tmp_path / "out.pt2") and not cache.fetch("a" * 64, tmp_path / "none.pt2")


@pytest.mark.slow
def test_diagnose_reads_the_block_outputs_of_a_probe_package(package, tmp_path):
    report = tmp_path / "diagnose.json"
    command = [sys.executable, "-m", "resnet_edge", "diagnose", str(package.path), "--data", "shapes", "--images", "16",
               "--report", str(report)]
    result = subprocess.run(command, capture_output=True, text=True, timeout=900, cwd=REPO,
                            env={**os.environ, "RESNET_EDGE_CACHE_DIR": str(package.cache_dir)})
    assert result.returncode == 0, result.stderr
    data = json.loads(report.read_text())
    text = json.dumps(data)
    assert "probe package" in text and all(block in text for block in BLOCKS)


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="FP16/BF16 AOTInductor packages need a CUDA GPU")
@pytest.mark.parametrize("precision", ["fp16", "bf16"])
def test_half_precision_packages_on_the_gpu(tmp_path, monkeypatch, precision):
    monkeypatch.setenv("RESNET_EDGE_CACHE_DIR", str(tmp_path / "cache"))
    backend = get_backend("aoti")
    torch.manual_seed(0)
    model = create_model("resnet18").eval()
    config = BuildConfig(arch="resnet18", precision=precision, target="datacenter", input_shape=(3, 224, 224),
                         batch=BatchSpec(1, 4, 8), fused=FUSED, device="cuda")
    backend.check_config(config)
    result = backend.build(model, config, tmp_path)
    assert result.manifest["requires"]["device"] == "cuda" and result.manifest["requires"]["gpu"]["compute_capability"]
    manifest = {**result.manifest, "artifacts": result.artifacts, "precision": precision, "target": "datacenter",
                "input": {"shape": [4, 3, 224, 224], "batch": {"min": 1, "opt": 4, "max": 8}}}
    predictor = backend.load(tmp_path, manifest)
    images = torch.randn(3, 3, 224, 224)
    with torch.inference_mode():
        expected = model(images)
    got = predictor(images)
    assert got.dtype == torch.float32 and predictor.device.type == "cuda"
    assert (got - expected).abs().max() < 0.05 * expected.abs().max()


def test_tensorrt_save_signature_of_2_14_is_recognised():
    """torch-tensorrt 2.14's ``save`` signature (from its wheel's _compile.py) offers aot_inductor; older ones do not."""
    from typing import Any, Literal, Optional

    from resnet_edge.backends.tensorrt.aoti_package import _keywords, save_supports_aoti

    def save_2_14(module: Any, file_path: str = "", *, extra_files: Optional[dict] = None,
                  output_format: Literal["exported_program", "torchscript", "aot_inductor", "executorch"] = "exported_program",
                  retrace: bool = True, **kwargs: Any) -> None: ...

    def save_2_7(module: Any, file_path: str = "", *, output_format: str = "exported_program", retrace: bool = False) -> None: ...

    assert save_supports_aoti(save_2_14) and not save_supports_aoti(save_2_7)
    assert _keywords(save_2_14)["output_format"] == "aot_inductor" and _keywords(save_2_14)["retrace"] is False


def _tensorrt_reason() -> str | None:
    import importlib.util

    if not torch.cuda.is_available():
        return "no CUDA GPU"
    return None if importlib.util.find_spec("torch_tensorrt") else "torch-tensorrt is not installed"


@pytest.mark.tensorrt
@pytest.mark.skipif(_tensorrt_reason() is not None, reason=f"needs torch-tensorrt and a CUDA GPU: {_tensorrt_reason()}")
def test_tensorrt_bundles_carry_an_aoti_package(tmp_path, monkeypatch):
    monkeypatch.setenv("RESNET_EDGE_CACHE_DIR", str(tmp_path / "cache"))
    result = run_compile(tmp_path / "trt", ("--backend", "tensorrt", "--fp16", "--arch", "resnet20", "--random-weights",
                                            "--dynamic-batch", "1:4:8"), tmp_path / "cache")
    assert result.returncode == 0, result.stderr
    manifest = json.loads((tmp_path / "trt" / "manifest.json").read_text())
    assert manifest["artifacts"]["aoti_package"] == "model.aoti.pt2" and "model.aoti.pt2" in manifest["files"]
    assert manifest["tensorrt"]["save_check_max_rel_diff"]["aot_inductor"] < 1e-2
