"""curves: two real (tiny) runs on the shapes set read back into the report and plot; the metrics
parser, the paper's ordering and the refusals on hand-made runs in the trainer's format."""

from __future__ import annotations

import json
import shutil
from functools import partial
from pathlib import Path

import pytest
import torch

from resnet_edge.core.errors import UsageError
from resnet_edge.core.logs import collect_warnings
from resnet_edge.pipelines.curves import CurvesOptions, EpochPoint, RunCurves, compare_runs, dataset_identity, ordering_checks, parse_metrics
from resnet_edge.reports.curves import check_plot_path, format_table, render_plot
from resnet_edge.train import TrainConfig, train

TINY = dict(data="shapes:96", epochs=3, batch_size=16, workers=0, seed=0)


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[str, Path]:
    """plain20 and resnet20, 3 epochs each on 96 shapes images (a few seconds on 2 cores)."""
    root = tmp_path_factory.mktemp("curves")
    for arch in ("plain20", "resnet20"):
        train(TrainConfig(arch=arch, out=str(root / arch), **TINY))
    return {arch: root / arch for arch in ("plain20", "resnet20")}


def _copy_run(run: Path, to: Path) -> Path:
    shutil.copytree(run, to)
    return to


def _metrics(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


def test_report_carries_every_epoch_of_each_run(runs, tmp_path):
    report_path, plot_path = tmp_path / "curves.json", tmp_path / "curves.png"
    options = CurvesOptions(runs=(runs["plain20"], runs["resnet20"]), report=report_path, plot=plot_path)
    result = compare_runs(options, render_plot=partial(render_plot, fmt="png"))
    report = json.loads(report_path.read_text())
    assert report["datasets"] == ["shapes:96"] and report["mixed_datasets"] is False
    assert [run["arch"] for run in report["runs"]] == ["plain20", "resnet20"]
    for run in report["runs"]:
        metrics = _metrics(runs[run["arch"]])
        assert [point["epoch"] for point in run["epochs"]] == [1, 2, 3]
        assert [point["train_error"] for point in run["epochs"]] == [round(1 - m["train_acc1"], 4) for m in metrics]
        assert [point["val_loss"] for point in run["epochs"]] == [m["val_loss"] for m in metrics]
        assert run["final_val_error"] == round(1 - metrics[-1]["val_acc1"], 4)
        assert run["best_val_error"] == round(1 - metrics[-1]["best_val_acc1"], 4)
        assert run["best_train_error"] == min(round(1 - m["train_acc1"], 4) for m in metrics)
        assert run["planned_epochs"] == 3 and run["complete"] is True and run["note"] is None
    assert report["pairs"] == []  # one plain and one residual net: no two depths of one kind
    assert plot_path.read_bytes().startswith(b"\x89PNG")
    table = format_table(result.to_dict())
    assert "plain20" in table and "nothing to order" in table


def test_svg_plot_draws_both_panels(runs, tmp_path):
    plot_path = tmp_path / "curves.svg"
    compare_runs(CurvesOptions(runs=(runs["plain20"], runs["resnet20"]), plot=plot_path), render_plot=partial(render_plot, fmt="svg"))
    svg = plot_path.read_text()
    assert svg.lstrip().startswith("<?xml") and "<svg" in svg
    for text in ("Plain networks", "Residual networks", "plain-20", "ResNet-20"):
        assert text in svg  # matplotlib writes titles and legend entries as text comments in the SVG


def test_plot_name_must_be_png_or_svg(tmp_path):
    with pytest.raises(UsageError, match=r"must end in \.png or \.svg"):
        check_plot_path(tmp_path / "curves.pdf")
    assert check_plot_path(tmp_path / "curves.SVG") == tmp_path / "curves.SVG"


def test_run_in_progress_is_read_to_its_last_complete_epoch(runs, tmp_path):
    run = _copy_run(runs["resnet20"], tmp_path / "running")
    lines = (run / "metrics.jsonl").read_text().splitlines()
    (run / "metrics.jsonl").write_text("\n".join(lines[:2]) + "\n" + lines[2][:20])  # epoch 3 half written
    with collect_warnings() as warnings:
        result = compare_runs(CurvesOptions(runs=(run,)))
    (curves,) = result.runs
    assert [point.epoch for point in curves.points] == [1, 2] and not curves.complete
    assert len(warnings) == 1 and "still in progress or was stopped" in warnings[0] and "up to epoch 2 of 3" in warnings[0]
    assert result.to_dict()["warnings"] == warnings


def _retrain_on(run: Path, data: str) -> None:
    """Rewrite the run's checkpoint as if it had been trained on ``data`` (only the recorded spec changes)."""
    payload = torch.load(run / "last.pth", weights_only=True)
    payload["data"] = payload["config"]["data"] = data
    torch.save(payload, run / "last.pth")


def test_runs_on_different_datasets_are_refused_unless_allowed(runs, tmp_path):
    other = _copy_run(runs["resnet20"], tmp_path / "other")
    _retrain_on(other, "cifar10:/data/cifar")
    with pytest.raises(UsageError, match=r"different datasets \(plain20 on shapes:96; resnet20 on cifar10:/data/cifar\).*--allow-mixed"):
        compare_runs(CurvesOptions(runs=(runs["plain20"], other)))
    result = compare_runs(CurvesOptions(runs=(runs["plain20"], other), allow_mixed=True))
    assert result.to_dict()["datasets"] == ["shapes:96", "cifar10:/data/cifar"] and result.to_dict()["mixed_datasets"]


def test_same_arch_twice_is_labelled_by_directory(runs, tmp_path):
    second = _copy_run(runs["plain20"], tmp_path / "seed1")
    result = compare_runs(CurvesOptions(runs=(runs["plain20"], second)))
    assert [run.label for run in result.runs] == ["plain20 (plain20)", "plain20 (seed1)"]
    with pytest.raises(UsageError, match="given more than once"):
        compare_runs(CurvesOptions(runs=(second, tmp_path / "seed1" / ".")))


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda run: None, r"run directory .* does not exist"),
        (lambda run: run.mkdir(), r"has no metrics.jsonl"),
        (lambda run: run.mkdir() or (run / "metrics.jsonl").write_text(""), r"has no complete epoch in metrics.jsonl \(an empty run\)"),
        (lambda run: run.mkdir() or (run / "metrics.jsonl").write_text('{"epoch": 1, "train_loss": 2.0}\n'), r"line 1 is not an epoch record"),
        (lambda run: run.mkdir() or (run / "metrics.jsonl").write_text('{"epoch": 1, "train_loss": 2.0, "train_acc1": 0.1, "val_loss": 2.1, "val_acc1": 0.2}\n'),
         r"has metrics.jsonl but no last.pth"),
    ],
    ids=["absent", "no-metrics", "empty-run", "not-epoch-record", "no-checkpoint"],
)
def test_not_a_usable_run_is_refused(tmp_path, make, message):
    run = tmp_path / "run"
    make(run)
    with pytest.raises(UsageError, match=message):
        compare_runs(CurvesOptions(runs=(run,)))


# ------------------------------------------------------------------------------------ the metrics parser
LINE = '{{"epoch": {0}, "train_loss": 1.5, "train_acc1": {1}, "val_loss": 1.6, "val_acc1": 0.5, "best_val_acc1": 0.5, "lr": 0.1}}'


def test_parser_keeps_complete_lines_and_the_latest_record_of_an_epoch():
    text = "\n".join([LINE.format(1, 0.25), LINE.format(2, 0.5), LINE.format(2, 0.75), LINE.format(3, 0.8)[:30]])
    points, unfinished = parse_metrics(text, Path("m.jsonl"))
    assert [(point.epoch, point.train_error) for point in points] == [(1, 0.75), (2, 0.25)] and unfinished
    points, unfinished = parse_metrics(LINE.format(1, 0.25), Path("m.jsonl"))  # complete, just no final newline
    assert [point.epoch for point in points] == [1] and not unfinished


def test_parser_refuses_a_damaged_line_before_the_last():
    with pytest.raises(UsageError, match="m.jsonl line 1 is not valid JSON"):
        parse_metrics('{"epoch": 1, "tra\n' + LINE.format(2, 0.5) + "\n", Path("m.jsonl"))


def test_dataset_identity_treats_equivalent_specs_alike():
    assert dataset_identity("shapes") == dataset_identity("shapes:2400") == "shapes:2400"
    assert dataset_identity("cifar10:/data//cifar/") == "cifar10:/data/cifar"
    assert dataset_identity("shapes:96") != dataset_identity("shapes:48")


# ------------------------------------------------------------------------------------ the paper's ordering
def _run(arch: str, depth: int, plain: bool, train_errors: list[float]) -> RunCurves:
    points = [EpochPoint(epoch, error, error + 0.05, 1.0, 1.1) for epoch, error in enumerate(train_errors, start=1)]
    return RunCurves(path=f"/runs/{arch}", label=arch, arch=arch, depth=depth, plain=plain, family="cifar", data="shapes", planned_epochs=len(points), points=points)


def test_degradation_follows_the_paper():
    """Figure 6: plain-56 ends above plain-20; ResNet-56 ends below ResNet-20."""
    runs = [_run("resnet56", 56, False, [0.5, 0.1]), _run("plain20", 20, True, [0.5, 0.2]), _run("plain56", 56, True, [0.6, 0.3]),
            _run("resnet20", 20, False, [0.5, 0.2])]
    pairs = ordering_checks(runs)
    assert [(pair.predicted, pair.follows) for pair in pairs] == [("plain56 >= plain20", True), ("resnet56 <= resnet20", True)]
    assert (pairs[0].deeper_train_error, pairs[0].shallower_train_error, pairs[0].epoch) == (0.3, 0.2, 2)


def test_a_reversed_order_does_not_follow_and_runs_meet_at_their_last_common_epoch():
    deep_plain_learns_better = ordering_checks([_run("plain20", 20, True, [0.5, 0.4, 0.3]), _run("plain56", 56, True, [0.45, 0.35])])
    (pair,) = deep_plain_learns_better
    assert pair.epoch == 2 and (pair.deeper_train_error, pair.shallower_train_error) == (0.35, 0.4)
    assert not pair.follows and pair.verdict == "does not follow"
    assert ordering_checks([_run("resnet20", 20, False, [0.3]), _run("resnet56", 56, False, [0.3])])[0].follows  # a tie holds
    assert ordering_checks([_run("resnet20", 20, False, [0.3]), _run("plain56", 56, True, [0.1])]) == []  # kinds are not mixed
