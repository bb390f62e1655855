"""Rendering a validate report (``resnet_edge.pipelines.validate``): the table the CLI prints, the
one-line failure message, and the checks as JUnit XML for CI systems."""

from __future__ import annotations

from pathlib import Path
from xml.etree import ElementTree

from ..pipelines.validate.checks import fmt


def _verdict(status: dict, name: str) -> str:
    check = status.get(name)
    if check is None:
        return ""
    mark = {True: "ok", False: "FAIL", None: "skipped"}[check["passed"]]
    return f"   {mark:<7} ({check['op']} {check['limit']:g})"


def _metric_rows(report: dict, status: dict) -> list[str]:
    ref, cmp = report["reference"], report["compiled"]
    k = report["topk"]
    lines = [
        f"  {'top-1 (%)':<30}{fmt(ref['top1'], '.2f'):>12}{fmt(cmp['top1'], '.2f'):>12}",
        f"  {f'top-{k} (%)':<30}{fmt(ref['top5'], '.2f'):>12}{fmt(cmp['top5'], '.2f'):>12}",
        f"  {'top-1 drop (points)':<30}{'':>12}{fmt(report['top1_drop'], '.2f'):>12}{_verdict(status, 'top1_drop')}",
        f"  {'top-1 agreement':<30}{'':>12}{fmt(report['agreement'], '.4f'):>12}{_verdict(status, 'agreement')}",
        f"  {'logit |error| mean':<30}{'':>12}{fmt(report['logit_mean_abs_err'], '.4g'):>12}",
        f"  {'logit |error| max':<30}{'':>12}{fmt(report['logit_max_abs_err'], '.4g'):>12}",
        f"  {'cosine similarity mean (min)':<30}{'':>12}{fmt(report['cosine'], '.5f'):>12}   ({fmt(report['cosine_min'], '.5f')})",
        f"  {'KL(ref || compiled) mean (max)':<30}{'':>12}{fmt(report['kl'], '.3g'):>12}   ({fmt(report['kl_max'], '.3g')} nats)",
        f"  {'non-finite outputs (images)':<30}{'':>12}{report['nonfinite_images']:>12}{_verdict(status, 'finite_outputs')}",
    ]
    for name, label in (("baseline_top1", "top-1 vs baseline (%)"), ("baseline_agreement", "agreement vs baseline")):
        if name in status:
            check = status[name]
            value = fmt(check["value"], ".2f" if name == "baseline_top1" else ".4f")
            lines.append(f"  {label:<30}{'':>12}{value:>12}{_verdict(status, name)}")
    return lines


def format_table(report: dict) -> str:
    """The report as a human-readable table (what the CLI prints)."""
    bundle = report["bundle"]
    lines = [
        f"validate {bundle['path']}",
        f"  {bundle['arch']} {bundle['precision']} {bundle['backend']} (target {bundle['target']}) vs FP32 reference "
        f"({report['reference']['source']}), {report['num_images']} images of {report['data']['spec']} ({report['data']['split']})",
        "",
        f"  {'metric':<30}{'FP32 ref':>12}{'compiled':>12}   check",
    ]
    lines += _metric_rows(report, {check["name"]: check for check in report["checks"]})
    if report["largest_class_drops"]:
        worst = ", ".join(
            f"{row['class']} {row['reference_top1']:.1f}->{row['compiled_top1']:.1f}% ({row['images']} img)" for row in report["largest_class_drops"]
        )
        lines.append(f"  largest class drops: {worst}")
    elif report["data"]["labelled"]:
        lines.append("  largest class drops: none (no class lost accuracy)")
    baseline = report.get("baseline")
    if baseline and baseline.get("updated"):
        lines.append(f"  baseline written: {baseline['path']}")
    lines.append("")
    if report["passed"]:
        held = sum(1 for check in report["checks"] if check["passed"])
        skipped = len(report["checks"]) - held
        lines.append(f"PASSED: {held} checks held" + (f", {skipped} not measurable" if skipped else "") + f" ({report['seconds']:.1f} s)")
    else:
        lines.append("FAILED: " + "; ".join(check["message"] for check in report["checks"] if check["passed"] is False))
    return "\n".join(lines)


def failure_message(report: dict) -> str:
    """One line for the CLI's exit-code-1 error."""
    return "validation failed: " + "; ".join(check["message"] for check in report["checks"] if check["passed"] is False)


def junit_xml(report: dict) -> str:
    """The checks as a JUnit XML test suite (one test case per check), for CI systems."""
    name = Path(report["bundle"]["path"]).name
    checks = report["checks"]
    failures = sum(1 for check in checks if check["passed"] is False)
    skipped = sum(1 for check in checks if check["passed"] is None)
    suites = ElementTree.Element("testsuites", name="resnet-edge validate", tests=str(len(checks)), failures=str(failures))
    suite = ElementTree.SubElement(
        suites, "testsuite", name=f"resnet-edge validate {name}", tests=str(len(checks)), failures=str(failures),
        errors="0", skipped=str(skipped), time=f"{report.get('seconds', 0):.3f}", timestamp=report["created"],
    )
    properties = ElementTree.SubElement(suite, "properties")
    for key, value in (
        ("bundle", report["bundle"]["path"]), ("data", report["data"]["spec"]), ("num_images", report["num_images"]),
        ("reference_top1", report["reference"]["top1"]), ("compiled_top1", report["compiled"]["top1"]),
        ("agreement", report["agreement"]),
    ):
        ElementTree.SubElement(properties, "property", name=key, value="" if value is None else str(value))
    for check in checks:
        # classname keeps the pre-redesign module path: CI dashboards group test cases by it.
        case = ElementTree.SubElement(suite, "testcase", classname=f"resnet_edge.validate.{name}", name=check["name"], time="0")
        if check["passed"] is False:
            failure = ElementTree.SubElement(case, "failure", message=check["message"], type="threshold")
            failure.text = f"{check['name']} = {check['value']} (must be {check['op']} {check['limit']})"
        elif check["passed"] is None:
            ElementTree.SubElement(case, "skipped", message=check["message"])
    ElementTree.indent(suites)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ElementTree.tostring(suites, encoding="unicode") + "\n"
