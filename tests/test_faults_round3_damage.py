"""Issue 20, damage: nothing written before changes (SHA-256 before/after), through the real CLI.

The lock is taken before --overwrite moves anything; predictions stay with their results; a log_dir
holding files of someone else is refused; log_dir / or . is refused.
"""

import json
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import hashes, one_line_error, run_cli, tiny_opts

from oltr.engine.run_dir import RunDirError, move_aside_locked

REPO = Path(__file__).resolve().parents[1]
STAGE_1 = "config/Digits_LT/stage_1.py"
pytestmark = pytest.mark.usefixtures("one_torch_thread")

LOCK_HOLDER = """
import sys, time
sys.path.insert(0, {repo!r})
from oltr.engine.run_dir import RunLock
lock = RunLock({log_dir!r}, "training").acquire()
print("locked", flush=True)
time.sleep(60)
"""


def test_overwrite_of_a_live_run_is_refused_and_moves_nothing(capsys, tiny_digits_root, run_copy):
    holder = subprocess.Popen(
        [sys.executable, "-c", LOCK_HOLDER.format(repo=str(REPO), log_dir=str(run_copy))],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "locked"
        before = hashes(run_copy)
        code, err, _ = run_cli(
            capsys, ["--overwrite", "--config", STAGE_1, "--opts", *tiny_opts(tiny_digits_root, run_copy)]
        )
        one_line_error(code, err, f"{run_copy} is in use by process {holder.pid} on {socket.gethostname()}")
        assert hashes(run_copy) == before and not list(run_copy.parent.glob("run.old-*"))
        # the sweep's --overwrite takes the same lock first
        with pytest.raises(RunDirError, match=f"in use by process {holder.pid}"):
            move_aside_locked(run_copy)
        assert hashes(run_copy) == before and not list(run_copy.parent.glob("run.old-*"))
    finally:
        holder.kill()
        holder.wait()


def test_overwrite_leaves_no_lock_in_the_run_moved_aside(capsys, tiny_digits_root, run_copy):
    before = hashes(run_copy)
    code, err, _ = run_cli(
        capsys, ["--overwrite", "--config", STAGE_1, "--opts", *tiny_opts(tiny_digits_root, run_copy)]
    )
    assert code == 0, err
    (old,) = run_copy.parent.glob("run.old-*")
    assert hashes(old) == before and not (old / ".lock").exists() and not (run_copy / ".lock").exists()


def test_a_test_of_another_checkpoint_keeps_the_old_predictions_with_the_old_results(
    capsys, tiny_digits_root, run_copy
):
    results, predictions = run_copy / "results_test_closed.json", run_copy / "predictions_test_closed.npz"
    other = json.loads(results.read_text())
    other["weights_sha256"] = "0" * 64  # as if another checkpoint had been tested here
    results.write_text(json.dumps(other))
    old = {results.name: results.read_bytes(), predictions.name: predictions.read_bytes()}
    code, err, out = run_cli(capsys, ["--test", "--config", STAGE_1, "--opts", *tiny_opts(tiny_digits_root, run_copy)])
    assert code == 0, err
    kept = {path.name.split(".replaced-")[0]: path for path in run_copy.glob("*.replaced-*")}
    assert set(kept) == set(old)
    assert {name: path.read_bytes() for name, path in kept.items()} == old
    assert len({path.name.split(".replaced-")[1] for path in kept.values()}) == 1  # renamed together
    # the new predictions name the checkpoint they came from, as the new results do
    with np.load(predictions) as saved:
        assert str(saved["weights_sha256"]) == json.loads(results.read_text())["weights_sha256"]


@pytest.mark.parametrize("flags", [[], ["--resume"]])
def test_a_log_dir_with_a_users_own_files_is_refused(capsys, tiny_digits_root, tmp_path, flags):
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "config.yaml").write_text("my: own config\n")
    (mine / "metrics.jsonl").write_text('{"my": 1}\n')
    before = hashes(mine)
    code, err, _ = run_cli(capsys, [*flags, "--config", STAGE_1, "--opts", *tiny_opts(tiny_digits_root, mine)])
    one_line_error(code, err, f"{mine} holds config.yaml, metrics.jsonl but no run of this project", "--overwrite")
    assert hashes(mine) == before and sorted(p.name for p in mine.iterdir()) == ["config.yaml", "metrics.jsonl"]


def test_overwrite_moves_a_users_files_aside_whole(capsys, tiny_digits_root, tmp_path):
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "log.txt").write_text("my notes\n")
    before = hashes(mine)
    code, err, _ = run_cli(capsys, ["--overwrite", "--config", STAGE_1, "--opts", *tiny_opts(tiny_digits_root, mine)])
    assert code == 0, err
    (old,) = tmp_path.glob("mine.old-*")
    assert hashes(old) == before


@pytest.mark.parametrize("where", ["/", ".", ".."])
def test_a_log_dir_of_the_root_or_the_current_directory_is_refused(capsys, tiny_digits_root, where, tmp_path):
    work = tmp_path / "work"
    work.mkdir()
    (work / "keep.txt").write_text("keep")
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(work)
        code, err, _ = run_cli(
            capsys, ["--overwrite", "--config", REPO / STAGE_1, "--opts", *tiny_opts(tiny_digits_root, where)]
        )
    one_line_error(code, err, f"training_opt.log_dir {where} is")
    assert (work / "keep.txt").read_text() == "keep" and not list(tmp_path.glob("*.old-*"))


def test_a_run_of_ours_stopped_before_its_first_checkpoint_is_started_over(capsys, tiny_digits_root, run_copy):
    # what a step killed in its first epoch leaves: the resolved config.yaml and the log, no checkpoint
    for path in run_copy.iterdir():
        if path.name not in ("config.yaml", "log.txt"):
            path.unlink()
    code, err, _ = run_cli(capsys, ["--resume", "--config", STAGE_1, "--opts", *tiny_opts(tiny_digits_root, run_copy)])
    assert code == 0, err
    assert (run_copy / "final_model_checkpoint.pth").is_file()
