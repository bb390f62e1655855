"""``compile`` end to end on a trained resnet20 (shapes), and every bad input: a clear error, nothing left."""

import json
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner

import resnet_edge
from resnet_edge import bundle
from resnet_edge.backends import get_backend
from resnet_edge.cli import main
from resnet_edge.cli.demo_cmd import DEMO_CALIB_SET
from resnet_edge.core.errors import CheckFailed, UsageError
from resnet_edge.core.io import file_sha256
from resnet_edge.data import eval_transform, open_data
from resnet_edge.pipelines.compile import CompileOptions, compile_bundle
from resnet_edge.quantize.calibset import load_calibset, set_hash
from resnet_edge.weights import load_weights

REPO = Path(__file__).resolve().parents[2]
DEMO_SET = Path(str(DEMO_CALIB_SET))  # the demo's calibration set, shipped as package data
VAL = "shapes"  # its val split: 600 images


@pytest.fixture(scope="module")
def val_batch():
    dataset = open_data(VAL).split("val", transform=eval_transform(load_calibset(DEMO_SET).preprocessing))
    images, labels = zip(*(dataset[i] for i in range(96)))
    return torch.stack(images), torch.tensor(labels)


@pytest.fixture(scope="module")
def int8_bundle(trained_resnet20_checkpoint, tmp_path_factory):
    out = tmp_path_factory.mktemp("int8") / "r20-int8"
    options = CompileOptions(
        arch="resnet20", weights=trained_resnet20_checkpoint, precision="int8", calib_set=DEMO_SET,
        backend="onnxruntime", val_data=VAL, out=out,
    )
    return compile_bundle(options)


def test_int8_bundle_stays_within_one_point_of_fp32(int8_bundle):
    accuracy = int8_bundle.manifest["accuracy"]
    assert accuracy["num_images"] == 600 and accuracy["fp32_top1"] >= 80
    assert abs(accuracy["top1"] - accuracy["fp32_top1"]) <= 1.0
    assert abs(accuracy["simulated_top1"] - accuracy["fp32_top1"]) <= 1.0
    assert int8_bundle.manifest["quantization"]["simulated_top1"] == accuracy["simulated_top1"]
    assert int8_bundle.manifest["reference"]["top1"] == accuracy["fp32_top1"]


def test_int8_manifest_records_calibration_and_reference(int8_bundle, trained_resnet20_checkpoint):
    manifest = int8_bundle.manifest
    calibset = load_calibset(DEMO_SET)
    assert manifest["calibration"]["set_hash"] == calibset.hash
    assert manifest["calibration"]["num_images"] == len(calibset) and manifest["calibration"]["method"] == "auto"
    auto = manifest["calibration"]["auto"]  # the default: every candidate scored on held-out images, one chosen
    assert {entry["name"] for entry in auto["candidates"]} == {"max", "percentile-99.9", "percentile-99.99",
                                                             "percentile-99.999", "mse", "entropy"}
    assert all(0 <= entry["agreement"] <= 1 and entry["kl"] >= 0 for entry in auto["candidates"])
    assert auto["chosen"] in {entry["name"] for entry in auto["candidates"]} | {"per-tensor"}
    assert auto["held_out_images"] + auto["calibration_images"] == len(calibset)
    assert "calibration_auto" not in manifest["quantization"]
    cache = json.loads((int8_bundle.path / "calibration-cache.json").read_text())
    assert cache["method"] == "auto" and cache["chosen"] == auto["chosen"]
    assert manifest["calibration"]["missing_classes"] == []
    copy = json.loads((int8_bundle.path / "calibration-set.json").read_text())
    assert set_hash(copy) == calibset.hash
    assert manifest["reference"]["sha256"] == file_sha256(trained_resnet20_checkpoint)
    assert manifest["reference"]["source"] == "checkpoint" and not manifest["reference"]["random_weights"]
    quantization = manifest["quantization"]
    assert quantization["placement"] == "onnxruntime-cpu" and quantization["per_channel_weights"]
    assert quantization["higher_precision_layers"] == ["fc"]
    assert set(manifest["artifacts"]) == {"model", "calibration_cache", "calibration_set"}


def test_manifest_follows_the_documented_schema(int8_bundle):
    manifest = int8_bundle.manifest
    doc = (REPO / "docs" / "bundle-manifest.md").read_text()
    documented = {part.strip("` ") for line in doc.splitlines() if line.startswith("| `") for part in line.split("|")[1].split(",")}
    assert set(manifest) <= documented, set(manifest) - documented
    assert manifest["classes"] == ["circle", "square", "triangle", "star", "cross", "ring"]
    assert (int8_bundle.path / "labels.txt").read_text().splitlines() == manifest["classes"]
    assert manifest["preprocessing"]["crop"] == 32 and manifest["input"]["shape"] == [1, 3, 32, 32]
    assert manifest["input"]["batch"] == {"min": 1, "opt": 1, "max": 64}
    assert manifest["build_host"]["versions"]["onnxruntime"]


def test_bundle_round_trips_through_load(int8_bundle, val_batch):
    images, labels = val_batch
    loaded = bundle.load(int8_bundle.path)
    assert loaded.precision == "int8" and loaded.classes[0] == "circle"
    logits = loaded.predict(images)
    assert logits.shape == (96, 6) and logits.dtype == torch.float32
    assert (logits.argmax(1) == labels).float().mean() >= 0.8
    reference = loaded.load_reference_model()
    with torch.inference_mode():
        assert (reference(images).argmax(1) == logits.argmax(1)).float().mean() >= 0.95
    simulated = loaded.simulator()(images)
    assert (simulated.argmax(1) == logits.argmax(1)).float().mean() >= 0.95


@pytest.mark.parametrize(
    "backend, precision, tolerance",
    [("onnxruntime", "fp32", 1e-4), ("onnxruntime", "fp16", 2e-2), ("torchscript", "fp32", 1e-4)],
)
def test_float_bundles_match_fp32(trained_resnet20_checkpoint, tmp_path, val_batch, backend, precision, tolerance):
    result = compile_bundle(
        CompileOptions(arch="resnet20", weights=trained_resnet20_checkpoint, precision=precision, backend=backend,
                       fused=False, out=tmp_path / "b"),
    )
    images, _ = val_batch
    model = load_weights(trained_resnet20_checkpoint).model
    with torch.inference_mode():
        expected = model(images)
    actual = bundle.load(result.path).predict(images)
    scale = expected.abs().max()
    assert (actual - expected).abs().max() <= tolerance * scale
    assert (actual.argmax(1) == expected.argmax(1)).float().mean() >= 0.98
    assert result.manifest["check"]["top1_agreement"] >= 98


def test_tensorrt_placement_is_symmetric_and_simulates_close_to_fp32(trained_resnet20_checkpoint, tmp_path):
    import onnx
    from onnx import numpy_helper

    result = compile_bundle(
        CompileOptions(arch="resnet20", weights=trained_resnet20_checkpoint, precision="int8", calib_set=DEMO_SET,
                       calib_method="max", backend="onnxruntime", target="jetson-orin", val_data=VAL, val_images=300,
                       out=tmp_path / "trt"),
    )
    quantization = result.manifest["quantization"]
    assert quantization["placement"] == "tensorrt" and "TensorRT" in quantization["placement_reason"]
    model = onnx.load(str(result.path / "model.onnx"))
    initializers = {init.name: numpy_helper.to_array(init) for init in model.graph.initializer}
    quantize_nodes = [node for node in model.graph.node if node.op_type == "QuantizeLinear"]
    zero_points = [initializers[node.input[2]] for node in quantize_nodes if len(node.input) > 2]
    assert zero_points and all(zp.dtype == "int8" and not zp.any() for zp in zero_points)
    producers = {out: node.op_type for node in model.graph.node for out in node.output}
    consumers = {}
    for node in model.graph.node:
        for name in node.input:
            consumers.setdefault(name, []).append(node.op_type)
    for node in model.graph.node:
        if node.op_type == "Conv":
            assert producers[node.input[0]] == "DequantizeLinear"  # every conv input quantized
            assert producers[node.input[1]] == "DequantizeLinear"  # and its weights (per channel)
    gemm = next(node for node in model.graph.node if node.op_type == "Gemm")
    assert producers.get(gemm.input[0]) != "DequantizeLinear"  # fc stays float
    accuracy = result.manifest["accuracy"]
    assert abs(accuracy["simulated_top1"] - accuracy["fp32_top1"]) <= 2.0


def test_static_and_dynamic_batch_shapes(trained_resnet20_checkpoint, tmp_path, val_batch):
    static = compile_bundle(CompileOptions(arch="resnet20", weights=trained_resnet20_checkpoint, precision="fp32",
                                           backend="onnxruntime", batch=8, out=tmp_path / "static"))
    assert static.manifest["input"]["shape"] == [8, 3, 32, 32] and static.manifest["onnx"]["dynamic_batch"] is False
    images, _ = val_batch
    assert bundle.load(static.path).predict(images[:11]).shape == (11, 6)  # 8 + 3 padded to 8
    dynamic = compile_bundle(CompileOptions(arch="resnet20", weights=trained_resnet20_checkpoint, precision="fp32",
                                            backend="onnxruntime", dynamic_batch="1:4:16", out=tmp_path / "dyn"))
    assert dynamic.manifest["input"]["batch"] == {"min": 1, "opt": 4, "max": 16}
    assert bundle.load(dynamic.path).predict(images[:40]).shape == (40, 6)


def test_torchvision_cache_is_used_without_weights(tmp_path, monkeypatch):
    from resnet_edge.models import create_model

    hub = tmp_path / "hub"
    (hub / "checkpoints").mkdir(parents=True)
    torch.save(create_model("resnet18").state_dict(), hub / "checkpoints" / "resnet18-f37072fd.pth")
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(hub))
    result = compile_bundle(CompileOptions(arch="resnet18", precision="fp32", backend="onnxruntime", batch=1, out=tmp_path / "b"))
    reference = result.manifest["reference"]
    assert reference["source"] == "torchvision" and reference["weights"].endswith("resnet18-f37072fd.pth")
    assert result.manifest["classes"][0] == "tench" and len(result.manifest["classes"]) == 1000
    assert result.manifest["preprocessing"]["name"] == "torchvision-IMAGENET1K_V1"


def test_random_weights_warning_is_logged_and_returned(tmp_path, caplog):
    result = compile_bundle(CompileOptions(arch="resnet20", random_weights=True, precision="fp32", backend="onnxruntime",
                                           out=tmp_path / "b"))
    expected = "--random-weights: this bundle is for speed measurements only; its outputs mean nothing"
    assert result.warnings == [expected]
    assert [r.getMessage() for r in caplog.records if r.levelname == "WARNING"] == [expected]
    assert result.manifest["reference"]["random_weights"]


def test_demo_calibration_set_ships_with_the_package():
    calibset = load_calibset(DEMO_SET)
    assert DEMO_SET.resolve().is_relative_to(Path(resnet_edge.__file__).resolve().parent)  # inside the package
    assert len(calibset) == 384 and calibset.missing_classes == []
    assert len(calibset.open(limit=4)) == 4  # its image paths still resolve (sha256-checked)
    assert (REPO / "calibration" / "shapes-demo.json").read_text() == DEMO_SET.read_text()


# ----------------------------------------------------------------------------------- bad inputs


def test_no_weights_is_refused_with_what_to_do(tmp_path, monkeypatch):
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "empty-hub"))
    with pytest.raises(UsageError, match=r"no weights for resnet50: .*resnet50-0676ba61.pth.*--random-weights"):
        compile_bundle(CompileOptions(arch="resnet50", precision="fp32", backend="onnxruntime", out=tmp_path / "b"))
    with pytest.raises(UsageError, match="no weights for resnet20: pass --weights PATH"):
        compile_bundle(CompileOptions(arch="resnet20", precision="fp32", backend="onnxruntime", out=tmp_path / "b"))
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def expect_refusal(tmp_path, error, message, **changes):
    options = dict(arch="resnet20", random_weights=True, precision="fp32", backend="onnxruntime", out=tmp_path / "out" / "b")
    options.update(changes)
    before = sorted(p.name for p in tmp_path.iterdir())
    with pytest.raises(error, match=message):
        compile_bundle(CompileOptions(**options))
    assert sorted(p.name for p in tmp_path.iterdir()) == before


@pytest.mark.parametrize(
    "changes, message",
    [
        ({"precision": "int8"}, "INT8 needs real calibration images: pass --calib-data SPEC or --calib-set"),
        ({"backend": "tvm"}, "unknown backend 'tvm'"),
        ({"precision": "int8", "calib_set": "missing.json"}, "calibration set missing.json does not exist"),
        ({"precision": "int8", "calib_data": "shapes", "calib_set": DEMO_SET}, "either --calib-data or --calib-set"),
        ({"batch": 2, "dynamic_batch": "1:2:4"}, "either --batch N or --dynamic-batch"),
        ({"dynamic_batch": "8:4:2"}, "1 <= MIN <= OPT <= MAX"),
        ({"dla_core": 0}, "--dla-core applies to TensorRT builds only"),
        ({"backend": "torchscript", "precision": "int8", "calib_data": "shapes"}, "torchscript backend does not build int8"),
        ({"weights": "nowhere.pth", "random_weights": True}, "either --weights or --random-weights"),
        ({"weights": "nowhere.pth", "random_weights": False}, "nowhere.pth does not exist"),
        ({"arch": "resnet21"}, "unknown arch 'resnet21'"),
    ],
)
def test_bad_inputs_are_refused_and_leave_nothing(tmp_path, changes, message):
    expect_refusal(tmp_path, UsageError, message, **changes)


def test_tensorrt_without_a_gpu_says_why(tmp_path):
    if torch.cuda.is_available():
        pytest.skip("a CUDA GPU is present")
    expect_refusal(tmp_path, UsageError, "the tensorrt backend is not usable here: no CUDA GPU", backend="tensorrt")


def test_fp16_torchscript_needs_a_gpu(tmp_path):
    if torch.cuda.is_available():
        pytest.skip("a CUDA GPU is present; FP16 TorchScript is allowed here")
    expect_refusal(tmp_path, UsageError, "FP16 TorchScript runs on a CUDA GPU", backend="torchscript", precision="fp16")


def test_unreadable_calibration_set_is_refused(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_bytes(b"\x00\xff not json")
    expect_refusal(tmp_path, UsageError, "bad.json is unreadable", precision="int8", calib_set=bad)


def test_existing_out_without_force_is_refused_and_kept(tmp_path):
    out = tmp_path / "out" / "b"
    out.mkdir(parents=True)
    (out / "manifest.json").write_text("{}")
    expect_refusal(tmp_path, UsageError, "already exists; pass --force")
    assert (out / "manifest.json").read_text() == "{}"


@pytest.mark.parametrize("error", [KeyboardInterrupt, RuntimeError])
def test_an_interrupted_build_leaves_nothing(tmp_path, monkeypatch, error):
    backend = get_backend("onnxruntime")

    def broken_build(model, config, out_dir):
        (out_dir / "model.onnx").write_bytes(b"half an onnx file")
        raise error("stopped")

    monkeypatch.setattr(backend, "build", broken_build)
    expect_refusal(tmp_path, error, "stopped")


def test_calibration_images_that_changed_are_refused(tmp_path):
    calibset = json.loads(DEMO_SET.read_text())
    calibset["images"][0]["sha256"] = "f" * 64
    edited = tmp_path / "edited.json"
    edited.write_text(json.dumps(calibset))
    expect_refusal(tmp_path, CheckFailed, "changed since the set was made", precision="int8", calib_set=edited)


def test_cli_errors_are_one_line_with_exit_code_2(tmp_path):
    runner = CliRunner()
    result = runner.invoke(main, ["compile", "--arch", "resnet20", "--random-weights", "--int8", "--out", str(tmp_path / "b")])
    assert result.exit_code == 2
    assert result.output.strip().splitlines() == [
        "error: INT8 needs real calibration images: pass --calib-data SPEC or --calib-set calibration/NAME.json "
        "(random calibration is refused: it gives ranges that fit no real image)"
    ]
    result = runner.invoke(main, ["compile", "--arch", "resnet20", "--random-weights", "--out", str(tmp_path / "b")])
    assert result.exit_code == 2 and "pass one of --fp32, --fp16, --bf16 or --int8" in result.output
    result = runner.invoke(main, ["compile", "--arch", "resnet20", "--random-weights", "--fp32", "--backend", "tvm", "--out", str(tmp_path / "b")])
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert list(tmp_path.iterdir()) == []


def test_cli_compile_prints_where_the_bundle_is(tmp_path, trained_resnet20_checkpoint):
    out = tmp_path / "b"
    result = CliRunner().invoke(main, ["compile", "--arch", "resnet20", "--weights", str(trained_resnet20_checkpoint), "--int8",
                                       "--calib-data", "shapes", "--calib-images", "64", "--calib-method", "percentile", "--out", str(out)])
    assert result.exit_code == 0, result.output
    manifest = json.loads((out / "manifest.json").read_text())
    # --backend auto on a CPU host times every installed CPU runtime and keeps the fastest.
    chosen = manifest["backend"]
    assert f"bundle: {out} (resnet20 int8 {chosen} for cpu" in result.output
    assert f"MB) in {manifest['build']['seconds']:.1f} s" in result.output  # the time taken, as the manifest records it
    assert f"backend auto -> {chosen}" in result.output
    assert manifest["calibration"]["set_manifest"] is None and manifest["calibration"]["num_images"] == 64
    assert manifest["build"]["command"].startswith("resnet-edge ")


def test_cli_auto_calibration_in_tensorrt_form_prints_the_scores(tmp_path, trained_resnet20_checkpoint):
    out = tmp_path / "trt-auto"
    result = CliRunner().invoke(main, ["compile", "--arch", "resnet20", "--weights", str(trained_resnet20_checkpoint), "--int8",
                                       "--calib-data", "shapes", "--calib-images", "64", "--backend", "onnxruntime",
                                       "--target", "jetson-orin", "--out", str(out)])
    assert result.exit_code == 0, result.output
    manifest = json.loads((out / "manifest.json").read_text())
    auto = manifest["calibration"]["auto"]
    assert manifest["calibration"]["method"] == "auto" and manifest["quantization"]["placement"] == "tensorrt"
    assert auto["held_out_images"] == 16 and auto["calibration_images"] == 48
    assert "auto calibration: 6 candidates scored on 16 held-out images" in result.output
    assert f"auto calibration chose {auto['chosen']}" in result.output
    for entry in auto["candidates"]:
        assert entry["name"] in result.output
