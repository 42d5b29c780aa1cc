"""The local executor for real: every step a fresh process from the fork server, --jobs 1 and 2, failures, Ctrl-C.

The sweeps run from a tiny checkout (conftest.write_tiny_checkout: Digits_LT's configs on the tiny
splits). The independent truth is each step's command run by hand, one after another, as its own
``python main.py`` process: the sweep must train bit-identical weights and write the same results.
"""

import json
import os
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import REPO, torchrun_by_hand

from oltr.common.run_files import FINAL_CHECKPOINT, LAST_CHECKPOINT, LOCK_FILE, RESULTS_CLOSED, RESULTS_OPEN
from oltr.engine.checkpoint import load_checkpoint
from oltr.runs.evaluate import weights_sha256
from oltr.sweep import cli, local, plan

pytestmark = pytest.mark.slow
ONE_THREAD = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")


def sha(log_dir):
    return weights_sha256(load_checkpoint(Path(log_dir) / FINAL_CHECKPOINT, what="test checkpoint"))


def comparable(results_file):
    """A results file without what names its run directory or the moment (they differ between two runs)."""
    results = json.loads(Path(results_file).read_text())
    for key in ("checkpoint", "checkpoint_config", "config_hash"):  # they name the run directory
        results.pop(key, None)
    return results


def commands(capsys, *args):
    assert cli.main(["--dry-run", *args]) == 0
    return [shlex.split(line) for line in capsys.readouterr().out.splitlines() if not line.startswith("#")]


def test_jobs_1_and_2_train_the_weights_of_the_commands_run_by_hand(tiny_checkout, capsys):
    args = ["Tiny", "--losses", "softmax", "focal", "--threads-per-step", "1"]
    for jobs in (1, 2):
        assert cli.main([*args, "--jobs", str(jobs), "--logs", f"jobs{jobs}", "--out", f"out{jobs}"]) == 0, (
            capsys.readouterr()
        )
        out = capsys.readouterr().out
        assert "| OLTR + FL |" in out and "7 done (of 7 steps" in out  # the report's table, then the count
        # the paired row ends with the open F-measure's and AUROC's paired intervals; the scorer table follows
        paired = next(line for line in out.splitlines() if line.startswith("| OLTR + FL - OLTR (paired)"))
        assert all("[" in cell for cell in paired.strip(" |").split("|")[-3:-1])
        assert "### Tiny: open-set scorers" in out and "| OLTR + FL | energy (T=1) |" in out
    # by hand: every command of the plan, one after another, each its own process, on one thread too
    for command in commands(capsys, *args, "--logs", "byhand", "--out", "outhand")[:-1]:
        process = subprocess.run(command, env=ONE_THREAD, capture_output=True, text=True, timeout=600)
        assert process.returncode == 0, process.stderr
    runs = ["stage1_softmax", "stage2_softmax", "stage1_focal", "stage2_focal"]
    for run in runs:
        assert sha(f"jobs1/Tiny/{run}") == sha(f"jobs2/Tiny/{run}") == sha(f"byhand/Tiny/{run}"), run
    assert sha("jobs1/Tiny/stage1_softmax") != sha("jobs1/Tiny/stage1_focal")  # the hash tells runs apart
    for run in ("stage2_softmax", "stage2_focal"):
        for name in (RESULTS_CLOSED, RESULTS_OPEN):
            assert (
                comparable(f"jobs1/Tiny/{run}/{name}")
                == comparable(f"jobs2/Tiny/{run}/{name}")
                == comparable(f"byhand/Tiny/{run}/{name}")
            )
    state = json.loads(Path("jobs2/sweep.json").read_text())
    assert [step["state"] for step in state["steps"]] == ["done"] * 7
    assert state["executor"] == "local" and state["steps"][-1]["id"] == "report"
    # with two jobs, the two losses' stage-1 runs overlapped in time
    started = {s["id"]: s["started"] for s in state["steps"]}
    ended = {s["id"]: s["ended"] for s in state["steps"]}
    assert started["Tiny/seed0/focal/stage1"] <= ended["Tiny/seed0/softmax/stage1"]


PROBE = "sweep_probe:main"


def test_every_step_is_a_fresh_process_with_nothing_from_the_step_before(tmp_path, monkeypatch):
    """Two probe steps: the first changes what a step could leave behind (an environment variable,
    torch's threads, a module global, the RNG); the second sees none of it, and neither runs in the sweep."""
    monkeypatch.syspath_prepend(str(Path(__file__).parent))
    monkeypatch.setitem(plan.PROGRAMS, "probe", (["-m", "sweep_probe"], PROBE))
    steps = [
        plan.Step(
            name,
            "stage1",
            "probe",
            [name, str(tmp_path / f"{name}.json")],
            tmp_path / name,
            tmp_path / f"{name}.json",
            needs=needs,
        )
        for name, needs in (("first", []), ("second", ["first"]))
    ]
    state = cli.SweepState(tmp_path / "sweep.json", steps, "local")
    assert local.LocalExecutor(jobs=1, echo=lambda line: None).run(steps, state) == 0
    first, second = (json.loads((tmp_path / f"{name}.json").read_text()) for name in ("first", "second"))
    assert first["pid"] != second["pid"] and os.getpid() not in (first["pid"], second["pid"])
    assert first["leak_before"] is None and second["leak_before"] is None  # the first step's changes stayed there
    assert first["threads_before"] == second["threads_before"] and first["rand"] == second["rand"]
    assert (
        "torch" in first["preloaded"] and "oltr.cli" in first["preloaded"]
    )  # from the fork server, not imported again
    assert (tmp_path / "first" / "stage1.out").read_text().startswith("probe first")


def test_a_failure_stops_its_dependents_not_the_others_and_is_named(tiny_checkout, capsys):
    # cb_focal's stage 1 reads its splits from a folder without them: it fails when it runs (the plan's
    # config checks pass); softmax runs to the end, and the report covers it
    Path("config/Tiny/stage_1_cb_focal.py").write_text(
        "_base_ = 'stage_1.py'\nconfig = {'criterions': {'PerformanceLoss': {'loss': 'cb_focal'}}, "
        "'training_opt': {'split_dir': 'no_such_folder'}}\n"
    )
    code = cli.main(["Tiny", "--losses", "cb_focal", "softmax", "--logs", "logs", "--out", "out"])
    captured = capsys.readouterr()
    assert code == 1
    failed = [line for line in captured.err.splitlines() if line.startswith("FAILED ")]
    assert len(failed) == 1 and failed[0].startswith("FAILED Tiny cb_focal seed 0 stage1: exit code ")
    assert "logs/Tiny/stage1_cb_focal/stage1.out" in failed[0] and "rerun: " in failed[0]
    assert "main.py --config config/Tiny/stage_1_cb_focal.py --resume --opts" in failed[0]
    state = {s["id"]: s for s in json.loads(Path("logs/sweep.json").read_text())["steps"]}
    assert state["Tiny/seed0/cb_focal/stage1"]["state"] == "failed"
    assert state["Tiny/seed0/cb_focal/meta_embedding/stage2"]["state"] == "skipped"
    assert state["Tiny/seed0/cb_focal/meta_embedding/test"]["state"] == "skipped"
    assert all(
        state[f"Tiny/seed0/softmax/{s}"]["state"] == "done"
        for s in ("stage1", "meta_embedding/stage2", "meta_embedding/test")
    )
    assert state["report"]["state"] == "done"  # after any end: the report covers the finished runs ...
    assert "| OLTR |" in captured.out
    assert (
        "missing: Tiny cb_focal seed 0 test (logs/Tiny/stage2_cb_focal): skipped" in captured.out
    )  # ... names the rest
    assert cli.main(["status", "logs"]) == 0
    table = capsys.readouterr().out.splitlines()
    assert table[0].split() == ["step", "state", "job", "exit", "seconds", "note"]
    assert table[1].startswith("Tiny cb_focal seed 0 stage1") and "failed" in table[1] and " 2 " in table[1]
    assert table[-1].startswith("local sweep, updated ") and "4 done, 1 failed, 2 skipped" in table[-1]
    error_line = Path("logs/Tiny/stage1_cb_focal/stage1.out").read_text().strip().splitlines()[-1]
    assert error_line.startswith("error: ") and "no_such_folder" in error_line


def test_ctrl_c_or_sigterm_stops_the_running_step_cleanly_and_skip_done_continues(tiny_checkout, capsys):
    Path("config/Tiny/stage_1.py").write_text(
        Path("config/Tiny/stage_1.py").read_text().replace("'num_epochs': 2", "'num_epochs': 40")
    )
    sweep_command = [sys.executable, "-m", "oltr.sweep", "Tiny", "--losses", "softmax", "--logs", "logs"]
    env = dict(ONE_THREAD, PYTHONPATH=str(REPO))
    process = subprocess.Popen(sweep_command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    run = Path("logs/Tiny/stage1_softmax")
    deadline = time.monotonic() + 120
    while not (run / LAST_CHECKPOINT).is_file() and time.monotonic() < deadline:
        time.sleep(0.05)
    process.send_signal(signal.SIGTERM)  # to the sweep alone, as kill does: it stops its running step as on Ctrl-C
    out, err = process.communicate(timeout=120)
    assert process.returncode == 130, err
    assert "--skip-done continues" in err and "Traceback" not in err
    assert not (run / LOCK_FILE).exists() and not (run / FINAL_CHECKPOINT).exists()  # no half-written run
    assert "interrupted; rerun with --resume" in (run / "stage1.out").read_text()
    steps = json.loads(Path("logs/sweep.json").read_text())["steps"]
    assert steps[0]["state"] == "pending" and "interrupted" in steps[0]["note"]
    assert [s["state"] for s in steps[1:]] == ["pending"] * 3
    resumed = subprocess.run(sweep_command + ["--skip-done"], env=env, capture_output=True, text=True, timeout=600)
    assert resumed.returncode == 0, resumed.stderr
    assert "resumed from" in (run / "stage1.out").read_text()
    # the interrupted and resumed stage 1 ends with the weights of the same command run uninterrupted
    command = commands(capsys, "Tiny", "--losses", "softmax", "--logs", "alone")[0]
    assert subprocess.run(command, env=ONE_THREAD, capture_output=True, timeout=600).returncode == 0
    assert sha(run) == sha("alone/Tiny/stage1_softmax")


def probe_steps(tmp_path, names, seconds=None):
    return [
        plan.Step(
            name,
            "stage1",
            "probe",
            [name, str(tmp_path / f"{name}.json"), *([str(seconds)] if seconds else [])],
            tmp_path / name,
            tmp_path / f"{name}.json",
        )
        for name in names
    ]


def test_each_gpu_step_gets_its_own_devices_and_cpu_jobs_share_the_cores(tmp_path, monkeypatch):
    """Four GPUs, two per step: the steps overlap and never share a GPU (CUDA_VISIBLE_DEVICES is the
    only way a step learns its GPUs, so no GPU is needed to check it)."""
    monkeypatch.syspath_prepend(str(Path(__file__).parent))
    monkeypatch.setitem(plan.PROGRAMS, "probe", (["-m", "sweep_probe"], PROBE))
    steps = probe_steps(tmp_path, ["a", "b", "c"], seconds=1.0)
    # (torchrun starts main.py steps over several GPUs; the probe runs once, in the fork server's child)
    executor = local.LocalExecutor(jobs=2, gpus=["0", "1", "2", "3"], gpus_per_step=2, echo=lambda line: None)
    state = cli.SweepState(tmp_path / "sweep.json", steps, "local")
    assert executor.run(steps, state) == 0
    seen = {name: json.loads((tmp_path / f"{name}.json").read_text())["cuda_visible_devices"] for name in "abc"}
    assert seen["a"] == "0,1" and seen["b"] == "2,3" and seen["c"] in ("0,1", "2,3")  # c reuses a freed pair
    records = {r["id"]: r for r in json.loads((tmp_path / "sweep.json").read_text())["steps"]}
    assert records["b"]["started"] <= records["a"]["ended"]  # two at a time
    # on a CPU, two jobs of one thread each
    steps = probe_steps(tmp_path, ["d", "e"])
    state = cli.SweepState(tmp_path / "sweep2.json", steps, "local")
    assert local.LocalExecutor(jobs=2, threads=1, echo=lambda line: None).run(steps, state) == 0
    for name in "de":
        facts = json.loads((tmp_path / f"{name}.json").read_text())
        assert facts["threads_before"] == 1 and facts["omp"] == "1" and facts["cuda_visible_devices"] is None


def test_a_step_over_several_devices_runs_under_torchrun(tiny_checkout, capsys):
    """--gpus-per-step K: torchrun with K processes (gloo on a CPU here, NCCL on GPUs); the DDP run writes
    the same weights as the same torchrun command by hand."""
    steps = plan.build_plan(["Tiny"], ["softmax"], 1, "ddp", "out")[:1]
    state = cli.SweepState(Path("ddp/sweep.json"), steps, "local")
    assert local.LocalExecutor(jobs=1, gpus_per_step=2, echo=lambda line: None).run(steps, state) == 0
    output = Path("ddp/Tiny/stage1_softmax/stage1.out").read_text()
    torchrun_by_hand(steps[0].argv, "ddp/Tiny/stage1_softmax", "hand", env=ONE_THREAD)
    assert sha("ddp/Tiny/stage1_softmax") == sha("hand"), output


def test_status_of_a_folder_without_a_sweep_is_one_line(tmp_path, capsys):
    from conftest import one_line_error

    one_line_error(cli.main(["status", str(tmp_path)]), capsys.readouterr().err, f"no sweep.json in {tmp_path}")
    (tmp_path / "sweep.json").write_text("{not json")
    one_line_error(cli.main(["status", str(tmp_path)]), capsys.readouterr().err, "sweep.json", "--skip-done")
