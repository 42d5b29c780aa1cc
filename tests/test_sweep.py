"""The Tables 3-4 sweep (oltr/sweep/, ./run_all.sh): its plan, its checks, skipping and failures.

Nothing here trains: the local executor's ``start`` is replaced by a recorder that "runs" each step at
once (writing its done marker, or failing as scripted), so each test sees exactly which commands the
sweep would have run, in which order. tests/test_sweep_local.py runs them for real.
"""

import json
import os
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from oltr.sweep import cli as sweep
from oltr.sweep import local

REPO = Path(__file__).resolve().parent.parent
LOSSES = ("softmax", "focal", "asl", "cfl", "casl")
PHASES = ("stage1", "stage2", "test")


@pytest.fixture
def in_repo(monkeypatch):
    monkeypatch.chdir(REPO)


def dry_run(capsys, *args):
    assert sweep.main(["--dry-run", *args]) == 0
    return [shlex.split(line) for line in capsys.readouterr().out.splitlines() if not line.startswith("#")]


def opts_of(command):
    """The KEY=VALUE overrides after --opts, as a dict."""
    return dict(item.split("=", 1) for item in command[command.index("--opts") + 1 :])


def phase_of(command):
    if "--test" in command:
        assert "--test_open" in command  # both tests in one command
        return "test"
    return "stage2" if "stage_2" in command[command.index("--config") + 1] else "stage1"


def expected_configs(dataset, loss):
    if loss == "softmax":
        return f"config/{dataset}/stage_1.py", f"config/{dataset}/stage_2_meta_embedding.py"
    return f"config/{dataset}/stage_1_{loss}.py", f"config/{dataset}/stage_2_{loss}_meta_embedding.py"


# ----------------------------------------------------------------------------- --dry-run


def test_dry_run_lists_the_15_steps_of_one_dataset_then_the_report(in_repo, capsys):
    commands = dry_run(capsys)
    runs, report = commands[:-1], commands[-1]
    assert len(runs) == 15
    seen = []
    for command in runs:
        assert command[1] == "main.py"
        opts = opts_of(command)
        loss = opts["training_opt.log_dir"].rsplit("_", 1)[1]
        phase = phase_of(command)
        seen.append((loss, phase))
        stage1_config, stage2_config = expected_configs("Digits_LT", loss)
        config = command[command.index("--config") + 1]
        assert config == (stage1_config if phase == "stage1" else stage2_config)
        assert opts["seed"] == "0"
        if phase == "stage1":
            assert opts["training_opt.log_dir"] == f"logs/Digits_LT/stage1_{loss}"
        else:  # stage 2 and both tests read the stage-2 run, which starts from its own loss's stage 1
            assert opts["training_opt.log_dir"] == f"logs/Digits_LT/stage2_{loss}"
            assert opts["training_opt.stage1_log_dir"] == f"logs/Digits_LT/stage1_{loss}"
    # each loss once per phase, in pipeline order: stage 1, stage 2, then both tests in one command
    assert seen == [(loss, phase) for loss in LOSSES for phase in PHASES]
    assert report[1:4] == ["-m", "oltr.report", "logs/Digits_LT"]
    assert report[report.index("--out") + 1] == "results"


def test_two_seeds_give_30_steps_in_per_seed_log_dirs(in_repo, capsys):
    commands = dry_run(capsys, "--seeds", "2")
    runs = commands[:-1]
    assert len(runs) == 30 and commands[-1][2] == "oltr.report"
    for seed in (0, 1):
        mine = [c for c in runs if opts_of(c)["seed"] == str(seed)]
        assert len(mine) == 15
        for command in mine:
            opts = opts_of(command)
            assert opts["training_opt.log_dir"].startswith(f"logs/Digits_LT/seed{seed}/stage")
            if "training_opt.stage1_log_dir" in opts:
                assert opts["training_opt.stage1_log_dir"].startswith(f"logs/Digits_LT/seed{seed}/stage1_")
    log_dirs = {opts_of(c)["training_opt.log_dir"] for c in runs}
    assert len(log_dirs) == 2 * 2 * len(LOSSES)  # no two seeds share a run directory


def test_losses_subset(in_repo, capsys):
    commands = dry_run(capsys, "--losses", "cfl", "focal")
    runs = commands[:-1]
    assert len(runs) == 6
    assert {opts_of(c)["training_opt.log_dir"].rsplit("_", 1)[1] for c in runs} == {"cfl", "focal"}


def test_several_datasets_and_custom_logs(in_repo, capsys, tmp_path):
    commands = dry_run(capsys, "Digits_LT", "CIFAR10_LT", "--logs", str(tmp_path), "--out", "elsewhere")
    runs, report = commands[:-1], commands[-1]
    assert len(runs) == 30
    assert sum("config/CIFAR10_LT/" in c[c.index("--config") + 1] for c in runs) == 15
    assert report[3:5] == [str(tmp_path / "Digits_LT"), str(tmp_path / "CIFAR10_LT")]
    assert report[report.index("--out") + 1] == "elsewhere"


def test_unknown_loss_exits_2_with_one_line(in_repo, capsys):
    assert sweep.main(["--dry-run", "--losses", "cfl", "hinge"]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert len(captured.err.strip().splitlines()) == 1
    assert "hinge" in captured.err and "softmax, focal, asl, cfl, casl" in captured.err


def test_unknown_dataset_and_bad_seeds_exit_2(in_repo, capsys):
    assert sweep.main(["--dry-run", "NoSuch_LT"]) == 2
    assert "NoSuch_LT" in capsys.readouterr().err
    assert sweep.main(["--dry-run", "--seeds", "0"]) == 2
    assert "--seeds" in capsys.readouterr().err


# ----------------------------------------------------------------------------- missing data


@pytest.fixture
def bare_checkout(tmp_path, monkeypatch):
    """A working directory with the configs but no data/, whatever the real checkout holds."""
    (tmp_path / "config").symlink_to(REPO / "config", target_is_directory=True)
    monkeypatch.chdir(tmp_path)
    return tmp_path


class _Finished:
    """A step the recorder 'ran': already ended with its exit code."""

    sentinel = None

    def __init__(self, step, code):
        self.step, self.code, self.gpus, self.started = step, code, [], 0.0

    def exit_code(self):
        return self.code

    def close(self):
        pass


@pytest.fixture
def recorder(monkeypatch):
    """Stand in for the local executor's process start: record the step's command line, as the sweep prints
    it, and 'run' it at once: exit 0 with its done marker written, or a scripted failure printed into its
    .out and exit 2."""
    calls = []
    failures = {}  # call number (1-based) -> text the failing run prints

    def start(self, step, gpus=()):
        calls.append(step.command(sys.executable))
        step.log_dir.mkdir(parents=True, exist_ok=True)
        if len(calls) in failures:
            step.out_file.write_text(f"epoch 1 step 3/9 loss 2.0412\n{failures[len(calls)]}\n")
            return _Finished(step, 2)
        step.out_file.write_text("| OLTR | ... |\n" if step.phase == "report" else "ok\n")
        if step.done_marker is not None:
            step.done_marker.write_text("done")
        return _Finished(step, 0)

    monkeypatch.setattr(local.LocalExecutor, "start", start)
    monkeypatch.setattr(local.LocalExecutor, "_wait", staticmethod(lambda running: None))
    monkeypatch.setattr(sweep, "check_main_py", lambda: None)
    start.calls, start.failures = calls, failures
    return start


@pytest.mark.parametrize(
    "dataset, split_dir, data_root, source",
    [
        ("ImageNet_LT", "data/ImageNet_LT", "data/ImageNet", "ImageNet 2012 (ILSVRC2012)"),
        ("Places_LT", "data/Places_LT", "data/Places365", "Places365-Standard"),
    ],
)
def test_missing_split_files_stop_with_what_to_download_and_where(
    bare_checkout, recorder, capsys, dataset, split_dir, data_root, source
):
    assert sweep.main([dataset]) == 2
    error = capsys.readouterr().err.strip()
    assert len(error.splitlines()) == 1 and error.startswith("error: ")
    for split in ("train", "val", "test", "open"):
        assert f"{split_dir}/{dataset}_{split}.txt" in error  # the missing files, by path
    assert "zhmiao/OpenLongTailRecognition-OLTR" in error  # where the split files come from
    assert source in error  # which images
    assert f"put the split files in {split_dir}/" in error and f"images under {data_root}/" in error
    assert "data/README.md" in error
    assert recorder.calls == []  # nothing ran


def test_missing_images_stop_before_any_run(bare_checkout, recorder, capsys):
    split_dir = bare_checkout / "data" / "ImageNet_LT"
    split_dir.mkdir(parents=True)
    for split in ("train", "val", "test", "open"):
        (split_dir / f"ImageNet_LT_{split}.txt").write_text("train/n01440764/n01440764_190.JPEG 0\n")
    assert sweep.main(["ImageNet_LT"]) == 2
    error = capsys.readouterr().err
    assert "data/ImageNet/train/n01440764/n01440764_190.JPEG" in error and "ILSVRC2012" in error
    assert recorder.calls == []


def test_cifar_offline_stops_with_the_archive_to_download(bare_checkout, recorder, capsys, monkeypatch):
    import torchvision

    def offline(*args, **kwargs):
        raise OSError("<urlopen error [Errno -2] Name or service not known>")

    monkeypatch.setattr(torchvision.datasets.CIFAR100, "__init__", offline)
    assert sweep.main(["CIFAR100_LT"]) == 2
    error = capsys.readouterr().err
    assert "https://www.cs.toronto.edu/~kriz/cifar-100-python.tar.gz" in error
    assert "data/cifar/" in error and "data/cifar/cifar-100-python/" in error
    assert recorder.calls == []


# ----------------------------------------------------------------------------- running


@pytest.fixture
def runner(recorder, monkeypatch):
    """The recorder, with the data check (tested above) off so nothing is built in the checkout."""
    monkeypatch.setattr(sweep, "check_data_present", lambda dataset: None)
    return recorder


def all_markers(logs, dataset="Digits_LT", losses=LOSSES):
    for loss in losses:
        for name, marker in (
            ("stage1", "final_model_checkpoint.pth"),
            ("stage2", "final_model_checkpoint.pth"),
            ("stage2", "results_test_closed.json"),
            ("stage2", "results_test_open.json"),
        ):
            path = logs / dataset / f"{name}_{loss}" / marker
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text("done")


def test_a_full_run_runs_every_step_in_order_then_the_report(in_repo, runner, tmp_path, capsys):
    logs = tmp_path / "logs"
    args = ["--losses", "softmax", "cfl", "--logs", str(logs), "--out", str(tmp_path / "out")]
    assert sweep.main(args) == 0
    out = capsys.readouterr().out
    assert "[Digits_LT cfl seed 0 test] done" in out and "7 done (of 7 steps" in out
    assert "| OLTR | ... |" in out  # the report's output, printed at the end
    assert runner.calls == _dry(args, capsys)  # exactly what --dry-run prints, in its order
    # each run's output is kept next to its results
    assert (logs / "Digits_LT" / "stage1_softmax" / "stage1.out").is_file()
    assert (logs / "Digits_LT" / "stage2_cfl" / "test.out").is_file()
    states = json.loads((logs / "sweep.json").read_text())["steps"]
    assert [s["state"] for s in states] == ["done"] * 7 and states[-1]["needs"] == [
        "Digits_LT/seed0/softmax/meta_embedding/test",
        "Digits_LT/seed0/cfl/meta_embedding/test",
    ]


def _dry(args, capsys):
    return dry_run(capsys, *args)


def test_skip_done_with_every_marker_runs_nothing_but_the_report(in_repo, runner, tmp_path, capsys):
    logs = tmp_path / "logs"
    all_markers(logs)
    assert sweep.main(["--skip-done", "--logs", str(logs), "--out", str(tmp_path / "out")]) == 0
    assert len(runner.calls) == 1
    assert runner.calls[0][1:3] == ["-m", "oltr.report"] and str(logs / "Digits_LT") in runner.calls[0]
    out = capsys.readouterr().out
    assert "16 steps (15 done already)" in out and "16 done (of 16 steps" in out


def test_skip_done_runs_only_the_missing_steps(in_repo, runner, tmp_path, capsys):
    logs = tmp_path / "logs"
    all_markers(logs)
    (logs / "Digits_LT" / "stage2_asl" / "results_test_open.json").unlink()
    (logs / "Digits_LT" / "stage1_casl" / "final_model_checkpoint.pth").unlink()
    assert sweep.main(["--skip-done", "--logs", str(logs)]) == 0
    ran = [(phase_of(c), opts_of(c)["training_opt.log_dir"].rsplit("_", 1)[1]) for c in runner.calls[:-1]]
    assert ran == [("test", "asl"), ("stage1", "casl")]
    assert runner.calls[-1][2] == "oltr.report"


def test_without_skip_done_finished_steps_run_again(in_repo, runner, tmp_path):
    logs = tmp_path / "logs"
    all_markers(logs, losses=("focal",))
    # a plain rerun over existing runs is refused (test_run_dir.py); --overwrite runs them again
    assert sweep.main(["--losses", "focal", "--overwrite", "--logs", str(logs)]) == 0
    assert len(runner.calls) == 3 + 1


def test_a_failure_skips_its_dependents_the_rest_runs_and_the_summary_names_it(in_repo, runner, tmp_path, capsys):
    logs = tmp_path / "logs"
    runner.failures[5] = "error: criterions.PerformanceLoss: gamma must be >= 0, got -1.0"
    assert sweep.main(["--logs", str(logs)]) == 1
    failed = runner.calls[4]
    assert phase_of(failed) == "stage2" and opts_of(failed)["training_opt.log_dir"].endswith("stage2_focal")
    ran = [(phase_of(c), opts_of(c)["training_opt.log_dir"].rsplit("_", 1)[1]) for c in runner.calls[:-1]]
    assert ("test", "focal") not in ran and len(ran) == 14  # its test is skipped, every other step runs
    assert runner.calls[-1][2] == "oltr.report"  # the report still runs, over what finished
    err = capsys.readouterr().err
    failed_lines = [line for line in err.splitlines() if line.startswith("FAILED ")]
    assert len(failed_lines) == 1
    assert failed_lines[0].startswith("FAILED Digits_LT focal seed 0 stage2: exit code 2; log ")
    assert " ".join(shlex.quote(part) for part in failed) in failed_lines[0]  # the command, ready to paste
    assert str(logs / "Digits_LT" / "stage2_focal" / "stage2.out") in failed_lines[0]
    states = {s["id"]: s["state"] for s in json.loads((logs / "sweep.json").read_text())["steps"]}
    assert states["Digits_LT/seed0/focal/meta_embedding/test"] == "skipped"
    assert list(states.values()).count("done") == 15 - 2 + 1


def test_bad_jobs_threads_and_sbatch_args_are_one_line(in_repo, runner, capsys, tmp_path):
    import os

    from conftest import one_line_error

    cores = len(os.sched_getaffinity(0))
    for args, culprit in (
        (["--jobs", "0"], "--jobs"),
        (["--jobs", "x"], "--jobs"),
        (["--threads-per-step", "-1"], "--threads-per-step"),
        (["--jobs", str(cores + 1)], f"--jobs {cores + 1}"),
        (["--gpus-per-step", "2"], "--gpus-per-step 2"),
        (["--sbatch-arg", "novalue"], "--sbatch-arg"),
        (["--executor", "slurm", "--jobs", "2"], "--jobs is the local executor's"),
    ):
        code = sweep.main(["--losses", "softmax", "--logs", str(tmp_path), *args])
        one_line_error(code, capsys.readouterr().err, culprit)
    assert runner.calls == []


# ----------------------------------------------------------------------------- the script itself


def test_run_all_sh_dry_run():
    env = dict(os.environ, PYTHON=sys.executable)
    process = subprocess.run(
        ["./run_all.sh", "--dry-run"], cwd=REPO, env=env, capture_output=True, text=True, timeout=120
    )
    assert process.returncode == 0, process.stderr
    lines = [line for line in process.stdout.splitlines() if not line.startswith("# [")]
    assert len(lines) == 16
    assert all(" main.py --config config/Digits_LT/" in line for line in lines[:-1])
    assert " -m oltr.report logs/Digits_LT --out results" in lines[-1]
