"""``doctor``: this host, and environments recorded on a Jetson and on GPU hosts (tests/fixtures/doctor/)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from resnet_edge.cli import main
from resnet_edge.pipelines.doctor import BROKEN, OK, collect_facts, diagnose, support_matrix

DATA = Path(__file__).resolve().parents[1] / "fixtures"
COMPONENTS = {"Python", "torch", "torchvision", "CUDA (torch)", "cuDNN", "torch-tensorrt", "TensorRT", "onnxruntime", "openvino",
              "modelopt", "onnx", "fused ops", "C++: cmake", "C++: opencv", "C++: nlohmann_json"}


def recorded(name: str) -> dict:
    return json.loads((DATA / "doctor" / f"{name}.json").read_text())


def status(diagnosis, component: str) -> str:
    return next(row.status for row in diagnosis.rows if row.component == component)


def test_this_host_is_checked_and_the_exit_code_follows_the_verdict():
    facts = collect_facts()
    diagnosis = diagnose(facts)
    assert {row.component for row in diagnosis.rows} >= COMPONENTS
    assert diagnosis.device in ("cpu", "datacenter", "jetson") and diagnosis.install
    result = CliRunner().invoke(main, ["doctor"])
    assert result.exit_code == (1 if diagnosis.broken else 0), result.output
    assert "install for" in result.output and "torchvision" in result.output


def test_a_good_jetson_orin_nano():
    diagnosis = diagnose(recorded("jetson-orin-nano-jp62"))
    assert diagnosis.device == "jetson" and "Orin Nano" in diagnosis.device_text
    assert not diagnosis.broken
    assert status(diagnosis, "JetPack/L4T") == OK and status(diagnosis, "TensorRT") == OK
    assert any("JetPack 6.2" in line and "TensorRT 10.3" in line for line in diagnosis.install)


def test_pypi_torch_on_a_jetson_is_broken():
    diagnosis = diagnose(recorded("jetson-orin-pypi-torch"))
    assert diagnosis.device == "jetson"
    assert {row.component for row in diagnosis.broken} == {"CUDA (torch)", "TensorRT"}
    assert any("Jetson wheels" in line for line in diagnosis.install)


def test_a_good_gpu_host_and_a_mismatched_one(tmp_path):
    good = diagnose(recorded("datacenter-h100"))
    assert good.device == "datacenter" and not good.broken
    assert any("torch-tensorrt==2.14.0" in line and "tensorrt-cu13" in line for line in good.install)
    bad = diagnose(recorded("datacenter-mismatched-torch-tensorrt"))
    assert {row.component for row in bad.broken} == {"torchvision", "torch-tensorrt"}
    result = CliRunner().invoke(main, ["doctor", "--facts", DATA / "doctor" / "datacenter-mismatched-torch-tensorrt.json"])
    assert result.exit_code == 1 and "error: broken: torchvision, torch-tensorrt" in result.output


def test_jetpack_5_is_refused_with_the_upgrade_to_make():
    facts = {**recorded("jetson-orin-nano-jp62"), "l4t": "35.4.1"}
    facts["versions"] = {**facts["versions"], "cuda": "11.4", "tensorrt": "8.5.2"}
    diagnosis = diagnose(facts)
    assert status(diagnosis, "JetPack/L4T") == BROKEN


def test_jetson_facts_are_read_from_a_recorded_tree():
    facts = collect_facts(DATA / "jetson-orin-nano")
    assert facts["l4t"] == "36.4.3" and facts["device_model"].startswith("NVIDIA Jetson Orin Nano")
    assert diagnose(facts).device == "jetson"


def test_record_writes_facts_doctor_can_read_back(tmp_path):
    record = tmp_path / "facts.json"
    first = CliRunner().invoke(main, ["doctor", "--record", record])
    again = CliRunner().invoke(main, ["doctor", "--facts", record])
    assert first.exit_code == again.exit_code and first.output == again.output


def test_the_matrix_is_package_data():
    matrix = support_matrix()
    assert matrix["schema"] == "resnet-edge-support-matrix" and "36.4" in matrix["jetpack"]
    pyproject = (Path(__file__).resolve().parents[2] / "pyproject.toml").read_text()
    assert '"resnet_edge.core" = ["support_matrix.json"]' in pyproject
