"""The report's rigour: paired rows from predictions npz, sentences, gaps, plots and report.html."""

import csv
import json

import numpy as np
import pytest

from oltr import report
from oltr.common.run_files import predictions_path
from oltr.evaluation.metrics import _calibration_error
from oltr.report.html import render_html
from oltr.runs.evaluate_extras import reliability_bins

COUNTS = [400, 60, 15, 5]  # many, medium, few, few
GROUP = np.array([0, 1, 2, 2], dtype=np.int8)
PER_CLASS_IMAGES = 50


def _write_run(directory, loss, seed, correct, setting="closed", **extra):
    """A results file and its predictions npz: ``correct`` per test image (class-major, 50 per class)."""
    directory.mkdir(parents=True, exist_ok=True)
    labels = np.repeat(np.arange(4), PER_CLASS_IMAGES)
    predictions = np.where(correct, labels, (labels + 1) % 4)
    if setting == "open":
        labels, predictions = np.r_[labels, -np.ones(20, int)], np.r_[predictions, -np.ones(20, int)]
    np.savez(
        predictions_path(directory, setting == "open"),
        labels=labels,
        predictions=predictions,
        confidence=np.ones(labels.size, np.float32),
        class_group=GROUP,
        class_counts=np.array(COUNTS),
    )
    known = labels >= 0
    per_class = [float(np.mean(correct[labels[known] == c])) for c in range(4)]
    result = {
        "dataset": "Toy_LT",
        "stage": 2,
        "loss": loss,
        "loss_params": {},
        "seed": seed,
        "setting": setting,
        "overall_top1": float(np.mean(correct)),
        "many_shot_top1": per_class[0],
        "medium_shot_top1": per_class[1],
        "few_shot_top1": float(np.mean(per_class[2:])),
        "per_class_top1": per_class,
        "class_counts": COUNTS,
        **extra,
    }
    (directory / f"results_test_{setting}.json").write_text(json.dumps(result))


@pytest.fixture
def paired_runs(tmp_path):
    """softmax and cfl with seeds 0, 1; cfl right on every few-shot image softmax gets wrong. focal: identical
    to softmax. asl: an old run without predictions npz nor any new key."""
    rng = np.random.default_rng(0)
    root = tmp_path / "runs"
    for seed in (0, 1):
        base = rng.random(4 * PER_CLASS_IMAGES) < 0.6
        better = base.copy()
        better[2 * PER_CLASS_IMAGES :] = True  # every few-shot image right
        _write_run(root / f"softmax_s{seed}", "softmax", seed, base)
        _write_run(root / f"cfl_s{seed}", "cfl", seed, better)
        _write_run(root / f"focal_s{seed}", "focal", seed, base)
    _write_run(root / "asl_s0", "asl", 0, rng.random(4 * PER_CLASS_IMAGES) < 0.6)
    (root / "asl_s0" / "predictions_test_closed.npz").unlink()
    return root


def test_paired_rows_sentences_and_gaps(paired_runs, tmp_path):
    out = tmp_path / "out"
    assert report.main([str(paired_runs), "--out", str(out), "--ci-resamples", "300"]) == 0
    with open(out / "Toy_LT" / "table.csv", newline="", encoding="utf-8") as handle:
        rows = {row["method"]: row for row in csv.DictReader(handle)}
    cfl, focal = rows["OLTR + CFL - OLTR (paired)"], rows["OLTR + FL - OLTR (paired)"]
    assert cfl["kind"] == "paired" and cfl["closed_few_significant"] == "1" and float(cfl["closed_few_low"]) > 0
    assert cfl["closed_many"] == "0.0" and cfl["closed_many_significant"] == "0"
    # identical predictions: exactly zero, interval [0, 0]
    assert [focal[f"closed_few{suffix}"] for suffix in ("", "_low", "_high", "_significant")] == [
        "0.0",
        "0.0",
        "0.0",
        "0",
    ]
    assert cfl["open_few"] == ""  # no open runs: a gap
    markdown = (out / "Toy_LT" / "table.md").read_text(encoding="utf-8")
    few_diff = float(cfl["closed_few"])
    assert f"| OLTR + CFL - OLTR (paired) | +0.0 [+0.0, +0.0] | +0.0 [+0.0, +0.0] | {few_diff:+.1f} [" in markdown
    assert (
        "OLTR + CFL vs OLTR (2 seeds, paired bootstrap over the same test images): closed few-shot "
        f"{few_diff:+.1f} points [" in markdown
    )
    assert "OLTR + FL vs OLTR (2 seeds, paired bootstrap over the same test images): no difference" in markdown
    assert "OLTR + ASL vs OLTR: no paired row (closed: seed 0 has no predictions_test_closed.npz)." in markdown
    assert "paired differences to the baselines exclude zero (OLTR + CFL closed few-shot" in markdown
    # the old-style ASL run still loads: its cells show, with '-' where numbers are missing
    assert rows["OLTR + ASL"]["closed_few"] != "" and rows["OLTR + ASL"]["open_f_measure"] == ""
    latex = (out / "Toy_LT" / "table.tex").read_text(encoding="utf-8")
    assert f"OLTR + CFL - OLTR (paired) & +0.0 [+0.0, +0.0] & +0.0 [+0.0, +0.0] & {few_diff:+.1f} [" in latex
    # by hand: cfl fixes the few-shot images softmax got wrong; pooled mean over the two seeds
    assert few_diff == pytest.approx(
        100
        * np.mean(
            [
                1
                - json.loads((paired_runs / f"softmax_s{s}" / "results_test_closed.json").read_text())["few_shot_top1"]
                for s in (0, 1)
            ]
        ),
        abs=0.01,
    )
    page = (out / "report.html").read_text(encoding="utf-8")
    assert "<table>" in page and "OLTR + CFL vs OLTR" in page and "data:image/png;base64," in page


def test_single_run_cell_shows_its_bootstrap_interval(tmp_path):
    root = tmp_path / "runs"
    _write_run(root / "a", "softmax", 0, np.ones(200, bool), ci95={"overall_top1": [0.95, 0.99]})
    rows = report.build_table(report.collect_results([root]), "Toy_LT")
    assert report.format_cell(rows[0]["cells"]["closed_average"], True, "ours", ci=True) == "100.0 [95.0, 99.0]"
    assert report.format_cell(rows[0]["cells"]["closed_few"], True, "ours", ci=True) == "100.0"  # no interval stored


def test_reliability_bins_reproduce_the_ece():
    rng = np.random.default_rng(3)
    confidence, correct = rng.random(500), rng.random(500) < 0.5
    bins = reliability_bins(confidence, correct)
    count, accuracy, conf = (np.asarray(bins[key], dtype=float) for key in ("count", "accuracy", "confidence"))
    filled = count > 0
    ece = np.sum(count[filled] / 500 * np.abs(accuracy[filled] - conf[filled]))
    assert ece == pytest.approx(_calibration_error(confidence, correct))
    by_loop = [sum(1 for c in confidence if b / 15 < c <= (b + 1) / 15) for b in range(15)]  # bins (lo, hi]
    assert count.tolist() == by_loop


def test_plots_from_new_keys_and_none_from_old_files(tmp_path):
    root = tmp_path / "runs"
    curve = {"thresholds": [0.0, 0.5, 1.0], "f_measure": [0.3, 0.6, 0.0], "precision": [0, 0, 0], "recall": [0, 0, 0]}
    _write_run(root / "a", "softmax", 0, np.ones(200, bool), setting="open", f_measure_curve=curve, threshold=0.5)
    _write_run(
        root / "a",
        "softmax",
        0,
        np.ones(200, bool),
        ece=0.1,
        reliability_bins=reliability_bins(np.linspace(0.05, 1, 200), np.ones(200, bool)),
    )
    _write_run(root / "b", "cfl", 0, np.ones(200, bool))  # old style: no curve, no bins
    results = report.collect_results([root])
    assert report.plot_f_measure_curves(results, "Toy_LT", tmp_path / "f.png")
    assert report.plot_reliability(results, "Toy_LT", tmp_path / "r.png")
    assert (tmp_path / "f.png").stat().st_size > 1000 and (tmp_path / "r.png").stat().st_size > 1000
    old_only = [result for result in results if result["loss"] == "cfl"]
    assert not report.plot_f_measure_curves(old_only, "Toy_LT", tmp_path / "none.png")
    assert not report.plot_reliability(old_only, "Toy_LT", tmp_path / "none.png")


def test_html_escapes_and_lists_every_image(tmp_path):
    image = tmp_path / "x.png"
    image.write_bytes(b"\x89PNG fake")
    page = render_html([{"dataset": "A<B", "rows": [], "sentences": ["1 < 2 & so on"], "images": {"x.png": image}}])
    assert "A&lt;B" in page and "1 &lt; 2 &amp; so on" in page and page.count("<img ") == 1


def test_each_recipe_is_paired_with_its_own_softmax_row(tmp_path):
    """CFL + cRT against CE + cRT (the loss's effect), CE + cRT against OLTR (the recipe's)."""
    rng = np.random.default_rng(3)
    root, base = tmp_path / "runs", rng.random(4 * PER_CLASS_IMAGES) < 0.6
    better = base.copy()
    better[2 * PER_CLASS_IMAGES :] = True  # every few-shot image right
    _write_run(root / "softmax", "softmax", 0, base)
    _write_run(root / "softmax_crt", "softmax", 0, better, recipe="crt")
    _write_run(root / "cfl_crt", "cfl", 0, better, recipe="crt")  # the same predictions as CE + cRT
    out = tmp_path / "out"
    assert report.main([str(root), "--out", str(out), "--ci-resamples", "200"]) == 0
    with open(out / "Toy_LT" / "table.csv", newline="", encoding="utf-8") as handle:
        rows = {row["method"]: row for row in csv.DictReader(handle)}
    paired = sorted(name for name, row in rows.items() if row["kind"] == "paired")
    assert paired == ["CE + cRT - OLTR (paired)", "CFL + cRT - CE + cRT (paired)"], paired
    assert rows["CFL + cRT - CE + cRT (paired)"]["closed_few"] == "0.0"
    assert rows["CE + cRT - OLTR (paired)"]["closed_few_significant"] == "1"
