"""--resume: a run killed mid-epoch and resumed ends exactly where an uninterrupted run ends (CPU, fixed seed).

Stage 1 goes through the real CLI in subprocesses, one of them killed with SIGKILL during its
second epoch; stage 2 (class-aware sampler, centroids and their optimizer, EFL statistics) is
interrupted in-process by an exception raised inside an epoch. Equality is bit for bit.
"""

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from oltr.cli import main
from oltr.common.errors import CheckpointError
from oltr.config.schema import load_config
from oltr.engine.distributed import DistContext
from oltr.runs import trainer

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("one_torch_thread")]

REPO = Path(__file__).resolve().parents[1]
STAGE1 = "config/Digits_LT/stage_1_cfl.py"
STAGE2 = "config/Digits_LT/stage_2_cfl_meta_embedding.py"
STAGE1_EPOCHS = 3


def _child_env():
    # One thread per child: no oversubscription on small machines, and the same float summation
    # order in every child.
    return {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}


def _stage1_args(data, log_dir):
    return [
        "--config",
        STAGE1,
        "--opts",
        f"training_opt.data_root={data}",
        f"training_opt.split_dir={data}",
        f"training_opt.log_dir={log_dir}",
        f"training_opt.num_epochs={STAGE1_EPOCHS}",
        "training_opt.scheduler_params.step_size=2",
    ]  # a learning-rate step inside the run


def _train(args, **kwargs):
    return subprocess.Popen(
        [sys.executable, "main.py", *args],
        cwd=REPO,
        env=_child_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        **kwargs,
    )


def _records(log_dir):
    lines = (Path(log_dir) / "metrics.jsonl").read_text().splitlines()
    # Throughput is the one field that depends on the clock.
    return [{k: v for k, v in json.loads(line).items() if k != "images_per_s"} for line in lines]


def _kill_during_second_epoch(process, log_dir, data):
    """SIGKILL ``process`` half-way through the training part of its second epoch (the first is saved)."""
    metrics, last = Path(log_dir) / "metrics.jsonl", Path(log_dir) / "last_checkpoint.pth"
    deadline = time.monotonic() + 120
    while not (last.is_file() and metrics.is_file() and metrics.read_text().strip()):
        assert process.poll() is None, process.communicate()[0]
        assert time.monotonic() < deadline, "the first epoch did not finish in time"
        time.sleep(0.01)
    first = json.loads(metrics.read_text().splitlines()[0])
    images_per_epoch = len((Path(data) / "Digits_LT_train.txt").read_text().splitlines()) // 32 * 32
    time.sleep(0.5 * images_per_epoch / first["images_per_s"])
    process.send_signal(signal.SIGKILL)
    process.communicate(timeout=60)


def _networks(log_dir, name="final_model_checkpoint.pth"):
    return torch.load(Path(log_dir) / name, map_location="cpu", weights_only=True)


def _assert_same_tensors(a, b, where=""):
    """Nested dicts/lists of tensors and plain values are identical, tensors bit for bit."""
    if isinstance(a, torch.Tensor):
        assert isinstance(b, torch.Tensor) and a.dtype == b.dtype and torch.equal(a, b), where
    elif isinstance(a, dict):
        assert a.keys() == b.keys(), where
        for key in a:
            _assert_same_tensors(a[key], b[key], f"{where}.{key}")
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b)):
            _assert_same_tensors(x, y, f"{where}[{i}]")
    else:
        assert a == b, where


@pytest.fixture(scope="module")
def stage1(tmp_path_factory, one_torch_thread):
    """An uninterrupted stage-1 run and a killed-then-resumed one, both tested, in the same log_dir path.

    The same path (the uninterrupted run is moved aside before the second starts) keeps the
    resolved configs, and so the results files, identical up to what the runs computed. Only the
    killed run needs a process of its own; the others run the same CLI in this one, on one thread
    as the child does (tests/test_sweep_local.py: the same weights as a process of their own).
    """
    root = tmp_path_factory.mktemp("resume")
    data, run, reference = root / "Digits_LT", root / "run", root / "reference"
    args = _stage1_args(data, run)
    assert main(args) == 0
    assert main(["--test", *args]) == 0
    run.rename(reference)

    interrupted = _train(args)
    _kill_during_second_epoch(interrupted, run, data)
    killed_at = {
        "records": len(_records(run)),
        "saved_epoch": _networks(run, "last_checkpoint.pth")["epoch"],
        "final_exists": (run / "final_model_checkpoint.pth").exists(),
    }
    assert main([*args[:2], "--resume", *args[2:]]) == 0
    assert main(["--test", *args]) == 0
    return {
        "data": data,
        "run": run,
        "reference": reference,
        "killed_at": killed_at,
        "resumed_output": (run / "log.txt").read_text(),
    }


def test_the_kill_interrupted_the_run(stage1):
    killed_at = stage1["killed_at"]
    assert not killed_at["final_exists"]
    assert killed_at["records"] < STAGE1_EPOCHS
    assert killed_at["saved_epoch"] < STAGE1_EPOCHS - 1
    assert "resumed from" in stage1["resumed_output"]


def test_resumed_stage1_weights_are_bit_identical(stage1):
    reference, resumed = _networks(stage1["reference"]), _networks(stage1["run"])
    _assert_same_tensors(reference["networks"], resumed["networks"], "networks")
    _assert_same_tensors(reference["losses"], resumed["losses"], "losses")
    assert reference["metrics"]["best_epoch"] == resumed["metrics"]["best_epoch"]
    assert reference["metrics"]["best_val_top1"] == resumed["metrics"]["best_val_top1"]


def test_resumed_stage1_last_checkpoint_matches(stage1):
    """Optimizer momentum, scheduler, sampler and best-epoch bookkeeping all line up too."""
    reference, resumed = (_networks(stage1[key], "last_checkpoint.pth") for key in ("reference", "run"))
    for key in ("epoch", "networks", "losses", "optimizers", "schedulers", "scaler", "sampler", "best"):
        _assert_same_tensors(reference[key], resumed[key], key)


def test_resumed_stage1_metrics_log_has_each_epoch_once(stage1):
    records = _records(stage1["run"])
    assert [r["epoch"] for r in records] == list(range(1, STAGE1_EPOCHS + 1))
    assert records == _records(stage1["reference"])


def test_resumed_stage1_results_file_is_identical(stage1):
    reference = json.loads((stage1["reference"] / "results_test_closed.json").read_text())
    resumed = json.loads((stage1["run"] / "results_test_closed.json").read_text())
    # Both were tested at the same log_dir path, so even 'checkpoint' and 'config_hash' agree.
    assert reference["overall_top1"] > 0.125 and reference == resumed


def test_resume_refuses_a_different_config(stage1):
    config = load_config(
        REPO / STAGE1,
        [
            f"training_opt.data_root={stage1['data']}",
            f"training_opt.split_dir={stage1['data']}",
            f"training_opt.log_dir={stage1['run']}",
            "training_opt.num_epochs=9",
        ],
    )
    with pytest.raises(CheckpointError, match=r"another config: training_opt.num_epochs: \d+ -> 9"):
        trainer.fit(config, DistContext(), resume=True, echo=False)


# ----------------------------------------------------------------------------- stage 2, in-process


class _Interrupted(Exception):
    pass


def _stage2_config(stage1_dir, data, log_dir):
    # EFL as the performance loss, so its gradient statistics (buffers) must survive the resume too.
    return load_config(
        REPO / STAGE2,
        [
            f"training_opt.data_root={data}",
            f"training_opt.split_dir={data}",
            f"training_opt.log_dir={log_dir}",
            f"training_opt.stage1_log_dir={stage1_dir}",
            "training_opt.num_epochs=3",
            "training_opt.scheduler_params.step_size=2",
            "criterions.PerformanceLoss.loss=efl",
            "criterions.PerformanceLoss.loss_params={}",
        ],
    )


def test_resumed_stage2_is_bit_identical(stage1, tmp_path, monkeypatch):
    uninterrupted, interrupted = tmp_path / "uninterrupted", tmp_path / "interrupted"
    trainer.fit(_stage2_config(stage1["reference"], stage1["data"], uninterrupted), DistContext(), echo=False)

    config = _stage2_config(stage1["reference"], stage1["data"], interrupted)
    real_step = trainer.train_step

    def failing_step(run, images, labels, step, **options):
        if run.epoch == 1 and step == 5:
            raise _Interrupted
        return real_step(run, images, labels, step, **options)

    monkeypatch.setattr(trainer, "train_step", failing_step)
    with pytest.raises(_Interrupted):
        trainer.fit(config, DistContext(), echo=False)
    monkeypatch.setattr(trainer, "train_step", real_step)
    assert _networks(interrupted, "last_checkpoint.pth")["epoch"] == 0
    trainer.fit(config, DistContext(), resume=True, echo=False)

    reference, resumed = _networks(uninterrupted), _networks(interrupted)
    for key in ("networks", "centroids", "losses"):
        _assert_same_tensors(reference[key], resumed[key], key)
    assert reference["losses"]["PerformanceLoss"]["pos_grad"].abs().sum() > 0  # EFL did collect statistics
    reference, resumed = (_networks(d, "last_checkpoint.pth") for d in (uninterrupted, interrupted))
    for key in ("networks", "losses", "optimizers", "schedulers", "sampler", "best"):
        _assert_same_tensors(reference[key], resumed[key], key)
    assert _records(uninterrupted) == _records(interrupted)


def test_fresh_run_starts_a_new_metrics_log(stage1, tmp_path):
    """Training again (without --resume) into a used log_dir does not append to the old records."""
    run = tmp_path / "again"
    shutil.copytree(stage1["reference"], run)
    config = load_config(
        REPO / STAGE1,
        [
            f"training_opt.data_root={stage1['data']}",
            f"training_opt.split_dir={stage1['data']}",
            f"training_opt.log_dir={run}",
            "training_opt.num_epochs=1",
        ],
    )
    trainer.fit(config, DistContext(), echo=False)
    assert [r["epoch"] for r in _records(run)] == [1]
