"""``--backend auto`` on a CPU target: every CPU runtime builds, the (injected) timer decides, and the
choice with every candidate's p50 is recorded. A fake timer makes the choice deterministic."""

import pytest

from resnet_edge.backends import BatchSpec, BuildConfig, backend_availability, get_backend
from resnet_edge.core.errors import UsageError
from resnet_edge.models import create_model
from resnet_edge.backends.auto import AutoBackend, auto_cpu_backend, cpu_candidates
from resnet_edge.pipelines.bundling import CompileOptions, plan_build

CPU_RUNTIMES = [name for name in ("onnxruntime", "openvino") if backend_availability(name)[0]]
needs_two = pytest.mark.skipif(len(CPU_RUNTIMES) < 2, reason="needs onnxruntime and openvino installed")


def config(precision="fp32"):
    return BuildConfig(arch="resnet20", precision=precision, target="cpu", input_shape=(3, 32, 32), batch=BatchSpec(1, 2, 4))


def fake_timer(p50):
    calls = []

    def timer(predictors, batch):
        calls.append((list(predictors), tuple(batch.shape)))
        for predictor in predictors.values():  # each candidate really runs the opt batch
            assert predictor(batch).shape == (batch.shape[0], 10)
        return {name: p50[name] for name in predictors}

    timer.calls = calls
    return timer


def test_candidates_are_the_installed_cpu_runtimes_that_accept_the_config():
    names = [b.name for b in cpu_candidates(config("int8"))[0]]
    assert names == CPU_RUNTIMES  # torchscript refuses int8; tensorrt has no CPU target
    candidates, skipped = cpu_candidates(config("fp32"))
    assert {"onnxruntime", "torchscript"} <= {b.name for b in candidates}
    assert "tensorrt" in skipped


@needs_two
def test_the_fastest_candidate_wins_and_every_p50_is_recorded(tmp_path):
    backends = [get_backend(name) for name in CPU_RUNTIMES]
    timer = fake_timer({"onnxruntime": 2.0, "openvino": 1.0})
    auto = AutoBackend(backends, {"tensorrt": "no GPU"}, timer)
    result = auto.build(create_model("resnet20").eval(), config(), tmp_path)
    assert timer.calls == [(CPU_RUNTIMES, (2, 3, 32, 32))]  # timed once, together, at the opt batch
    assert auto.name == "openvino" and auto.chosen is get_backend("openvino")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.bin", "model.xml"]  # only the winner's files
    choice = result.manifest["backend_choice"]
    assert choice["chosen"] == "openvino" and choice["batch"] == 2 and choice["skipped"] == {"tensorrt": "no GPU"}
    assert choice["candidates"] == {"openvino": {"p50_ms": 1.0}, "onnxruntime": {"p50_ms": 2.0}}
    assert "2.00x faster than onnxruntime" in choice["reason"]


@needs_two
def test_compile_auto_on_cpu_plans_a_measured_choice_and_backend_name_forces_one(tmp_path):
    plan = plan_build(CompileOptions(arch="resnet20", random_weights=True, precision="int8", calib_data="shapes", target="cpu",
                                     out=tmp_path / "a"))
    assert isinstance(plan.backend, AutoBackend) and [b.name for b in plan.backend.candidates] == CPU_RUNTIMES
    forced = plan_build(CompileOptions(arch="resnet20", random_weights=True, precision="int8", calib_data="shapes",
                                       backend="onnxruntime", out=tmp_path / "b"))
    assert forced.backend is get_backend("onnxruntime")


def test_no_candidate_is_a_usage_error():
    with pytest.raises(UsageError, match="no installed CPU runtime builds int8"):
        auto_cpu_backend(BuildConfig(arch="resnet20", precision="int8", target="cpu", input_shape=(3, 32, 32), fused=True))


def test_a_cpu_target_is_measured_without_choosing_a_gpu_backend_first(monkeypatch):
    import resnet_edge.backends.auto as auto

    asked, before_measuring = [], []
    real = auto.backend_availability
    monkeypatch.setattr(auto, "backend_availability", lambda name: asked.append(name) or real(name))

    def cpu_config():
        before_measuring.extend(asked)
        return config("int8")

    resolution = auto.resolve_backend("auto", "cpu", cpu_config)
    assert resolution.measured_cpu and before_measuring == []  # no backend is looked at, let alone picked, first
    assert resolution.backend.name in ("auto", *CPU_RUNTIMES)
