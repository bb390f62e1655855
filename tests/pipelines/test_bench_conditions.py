"""bench's run conditions: the sysfs parsers on hand-written Jetson trees (tests/fixtures/jetson-*), this host,
the warnings, and the report/table hook."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from resnet_edge import bundle as bundles
from resnet_edge.core.errors import UsageError
from resnet_edge.pipelines.bench import BenchOptions, run_bench
from resnet_edge.pipelines.bench.conditions import (
    coefficient_of_variation,
    condition_warnings,
    cpu_conditions,
    emc_clocks,
    finish_conditions,
    gpu_clocks,
    jetson_conditions,
    nvpmodel,
    read_conditions,
    temperatures,
    throttle_flags,
)
from resnet_edge.pipelines.bench.energy import PowerSampler, ina3221_rails, total_watts
from resnet_edge.pipelines.bench.scenarios import ScenarioOptions, check_scenario, offline_batches, run_scenario, scenario_bench
from resnet_edge.pipelines.compile import CompileOptions, compile_bundle
from resnet_edge.reports.bench import describe_conditions

DATA = Path(__file__).resolve().parents[1] / "fixtures"
UNLOCKED, LOCKED = DATA / "jetson-orin-nano", DATA / "jetson-orin-nano-locked"


def test_orin_nano_without_jetson_clocks():
    cpu = cpu_conditions(UNLOCKED)
    assert cpu["cpus_with_cpufreq"] == 6 and cpu["governor"] == "schedutil" and not cpu["locked"]
    assert cpu["cur_khz"] == {"min": 729600, "max": 1728000} and cpu["max_khz"] == 1728000
    assert cpu["model"] == "ARMv8 Processor rev 1 (v8l)"
    assert nvpmodel(UNLOCKED) == {"id": 0, "name": "15W"}
    assert gpu_clocks(UNLOCKED) == {"cur_hz": 306000000, "min_hz": 306000000, "max_hz": 1020000000, "governor": "nvhost_podgov", "locked": False}
    assert emc_clocks(UNLOCKED) == {"rate_hz": 2133000000, "max_hz": 3199000000, "locked": False}
    temps = temperatures(UNLOCKED)
    assert temps["cpu-thermal"] == 48.6 and "tboard-thermal" not in temps  # -256 C: an unconnected zone
    assert throttle_flags(UNLOCKED) == {}
    jetson = jetson_conditions(UNLOCKED)
    assert jetson["l4t"] == "36.4.3" and jetson["jetson_clocks"] is False and "Orin Nano" in jetson["model"]


def test_orin_nano_locked_hot_and_throttling():
    jetson = jetson_conditions(LOCKED)
    assert jetson["nvpmodel"] == {"id": 2, "name": "MAXN_SUPER"}
    assert jetson["jetson_clocks"] is True and jetson["gpu"]["cur_hz"] == 1020000000 and jetson["emc"]["locked"]
    assert jetson["throttle"] == {"oc1": 7, "gpu-throttle": 1}
    assert jetson["temperatures_c"]["tj-thermal"] == 78.6


def conditions_at(root: Path) -> dict:
    conditions = read_conditions(root)
    return finish_conditions(conditions, root)


def test_warnings_name_unlocked_clocks_throttling_and_noisy_points():
    results = [{"variant": "onnxruntime-fp32", "batch": 1, "cv": 0.25}, {"variant": "pytorch-fp32", "batch": 1, "cv": 0.02}]
    unlocked = condition_warnings(conditions_at(UNLOCKED), results)
    assert any("not locked" in w and "15W" in w and "jetson_clocks" in w for w in unlocked)
    assert any("onnxruntime-fp32 at batch 1" in w and "25 %" in w for w in unlocked)
    assert not any("pytorch-fp32" in w for w in unlocked)
    locked = condition_warnings(conditions_at(LOCKED), [])
    assert not any("not locked" in w for w in locked) and any("throttled" in w and "oc1" in w for w in locked)
    lines = describe_conditions(conditions_at(LOCKED))
    assert any("nvpmodel 2 (MAXN_SUPER)" in line and "jetson_clocks on" in line and "GPU 1020 MHz" in line for line in lines)


def test_coefficient_of_variation():
    assert coefficient_of_variation([1.0]) is None
    assert coefficient_of_variation([2.0, 2.0, 2.0]) == 0.0
    assert coefficient_of_variation([1.0, 3.0]) == pytest.approx(2**0.5 / 2, abs=1e-4)


def test_this_host_and_the_report(tmp_path):
    conditions = read_conditions()
    assert conditions["threads"] >= 1 and conditions["cpu"]["model"]
    assert conditions["load_before"] is None or len(conditions["load_before"]) == 3
    out = tmp_path / "r20"
    compile_bundle(CompileOptions(arch="resnet20", random_weights=True, precision="fp32", backend="onnxruntime", out=out))
    report = run_bench(BenchOptions(bundle=out, batch_sizes=(1,), warmup=1, iters=3, rounds=1, memory=False, runtimes=False)).report
    assert set(report["conditions"]) >= {"cpu", "load_before", "load_after", "threads", "jetson"}
    assert report["conditions"]["load_after"] is None or len(report["conditions"]["load_after"]) == 3
    assert all("cv" in entry for entry in report["results"]) and isinstance(report["warnings"], list)
    assert describe_conditions(report["conditions"])[0].startswith("conditions: ")


# ------------------------------------------------------------------------------------- scenarios and energy


@pytest.fixture(scope="module")
def scenario_bundle(tmp_path_factory):
    out = tmp_path_factory.mktemp("scenario") / "r20"
    compile_bundle(CompileOptions(arch="resnet20", random_weights=True, precision="fp32", backend="onnxruntime", out=out))
    return out


def test_ina3221_rails_from_a_recorded_orin():
    rails = ina3221_rails(UNLOCKED)
    assert rails == pytest.approx({"VDD_IN": 5.072 * 0.89, "VDD_CPU_GPU_CV": 5.064 * 0.24, "VDD_SOC": 5.072 * 0.35})
    assert total_watts(rails) == pytest.approx(5.072 * 0.89)  # the module input, not the sum
    assert ina3221_rails(DATA / "doctor") == {} and total_watts({}) is None
    with PowerSampler(LOCKED, interval_s=0.01) as power:
        time.sleep(0.05)
    assert power.mean_watts == pytest.approx(5.072 * 1.4) and power.joules > 0


def test_scenarios_quick(scenario_bundle):
    loaded = bundles.load(scenario_bundle)
    single = run_scenario(loaded, ScenarioOptions("single-stream", quick=True))
    assert single["queries"] >= 64 and single["seconds"] >= 2.0 and single["scaled_down"] and not single["valid"]
    assert single["p50_ms"] <= single["p90_ms"] <= single["p99_ms"]
    offline = run_scenario(loaded, ScenarioOptions("offline", quick=True))
    assert offline["best_batch"] in offline_batches(loaded)
    assert offline["throughput"] == max(offline["throughput_by_batch"].values())
    server = run_scenario(loaded, ScenarioOptions("server", quick=True, target_qps=20, latency_bound_ms=10_000, energy=True))
    assert server["queries"] >= 64 and server["bound_held"] is True
    assert server["energy"]["joules"] is None and "INA3221" in server["energy"]["note"]
    tight = run_scenario(loaded, ScenarioOptions("server", quick=True, target_qps=20, latency_bound_ms=1e-6))
    assert tight["bound_held"] is False


def test_scenario_usage_errors_and_report(scenario_bundle, tmp_path):
    with pytest.raises(UsageError, match="target-qps"):
        check_scenario(ScenarioOptions("server"))
    report = scenario_bench(scenario_bundle, "cpu", ScenarioOptions("single-stream", quick=True), report_path=tmp_path / "s.json")
    assert (tmp_path / "s.json").is_file() and report["scenario"]["scenario"] == "single-stream" and "conditions" in report
