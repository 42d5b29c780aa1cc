"""Nothing already written is lost (GitHub issue 10): protected run directories, one process per
directory, tests that test the checkpoint they name, and output errors as one-line user errors.

Every refusal is checked through the real CLI: exit 2, one line "error: ...", no traceback, and
(by SHA-256) every file written before unchanged. The runs are 1-epoch "Tiny" runs (conftest.py).
"""

import builtins
import errno
import hashlib
import io
import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import hashes, one_line_error, refused, run_cli, tiny_opts

from oltr.cli import main
from oltr.runs import trainer

REPO = Path(__file__).resolve().parents[1]
STAGE_1 = "config/Digits_LT/stage_1.py"
STAGE_2 = "config/Digits_LT/stage_2_meta_embedding.py"
pytestmark = pytest.mark.usefixtures("one_torch_thread")


# ----------------------------------------------------------------------------- a finished run survives


def test_a_second_training_command_is_refused(capsys, tiny_digits_root, run_copy):
    # the README's own example: the same config with --opts training_opt.num_epochs=3
    for extra in ({}, {"training_opt.num_epochs": 3}, {"seed": 5}):
        line = refused(
            capsys,
            ["--config", STAGE_1, "--opts", *tiny_opts(tiny_digits_root, run_copy, **extra)],
            run_copy,
            f"training_opt.log_dir {run_copy} already holds a finished run",
            "--resume",
            "another training_opt.log_dir",
            "--overwrite",
        )
        assert "nothing was written" in line
    assert not list(run_copy.parent.glob("run.old-*"))


def test_overwrite_moves_the_old_run_aside(capsys, tiny_digits_root, run_copy):
    before = hashes(run_copy)
    code, err, out = run_cli(
        capsys, ["--overwrite", "--config", STAGE_1, "--opts", *tiny_opts(tiny_digits_root, run_copy)]
    )
    assert code == 0, err
    (old,) = run_copy.parent.glob("run.old-*")
    assert hashes(old) == before  # the old run, whole, beside the new one
    assert f"moved the old run {run_copy} aside to {old}" in out
    assert (run_copy / "final_model_checkpoint.pth").is_file()
    assert not (run_copy / "results_test_closed.json").exists()  # no old results beside the new weights


def test_overwrite_cannot_go_with_resume_or_a_test(capsys, tiny_digits_root, run_copy):
    for flag in ("--resume", "--test"):
        refused(
            capsys,
            [flag, "--overwrite", "--config", STAGE_1, "--opts", *tiny_opts(tiny_digits_root, run_copy)],
            run_copy,
            "--overwrite starts a new training run",
        )


def test_resume_of_a_finished_run_changes_nothing_but_its_log(capsys, tiny_digits_root, tmp_path):
    run_copy = tmp_path / "own"  # trained here: the resolved config (and so its hash) names the log_dir
    argv = ["--config", STAGE_1, "--opts", *tiny_opts(tiny_digits_root, run_copy)]
    assert main([str(arg) for arg in argv]) == 0
    before = hashes(run_copy)
    code, err, _ = run_cli(capsys, ["--resume", *argv])
    assert code == 0, err
    after = hashes(run_copy)
    assert {k: v for k, v in after.items() if k != "log.txt"} == {k: v for k, v in before.items() if k != "log.txt"}
    assert "holds a finished run of this config; nothing to do" in (run_copy / "log.txt").read_text()


# ----------------------------------------------------------------------------- one process per directory

LOCK_HOLDER = """
import sys, time
sys.path.insert(0, {repo!r})
from oltr.engine.run_dir import RunLock
lock = RunLock({log_dir!r}, "training").acquire()
print("locked", flush=True)
time.sleep(60)
"""


def test_a_concurrent_process_is_refused_naming_the_holder(capsys, tiny_digits_root, run_copy):
    holder = subprocess.Popen(
        [sys.executable, "-c", LOCK_HOLDER.format(repo=str(REPO), log_dir=str(run_copy))],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "locked"
        before = hashes(run_copy)
        for argv in (["--resume"], ["--test"], ["--test_open"]):
            refused(
                capsys,
                [*argv, "--config", STAGE_1, "--opts", *tiny_opts(tiny_digits_root, run_copy)],
                run_copy,
                f"{run_copy} is in use by process {holder.pid} on {socket.gethostname()}",
            )
        assert hashes(run_copy) == before
    finally:
        holder.kill()
        holder.wait()


def test_a_stale_lock_of_a_dead_process_is_taken_over_with_a_note(capsys, tiny_digits_root, run_copy):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    lock = run_copy / ".lock"
    lock.write_text(json.dumps({"pid": dead.pid, "host": socket.gethostname(), "purpose": "training"}))
    code, err, out = run_cli(capsys, ["--test", "--config", STAGE_1, "--opts", *tiny_opts(tiny_digits_root, run_copy)])
    assert code == 0, err
    assert f"took over a stale lock of process {dead.pid}" in out
    assert not lock.exists()


def test_a_lock_of_another_host_is_not_taken(capsys, tiny_digits_root, run_copy):
    (run_copy / ".lock").write_text(json.dumps({"pid": 1, "host": "elsewhere.example", "purpose": "training"}))
    refused(
        capsys,
        ["--test", "--config", STAGE_1, "--opts", *tiny_opts(tiny_digits_root, run_copy)],
        run_copy,
        "is in use by process 1 on elsewhere.example",
        f"delete {run_copy / '.lock'}",
    )


# ----------------------------------------------------------------------------- stage 2 and its stage-1 run


@pytest.mark.parametrize(
    "where, culprit", [("same", "is its stage-1 run's directory"), ("inside", "is inside its stage-1 run")]
)
def test_stage_2_never_writes_into_its_stage_1_run(capsys, tiny_digits_root, run_copy, where, culprit):
    log_dir = run_copy if where == "same" else run_copy / "stage2"
    opts = tiny_opts(tiny_digits_root, log_dir, **{"training_opt.stage1_log_dir": run_copy})
    refused(capsys, ["--config", STAGE_2, "--opts", *opts], run_copy, culprit, "give stage 2 a log_dir of its own")
    assert not (run_copy / "stage2").exists()


# ----------------------------------------------------------------------------- a test tests its checkpoint


def test_test_with_changed_opts_names_the_first_differing_key(capsys, tiny_digits_root, run_copy):
    opts = tiny_opts(tiny_digits_root, run_copy, **{"criterions.PerformanceLoss.loss": "focal"})
    for flag in ("--test", "--test_open"):
        line = refused(
            capsys,
            [flag, "--config", STAGE_1, "--opts", *opts],
            run_copy,
            "was trained with criterions.PerformanceLoss.loss='softmax' but this config has 'focal'",
            "--allow-config-change",
        )
        assert str(run_copy / "final_model_checkpoint.pth") in line


def test_allowed_config_change_records_the_checkpoints_config_and_epoch(capsys, tiny_digits_root, run_copy):
    opts = tiny_opts(tiny_digits_root, run_copy, **{"criterions.PerformanceLoss.loss": "focal", "seed": 9})
    code, err, out = run_cli(capsys, ["--test", "--allow-config-change", "--config", STAGE_1, "--opts", *opts])
    assert code == 0, err
    results = json.loads((run_copy / "results_test_closed.json").read_text())
    assert results["loss"] == "softmax" and results["seed"] == 0  # the checkpoint's, not the command line's
    assert (
        results["checkpoint_epoch"] == 1
        and results["checkpoint_config"]["criterions"]["PerformanceLoss"]["loss"] == "softmax"
    )
    assert results["config_changes"] == [
        {"key": "criterions.PerformanceLoss.loss", "test": "focal", "checkpoint": "softmax"}
    ]
    assert "--allow-config-change: criterions.PerformanceLoss.loss" in out


def test_results_of_another_checkpoint_are_kept_with_a_note(capsys, tiny_digits_root, run_copy):
    results = run_copy / "results_test_closed.json"
    other = json.loads(results.read_text())
    other["weights_sha256"] = "0" * 64
    results.write_text(json.dumps(other))
    old_bytes = results.read_bytes()
    code, err, out = run_cli(capsys, ["--test", "--config", STAGE_1, "--opts", *tiny_opts(tiny_digits_root, run_copy)])
    assert code == 0, err
    (kept,) = run_copy.glob("results_test_closed.json.replaced-*")
    assert kept.read_bytes() == old_bytes and f"kept them as {kept}" in out
    # a re-test of the same checkpoint replaces its own results without a note
    code, err, out = run_cli(capsys, ["--test", "--config", STAGE_1, "--opts", *tiny_opts(tiny_digits_root, run_copy)])
    assert code == 0 and "kept them" not in out
    assert {path.name.split(".replaced-")[0] for path in run_copy.glob("*.replaced-*")} == {
        "results_test_closed.json",
        "predictions_test_closed.npz",  # kept with the results they belong to
    }


# ----------------------------------------------------------------------------- output errors

FSIZE_CHILD = """
import resource, signal, sys
sys.path.insert(0, {repo!r})
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # else the kernel kills the process instead of failing the write
from oltr.cli import main
for limit, argv in {commands!r}:
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, resource.RLIM_INFINITY))
    code = main(argv)
    print(f"exit {{code}}", file=sys.stderr, flush=True)
    print("-----", file=sys.stderr, flush=True)
"""


def run_with_file_size_limits(*commands):
    """A full disk, simulated: for each (limit, argv), main(argv) may write no file beyond ``limit`` bytes
    (writes fail with EFBIG). One child for all, to pay torch's import once. Returns [(code, stderr)]."""
    commands = [(limit, [str(arg) for arg in argv]) for limit, argv in commands]
    # the PyTorch losses: no kernel build (which the size limit would break) in the child
    env = {
        **os.environ,
        "OMP_NUM_THREADS": "1",
    }
    done = subprocess.run(
        [sys.executable, "-c", FSIZE_CHILD.format(repo=str(REPO), commands=commands)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=180,
        env=env,
    )
    parts = [part.strip().splitlines() for part in done.stderr.split("-----")[:-1]]
    assert len(parts) == len(commands), done.stderr
    return [(int(lines[-1].split()[1]), "\n".join(lines[:-1])) for lines in parts]


def interrupted_run(capsys, monkeypatch, log_dir, tiny_digits_root):
    """A 2-epoch run stopped (Ctrl-C) in its second epoch: last_checkpoint.pth holds epoch 1."""
    argv = ["--config", STAGE_1, "--opts", *tiny_opts(tiny_digits_root, log_dir, **{"training_opt.num_epochs": 2})]
    real_run_epoch, calls = trainer._run_epoch, []

    def stop_at_the_second_epoch(run, *args):
        calls.append(run.epoch)
        if len(calls) == 2:
            raise KeyboardInterrupt
        real_run_epoch(run, *args)

    with monkeypatch.context() as patch:
        patch.setattr(trainer, "_run_epoch", stop_at_the_second_epoch)
        assert main([str(arg) for arg in argv]) == 130
    capsys.readouterr()
    return argv


def test_a_full_disk_while_writing_results_or_a_checkpoint_keeps_the_old_files(
    capsys, monkeypatch, tiny_digits_root, run_copy, tmp_path
):
    log_dir = tmp_path / "interrupted"
    argv = interrupted_run(capsys, monkeypatch, log_dir, tiny_digits_root)
    last = log_dir / "last_checkpoint.pth"
    kept = hashlib.sha256(last.read_bytes()).hexdigest()
    before = hashes(run_copy)
    (test_code, test_err), (resume_code, resume_err) = run_with_file_size_limits(
        (1000, ["--test", "--config", STAGE_1, "--opts", *tiny_opts(tiny_digits_root, run_copy)]),
        (last.stat().st_size // 2, ["--resume", *argv]),
    )
    # a test: the old results file, and everything else, as they were; no temp file left. The first
    # file a test writes is its per-image predictions (the results JSON, the sweep's done marker, last).
    one_line_error(
        test_code, test_err, f"cannot write {run_copy / 'predictions_test_closed.npz'}", "File too large (EFBIG)"
    )
    assert hashes(run_copy) == before
    # a checkpoint: the last good one intact, no final checkpoint, no temp file
    one_line_error(resume_code, resume_err, f"cannot write {last}", "File too large (EFBIG)")
    assert hashlib.sha256(last.read_bytes()).hexdigest() == kept
    assert not (log_dir / "final_model_checkpoint.pth").exists()
    assert [path.name for path in log_dir.iterdir() if ".tmp" in path.name] == []


@pytest.fixture
def read_only(monkeypatch):
    """``read_only(directory)``: writes under it fail with EROFS, in this process.

    We run as root, whom chmod does not stop, and a read-only mount is not available, so the
    write calls (open for writing, os.open, os.link, os.mkdir, os.replace, os.rename) are
    monkeypatched to raise OSError(EROFS) for paths under the directory.
    """
    roots = []

    def under(path):
        try:
            resolved = Path(os.fsdecode(path)).resolve()
        except (TypeError, ValueError):
            return False
        return any(resolved == root or root in resolved.parents for root in roots)

    def refuse(path):
        raise OSError(errno.EROFS, os.strerror(errno.EROFS), os.fsdecode(path))

    real_open, real_os_open = builtins.open, os.open

    def guarded_open(file, mode="r", *args, **kwargs):
        if isinstance(file, (str, bytes, os.PathLike)) and any(c in mode for c in "wax+") and under(file):
            refuse(file)
        return real_open(file, mode, *args, **kwargs)

    def guarded_os_open(path, flags, *args, **kwargs):
        if flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT) and under(path):
            refuse(path)
        return real_os_open(path, flags, *args, **kwargs)

    def guard(real, *checked):
        def call(*args, **kwargs):
            for index in checked:
                if under(args[index]):
                    refuse(args[index])
            return real(*args, **kwargs)

        return call

    monkeypatch.setattr(builtins, "open", guarded_open)
    monkeypatch.setattr(io, "open", guarded_open)
    monkeypatch.setattr(os, "open", guarded_os_open)
    monkeypatch.setattr(os, "link", guard(os.link, 1))
    monkeypatch.setattr(os, "mkdir", guard(os.mkdir, 0))
    monkeypatch.setattr(os, "replace", guard(os.replace, 0, 1))
    monkeypatch.setattr(os, "rename", guard(os.rename, 0, 1))
    return lambda directory: roots.append(Path(directory).resolve())


def test_a_read_only_log_dir_is_one_line_naming_path_and_cause(capsys, tiny_digits_root, run_copy, read_only):
    read_only(run_copy)
    for argv in (["--test"], ["--resume"], ["--overwrite"]):
        refused(
            capsys,
            [*argv, "--config", STAGE_1, "--opts", *tiny_opts(tiny_digits_root, run_copy)],
            run_copy,
            str(run_copy),
            "Read-only file system (EROFS)",
        )


def test_a_new_log_dir_under_a_read_only_directory(capsys, tiny_digits_root, tmp_path, read_only):
    (tmp_path / "ro").mkdir()
    read_only(tmp_path / "ro")
    code, err, _ = run_cli(capsys, ["--config", STAGE_1, "--opts", *tiny_opts(tiny_digits_root, tmp_path / "ro" / "x")])
    one_line_error(code, err, f"cannot create training_opt.log_dir {tmp_path / 'ro' / 'x'}", "EROFS")


@pytest.mark.parametrize("kind", ["a file", "under a file", "empty"])
def test_a_log_dir_that_cannot_be_a_directory(capsys, tiny_digits_root, tmp_path, kind):
    """A log_dir that is a regular file, or whose parent is one (a real, not simulated, failure)."""
    blocker = tmp_path / "blocker"
    blocker.write_text("a file\n")
    log_dir, culprit = {
        "a file": (blocker, f"training_opt.log_dir {blocker} is a file, not a directory"),
        "under a file": (blocker / "run", f"{blocker} is a file, not a directory"),
        "empty": ("", "training_opt.log_dir is empty"),
    }[kind]
    for flag in ([], ["--test"]):
        code, err, _ = run_cli(capsys, [*flag, "--config", STAGE_1, "--opts", *tiny_opts(tiny_digits_root, log_dir)])
        one_line_error(code, err, culprit)
    assert blocker.read_text() == "a file\n"
