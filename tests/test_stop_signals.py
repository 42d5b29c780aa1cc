"""A scheduler's stop signal (SIGTERM, SIGUSR1, SIGUSR2: SLURM's time limit or a preemption) during training.

main.py stops at the next step with exit code 128 + the signal (143 for SIGTERM) and one line, keeps its
last finished epoch, and a ``--resume`` ends with the weights of the same run left alone (the truth: that
run, in its own process).
"""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import REPO, tiny_opts

from oltr.common.run_files import FINAL_CHECKPOINT, LAST_CHECKPOINT, LOCK_FILE
from oltr.engine.checkpoint import load_checkpoint
from oltr.runs.evaluate import weights_sha256

pytestmark = pytest.mark.slow
ENV = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")


def command(data_root, log_dir, *extra):
    return [
        sys.executable,
        "main.py",
        "--config",
        "config/Digits_LT/stage_1.py",
        *extra,
        "--opts",
        *tiny_opts(data_root, log_dir, **{"training_opt.num_epochs": 20}),
    ]


@pytest.fixture(scope="module")
def uninterrupted(tiny_digits_root, tmp_path_factory):
    """The weights of the run left alone, in its own process."""
    log_dir = tmp_path_factory.mktemp("alone") / "run"
    alone = subprocess.run(
        command(tiny_digits_root, log_dir), cwd=REPO, env=ENV, capture_output=True, text=True, timeout=300
    )
    assert alone.returncode == 0, alone.stderr
    return sha(log_dir)


def sha(log_dir):
    return weights_sha256(load_checkpoint(Path(log_dir) / FINAL_CHECKPOINT, what="test checkpoint"))


@pytest.mark.parametrize("signum", [signal.SIGUSR2, signal.SIGTERM])
def test_a_stop_signal_keeps_the_last_epoch_and_resume_ends_with_the_uninterrupted_weights(
    tiny_digits_root, tmp_path, signum, uninterrupted
):
    run = tmp_path / "run"
    process = subprocess.Popen(
        command(tiny_digits_root, run), cwd=REPO, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    deadline = time.monotonic() + 120
    while not (run / LAST_CHECKPOINT).is_file() and time.monotonic() < deadline:
        time.sleep(0.02)
    process.send_signal(signum)
    out, err = process.communicate(timeout=120)
    assert process.returncode == 128 + signum, err
    assert err.strip().splitlines() == [err.strip()] and "Traceback" not in err
    assert err.startswith(f"stopped by {signal.Signals(signum).name} at ") and "--resume" in err
    assert (run / LAST_CHECKPOINT).is_file() and not (run / FINAL_CHECKPOINT).exists()
    assert not (run / LOCK_FILE).exists()
    resumed = subprocess.run(
        command(tiny_digits_root, run, "--resume"), cwd=REPO, env=ENV, capture_output=True, text=True, timeout=300
    )
    assert resumed.returncode == 0, resumed.stderr
    assert "resumed from" in resumed.stdout
    assert sha(run) == uninterrupted
