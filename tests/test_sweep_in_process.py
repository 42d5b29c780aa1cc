"""The sweep's steps in its own process (the default) and in one process each (--isolate).

The tiny runs are stage-1 runs of the "Tiny" Digits splits (conftest.tiny_opts), planned in place of
the real sweep's steps, so each takes about a second; one command also runs in a process of its own,
as the independent truth the in-process run must reproduce bit for bit.
"""
import logging
import os
import re
import subprocess
import sys
import warnings
from pathlib import Path

import pytest
import torch

from conftest import tiny_opts
from oltr import cli, sweep
from oltr.engine.checkpoint import load_checkpoint
from oltr.engine.evaluate import weights_sha256
from oltr.in_process import call_in_process
from oltr.run_files import FINAL_CHECKPOINT

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture
def in_repo(monkeypatch):
    monkeypatch.chdir(REPO)


def stage1_step(data_root, log_dir, loss_config, *extra_opts):
    command = [sys.executable, "main.py", "--config", loss_config, "--opts",
               *tiny_opts(data_root, log_dir), *extra_opts]
    return sweep.Step("Tiny", Path(loss_config).stem, 0, "stage1", command, Path(log_dir),
                      Path(log_dir) / FINAL_CHECKPOINT)


def final_weights(log_dir):
    return weights_sha256(load_checkpoint(Path(log_dir) / FINAL_CHECKPOINT, what="test checkpoint"))


def sweep_over(monkeypatch, steps, *args):
    """sweep.main with ``steps`` as its whole plan (the data check off: the steps bring their own data)."""
    monkeypatch.setattr(sweep, "check_data_present", lambda dataset: None)
    monkeypatch.setattr(sweep, "plan", lambda *a, **k: steps)
    return sweep.main(["--losses", "softmax", *args])


def test_an_in_process_step_after_another_trains_the_same_weights_as_its_own_process(in_repo, tiny_digits_root,
                                                                                      tmp_path):
    first = stage1_step(tiny_digits_root, tmp_path / "focal", "config/Digits_LT/stage_1_focal.py")
    second = stage1_step(tiny_digits_root, tmp_path / "cfl", "config/Digits_LT/stage_1_cfl.py")
    for step in (first, second):
        ok, _, tail = sweep.run_step(step)
        assert ok, tail
    alone = tmp_path / "cfl_alone"
    alone.mkdir()
    command = stage1_step(tiny_digits_root, alone, "config/Digits_LT/stage_1_cfl.py").command
    # the same number of threads as here: a float sum over other thread counts may round differently
    env = dict(os.environ, OMP_NUM_THREADS=str(torch.get_num_threads()))
    with open(alone / "stage1.out", "w") as log:  # as --isolate runs it
        process = subprocess.run(command, cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT, timeout=300)
    assert process.returncode == 0, (alone / "stage1.out").read_text()
    # the same output, but for the run's own directory and its speed
    outputs = [re.sub(r"\(\d+ img/s\)", "(N img/s)", (log_dir / "stage1.out").read_text().replace(str(log_dir), "DIR"))
               for log_dir in (second.log_dir, alone)]
    assert outputs[0] == outputs[1] and "epoch 1/1: loss" in outputs[0]
    assert final_weights(second.log_dir) == final_weights(alone)
    assert final_weights(first.log_dir) != final_weights(alone)  # another loss: the hash can tell runs apart


def test_a_failing_step_is_reported_and_stops_the_sweep_without_a_traceback(in_repo, tiny_digits_root, tmp_path,
                                                                            monkeypatch, capsys):
    bad = stage1_step(tiny_digits_root, tmp_path / "bad", "config/Digits_LT/stage_1.py",
                      "training_opt.num_epochs=banana")
    never = stage1_step(tiny_digits_root, tmp_path / "never", "config/Digits_LT/stage_1.py")
    assert sweep_over(monkeypatch, [bad, never], "--logs", str(tmp_path)) == 1
    err = capsys.readouterr().err
    out_file = (bad.log_dir / "stage1.out").read_text()
    error_lines = [line for line in out_file.splitlines() if line.startswith("error: ")]
    assert len(error_lines) == 1 and "training_opt.num_epochs" in error_lines[0] and "banana" in error_lines[0]
    assert "Tiny stage_1 seed 0 stage1: FAILED" in err and error_lines[0] in err  # named, with its error line
    assert bad.text() in err  # the command, ready to paste
    assert "Traceback" not in err and "Traceback" not in out_file
    assert not never.log_dir.exists()  # the sweep stopped at the failure


def test_an_unexpected_exception_is_a_failed_step_with_its_traceback_in_the_out(tmp_path, monkeypatch, capsys):
    def broken(argv):
        print("setting up")
        raise RuntimeError("a bug, not a user error")

    monkeypatch.setattr(cli, "main", broken)
    steps = [sweep.Step("Tiny", "softmax", 0, "stage1", [sys.executable, "main.py", "--config", "x.py"],
                        tmp_path / "run", tmp_path / "run" / FINAL_CHECKPOINT)]
    assert sweep_over(monkeypatch, steps) == 1
    out_file = (tmp_path / "run" / "stage1.out").read_text()
    assert out_file.startswith("setting up\nTraceback (most recent call last):")
    assert out_file.rstrip().endswith("RuntimeError: a bug, not a user error")
    assert "FAILED" in capsys.readouterr().err


def test_ctrl_c_in_a_step_stops_the_sweep(tmp_path, monkeypatch, capsys):
    calls = []

    def interrupted(argv):
        calls.append(argv)
        raise KeyboardInterrupt

    monkeypatch.setattr(cli, "main", interrupted)
    steps = [sweep.Step("Tiny", "softmax", 0, "stage1", [sys.executable, "main.py", name],
                        tmp_path / name, tmp_path / name / FINAL_CHECKPOINT) for name in ("a", "b")]
    assert sweep_over(monkeypatch, steps) == 130
    assert calls == [["a"]] and "interrupted" in capsys.readouterr().err


PRINT_PID = ("import os, sys; print('python', os.getpid()); os.write(1, b'fd 1\\n'); "
             "print('stderr', file=sys.stderr); os.write(2, b'fd 2\\n')")


def test_isolate_runs_the_step_in_another_process_and_in_process_in_this_one(tmp_path, monkeypatch):
    """The step prints the pid it runs in, from Python and straight to file descriptors 1 and 2."""
    step = sweep.Step("Tiny", "softmax", 0, "stage1", [sys.executable, "-c", PRINT_PID], tmp_path / "run",
                      tmp_path / "run" / FINAL_CHECKPOINT)
    assert sweep.run_step(step, isolate=True)[0]
    isolated = (tmp_path / "run" / "stage1.out").read_text()
    # in-process the same code is main.py's only argument, run by a stand-in for oltr.cli.main
    monkeypatch.setattr(cli, "main", lambda argv: exec(argv[0]))
    step.command = [sys.executable, "main.py", PRINT_PID]
    assert sweep.run_step(step)[0]
    in_process = (tmp_path / "run" / "stage1.out").read_text()
    for out in (isolated, in_process):
        assert "fd 1\n" in out and "fd 2\n" in out and "stderr\n" in out, out
    assert f"python {os.getpid()}\n" in in_process
    child_pid = int(isolated.split("python ", 1)[1].split()[0])
    assert child_pid != os.getpid()


def test_what_a_step_changes_in_the_process_is_put_back(tmp_path, monkeypatch):
    monkeypatch.delenv("OLTR_TEST_LEAK", raising=False)
    before = (torch.get_num_threads(), torch.backends.cudnn.benchmark, torch.get_float32_matmul_precision(),
              torch.get_default_dtype(), os.getcwd(), list(warnings.filters), list(logging.root.handlers),
              torch.get_rng_state())
    draws_here = torch.rand(3)
    torch.set_rng_state(before[-1])

    def leaky(argv):
        torch.set_num_threads(1 if torch.get_num_threads() > 1 else 2)
        torch.backends.cudnn.benchmark = not torch.backends.cudnn.benchmark
        torch.set_float32_matmul_precision("medium")
        torch.set_default_dtype(torch.float64)
        os.environ["OLTR_TEST_LEAK"] = "1"
        os.chdir(tmp_path)
        warnings.simplefilter("ignore")
        logging.basicConfig(filename=tmp_path / "log.txt")
        torch.manual_seed(123)
        return 0

    assert call_in_process(leaky, [], program="main.py") == 0
    after = (torch.get_num_threads(), torch.backends.cudnn.benchmark, torch.get_float32_matmul_precision(),
             torch.get_default_dtype(), os.getcwd(), list(warnings.filters), list(logging.root.handlers))
    assert after == before[:-1] and "OLTR_TEST_LEAK" not in os.environ
    assert torch.equal(torch.rand(3), draws_here)  # the generator continues where it was
