"""oltr.report on hand-written results files and metrics logs."""

import csv
import json

import pytest

from oltr import report
from oltr.common.run_files import METRICS_LOG
from oltr.engine.run_log import RunLogger

PER_CLASS = [0.9, 0.5, None, 0.1]
COUNTS = [400, 60, 15, 5]


def write_result(directory, setting, dataset, loss, seed, stage=2, **numbers):
    directory.mkdir(parents=True, exist_ok=True)
    result = {
        "dataset": dataset,
        "stage": stage,
        "loss": loss,
        "loss_params": {"cyclical_factor": 2} if loss in ("cfl", "casl") else {},
        "seed": seed,
        "setting": setting,
        "per_class_top1": PER_CLASS,
        "class_counts": COUNTS,
        "shot_groups": {
            "many": {"num_classes": 1, "threshold": 100, "rule": "n >= 100"},
            "medium": {"num_classes": 1, "range": [20, 100], "rule": "20 < n < 100"},
            "few": {"num_classes": 2, "threshold": 20, "rule": "n <= 20"},
            "inclusive": True,
        },
    }
    result.update(numbers)
    (directory / f"results_test_{setting}.json").write_text(json.dumps(result))


def closed(many, medium, few, overall):
    return {"many_shot_top1": many, "medium_shot_top1": medium, "few_shot_top1": few, "overall_top1": overall}


def opened(many, medium, few, f_measure):
    return {
        "many_shot_top1": many,
        "medium_shot_top1": medium,
        "few_shot_top1": few,
        "overall_top1": 0.3,
        "f_measure": f_measure,
    }


@pytest.fixture
def runs(tmp_path):
    """ImageNet_LT: cfl with seeds 0 and 1 (closed + open), softmax seed 0 with no open file."""
    root = tmp_path / "runs"
    write_result(root / "cfl_s0", "closed", "ImageNet_LT", "cfl", 0, **closed(0.40, 0.37, 0.23, 0.34))
    write_result(root / "cfl_s0", "open", "ImageNet_LT", "cfl", 0, **opened(0.39, 0.35, 0.20, 0.44))
    write_result(root / "cfl_s1", "closed", "ImageNet_LT", "cfl", 1, **closed(0.42, 0.38, 0.25, 0.36))
    write_result(root / "cfl_s1", "open", "ImageNet_LT", "cfl", 1, **opened(0.41, 0.35, 0.22, 0.45))
    write_result(root / "softmax_s0", "closed", "ImageNet_LT", "softmax", 0, **closed(0.45, 0.30, 0.10, 0.33))
    return root


def cells_text(row):
    return [report.format_cell(row["cells"][key], percent, row["kind"]) for key, _, _, _, percent in report.COLUMNS]


def test_table_layout_mean_std_gap_and_paper_rows(runs):
    results = report.collect_results([runs])
    assert len(results) == 5
    rows = report.build_table(results, "ImageNet_LT")
    labels = [row["label"] for row in rows]
    assert labels == [
        "OLTR",
        "OLTR (paper)",
        "OLTR (ours - paper)",
        "OLTR + FL (paper)",
        "OLTR + ASL (paper)",
        "OLTR + CFL",
        "OLTR + CFL (paper)",
        "OLTR + CFL (ours - paper)",
        "OLTR + CASL (paper)",
    ]
    by_label = {row["label"]: row for row in rows}
    # cfl, two seeds: closed many (40, 42) -> 41.0 +- sample std sqrt(2) = 1.4; open medium (35, 35) -> std 0
    assert cells_text(by_label["OLTR + CFL"]) == [
        "41.0 ± 1.4",
        "37.5 ± 0.7",
        "24.0 ± 1.4",
        "35.0 ± 1.4",
        "40.0 ± 1.4",
        "35.0 ± 0.0",
        "21.0 ± 1.4",
        "0.445 ± 0.007",
        "n/a",  # these results files record no open_auroc
    ]
    assert by_label["OLTR + CFL"]["cells"]["closed_many"]["std"] == pytest.approx(2**0.5)
    # paper +CFL: 42.6 37.7 23.3 34.5 | 40.0 35.4 21.7 0.445
    assert cells_text(by_label["OLTR + CFL (ours - paper)"]) == [
        "-1.6",
        "-0.2",
        "+0.7",
        "+0.5",
        "+0.0",
        "-0.4",
        "-0.7",
        "+0.000",
        "-",  # the paper reports no AUROC
    ]
    # softmax: one seed (mean only), no open file (gap)
    assert cells_text(by_label["OLTR"]) == ["45.0", "30.0", "10.0", "33.0", "-", "-", "-", "-", "-"]
    assert cells_text(by_label["OLTR (ours - paper)"]) == ["+1.8", "-5.1", "-8.5", "+0.7", "-", "-", "-", "-", "-"]
    paper = ["43.2", "35.1", "18.5", "32.3", "41.9", "33.9", "17.4", "0.474", "-"]
    assert cells_text(by_label["OLTR (paper)"]) == paper
    assert (by_label["OLTR"]["num_closed"], by_label["OLTR"]["num_open"]) == (1, 0)


def test_main_writes_markdown_csv_latex_and_plots(runs, tmp_path, capsys):
    out = tmp_path / "out"
    assert report.main([str(runs), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    # two seeds: the t-interval of the mean, 41 -+ t_{0.975,1} (12.706) * 1.414 / sqrt(2)
    assert "## ImageNet_LT" in printed and "| OLTR + CFL | 41.0 ± 1.4 [28.3, 53.7] |" in printed
    assert "many n >= 100 (1 classes)" in printed  # group sizes printed with the table
    target = out / "ImageNet_LT"
    assert (target / "table.md").read_text(encoding="utf-8") in printed
    with open(target / "table.csv", newline="", encoding="utf-8") as handle:
        rows = {row["method"]: row for row in csv.DictReader(handle)}
    assert float(rows["OLTR + CFL"]["closed_many"]) == pytest.approx(41.0)
    assert float(rows["OLTR + CFL"]["closed_many_std"]) == pytest.approx(2**0.5, abs=1e-3)
    assert rows["OLTR"]["open_many"] == "" and rows["OLTR"]["runs_open"] == "0"
    assert float(rows["OLTR + CFL (ours - paper)"]["closed_average"]) == pytest.approx(0.5)
    latex = (target / "table.tex").read_text(encoding="utf-8")
    assert r"\begin{tabular}" in latex and r"OLTR + CFL & 41.0 $\pm$ 1.4 [28.3, 53.7] &" in latex
    assert r"ImageNet\_LT" in latex
    pytest.importorskip("matplotlib")
    assert (target / "per_class_accuracy.png").stat().st_size > 0


def test_format_option_and_no_plots(runs, tmp_path):
    out = tmp_path / "out"
    assert report.main([str(runs), "--out", str(out), "--format", "csv", "--no-plots"]) == 0
    assert sorted(path.name for path in (out / "ImageNet_LT").iterdir()) == ["table.csv"]
    with pytest.raises(SystemExit):
        report.main([str(runs), "--format", "md,pdf"])


def test_malformed_file_is_skipped_with_one_line(runs, tmp_path, capsys):
    broken = runs / "broken" / "results_test_closed.json"
    broken.parent.mkdir()
    broken.write_text('{"dataset": "ImageNet_LT",\n  "loss": }')
    (runs / "nolist" / "results_test_open.json").parent.mkdir()
    (runs / "nolist" / "results_test_open.json").write_text("[1, 2]")
    assert report.main([str(runs), "--out", str(tmp_path / "out"), "--no-plots"]) == 0
    warnings = [line for line in capsys.readouterr().err.splitlines() if line]
    assert any(str(broken) in line and "malformed JSON at line 2" in line for line in warnings)
    assert any("nolist" in line and "JSON object" in line for line in warnings)
    assert len(report.collect_results([runs], warn=lambda message: None)) == 5


def test_nothing_usable_exits_non_zero(tmp_path, capsys):
    (tmp_path / "results_test_closed.json").write_text("not json")
    assert report.main([str(tmp_path), "--out", str(tmp_path / "out")]) != 0
    assert "no usable" in capsys.readouterr().err


def test_other_losses_stages_and_empty_groups(tmp_path):
    root = tmp_path / "runs"
    write_result(root / "a", "closed", "Digits_LT", "ldam", 0, **closed(0.5, 0.5, None, 0.5))
    write_result(root / "b", "closed", "Digits_LT", "cfl", 0, **closed(0.6, 0.5, 0.4, 0.5))
    write_result(root / "c", "closed", "Places-LT", "focal", 0, stage=1, **closed(0.4, 0.4, 0.2, 0.3))
    write_result(root / "d", "closed", "Places-LT", "focal", 0, stage="stage_2", **closed(0.44, 0.4, 0.3, 0.4))
    results = report.collect_results([root])
    digits = report.build_table(results, "Digits_LT")
    assert [row["label"] for row in digits] == ["OLTR + CFL", "OLTR + LDAM"]  # no paper rows for this dataset
    assert cells_text(digits[1])[2] == "n/a"  # empty few-shot group
    places = [row["label"] for row in report.build_table(results, "Places-LT")]
    # the paper's Places-LT rows are of full OLTR: only the stage-2 run is compared
    assert places[:4] == ["OLTR (paper)", "OLTR + FL (stage 1)", "OLTR + FL (stage 2)", "OLTR + FL (paper)"]
    assert places[4] == "OLTR + FL (stage 2) (ours - paper)" and len(places) == 8


def write_metrics(directory, xi_values, **extra):
    """metrics.jsonl as the trainer writes it (RunLogger.metrics), one record per epoch; xi None: not logged."""
    logger = RunLogger(directory, echo=False)
    for epoch, xi in enumerate(xi_values, start=1):
        record = {"epoch": epoch, "loss": 1.0 / epoch, "val_top1": 0.1 * epoch, **extra}
        if xi is not None:
            record["xi"] = xi
        logger.metrics(record)


# What the trainer logged with progress_granularity=step: xi after each epoch's last step. A replay of
# the loss defaults (f = 2, t = epoch / (E - 1), 4 epochs) would give 1, 1/3, 1/3, 1 instead.
LOGGED_XI = [0.95, 0.45, 0.05, 0.55]


def test_xi_curves_are_what_the_trainer_logged(runs):
    write_metrics(runs / "cfl_s0", LOGGED_XI)
    write_metrics(runs / "cfl_s1", LOGGED_XI)  # a second seed, same schedule: one curve
    write_metrics(runs / "softmax_s0", [None, None])  # softmax logs no xi: no curve
    curves = report.xi_curves(report.collect_results([runs]), "ImageNet_LT")
    assert list(curves) == ["OLTR + CFL, f = 2, 4 epochs"]
    epochs, xi = curves["OLTR + CFL, f = 2, 4 epochs"]
    assert epochs == [1, 2, 3, 4] and xi == pytest.approx(LOGGED_XI)


def test_runs_without_a_metrics_log_or_xi_have_no_curve(runs, tmp_path, capsys):
    results = report.collect_results([runs])
    assert report.xi_curves(results, "ImageNet_LT") == {}  # no metrics.jsonl anywhere: a gap, not a crash
    assert not report.plot_xi_schedule(results, "ImageNet_LT", tmp_path / "xi.png")
    write_metrics(runs / "cfl_s0", [None, None, None])  # an old run that did not log xi
    assert report.xi_curves(results, "ImageNet_LT") == {}
    assert capsys.readouterr().err == ""


def test_a_broken_metrics_line_is_left_out_with_one_warning(runs):
    write_metrics(runs / "cfl_s0", LOGGED_XI[:2])
    with open(runs / "cfl_s0" / METRICS_LOG, "a", encoding="utf-8") as handle:
        handle.write('{"epoch": 3, "xi": 0.0')  # killed mid-write
    warnings = []
    curves = report.xi_curves(report.collect_results([runs]), "ImageNet_LT", warn=warnings.append)
    assert [xi for _, xi in curves.values()] == [pytest.approx(LOGGED_XI[:2])]
    assert len(warnings) == 1 and METRICS_LOG in warnings[0] and "1 line" in warnings[0]


def test_two_schedules_under_one_label_are_told_apart(runs):
    write_metrics(runs / "cfl_s0", LOGGED_XI)
    write_metrics(runs / "cfl_s1", [1.0, 0.0, 0.0, 1.0])
    curves = report.xi_curves(report.collect_results([runs]), "ImageNet_LT")
    assert sorted(curves) == ["OLTR + CFL, f = 2, 4 epochs", "OLTR + CFL, f = 2, 4 epochs (cfl_s1)"]


def test_xi_schedule_plot_written(runs, tmp_path):
    pytest.importorskip("matplotlib")
    write_metrics(runs / "cfl_s0", LOGGED_XI)
    path = tmp_path / "xi.png"
    assert report.plot_xi_schedule(report.collect_results([runs]), "ImageNet_LT", path)
    assert path.stat().st_size > 0
    assert not report.plot_xi_schedule(report.collect_results([runs]), "Places_LT", tmp_path / "none.png")
