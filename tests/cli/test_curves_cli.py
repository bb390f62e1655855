"""``resnet-edge curves`` on runs laid out as the trainer writes them: the table, the paper's ordering,
the report's figures, the in-progress warning and the one-line refusals."""

from __future__ import annotations

import json

from click.testing import CliRunner

from helpers.curves_runs import write_run
from resnet_edge.cli import main

# Figure 6's shape: plain-56 ends above plain-20 (degradation); ResNet-56 ends below ResNet-20.
RUNS = {
    "plain20": ([0.60, 0.30, 0.20], [0.62, 0.35, 0.25]),
    "plain56": ([0.70, 0.40, 0.28], [0.72, 0.45, 0.33]),
    "resnet20": ([0.55, 0.25, 0.15], [0.57, 0.30, 0.21]),
    "resnet56": ([0.50, 0.20, 0.10], [0.52, 0.26, 0.18]),
}


def _runs(root, data="shapes"):
    return [str(write_run(root / arch, arch, data, train, val)) for arch, (train, val) in RUNS.items()]


def _invoke(*argv):
    return CliRunner().invoke(main, ["curves", *map(str, argv)])


def test_table_report_and_plot_of_the_papers_four_nets(tmp_path):
    report, plot = tmp_path / "curves.json", tmp_path / "fig6.png"
    result = _invoke(*_runs(tmp_path), "--report", report, "--plot", plot)
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    plain56 = next(line for line in lines if line.strip().startswith("plain56"))
    assert plain56.split()[:6] == ["plain56", "plain", "56", "3/3", "28.00%", "33.00%"]
    assert "plain56 >= plain20" in result.stdout and "resnet56 <= resnet20" in result.stdout
    assert "2 of 2 pair(s) follow the paper's ordering" in result.stdout
    payload = json.loads(report.read_text())
    assert payload["schema"] == "resnet-edge-curves-report" and payload["command"].startswith("resnet-edge curves")
    by_arch = {run["arch"]: run for run in payload["runs"]}
    assert by_arch["resnet56"]["final_train_error"] == 0.10 and by_arch["resnet56"]["best_val_error"] == 0.18
    assert [point["val_error"] for point in by_arch["plain20"]["epochs"]] == [0.62, 0.35, 0.25]
    pairs = [(pair["predicted"], pair["epoch"], pair["deeper_train_error"], pair["shallower_train_error"], pair["follows"]) for pair in payload["pairs"]]
    assert pairs == [("plain56 >= plain20", 3, 0.28, 0.2, True), ("resnet56 <= resnet20", 3, 0.1, 0.15, True)]
    assert payload["pairs_following"] == 2 and plot.read_bytes().startswith(b"\x89PNG")
    assert f"report: {report}" in result.stdout and f"plot: {plot}" in result.stdout


def test_degradation_that_does_not_show_is_reported_as_such(tmp_path):
    plain20 = write_run(tmp_path / "p20", "plain20", "shapes", [0.5, 0.4], [0.5, 0.45])
    plain56 = write_run(tmp_path / "p56", "plain56", "shapes", [0.5, 0.3], [0.5, 0.40])
    result = _invoke(plain20, plain56)
    assert result.exit_code == 0, result.output
    assert "epoch 2: 30.00% vs 40.00%" in result.stdout and "does not follow" in result.stdout
    assert "0 of 1 pair(s) follow" in result.stdout


def test_run_in_progress_is_a_warning_line(tmp_path):
    running = write_run(tmp_path / "r56", "resnet56", "shapes", [0.5, 0.3], [0.5, 0.4], planned_epochs=10)
    result = _invoke(running)
    assert result.exit_code == 0, result.output
    assert result.stderr.splitlines() == [f"warning: run {running} (resnet56) is still in progress or was stopped: read its 2 complete epoch(s), up to epoch 2 of 10"]
    assert "2/10" in result.stdout


def test_bad_inputs_are_one_line_exit_2(tmp_path):
    runs = _runs(tmp_path)
    other = write_run(tmp_path / "cifar", "resnet20", "cifar10:/data/cifar10", [0.5], [0.5])
    for argv, message in [
        ([*runs, "--plot", tmp_path / "f.pdf"], "must end in .png or .svg"),
        ([runs[0], other], "trained on different datasets"),
        ([tmp_path], "has no metrics.jsonl"),
        ([], "Missing argument 'RUN_DIR...'"),
    ]:
        result = _invoke(*argv)
        assert result.exit_code == 2 and len(result.stderr.splitlines()) == 1 and message in result.stderr, (argv, result.output)
    assert not (tmp_path / "f.pdf").exists()
    assert _invoke(runs[0], other, "--allow-mixed").exit_code == 0
