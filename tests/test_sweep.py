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


# ----------------------------------------------------------------------------- any registry loss, any dataset


def resolved(command):
    """The validated config a planned main.py command would run with (its --config, --overlay and --opts)."""
    from oltr.cli import build_parser, overrides_from_args
    from oltr.config.schema import load_config

    args = build_parser().parse_args(command[2:])
    return load_config(args.config, overrides_from_args(args), overlays=args.overlay)


def test_any_registry_loss_runs_at_its_defaults_over_the_base_configs(in_repo, capsys):
    commands = dry_run(capsys, "--losses", "efl", "cb_focal")
    runs = commands[:-1]
    assert len(runs) == 6
    for command in runs:
        config = resolved(command)
        loss = opts_of(command)["criterions.PerformanceLoss.loss"]
        assert config["criterions"]["PerformanceLoss"] == {"loss": loss, "loss_params": {}, "weight": 1.0}
        stage = 1 if phase_of(command) == "stage1" else 2
        assert command[command.index("--config") + 1] == expected_configs("Digits_LT", "softmax")[stage - 1]
        assert config["training_opt"]["log_dir"] == f"logs/Digits_LT/stage{stage}_{loss}"
        assert config["training_opt"]["stage"] == stage
        if stage == 2:
            assert config["training_opt"]["stage1_log_dir"] == f"logs/Digits_LT/stage1_{loss}"
            assert config["memory"]["centroids"] and config["criterions"]["FeatureLoss"]["loss"] == "disc_centroids"


def test_the_dry_run_commands_resolve_to_the_named_entry_points_configs(in_repo, capsys):
    from oltr.config.schema import load_config

    for command in dry_run(capsys)[:-1]:
        config = command[command.index("--config") + 1]
        opts = [f"{key}={value}" for key, value in opts_of(command).items() if key != "seed"]
        assert resolved(command) == load_config(config, opts)  # seed=0 is every config's own


@pytest.fixture
def new_dataset(tmp_path, monkeypatch):
    """A checkout whose config/New_LT has only its two base files (over Digits_LT's), and the shared overlays."""
    config = tmp_path / "config"
    config.mkdir()
    for shared in ("Digits_LT", "losses", "recipes", "replay_published"):
        (config / shared).symlink_to(REPO / "config" / shared, target_is_directory=True)
    (config / "New_LT").mkdir()
    (config / "New_LT" / "stage_1.py").write_text(
        '_base_ = "../Digits_LT/stage_1.py"\nconfig = {"training_opt": {"log_dir": "logs/New_LT/stage1"}}\n'
    )
    (config / "New_LT" / "stage_2_meta_embedding.py").write_text(
        '_base_ = ["stage_1.py", "../recipes/stage_2_meta_embedding.py"]\n'
        'config = {"training_opt": {"log_dir": "logs/New_LT/stage2", "stage1_log_dir": "logs/New_LT/stage1"}}\n'
    )
    monkeypatch.chdir(tmp_path)
    return config / "New_LT"


def test_a_new_dataset_with_only_its_two_base_files_plans_every_loss(new_dataset, capsys):
    from oltr.config.schema import load_config

    commands = dry_run(capsys, "New_LT", "--losses", *LOSSES, "efl")
    runs = commands[:-1]
    assert len(runs) == 3 * (len(LOSSES) + 1)
    assert commands[-1][3] == "logs/New_LT"
    for command in runs:
        loss = opts_of(command)["training_opt.log_dir"].rsplit("_", 1)[1]
        stage = 1 if phase_of(command) == "stage1" else 2
        base = ("config/New_LT/stage_1.py", "config/New_LT/stage_2_meta_embedding.py")[stage - 1]
        assert command[command.index("--config") + 1] == base
        overlays = [command[i + 1] for i, part in enumerate(command) if part == "--overlay"]
        assert overlays == ([f"config/losses/{loss}.py"] if loss in LOSSES[1:] else [])
        config = resolved(command)
        # the shared overlay gives the same loss as Digits_LT's own per-loss file
        digits = load_config(expected_configs("Digits_LT", loss)[stage - 1]) if loss in LOSSES else None
        expected = (
            digits["criterions"]["PerformanceLoss"] if digits else {"loss": "efl", "loss_params": {}, "weight": 1.0}
        )
        assert config["criterions"]["PerformanceLoss"] == expected
        assert config["training_opt"]["stage"] == stage
        assert config["training_opt"]["log_dir"] == f"logs/New_LT/stage{stage}_{loss}"


def test_a_datasets_own_loss_file_wins_over_the_shared_overlay(new_dataset, capsys):
    (new_dataset / "stage_1_focal.py").write_text(
        '_base_ = ["stage_1.py", "../losses/focal.py"]\n'
        'config = {"criterions": {"PerformanceLoss": {"loss_params": {"gamma": 3.0}}}}\n'
    )
    stage1, stage2 = dry_run(capsys, "New_LT", "--losses", "focal")[:2]
    assert stage1[stage1.index("--config") + 1] == "config/New_LT/stage_1_focal.py" and "--overlay" not in stage1
    assert resolved(stage1)["criterions"]["PerformanceLoss"]["loss_params"]["gamma"] == 3.0
    assert stage2[stage2.index("--overlay") + 1] == "config/losses/focal.py"  # no own stage-2 file


def test_a_dataset_without_its_two_base_files_is_refused(new_dataset, capsys):
    (new_dataset / "stage_2_meta_embedding.py").unlink()
    assert sweep.main(["--dry-run", "New_LT"]) == 2
    err = capsys.readouterr().err
    assert "unknown dataset 'New_LT'" in err and "config/New_LT/stage_2_meta_embedding.py" in err
    assert "Digits_LT" in err and len(err.strip().splitlines()) == 1


def test_a_broken_loss_overlay_stops_the_dry_run_naming_it(new_dataset, capsys):
    (new_dataset.parent / "losses").unlink()
    (new_dataset.parent / "losses").mkdir()
    (new_dataset.parent / "losses" / "focal.py").write_text('config = {"criterions": {"PerformanceLos": {}}}\n')
    assert sweep.main(["--dry-run", "New_LT", "--losses", "focal"]) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and len(captured.err.strip().splitlines()) == 1
    assert "config/losses/focal.py" in captured.err and "did you mean 'PerformanceLoss'?" in captured.err


def test_unknown_loss_names_the_closest_registry_loss_and_feature_losses_are_refused(in_repo, capsys):
    assert sweep.main(["--dry-run", "--losses", "cbfocal"]) == 2
    err = capsys.readouterr().err
    assert "'cbfocal' (did you mean 'cb_focal'?)" in err and "efl" in err and len(err.strip().splitlines()) == 1
    assert sweep.main(["--dry-run", "--losses", "disc_centroids"]) == 2
    err = capsys.readouterr().err
    assert "'disc_centroids' (a feature loss" in err and "criterions.FeatureLoss" in err
    from losses import available_losses

    assert sweep.performance_losses() == sorted(set(available_losses()) - {"disc_centroids"})


# ----------------------------------------------------------------------------- --replay-published

# The CFL fork's OLTR configs: (dataset, stage) -> trained epochs; its loss-local epochs are 30 in all four.
FORK_EPOCHS = {("ImageNet_LT", 1): 30, ("ImageNet_LT", 2): 60, ("Places_LT", 1): 30, ("Places_LT", 2): 30}


def test_replay_published_resolves_to_the_reference_schedule_with_the_forks_epochs(in_repo, capsys):
    commands = dry_run(capsys, "--replay-published")
    runs, report = commands[:-1], commands[-1]
    assert len(runs) == 2 * 15  # ImageNet_LT and Places_LT by default
    assert report[3:5] == ["logs/replay_published/ImageNet_LT", "logs/replay_published/Places_LT"]
    assert report[report.index("--out") + 1] == "results/replay_published"
    from oltr.config.schema import load_config

    for command in runs:
        config = resolved(command)
        dataset, stage = config["training_opt"]["dataset"], config["training_opt"]["stage"]
        loss = config["criterions"]["PerformanceLoss"]["loss"]
        params = config["criterions"]["PerformanceLoss"]["loss_params"]
        assert config["training_opt"]["log_dir"] == f"logs/replay_published/{dataset}/stage{stage}_{loss}"
        assert config["training_opt"]["num_epochs"] == FORK_EPOCHS[dataset, stage]
        ours = load_config(expected_configs(dataset, loss)[stage - 1])["criterions"]["PerformanceLoss"]["loss_params"]
        if loss in ("cfl", "casl"):
            assert command[command.index("--overlay") + 1] == f"config/replay_published/{loss}.py"
            assert params == {**ours, "schedule": "reference", "epochs": 30}
        else:  # only the cyclical losses have a schedule: the others run as in the table
            assert "--overlay" not in command and params == ours and "schedule" not in params


def test_replayed_cyclical_losses_build_with_the_reference_schedule(in_repo, capsys):
    import warnings

    from losses import build_loss

    for command in dry_run(capsys, "ImageNet_LT", "--replay-published", "--losses", "casl")[:2]:
        config = resolved(command)
        performance = config["criterions"]["PerformanceLoss"]
        num_epochs = config["training_opt"]["num_epochs"]
        with warnings.catch_warnings(record=True):
            warnings.simplefilter("always")
            loss = build_loss(performance["loss"], **performance["loss_params"], num_epochs=num_epochs)
        assert (loss.schedule, loss.epochs, loss.num_epochs) == ("reference", 30, num_epochs)
        assert (loss.gamma_pos, loss.gamma_neg, loss.gamma_hc, loss.cyclical_factor) == (0.0, 4.0, 2.0, 2.0)


def test_replay_published_refuses_datasets_the_fork_did_not_run(in_repo, capsys):
    assert sweep.main(["--dry-run", "--replay-published", "Digits_LT"]) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and len(captured.err.strip().splitlines()) == 1
    assert "Digits_LT" in captured.err and "ImageNet_LT and Places_LT" in captured.err
    commands = dry_run(capsys, "Places_LT", "--replay-published", "--losses", "cfl", "--logs", "mine", "--out", "o")
    assert opts_of(commands[0])["training_opt.log_dir"] == "mine/Places_LT/stage1_cfl"
    assert commands[-1][commands[-1].index("--out") + 1] == "o"
