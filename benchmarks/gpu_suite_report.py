"""figures.json and summary.txt of one benchmarks/gpu_suite.sh run (called by the suite; stdlib only).

    python benchmarks/gpu_suite_report.py --mode gpu --work WORK --out OUT --elapsed SECONDS [--failed STEP]

Reads WORK/logs/steps.tsv-style status (WORK/steps.tsv), WORK/reports/* (preflight, the pytest JUnit XML,
fused_ops_gpu*.json, validate and bench reports) and the memcheck logs; writes OUT/figures.json (every
figure, machine and versions, each step's outcome) and OUT/summary.txt (the same, short, with the issue's
targets marked met / MISSED / not measured).
"""

from __future__ import annotations

import argparse
import json
import re
import xml.etree.ElementTree as ET
from pathlib import Path

# Issues 17's and 21's targets (ResNet-50 rows), as (key, description, limit).
TARGETS = (
    ("fused_fp16_b1_vs_eager", "fused FP16 >= 1.2x eager FP16 channels_last at batch 1", 1.2),
    ("fused_fp16_b32_vs_eager", "fused FP16 >= 1.0x eager FP16 channels_last at batch 32", 1.0),
    ("fused_fp16_max_abs_diff", "fused FP16 within 1e-2 of eager FP16 (max |logit diff|)", 1e-2),
    ("memcheck_errors", "no compute-sanitizer memcheck error", 0),
    ("graph_fp16_b1_vs_compile", "fused+graph FP16 >= 1.15x torch.compile+graph at batch 1 (issue 21)", 1.15),
    ("graph_fp16_b32_vs_compile", "fused+graph FP16 >= 1.15x torch.compile+graph at batch 32 (issue 21)", 1.15),
    ("graph_fp32_b32_vs_compile", "fused+graph FP32 >= 1.0x torch.compile+graph at batch 32 (issue 21)", 1.0),
)
LOWER_IS_BETTER = ("fused_fp16_max_abs_diff", "memcheck_errors")


def read_steps(work: Path) -> list[dict]:
    steps = []
    path = work / "steps.tsv"
    for line in path.read_text().splitlines() if path.exists() else []:
        name, status, seconds, rc, note = (line.split("\t") + [""] * 5)[:5]
        steps.append({"name": name, "status": status, "seconds": int(seconds or 0), "rc": rc, "note": note})
    return steps


def read_json(path: Path):
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def pytest_counts(path: Path) -> dict | None:
    """tests, failures, errors, skipped from a JUnit XML file; skip reasons and failed test ids."""
    if not path.exists():
        return None
    root = ET.parse(path).getroot()
    suite = root if root.tag == "testsuite" else root.find("testsuite")
    counts = {key: int(suite.get(key, 0)) for key in ("tests", "failures", "errors", "skipped")}
    counts["passed"] = counts["tests"] - counts["failures"] - counts["errors"] - counts["skipped"]
    counts["failed_ids"] = [f"{case.get('classname')}::{case.get('name')}" for case in suite.iter("testcase")
                            if case.find("failure") is not None or case.find("error") is not None]
    counts["skip_reasons"] = sorted({(case.find("skipped").get("message") or "")[:160] for case in suite.iter("testcase")
                                     if case.find("skipped") is not None})
    return counts


def collected(logs: Path) -> dict:
    """Per pytest log: the number of tests pytest selected ("46/485 tests collected"), for --collect-only runs."""
    result = {}
    for log in sorted(logs.glob("*.log")):
        match = re.search(r"^(\d+)(?:/\d+)? tests? collected", log.read_text(errors="replace"), re.MULTILINE)
        if match:
            result[log.stem] = int(match.group(1))
    return result


def memcheck_summary(logs: Path) -> dict:
    """Per memcheck log: the sanitizer's ERROR SUMMARY count, or why there is none."""
    result = {}
    for log in sorted(logs.glob("memcheck_*.log")):
        text = log.read_text(errors="replace")
        match = re.findall(r"ERROR SUMMARY: (\d+) error", text)
        if match:
            result[log.stem] = {"errors": int(match[-1])}
        elif "Device not supported" in text:
            result[log.stem] = {"errors": None, "why": "compute-sanitizer: device not supported (gVisor runtime?)"}
        elif "memcheck case" in text or "collected" in text or "tests collected" in text:
            result[log.stem] = {"errors": None, "why": "ran without compute-sanitizer (dry run)"}
        else:
            result[log.stem] = {"errors": None, "why": "no ERROR SUMMARY line (see the log)"}
    return result


def fused_targets(fused: dict | None) -> dict:
    """The figures the targets read off fused_ops_gpu.json's ResNet-50 rows (None where not measured)."""
    out = {key: None for key, _, _ in TARGETS if key != "memcheck_errors"}
    for row in (fused or {}).get("rows", []):
        if row.get("arch", "resnet50") != "resnet50":
            continue
        out[f"graph_{row['dtype']}_b{row['batch']}_vs_compile"] = row.get("fused_graph_vs_compile_graph")
        if row["dtype"] != "fp16":
            continue
        if row["batch"] == 1:
            out["fused_fp16_b1_vs_eager"] = row["fused_vs_eager"]
        if row["batch"] == 32:
            out["fused_fp16_b32_vs_eager"] = row["fused_vs_eager"]
        diff = row["vs_eager_same_dtype"]["fused"]["max_abs"]
        out["fused_fp16_max_abs_diff"] = max(diff, out["fused_fp16_max_abs_diff"] or 0.0)
    return {key: out.get(key) for key, _, _ in TARGETS if key != "memcheck_errors"}


def judge(key: str, value, limit) -> str:
    if value is None:
        return "not measured"
    ok = value <= limit if key in LOWER_IS_BETTER else value >= limit
    return "met" if ok else "MISSED"


def fused_rows(benchmarks: list[dict]) -> list[dict]:
    """Every row of every fused_ops_gpu*.json, in the order the suite wrote them."""
    return [row for benchmark in benchmarks for row in benchmark.get("rows", [])]


def fused_lines(benchmarks: list[dict]) -> list[str]:
    """The summary's fused-op benchmark section: latencies, ratios and the CUDA routes against torch.compile."""
    lines = []
    for fused in benchmarks:
        lines.append(f"fused-op benchmark ({fused['host']}; fused = route {fused.get('default_route')}), median ms per call:")
        for row in fused["rows"]:
            ms = row["median_ms"]
            cells = ", ".join(f"{name} {value:.3f}" for name, value in ms.items())
            lines.append(f"  {row['arch']} {row['dtype']} b{row['batch']}: {cells}")
            lines.append(
                f"    fused vs eager {row['fused_vs_eager']:.2f}x"
                + (f", with graphs {row['fused_graph_vs_eager_graph']:.2f}x" if "fused_graph_vs_eager_graph" in row else "")
                + (f", vs compile {row['fused_vs_compile']:.2f}x" if "fused_vs_compile" in row else "")
                + (f", +graph vs compile+graph {row['fused_graph_vs_compile_graph']:.2f}x" if "fused_graph_vs_compile_graph" in row else "")
                + f"; fused max |diff| vs eager {row['vs_eager_same_dtype']['fused']['max_abs']:.2e}"
            )
            routes = row.get("routes_graph_vs_compile_graph") or {}
            if routes:
                lines.append("    other routes, +graph vs compile+graph: " + ", ".join(f"{name} {ratio:.2f}x" for name, ratio in routes.items()))
            lines += [f"    note: {note}" for note in row["notes"]]
    return lines


def bench_lines(report: dict) -> list[str]:
    lines = []
    for entry in report.get("results", []):
        speed = entry.get("speedup")
        gpu = entry.get("gpu_p50_ms")
        device = entry.get("device_ms")  # bench's device-resident latency (issue 21 item 3), where it reports one
        if entry.get("p50_ms") is None:
            continue
        lines.append(
            f"    {entry['variant']:<32} batch {entry['batch']:>3}: p50 {entry['p50_ms']:.3f} ms"
            f"{f', gpu {gpu:.3f} ms' if gpu is not None else ''}{f', device-resident {device:.3f} ms' if device is not None else ''}"
            f", {entry.get('throughput') or 0:.0f} img/s"
            f"{f', {speed:.2f}x fp32 eager' if speed else ''}"
        )
    for variant, why in (report.get("failed_variants") or {}).items():
        lines.append(f"    {variant}: not measured ({why})")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mode", required=True)
    parser.add_argument("--work", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--elapsed", type=int, required=True)
    parser.add_argument("--failed", default="")
    args = parser.parse_args()
    reports = args.work / "reports"

    steps = read_steps(args.work)
    preflight = (reports / "preflight.txt").read_text(errors="replace") if (reports / "preflight.txt").exists() else ""
    machine = read_json_block(preflight)
    benchmarks = [data for data in (read_json(path) for path in sorted(reports.glob("fused_ops_gpu*.json"))) if data]
    fused = {"rows": fused_rows(benchmarks)} if benchmarks else None
    memcheck = memcheck_summary(args.work / "logs")
    mem_counts = [entry["errors"] for entry in memcheck.values() if entry["errors"] is not None]
    figures = {
        "mode": args.mode,
        "elapsed_s": args.elapsed,
        "failed_step": args.failed or None,
        "machine": machine,
        "preflight": preflight.splitlines()[:8],
        "steps": steps,
        "pytest_cuda": pytest_counts(reports / "pytest_cuda.xml"),
        "pytest_collected": collected(args.work / "logs"),
        "memcheck": memcheck,
        "fused_ops_gpu": benchmarks,
        "validate": {p.stem: read_json(p) for p in sorted(reports.glob("validate_*.json"))},
        "bench": {p.stem: read_json(p) for p in sorted(reports.glob("bench_*.json"))},
    }
    values = {**fused_targets(fused), "memcheck_errors": sum(mem_counts) if mem_counts else None}
    figures["targets"] = [
        {"target": text, "value": values[key], "limit": limit, "verdict": judge(key, values[key], limit)}
        for key, text, limit in TARGETS
    ]
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "figures.json").write_text(json.dumps(figures, indent=1, default=str) + "\n")

    lines = [f"gpu_suite ({args.mode}): {'FAILED at ' + args.failed if args.failed else 'completed'} in {args.elapsed} s"]
    if machine:
        lines.append("machine: " + ", ".join(f"{k} {machine.get(k)}" for k in ("gpu", "torch", "torch_cuda", "cudnn", "python") if machine.get(k)))
    lines += [line for line in preflight.splitlines() if line.startswith(("commit", "NVIDIA", "Cuda compilation", "host"))][:4]
    lines.append("steps:")
    lines += [f"  {s['name']:<20} {s['status']:<12} {s['seconds']:>4} s  {s['note']}" for s in steps]
    counts = figures["pytest_cuda"]
    if counts:
        lines.append(f"pytest -m cuda: {counts['passed']} passed, {counts['failures'] + counts['errors']} failed, {counts['skipped']} skipped")
        lines += [f"  FAILED {test}" for test in counts["failed_ids"]]
        lines += [f"  skipped: {reason}" for reason in counts["skip_reasons"]]
    for name, count in figures["pytest_collected"].items():
        lines.append(f"{name}: {count} test(s) collected")
    for name, entry in memcheck.items():
        lines.append(f"{name}: {entry['errors']} error(s)" if entry["errors"] is not None else f"{name}: {entry['why']}")
    lines += fused_lines(benchmarks)
    for name, report in figures["validate"].items():
        if report:
            lines.append(
                f"{name}: passed {report.get('passed')}, top-1 {(report.get('reference') or {}).get('top1')} -> "
                f"{(report.get('compiled') or {}).get('top1')}, "
                f"agreement {report.get('agreement')}, max |logit err| {report.get('logit_max_abs_err')}"
            )
    for name, report in figures["bench"].items():
        if report:
            lines.append(f"{name}:")
            lines += bench_lines(report)
    lines.append("targets (issues 17 and 21):")
    lines += [f"  {t['verdict']:<13} {t['target']}: {t['value']}" for t in figures["targets"]]
    (args.out / "summary.txt").write_text("\n".join(lines) + "\n")


def read_json_block(text: str) -> dict:
    """The JSON object the preflight step prints (machine and versions), or {}."""
    start, end = text.find("{"), text.rfind("}")
    if start < 0 or end < start:
        return {}
    try:
        return json.loads(text[start : end + 1])
    except ValueError:
        return {}


if __name__ == "__main__":
    main()
