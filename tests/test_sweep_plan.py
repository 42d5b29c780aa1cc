"""The sweep's plan for any registry loss and any dataset, and --replay-published (oltr/sweep/plan.py):
the configs each planned command resolves to, checked by loading them."""

import pytest
from conftest import REPO
from test_sweep import LOSSES, dry_run, expected_configs, opts_of, phase_of

from oltr.sweep import cli as sweep


@pytest.fixture
def in_repo(monkeypatch):
    monkeypatch.chdir(REPO)


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
