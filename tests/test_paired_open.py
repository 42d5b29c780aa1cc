"""The paired bootstrap of the open-set F-measure and AUROC: the weighted numbers against sklearn and an
expanded sample, a model against itself, a clearly better model, and the report's rows and scorer table."""

import json

import numpy as np
import pytest
from conftest import tiny_opts
from sklearn.metrics import roc_auc_score

from oltr import report
from oltr.cli import main
from oltr.evaluation.metrics import f_measure
from oltr.evaluation.paired_open import _aurocs, _f_measures, pooled_paired_open_difference


def case(seed=0, known=120, unknown=40):
    generator = np.random.default_rng(seed)
    labels = np.r_[generator.integers(0, 5, known), -np.ones(unknown, int)]
    scores = np.round(generator.normal(size=labels.size) + (labels >= 0), 1)  # ties on purpose
    predictions = np.where(scores < 0.3, -1, np.where(generator.random(labels.size) < 0.7, labels, 0))
    return generator, labels, scores, predictions


def test_weighted_auroc_and_f_measure_equal_their_expanded_samples():
    generator, labels, scores, predictions = case()
    weights = generator.integers(0, 4, size=(5, labels.size))
    aurocs, fs = (
        _aurocs(weights.astype(float), labels >= 0, scores),
        _f_measures(weights.astype(float), labels, predictions),
    )
    for row, w in enumerate(weights):
        assert aurocs[row] == pytest.approx(roc_auc_score(labels >= 0, scores, sample_weight=w), abs=1e-12)
        y, p = np.repeat(labels, w), np.repeat(predictions, w)
        true_pos = int(np.sum((y >= 0) & (p == y)))
        expected = f_measure(true_pos, int(np.sum(y >= 0)) - true_pos, int(np.sum((y < 0) & (p >= 0))))
        assert fs[row] == pytest.approx(expected, abs=1e-12)


def test_a_model_against_itself_differs_by_exactly_zero_and_a_better_one_significantly():
    generator, labels, scores, predictions = case(1, 400, 150)
    same = pooled_paired_open_difference([(labels, predictions, predictions, scores, scores)], 200, 0)
    assert all(cell["mean"] == cell["low"] == cell["high"] == 0 and not cell["significant"] for cell in same.values())
    better_scores = scores + 3 * (labels >= 0)
    better_predictions = np.where(labels >= 0, labels, -1)
    better = pooled_paired_open_difference([(labels, better_predictions, predictions, better_scores, scores)], 200, 0)
    assert better["open_auroc"]["low"] > 0 and better["f_measure"]["low"] > 0
    assert better["open_auroc"]["significant"] and better["f_measure"]["significant"]
    assert (
        pooled_paired_open_difference(
            [
                (
                    labels[labels >= 0],
                    predictions[labels >= 0],
                    predictions[labels >= 0],
                    scores[labels >= 0],
                    scores[labels >= 0],
                )
            ],
            10,
            0,
        )
        is None
    )


@pytest.mark.usefixtures("one_torch_thread")
def test_report_prints_paired_f_and_auroc_and_the_scorer_table(tiny_digits_root, tmp_path, capsys):
    for loss in ("softmax", "focal"):
        run = tmp_path / "logs" / loss
        args = [
            "--config",
            "config/Digits_LT/stage_1.py",
            "--opts",
            *tiny_opts(tiny_digits_root, run),
            f"criterions.PerformanceLoss.loss={loss}",
            "evaluation.open_scores=[msp,energy,knn]",
        ]
        assert main(args) == 0 and main(["--test", "--test_open", *args]) == 0
    capsys.readouterr()
    out = tmp_path / "out"
    assert report.main([str(tmp_path / "logs"), "--out", str(out), "--ci-resamples", "200"]) == 0
    printed = capsys.readouterr().out
    paired = next(line for line in printed.splitlines() if "(paired)" in line)
    cells = [cell.strip() for cell in paired.strip("|").split("|")]
    assert cells[8].count("[") == 1 and cells[9].count("[") == 1  # Open F and Open AUROC: paired intervals
    assert "### Tiny: open-set scorers" in printed
    scorer_lines = [line for line in printed.splitlines() if line.startswith("| OLTR") and "knn (k=50)" in line]
    assert len(scorer_lines) == 2
    csv_text = (out / "Tiny" / "scorers.csv").read_text()
    assert csv_text.count("\n") == 1 + 2 * 3  # header, two methods by three scorers
    open_auroc = json.loads((tmp_path / "logs" / "focal" / "results_test_open.json").read_text())["open_auroc"]
    assert f"{100 * open_auroc:.1f}" in printed
    assert (out / "Tiny" / "auroc_by_shot.png").stat().st_size > 0


def test_open_predictions_that_fail_the_checks_or_lack_scores_are_not_paired(tmp_path):
    from oltr.report.paired import load_open_predictions

    labels = np.array([0, 1, -1, -1])
    result = {"_source": str(tmp_path / "results_test_open.json"), "setting": "open", "weights_sha256": "a" * 64}
    arrays = dict(
        labels=labels, predictions=labels, class_group=np.zeros(2, np.int8), weights_sha256=np.array("a" * 64)
    )
    np.savez(tmp_path / "predictions_test_open.npz", confidence=np.array([0.9, 0.8, 0.1, 0.2]), **arrays)
    assert [a.tolist() for a in load_open_predictions(result)] == [[0, 1, -1, -1], [0, 1, -1, -1], [0.9, 0.8, 0.1, 0.2]]
    np.savez(tmp_path / "predictions_test_open.npz", confidence=np.array([0.9]), **arrays)  # a score short
    assert load_open_predictions(result) is None
    np.savez(tmp_path / "predictions_test_open.npz", **arrays)  # no scores at all
    assert load_open_predictions(result) is None
    np.savez(
        tmp_path / "predictions_test_open.npz", confidence=np.ones(4), **{**arrays, "weights_sha256": np.array("b")}
    )
    assert load_open_predictions(result) is None  # another checkpoint's file
    (tmp_path / "predictions_test_open.npz").write_bytes(b"PK\x03\x04 truncated")
    assert load_open_predictions(result) is None
