"""``export-config``: Triton entries parsed against Triton's real model_config.proto, nvinfer configs.

``tests/fixtures/triton/model_config.proto`` (vendored, see SOURCE.md there) is compiled at test time
with grpcio-tools into a descriptor set, and every ``config.pbtxt`` is parsed with protobuf's
``text_format`` into ``inference.ModelConfig``: a field or enum Triton does not have fails the parse.
"""

from __future__ import annotations

import configparser
import json
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner

from resnet_edge import bundle as bundles
from resnet_edge.cli import main
from resnet_edge.core.errors import UsageError
from resnet_edge.pipelines.compile import CompileOptions, compile_bundle
from resnet_edge.pipelines.export_config import ExportOptions, choose_scale, deepstream_config, export_config, triton_entry

PROTO = Path(__file__).resolve().parents[1] / "fixtures" / "triton" / "model_config.proto"


@pytest.fixture(scope="module")
def model_config_class(tmp_path_factory):
    """``inference.ModelConfig`` built from the vendored proto by grpcio-tools' protoc."""
    protoc = pytest.importorskip("grpc_tools.protoc")
    from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

    out = tmp_path_factory.mktemp("proto") / "model_config.desc"
    code = protoc.main(["protoc", f"-I{PROTO.parent}", f"--descriptor_set_out={out}", PROTO.name])
    assert code == 0, "protoc could not compile model_config.proto"
    files = descriptor_pb2.FileDescriptorSet.FromString(out.read_bytes())
    pool = descriptor_pool.DescriptorPool()
    for proto in files.file:
        pool.Add(proto)
    return message_factory.GetMessageClass(pool.FindMessageTypeByName("inference.ModelConfig"))


def parse(model_config_class, text: str):
    from google.protobuf import text_format

    return text_format.Parse(text, model_config_class())


@pytest.fixture(scope="module")
def ort_bundle(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("export") / "r20-fp32"
    compile_bundle(CompileOptions(arch="resnet20", random_weights=True, precision="fp32", backend="onnxruntime", out=out))
    return out


def fake_manifest(backend: str, batch=(1, 8, 32), precision="fp16", **extra) -> dict:
    """A manifest as compile writes it, for backends this host cannot build."""
    low, opt, high = batch
    artifacts = {"onnxruntime": {"model": "model.onnx"}, "torchscript": {"model": "model.pt"},
                 "tensorrt": {"model": "model.ts", "engine": "model.engine"}, "openvino": {"model": "model.xml", "weights": "model.bin"}}[backend]
    manifest = {
        "arch": "resnet50", "num_classes": 3, "classes": ["cat", "dog", "fox"], "precision": precision, "backend": backend,
        "target": "datacenter" if backend == "tensorrt" else "cpu", "artifacts": artifacts,
        "preprocessing": {"name": "imagenet", "resize": 256, "crop": 224, "mean": [0.485, 0.456, 0.406],
                          "std": [0.229, 0.224, 0.225], "interpolation": "bilinear", "channel_order": "RGB", "layout": "NCHW"},
        "input": {"name": "input", "dtype": "float32", "shape": [opt, 3, 224, 224], "batch": {"min": low, "opt": opt, "max": high}},
        "output": {"name": "logits", "dtype": "float32", "shape": [opt, 3]},
        "requires": {"device": "cuda" if backend == "tensorrt" else "any"},
        "build_host": {"versions": {"tensorrt": "10.9.0"}},
    }
    if backend == "tensorrt":
        manifest["tensorrt"] = {"engine_io": {"input": "x", "output": "output0", "input_dtype": "float16", "output_dtype": "float16",
                                              "batch": {"min": low, "max": high}}}
    manifest.update(extra)
    return manifest


def test_onnxruntime_bundle_makes_a_triton_entry(ort_bundle, tmp_path, model_config_class):
    result = export_config(ExportOptions(bundle=ort_bundle, triton=tmp_path / "repo", name="r20"))
    entry = tmp_path / "repo" / "r20"
    assert (entry / "1" / "model.onnx").read_bytes() == (ort_bundle / "model.onnx").read_bytes()
    assert (entry / "labels.txt").read_text() == (ort_bundle / "labels.txt").read_text()
    config = parse(model_config_class, (entry / "config.pbtxt").read_text())
    manifest = bundles.read_manifest(ort_bundle)
    batch = manifest["input"]["batch"]
    assert config.platform == "onnxruntime_onnx" and config.name == "r20"
    assert config.max_batch_size == batch["max"]
    assert config.HasField("dynamic_batching") == (batch["max"] > 1)
    (tensor_in,), (tensor_out,) = config.input, config.output
    assert tensor_in.name == manifest["input"]["name"] and list(tensor_in.dims) == manifest["input"]["shape"][1:]
    assert tensor_out.name == manifest["output"]["name"] and list(tensor_out.dims) == [manifest["num_classes"]]
    assert tensor_in.data_type == model_config_class.DESCRIPTOR.fields_by_name["input"].message_type.fields_by_name[
        "data_type"].enum_type.values_by_name["TYPE_FP32"].number
    assert tensor_out.label_filename == "labels.txt"
    assert config.instance_group[0].count == 1
    assert any(c.startswith("tritonserver --model-repository=") for c in result.triton.commands)
    assert any(c.startswith("perf_analyzer -m r20") for c in result.triton.commands)
    assert not [p for p in (tmp_path / "repo").iterdir() if p.name.startswith(".")]  # staging removed


@pytest.mark.parametrize("backend,platform,files", [
    ("tensorrt", "tensorrt_plan", {"1/model.plan"}),
    ("torchscript", "pytorch_libtorch", {"1/model.pt"}),
    ("openvino", None, {"1/model.xml", "1/model.bin"}),
])
def test_every_backend_maps_to_its_triton_platform(backend, platform, files, model_config_class):
    entry = triton_entry(fake_manifest(backend), "m")
    config = parse(model_config_class, entry.text)
    assert (config.platform or None) == platform
    assert config.backend == ("openvino" if backend == "openvino" else "")
    assert set(entry.files) == files | {"labels.txt"}
    assert config.max_batch_size == 32 and list(config.dynamic_batching.preferred_batch_size) == [8, 32]
    if backend == "tensorrt":  # the raw engine's own binding names and dtypes
        assert config.input[0].name == "x" and config.output[0].name == "output0"
        fp16 = model_config_class.DESCRIPTOR.fields_by_name["input"].message_type.fields_by_name["data_type"].enum_type.values_by_name["TYPE_FP16"].number
        assert config.input[0].data_type == fp16
        assert config.instance_group[0].kind == 1  # KIND_GPU
    if backend == "torchscript":
        assert config.input[0].name == "input__0" and config.output[0].name == "logits__0"


@pytest.mark.parametrize("batch,dims", [((8, 8, 8), [8, 3, 224, 224]), ((4, 8, 16), [-1, 3, 224, 224])])
def test_batches_the_artifact_cannot_start_at_one_turn_triton_batching_off(batch, dims, model_config_class):
    config = parse(model_config_class, triton_entry(fake_manifest("onnxruntime", batch=batch), "m").text)
    assert config.max_batch_size == 0 and not config.HasField("dynamic_batching")
    assert list(config.input[0].dims) == dims and list(config.output[0].dims) == [dims[0], 3]


def test_static_batch_one_has_no_dynamic_batching(model_config_class):
    config = parse(model_config_class, triton_entry(fake_manifest("onnxruntime", batch=(1, 1, 1)), "m").text)
    assert config.max_batch_size == 1 and not config.HasField("dynamic_batching")


def test_minimax_scale_equalises_the_extreme_channels():
    choice = choose_scale([0.485, 0.456, 0.406], [0.229, 0.224, 0.225])
    errors = [choice.scale / k - 1 for k in choice.exact]
    assert max(errors) == pytest.approx(-min(errors))  # equal and opposite at the extremes
    assert choice.max_rel_error == pytest.approx((0.229 - 0.224) / (0.229 + 0.224))
    for other in (choice.scale * 0.999, choice.scale * 1.001):  # any other scale is worse in the worst channel
        assert max(abs(other / k - 1) for k in choice.exact) > choice.max_rel_error
    squares = choose_scale([0.5] * 3, [0.229, 0.224, 0.225], rule="least-squares")
    assert squares.mean_rel_error <= choice.mean_rel_error + 1e-12
    assert choice.offsets == pytest.approx((0.485 * 255, 0.456 * 255, 0.406 * 255))


def read_nvinfer(path: Path) -> configparser.ConfigParser:
    parser = configparser.ConfigParser(interpolation=None)
    parser.read_string(path.read_text())
    return parser


def test_deepstream_config_for_an_onnx_bundle(ort_bundle, tmp_path):
    result = export_config(ExportOptions(bundle=ort_bundle, deepstream=tmp_path / "ds"))
    manifest = bundles.read_manifest(ort_bundle)
    prop = read_nvinfer(result.written["deepstream"])["property"]
    assert prop["onnx-file"] == "model.onnx" and (tmp_path / "ds" / "model.onnx").is_file()
    assert prop["network-type"] == "1" and prop["network-mode"] == "0" and prop["model-color-format"] == "0"
    assert prop["infer-dims"] == ";".join(map(str, manifest["input"]["shape"][1:]))
    assert int(prop["batch-size"]) == manifest["input"]["batch"]["opt"]
    pre = manifest["preprocessing"]
    assert float(prop["net-scale-factor"]) == pytest.approx(choose_scale(pre["mean"], pre["std"]).scale, rel=1e-8)
    assert [float(v) for v in prop["offsets"].split(";")] == pytest.approx([255 * m for m in pre["mean"]], rel=1e-5)
    labels = (tmp_path / "ds" / prop["labelfile-path"]).read_text().splitlines()
    assert labels == [";".join(manifest["classes"])]  # one line, ';'-separated, for a classifier
    assert "int8-calib-file" not in prop


def test_deepstream_modes_and_refusals():
    assert deepstream_config(fake_manifest("tensorrt", precision="fp16")).properties["network-mode"] == 2
    assert deepstream_config(fake_manifest("tensorrt", precision="fp16")).properties["model-engine-file"] == "model.engine"
    int8 = deepstream_config(fake_manifest("onnxruntime", precision="int8", quantization={"placement": "tensorrt"}))
    assert int8.properties["network-mode"] == 1 and "int8-calib-file" not in int8.properties
    with pytest.raises(UsageError, match="CPU Q/DQ"):
        deepstream_config(fake_manifest("onnxruntime", precision="int8", quantization={"placement": "onnxruntime-cpu"}))
    with pytest.raises(UsageError, match="TensorRT engines or ONNX"):
        deepstream_config(fake_manifest("torchscript"))


def test_cli_measures_nvinfer_preprocessing_and_refuses_to_overwrite(ort_bundle, tmp_path):
    args = ["export-config", str(ort_bundle), "--deepstream", str(tmp_path / "ds"), "--triton", str(tmp_path / "repo"),
            "--data", "shapes:64", "--images", "8"]
    result = CliRunner().invoke(main, args, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    for variant in ("exact", "nvinfer-scale", "nvinfer"):
        assert variant in result.output
    assert "net-scale-factor" in result.output and "tritonserver" in result.output
    again = CliRunner().invoke(main, args)
    assert again.exit_code == 2 and "--force" in again.output
