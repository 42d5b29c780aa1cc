"""Issue 20, miscounting: the report counts every run once, by its results, and never a run moved aside.

Real 1-epoch "Tiny" runs (conftest.py) through the CLI for --overwrite, a --seeds change and a copied
run; hand-written results files for the interval clipping and same-seed repeats; tampered predictions
files for the pairing checks. The t-interval is recomputed here from the kept runs' own numbers.
"""

import json
import math
import os
import shutil

import numpy as np
import pytest
from conftest import tiny_opts
from scipy.stats import t as student_t

from oltr import report
from oltr.cli import main
from oltr.report.paired import paired_rows

STAGE_1 = "config/Digits_LT/stage_1.py"
pytestmark = pytest.mark.usefixtures("one_torch_thread")


def train_and_test(data_root, log_dir, *flags, overwrite=False, **opts):
    argv = [*flags, "--config", STAGE_1, "--opts", *tiny_opts(data_root, log_dir, **opts)]
    assert main(["--overwrite"] * overwrite + argv) == 0
    assert main(["--test", *argv]) == 0


def t_interval_by_hand(values):
    mean, n = sum(values) / len(values), len(values)
    sd = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1))
    half = student_t.ppf(0.975, n - 1) * sd / math.sqrt(n)
    return [max(mean - half, 0.0), min(mean + half, 100.0)]


@pytest.fixture(scope="module")
def sweep_logs(tiny_digits_root, tmp_path_factory):
    """logs/Tiny as a user leaves it: a seed-less run of an earlier sweep (--seeds 1), seed0/ and seed1/ of
    a later one (--seeds 2), seed1 overwritten (its old run moved aside), and a copy of seed1 elsewhere."""
    logs = tmp_path_factory.mktemp("logs") / "Tiny"
    train_and_test(tiny_digits_root, logs / "softmax", seed=0)
    train_and_test(tiny_digits_root, logs / "seed0" / "softmax", seed=0)
    train_and_test(tiny_digits_root, logs / "seed1" / "softmax", seed=1)
    train_and_test(
        tiny_digits_root, logs / "seed1" / "softmax", overwrite=True, seed=1, **{"training_opt.num_epochs": 2}
    )
    shutil.copytree(logs / "seed1" / "softmax", logs / "moved" / "softmax")
    return logs


def test_seeds_and_intervals_after_overwrite_a_seeds_change_and_a_copied_run(sweep_logs):
    warnings = []
    results = report.collect_results([sweep_logs], warn=warnings.append)
    assert len(list(sweep_logs.rglob("results_test_closed.json"))) == 5
    assert len(results) == 2 and sorted(r["seed"] for r in results) == [0, 1]
    assert not any(".old-" in r["_source"] for r in results)
    text = "\n".join(warnings)
    assert "moved aside" in text and ".old-" in text
    assert "seed 1" in text and "moved" in text  # the copy: same weights, counted once
    assert "seed 0" in text  # the seed-less folder of the earlier sweep and seed0/ are one seed
    (row,) = [row for row in report.build_table(results, "Tiny") if row["kind"] == "ours"]
    assert (row["num_closed"], row["num_open"]) == (2, 0)
    cell = row["cells"]["closed_average"]
    values = [100 * r["overall_top1"] for r in results]
    assert cell["n"] == 2 and cell["mean"] == pytest.approx(sum(values) / 2)
    assert cell["ci"] == pytest.approx(t_interval_by_hand(values))


def test_same_seed_with_other_weights_is_never_averaged(tmp_path):
    def write(name, top1, sha):
        folder = tmp_path / name
        folder.mkdir()
        result = {"dataset": "D", "loss": "softmax", "stage": 1, "seed": 0, "overall_top1": top1}
        (folder / "results_test_closed.json").write_text(json.dumps({**result, "weights_sha256": sha}))
        return folder / "results_test_closed.json"

    old, new = write("a", 0.2, "1" * 64), write("b", 0.6, "2" * 64)
    os.utime(old, ns=(1_000_000_000, 1_000_000_000))
    warnings = []
    results = report.collect_results([tmp_path], warn=warnings.append)
    assert [r["_source"] for r in results] == [str(new)]
    assert len(warnings) == 1 and "never averaged" in warnings[0] and str(old) in warnings[0]
    (row,) = [row for row in report.build_table(results, "D") if row["kind"] == "ours"]
    assert row["cells"]["closed_average"]["mean"] == pytest.approx(60.0)


def test_t_intervals_of_accuracies_stay_within_0_and_100(tmp_path):
    for seed, top1 in enumerate((0.99, 0.50)):
        folder = tmp_path / f"s{seed}"
        folder.mkdir()
        result = {"dataset": "D", "loss": "softmax", "seed": seed, "overall_top1": top1, "f_measure": top1}
        (folder / "results_test_closed.json").write_text(json.dumps(result))
        (folder / "results_test_open.json").write_text(json.dumps(result))
    (row,) = [r for r in report.build_table(report.collect_results([tmp_path]), "D") if r["kind"] == "ours"]
    unclipped = 74.5 + student_t.ppf(0.975, 1) * math.sqrt(0.5 * 49**2) / math.sqrt(2)
    assert unclipped > 100  # the case: without clipping the interval passes 100%
    assert row["cells"]["closed_average"]["ci"] == pytest.approx([0.0, 100.0])
    assert row["cells"]["open_f_measure"]["ci"] == pytest.approx([0.0, 1.0])


def test_unidentifiable_and_wrongly_typed_results_are_skipped_with_one_line(tmp_path):
    bad = {"seed": "0", "loss_params": [1], "class_counts": [3, -1], "stage": [2], "ci95": "narrow"}
    for key, value in bad.items():
        folder = tmp_path / key
        folder.mkdir()
        result = {"dataset": "D", "loss": "softmax", "seed": 0, "overall_top1": 0.5, key: value}
        (folder / "results_test_closed.json").write_text(json.dumps(result))
    warnings = []
    assert report.collect_results([tmp_path], warn=warnings.append) == []
    assert len(warnings) == len(bad)
    for key in bad:
        assert any(f"'{key}'" in warning for warning in warnings), key


@pytest.fixture(scope="module")
def paired_logs(tiny_digits_root, tmp_path_factory):
    logs = tmp_path_factory.mktemp("paired")
    for loss in ("softmax", "focal"):
        overlay = [] if loss == "softmax" else ["--overlay", f"config/losses/{loss}.py"]
        train_and_test(tiny_digits_root, logs / loss, *overlay)
    return logs


def _tamper(paired_logs, tmp_path, how):
    logs = tmp_path / "logs"
    shutil.copytree(paired_logs, logs)
    mine = logs / "focal" / "predictions_test_closed.npz"
    if how == "other checkpoint":
        shutil.copy(logs / "softmax" / "predictions_test_closed.npz", mine)
    elif how == "truncated":
        mine.write_bytes(mine.read_bytes()[:100])
    elif how == "wrong length":
        with np.load(mine) as saved:
            arrays = {key: saved[key] for key in saved.files}
        arrays["labels"], arrays["predictions"] = arrays["labels"][:-3], arrays["predictions"][:-3]
        np.savez(mine, **arrays)
    elif how == "lengths disagree":
        with np.load(mine) as saved:
            arrays = {key: saved[key] for key in saved.files}
        arrays["predictions"] = arrays["predictions"][:-3]
        np.savez(mine, **arrays)
    return logs, mine


@pytest.mark.parametrize(
    "how, why",
    [
        ("other checkpoint", "is of another checkpoint than its results"),
        ("truncated", "cannot be read"),
        ("wrong length", "images but its results"),
        ("lengths disagree", "labels but"),
    ],
)
def test_predictions_that_do_not_belong_to_their_results_are_not_paired(paired_logs, tmp_path, capsys, how, why):
    results = report.collect_results([paired_logs])
    rows, notes = paired_rows(results, "Tiny", resamples=50)
    assert len(rows) == 1 and not notes  # untampered: focal is paired with softmax
    logs, mine = _tamper(paired_logs, tmp_path, how)
    rows, notes = paired_rows(report.collect_results([logs]), "Tiny", resamples=50)
    assert rows == [] and len(notes) == 1 and why in notes[0] and str(mine) in notes[0]
    code = report.main([str(logs), "--out", str(tmp_path / "out"), "--no-plots", "--no-html", "--ci-resamples", "50"])
    captured = capsys.readouterr()
    assert code == 0 and "Traceback" not in captured.err and why in captured.out
