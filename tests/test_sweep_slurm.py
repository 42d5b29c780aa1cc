"""The SLURM executor on a real one-node cluster (conftest.slurm_cluster: munged, slurmctld, slurmd).

Each test submits a tiny sweep (conftest.write_tiny_checkout) with ``--executor slurm`` and checks it
against the truth outside SLURM: the same commands run by hand, SLURM's own record of when each job
started and ended, and the files each run wrote.
"""

import json
import shlex
import subprocess
import threading
import time
from pathlib import Path

import pytest
from conftest import torchrun_by_hand

from oltr.common.run_files import FINAL_CHECKPOINT, LAST_CHECKPOINT
from oltr.engine.checkpoint import load_checkpoint
from oltr.runs.evaluate import weights_sha256
from oltr.sweep import cli

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("slurm_cluster")]
SLURM = ["--executor", "slurm", "--poll", "0.5", "--time", "10", "--signal-delay", "30"]


@pytest.fixture
def one_thread(monkeypatch):
    """The jobs inherit the submitting environment: one thread, as the runs by hand below."""
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    monkeypatch.setenv("MKL_NUM_THREADS", "1")


def sha(log_dir):
    return weights_sha256(load_checkpoint(Path(log_dir) / FINAL_CHECKPOINT, what="test checkpoint"))


def by_hand(capsys, *args):
    """Run the plan's training and test commands one after another, each as its own process."""
    assert cli.main(["--dry-run", *args]) == 0
    lines = [line for line in capsys.readouterr().out.splitlines() if not line.startswith("#")][:-1]
    for line in lines:
        process = subprocess.run(shlex.split(line), capture_output=True, text=True, timeout=600)
        assert process.returncode == 0, process.stderr


def slurm_times(job_ids):
    """{job id: (start, end)} as SLURM recorded them (epoch seconds)."""
    out = subprocess.run(
        ["squeue", "-h", "-t", "all", "-j", ",".join(job_ids), "-o", "%i|%S|%e"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    stamp = lambda text: time.mktime(time.strptime(text, "%Y-%m-%dT%H:%M:%S"))
    return {job: (stamp(start), stamp(end)) for job, start, end in (line.split("|") for line in out.split())}


def steps_of(logs):
    return {step["id"]: step for step in json.loads((Path(logs) / "sweep.json").read_text())["steps"]}


def test_a_sweep_on_slurm_trains_what_the_commands_by_hand_train_in_dependency_order(tiny_checkout, one_thread, capsys):
    args = ["Tiny", "--losses", "softmax", "--recipes", "meta_embedding", "crt"]
    assert cli.main([*args, *SLURM, "--logs", "slurm", "--out", "out"]) == 0, capsys.readouterr().err
    capsys.readouterr()
    by_hand(capsys, *args, "--logs", "hand", "--out", "handout")
    for run in ("stage1_softmax", "stage2_softmax", "stage2_softmax_crt"):
        assert sha(f"slurm/Tiny/{run}") == sha(f"hand/Tiny/{run}")
    steps = steps_of("slurm")
    assert all(step["state"] == "done" and step["job_id"] for step in steps.values())
    times = slurm_times([step["job_id"] for step in steps.values()])
    job = {step_id: step["job_id"] for step_id, step in steps.items()}
    stage1 = job["Tiny/seed0/softmax/stage1"]
    for recipe in ("meta_embedding", "crt"):  # no stage 2 before its stage 1 ended, no test before its training
        assert times[job[f"Tiny/seed0/softmax/{recipe}/stage2"]][0] >= times[stage1][1]
        assert (
            times[job[f"Tiny/seed0/softmax/{recipe}/test"]][0] >= times[job[f"Tiny/seed0/softmax/{recipe}/stage2"]][1]
        )
    assert times[job["report"]][0] >= max(end for _, end in times.values() if _ != times[job["report"]][0])
    assert "| OLTR |" in Path("slurm/report.out").read_text()
    # the status command: every step, its state and its job id
    assert cli.main(["status", "slurm"]) == 0
    table = capsys.readouterr().out
    for step_id, step in steps.items():
        assert any(step["label"] in line and " done " in line and step["job_id"] in line for line in table.splitlines())
    assert "slurm sweep" in table and "6 done" in table


@pytest.mark.parametrize("sent", ["USR2", "TERM"])
def test_a_job_signalled_at_its_time_limit_is_requeued_and_ends_with_the_uninterrupted_weights(
    tiny_checkout, sent, one_thread, capsys
):
    """USR2: what SLURM sends --signal-delay seconds before the time limit (submitit's handler requeues);
    TERM: what a preemption or a time limit without --signal sends (the step's job requeues itself)."""
    Path("config/Tiny/stage_1.py").write_text(
        Path("config/Tiny/stage_1.py").read_text().replace("'num_epochs': 2", "'num_epochs': 30")
    )
    run = Path("slurm/Tiny/stage1_softmax")
    signalled = []

    def signal_mid_training():  # to the job's processes, as SLURM signals them
        deadline = time.monotonic() + 300
        while not (run / LAST_CHECKPOINT).is_file() and time.monotonic() < deadline:
            time.sleep(0.05)
        job = steps_of("slurm")["Tiny/seed0/softmax/stage1"]["job_id"]
        subprocess.run(["scancel", f"--signal={sent}", job], check=True)
        signalled.append(job)

    thread = threading.Thread(target=signal_mid_training, daemon=True)
    thread.start()
    code = cli.main(["Tiny", "--losses", "softmax", *SLURM, "--logs", "slurm", "--out", "out"])
    thread.join(timeout=5)
    assert code == 0, capsys.readouterr().err
    output = (run / "stage1.out").read_text()
    assert signalled and f"stopped by SIG{sent} at " in output
    assert output.count(f"job {signalled[0]} on ") == 2  # the same job, requeued
    assert "resumed from" in output
    capsys.readouterr()
    by_hand(capsys, "Tiny", "--losses", "softmax", "--logs", "hand")
    assert sha(run) == sha("hand/Tiny/stage1_softmax")


def test_a_failing_job_stops_its_dependents_and_the_summary_and_status_name_it(tiny_checkout, capsys):
    Path("config/Tiny/stage_1_cb_focal.py").write_text(
        "_base_ = 'stage_1.py'\nconfig = {'criterions': {'PerformanceLoss': {'loss': 'cb_focal'}}, "
        "'training_opt': {'split_dir': 'no_such_folder'}}\n"
    )
    code = cli.main(["Tiny", "--losses", "cb_focal", "softmax", *SLURM, "--logs", "slurm", "--out", "out"])
    captured = capsys.readouterr()
    assert code == 1
    failed = [line for line in captured.err.splitlines() if line.startswith("FAILED ")]
    assert len(failed) == 1 and failed[0].startswith("FAILED Tiny cb_focal seed 0 stage1: exit code 2")
    assert "slurm/Tiny/stage1_cb_focal/stage1.out" in failed[0] and "rerun: " in failed[0]
    steps = steps_of("slurm")
    assert steps["Tiny/seed0/cb_focal/stage1"]["state"] == "failed"
    assert [steps[f"Tiny/seed0/cb_focal/meta_embedding/{p}"]["state"] for p in ("stage2", "test")] == ["skipped"] * 2
    assert all(
        steps[f"Tiny/seed0/softmax/{p}"]["state"] == "done"
        for p in ("stage1", "meta_embedding/stage2", "meta_embedding/test")
    )
    assert steps["report"]["state"] == "done"
    report = Path("slurm/report.out").read_text()
    assert "| OLTR |" in report and "missing: Tiny cb_focal seed 0 test (slurm/Tiny/stage2_cb_focal)" in report
    assert cli.main(["status", "slurm"]) == 0
    table = capsys.readouterr().out
    assert "1 failed" in table and "2 skipped" in table
    line = next(line for line in table.splitlines() if line.startswith("Tiny cb_focal seed 0 stage1"))
    assert "failed" in line and steps["Tiny/seed0/cb_focal/stage1"]["job_id"] in line


def test_sbatch_refusing_a_partition_is_one_line_and_leaves_nothing_queued(tiny_checkout, capsys):
    code = cli.main(["Tiny", "--losses", "softmax", *SLURM, "--partition", "nosuch", "--logs", "slurm"])
    err = capsys.readouterr().err
    assert code == 2 and len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert "sbatch refused the job of Tiny softmax seed 0 stage1" in err and "partition" in err
    assert "--partition" in err and "nothing of this sweep was left queued" in err
    queued = subprocess.run(["squeue", "-h"], capture_output=True, text=True).stdout
    assert queued.strip() == ""


def test_without_slurm_on_path_the_executor_says_so_in_one_line(tiny_checkout, capsys, monkeypatch):
    monkeypatch.setenv("PATH", "/nonexistent")
    code = cli.main(["Tiny", "--losses", "softmax", "--executor", "slurm", "--logs", "slurm"])
    err = capsys.readouterr().err
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert "sbatch" in err and "SLURM login node" in err and "--executor local" in err


def test_a_training_job_over_several_tasks_is_ddp_with_the_weights_of_torchrun(tiny_checkout, one_thread):
    """Two tasks of one job (as --gpus-per-step 2 asks for, here on CPUs with gloo): each task runs main.py
    with RANK, WORLD_SIZE, LOCAL_RANK and MASTER_ADDR from SLURM, and the run equals torchrun's by hand."""
    import sys

    from oltr.sweep import plan, slurm, state

    steps = plan.build_plan(["Tiny"], ["softmax"], 1, "slurm", "out")[:1]
    sweep_state = state.SweepState(Path("slurm/sweep.json"), steps, "slurm")
    executor = slurm.SlurmExecutor(
        "slurm", sys.executable, time_min=10, tasks_per_node=2, signal_delay_s=30, poll_s=0.5, echo=lambda line: None
    )
    assert executor.run(steps, sweep_state) == 0, Path("slurm/Tiny/stage1_softmax/stage1.out").read_text()
    assert Path("slurm/Tiny/stage1_softmax/stage1.out.rank1").is_file()  # the second task's own output
    torchrun_by_hand(steps[0].argv, "slurm/Tiny/stage1_softmax", "hand")
    assert sha("slurm/Tiny/stage1_softmax") == sha("hand")


def test_detach_submits_and_a_rerun_while_its_jobs_live_is_refused(tiny_checkout, capsys):
    args = ["Tiny", "--losses", "softmax", *SLURM, "--logs", "slurm", "--out", "out"]
    assert cli.main([*args, "--detach"]) == 0
    out = capsys.readouterr().out
    assert "submitted 4 jobs; follow them with: oltr sweep status slurm" in out
    jobs = [step["job_id"] for step in steps_of("slurm").values()]
    try:
        code = cli.main([*args, "--skip-done"])
        err = capsys.readouterr().err
        assert code == 2 and len(err.strip().splitlines()) == 1
        assert "jobs of the last submission to slurm are still queued or running" in err and "scancel" in err
    finally:
        subprocess.run(["scancel", *jobs], check=True)
