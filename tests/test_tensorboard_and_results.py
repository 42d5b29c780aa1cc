"""A tiny real run: TensorBoard event files, and what --test / --test_open now write (intervals, open-set
extras, predictions npz), checked against the run's own per-image predictions."""

import importlib.util
import json
import os
import sys

import numpy as np
import pytest
from sklearn.metrics import average_precision_score, roc_auc_score

from oltr.cli import main
from oltr.common.run_files import METRICS_LOG, predictions_path

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("one_torch_thread")]  # trains: a few seconds
STAGE1 = "config/Digits_LT/stage_1.py"


def _args(data, log_dir, *extra):
    return [
        "--config",
        STAGE1,
        "--opts",
        "training_opt.dataset=Tiny",
        f"training_opt.data_root={data}",
        f"training_opt.split_dir={data}",
        f"training_opt.log_dir={log_dir}",
        "training_opt.num_epochs=2",
        "training_opt.batch_size=16",
        "training_opt.num_workers=0",
        "evaluation.ci_resamples=200",
        *extra,
    ]


def _has_tensorboard():
    """The tb extra is optional (README: pip install -e ".[test,plot]" runs the tests): without it the
    run writes no event file and its test skips, except under CI=true (.ci/run installs it), where it fails."""
    return importlib.util.find_spec("tensorboard") is not None or os.environ.get("CI") == "true"


@pytest.fixture(scope="module")
def tested_run(tiny_digits_root, tmp_path_factory, one_torch_thread):
    log_dir = tmp_path_factory.mktemp("tb_run")
    args = _args(tiny_digits_root, log_dir, f"training_opt.tensorboard={str(_has_tensorboard()).lower()}")
    assert main(args) == 0
    assert main(["--test", *args]) == 0
    assert main(["--test_open", *args]) == 0
    return log_dir


def test_tensorboard_event_file_holds_the_metrics_log(tested_run):
    if not _has_tensorboard():
        pytest.skip("the tb extra is not installed (pip install -e '.[tb]')")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    records = [json.loads(line) for line in (tested_run / METRICS_LOG).read_text().splitlines()]
    events = EventAccumulator(str(tested_run / "tb"))
    events.Reload()
    tags = set(events.Tags()["scalars"])
    assert {"loss/total", "loss/performance", "val/top1", "lr/feat_model", "lr/classifier"} <= tags
    for tag, key in (("loss/total", "loss"), ("val/top1", "val_top1")):
        logged = events.Scalars(tag)
        assert [event.step for event in logged] == [record["epoch"] for record in records] == [1, 2]
        assert [event.value for event in logged] == pytest.approx([record[key] for record in records], rel=1e-6)
    assert [event.value for event in events.Scalars("lr/feat_model")] == pytest.approx(
        [record["lr"]["feat_model"] for record in records]
    )


def test_missing_tensorboard_is_one_clear_error_before_training(tiny_digits_root, tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", None)  # import now raises ImportError
    assert main(_args(tiny_digits_root, tmp_path / "run", "training_opt.tensorboard=true")) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "training_opt.tensorboard" in err and "pip install" in err
    assert "Traceback" not in err and not (tmp_path / "run" / METRICS_LOG).exists()


def test_results_carry_intervals_and_open_extras_matching_the_predictions(tested_run):
    closed = json.loads((tested_run / "results_test_closed.json").read_text())
    opened = json.loads((tested_run / "results_test_open.json").read_text())
    assert closed["ci_resamples"] == 200 and closed["ci_seed"] == 0
    low, high = closed["ci95"]["overall_top1"]
    assert low <= closed["overall_top1"] <= high
    assert sum(closed["reliability_bins"]["count"]) == closed["num_samples"]
    saved = np.load(predictions_path(tested_run, True))
    labels, predictions, confidence = saved["labels"], saved["predictions"], saved["confidence"]
    known = labels >= 0
    assert np.mean(predictions[known] == labels[known]) == pytest.approx(opened["overall_top1"])
    assert opened["open_auroc"] == pytest.approx(roc_auc_score(known, confidence), abs=1e-6)
    assert opened["open_aupr_in"] == pytest.approx(average_precision_score(known, confidence), abs=1e-4)
    for key in ("f_measure", "open_auroc", "few_shot_top1"):
        assert key in opened["ci95"]
    threshold_index = opened["f_measure_curve"]["thresholds"].index(opened["threshold"])
    assert opened["f_measure_curve"]["f_measure"][threshold_index] == pytest.approx(opened["f_measure"])
    assert set(opened["open_auroc_by_shot"]) == {"many", "medium", "few"} and 0 <= opened["oscr"] <= 1
    closed_saved = np.load(predictions_path(tested_run, False))
    assert np.mean(closed_saved["predictions"] == closed_saved["labels"]) == pytest.approx(closed["overall_top1"])
