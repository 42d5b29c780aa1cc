"""Bad input through the real CLI: one line "error: ..." naming the culprit, exit 2, no traceback,
nothing already written damaged, and ``--debug`` re-raising (GitHub issue 5).

The runs use "Tiny": split files over a handful of the embedded Digits_LT images, so a training
run or a test pass takes a second and the split files can be broken freely (Digits_LT itself
would rebuild a modified split).
"""

import os
import random
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from oltr.cli import main
from oltr.common.errors import CheckpointError, ConfigError, DataError
from oltr.config.schema import load_config
from oltr.engine.checkpoint import load_checkpoint

REPO = Path(__file__).resolve().parents[1]
STAGE_1 = "config/Digits_LT/stage_1.py"
STAGE_2 = "config/Digits_LT/stage_2_meta_embedding.py"
pytestmark = pytest.mark.usefixtures("one_torch_thread")


# ----------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def data_root(tiny_digits_root):
    return tiny_digits_root


def tiny_opts(data_root, log_dir, split_dir=None, **extra):
    opts = {
        "training_opt.dataset": "Tiny",
        "training_opt.data_root": data_root,
        "training_opt.split_dir": split_dir or data_root,
        "training_opt.log_dir": log_dir,
        "training_opt.num_epochs": 1,
        "training_opt.batch_size": 16,
        "training_opt.num_workers": 0,
    }
    opts.update(extra)
    return [f"{key}={value}" for key, value in opts.items()]


@pytest.fixture(scope="module")
def trained(data_root, tmp_path_factory):
    """A finished 1-epoch stage-1 run with its closed-set results: the files bad commands must not touch."""
    log_dir = tmp_path_factory.mktemp("trained")
    argv = ["--config", STAGE_1, "--opts", *tiny_opts(data_root, log_dir)]
    assert main(argv) == 0
    assert main(["--test", *argv]) == 0
    return log_dir


def snapshot(directory):
    return {path.name: path.read_bytes() for path in Path(directory).iterdir() if path.is_file()}


def run_cli(capsys, argv):
    code = main([str(arg) for arg in argv])
    return code, capsys.readouterr().err


def assert_one_line_error(code, err, *culprits):
    assert code == 2, err
    assert "Traceback" not in err
    lines = err.splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("error: "), err
    for culprit in culprits:
        assert str(culprit) in lines[0], (culprit, lines[0])
    return lines[0]


def fails_cleanly(capsys, argv, *culprits, untouched=None):
    """Run ``argv``, check the one-line error and that ``untouched`` (a log dir) is byte-identical."""
    before = snapshot(untouched) if untouched else None
    code, err = run_cli(capsys, argv)
    line = assert_one_line_error(code, err, *culprits)
    if untouched:
        assert snapshot(untouched) == before
    return line


# ----------------------------------------------------------------------------- config files and --opts


def test_missing_config_file(capsys, tmp_path):
    missing = tmp_path / "nope.py"
    fails_cleanly(capsys, ["--config", missing], f"config file {missing} does not exist")


def test_missing_or_bad_overlay_file(capsys, tmp_path):
    missing = tmp_path / "nope.py"
    fails_cleanly(capsys, ["--config", STAGE_1, "--overlay", missing], f"--overlay {missing} does not exist")
    bad = tmp_path / "bad.py"
    bad.write_text('config = {"criterions": {"PerformanceLoss": {"weigth": 2}}}\n')
    line = fails_cleanly(
        capsys,
        ["--config", STAGE_1, "--overlay", "config/losses/cfl.py", "--overlay", bad],
        f"{STAGE_1} + config/losses/cfl.py + {bad}: ",
        "'criterions.PerformanceLoss.weigth'",
    )
    assert "did you mean 'weight'?" in line


def test_stage_2_settings_in_a_stage_1_run(capsys, tmp_path):
    fails_cleanly(
        capsys,
        ["--config", STAGE_2, "--opts", "training_opt.stage=1"],
        f"{STAGE_2} (with --opts): networks.feat_model.stage1_weights is a stage-2 setting but "
        "training_opt.stage is 1; set training_opt.stage to 2",
    )


def test_unknown_key_in_config_file_suggests_the_closest(capsys, tmp_path):
    config = tmp_path / "typo.py"
    config.write_text(f'_base_ = "{REPO / STAGE_1}"\nconfig = {{"training_opt": {{"num_epoch": 3}}}}\n')
    line = fails_cleanly(capsys, ["--config", config], str(config), "'training_opt.num_epoch'")
    assert "did you mean 'num_epochs'?" in line


def test_unknown_key_in_opts_suggests_the_closest(capsys, trained, data_root):
    line = fails_cleanly(
        capsys,
        ["--config", STAGE_1, "--opts", *tiny_opts(data_root, trained), "training_opt.batchsize=8"],
        "'training_opt.batchsize'",
        untouched=trained,
    )
    assert "did you mean 'batch_size'?" in line and "(with --opts)" in line


@pytest.mark.parametrize(
    "override, culprit",
    [
        ("training_opt.num_epochs=-3", "training_opt.num_epochs must be an integer >= 1, got -3"),
        ("training_opt.batch_size=abc", "training_opt.batch_size must be an integer >= 1, got 'abc'"),
        ("training_opt.amp=fp8", "training_opt.amp must be one of 'auto', 'off', 'bf16', 'fp16', got 'fp8'"),
        ("networks.classifier.optim_params.lr=.nan", "networks.classifier.optim_params.lr must be a finite number"),
        (
            "networks.classifier.optim_params.lr=1e-3x",
            "networks.classifier.optim_params.lr must be a number >= 0.0, got '1e-3x'",
        ),
    ],
)
def test_wrong_type_or_range_in_opts(capsys, trained, data_root, override, culprit):
    fails_cleanly(
        capsys, ["--config", STAGE_1, "--opts", *tiny_opts(data_root, trained), override], culprit, untouched=trained
    )


def test_override_without_equals_sign(capsys):
    fails_cleanly(
        capsys,
        ["--config", STAGE_1, "--opts", "training_opt.num_epochs"],
        "'training_opt.num_epochs': expected KEY=VALUE",
    )


def test_python_config_syntax_error_names_file_and_line(capsys, tmp_path):
    config = tmp_path / "broken.py"
    config.write_text('config = {\n    "seed": 0,\n    "training_opt": {"dataset": "Tiny",,}\n}\n')
    fails_cleanly(capsys, ["--config", config], f"{config}:3:", "syntax error")


def test_python_config_that_raises_names_file_and_line(capsys, tmp_path):
    config = tmp_path / "raises.py"
    config.write_text('EPOCHS = 3\nconfig = {"seed": SEED}\n')
    fails_cleanly(capsys, ["--config", config], f"{config}:2:", "NameError", "SEED")


def test_yaml_config_error_names_file_and_line(capsys, tmp_path):
    config = tmp_path / "broken.yaml"
    config.write_text("seed: 0\ntraining_opt:\n  dataset: [Tiny\n")
    fails_cleanly(capsys, ["--config", config], f"{config}:", "invalid YAML")


def test_unknown_device(capsys):
    fails_cleanly(capsys, ["--config", STAGE_1, "--device", "gpu0"], "--device 'gpu0' is not a torch device")


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_cuda_device_without_cuda(capsys):
    fails_cleanly(capsys, ["--config", STAGE_1, "--device", "cuda:0"], "--device 'cuda:0': CUDA is not available")


def test_scientific_notation_is_a_number(tmp_path):
    # YAML 1.1 reads 1e-3 as the string '1e-3' (it wants 1.0e-3); the config loader reads a number.
    config = load_config(
        STAGE_1,
        ["networks.classifier.optim_params.lr=1e-3", "criterions.PerformanceLoss.loss_params.label_smoothing=5E-2"],
    )
    assert config["networks"]["classifier"]["optim_params"]["lr"] == 0.001
    assert config["criterions"]["PerformanceLoss"]["loss_params"] == {"label_smoothing": 0.05}
    child = tmp_path / "child.yaml"
    child.write_text(f"_base_: {REPO / STAGE_1}\nnetworks:\n  feat_model:\n    optim_params: {{lr: 2e-2}}\n")
    assert load_config(child)["networks"]["feat_model"]["optim_params"]["lr"] == 0.02


def test_unknown_flag_is_argparse_usage_and_exit_2(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["--config", STAGE_1, "--epochs", "3"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("usage: ") and "unrecognized arguments: --epochs 3" in err


def test_debug_reraises_with_the_traceback(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        main(["--config", str(tmp_path / "nope.py"), "--debug"])


# ----------------------------------------------------------------------------- data


def test_missing_split_dir_names_the_split_file(capsys, tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    argv = ["--config", STAGE_1, "--opts", *tiny_opts(empty, tmp_path / "log", **{"training_opt.dataset": "Places_LT"})]
    line = fails_cleanly(capsys, argv, f"split file {empty / 'Places_LT_train.txt'} does not exist")
    assert "set training_opt.split_dir" in line and "training_opt.data_root" in line  # says what to fix
    assert not (tmp_path / "log" / "config.yaml").exists()


def copy_tiny_splits(data_root, split_dir):
    split_dir.mkdir(parents=True, exist_ok=True)
    for path in data_root.glob("Tiny_*.txt"):
        shutil.copy(path, split_dir / path.name)
    return split_dir


def broken_split_dir(data_root, tmp_path, split, line_number, new_line):
    """A copy of the Tiny split files with line ``line_number`` (1-based) of ``split`` replaced."""
    split_dir = copy_tiny_splits(data_root, tmp_path / "splits")
    path = split_dir / f"Tiny_{split}.txt"
    lines = path.read_text().splitlines()
    lines[line_number - 1] = new_line
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.mark.parametrize(
    "split, new_line, culprit",
    [
        ("train", "images/0/0.png", "expected 'relative/path label'"),
        ("train", "images/0/0.png zero", "label 'zero' is not an integer"),
        ("val", "images/0/0.png 99", "label 99 is outside [0, 8)"),
        ("train", "images/0/does_not_exist.png 0", "images/0/does_not_exist.png does not exist"),
    ],
)
def test_bad_split_line_names_file_and_line(capsys, trained, data_root, tmp_path, split, new_line, culprit):
    path = broken_split_dir(data_root, tmp_path, split, 3, new_line)
    argv = ["--config", STAGE_1, "--opts", *tiny_opts(data_root, trained, split_dir=path.parent)]
    fails_cleanly(capsys, argv, f"{path}:3: ", culprit, untouched=trained)


def test_bad_test_split_line_on_test_keeps_results(capsys, trained, data_root, tmp_path):
    path = broken_split_dir(data_root, tmp_path, "test", 2, "images/1/0.png -1")
    argv = ["--test", "--config", STAGE_1, "--opts", *tiny_opts(data_root, trained, split_dir=path.parent)]
    fails_cleanly(capsys, argv, f"{path}:2: ", "label -1 marks an open-set image", untouched=trained)


@pytest.fixture
def corrupt_image_root(data_root, tmp_path):
    """A data root whose Tiny splits name a PNG full of garbage bytes, read by the first batch.

    The train split is cut to one batch of 16, two images of each class (so drop_last cannot skip
    the image, and every class still has training images).
    """
    root = tmp_path / "corrupt"
    shutil.copytree(data_root / "images", root / "images")
    copy_tiny_splits(data_root, root)
    all_train = (root / "Tiny_train.txt").read_text().splitlines()
    train_lines = [
        line for label in range(8) for line in [line for line in all_train if line.rsplit(None, 1)[1] == str(label)][:2]
    ]
    victim = train_lines[0].rsplit(None, 1)[0]
    (root / "Tiny_train.txt").write_text("\n".join(train_lines) + "\n")
    (root / victim).write_bytes(b"\x89PNG\r\n\x1a\n" + b"garbage" * 20)
    test_lines = (root / "Tiny_test.txt").read_text().splitlines()
    (root / "Tiny_test.txt").write_text("\n".join([train_lines[0], *test_lines]) + "\n")
    return root, root / victim


def workers(num_workers):
    """Loader workers; with workers the images are decoded there (not into the image store first),
    so the error crosses the worker boundary; without, it comes from the store's decoding."""
    return {"training_opt.num_workers": num_workers, **({"training_opt.cache_images": "never"} if num_workers else {})}


@pytest.mark.parametrize("num_workers", [0, 2])
def test_corrupt_image_is_one_line_even_from_a_worker(capsys, trained, corrupt_image_root, tmp_path, num_workers):
    root, victim = corrupt_image_root
    log_dir = tmp_path / "log"
    argv = ["--config", STAGE_1, "--opts", *tiny_opts(root, log_dir, **workers(num_workers))]
    fails_cleanly(capsys, argv, f"image {victim} cannot be read as an image")
    assert not (log_dir / "final_model_checkpoint.pth").exists() and not (log_dir / "last_checkpoint.pth").exists()
    # --test of a finished run on the corrupt data: its checkpoint and results stay as they were.
    test_argv = ["--test", "--config", STAGE_1, "--opts", *tiny_opts(root, trained, **workers(num_workers))]
    fails_cleanly(capsys, test_argv, f"image {victim} cannot be read as an image", untouched=trained)


def test_worker_error_with_debug_reraises(corrupt_image_root, trained):
    root, victim = corrupt_image_root
    argv = ["--debug", "--test", "--config", STAGE_1, "--opts", *tiny_opts(root, trained, **workers(2))]
    with pytest.raises(DataError, match="cannot be read as an image"):
        main(argv)


# ----------------------------------------------------------------------------- checkpoints and stages


def test_test_without_a_trained_run(capsys, data_root, tmp_path):
    log_dir = tmp_path / "never_trained"
    missing = log_dir / "final_model_checkpoint.pth"
    line = fails_cleanly(
        capsys,
        ["--test", "--config", STAGE_1, "--opts", *tiny_opts(data_root, log_dir)],
        f"trained checkpoint {missing} does not exist",
    )
    assert "train that run first" in line


def damaged_bytes(good, damage):
    """A damaged checkpoint; the seeded garbage after a pickle header makes torch's unpickler
    fail with IndexError, KeyError, struct.error... not only UnpicklingError."""
    garbage = random.Random(damage).randbytes(4096)
    return {
        "truncated": good[: len(good) // 2],
        "empty": b"",
        "garbage": garbage,
        "pickle header + garbage": b"\x80\x02" + garbage[:64],
    }[damage]


@pytest.mark.parametrize("damage", ["truncated", "empty", "garbage", "pickle header + garbage"])
def test_test_with_a_corrupt_checkpoint(capsys, trained, data_root, tmp_path, damage):
    log_dir = tmp_path / "damaged"
    shutil.copytree(trained, log_dir)
    checkpoint = log_dir / "final_model_checkpoint.pth"
    checkpoint.write_bytes(damaged_bytes(checkpoint.read_bytes(), damage))
    for flag in ("--test", "--test_open"):
        fails_cleanly(
            capsys,
            [flag, "--config", STAGE_1, "--opts", *tiny_opts(data_root, log_dir)],
            f"trained checkpoint {checkpoint} is corrupt or not a PyTorch checkpoint",
            untouched=log_dir,
        )


def test_unpickler_failures_of_every_kind_are_checkpoint_errors(tmp_path):
    # Seeds chosen so torch.load fails with each of these exception types (torch 2.x).
    path = tmp_path / "bad.pth"
    kinds = set()
    for seed in range(60):
        path.write_bytes(b"\x80\x02" + random.Random(seed).randbytes(100))
        try:
            torch.load(path, weights_only=True)
        except Exception as error:
            kinds.add(type(error).__name__)
        with pytest.raises(CheckpointError, match="is corrupt or not a PyTorch checkpoint"):
            load_checkpoint(path)
    assert len(kinds) >= 2, kinds  # more than UnpicklingError alone


@pytest.mark.parametrize(
    "content, culprit",
    [
        ({"epoch": 3}, "no 'networks' entry; it holds epoch"),
        ([1, 2, 3], "it holds a list, not a dict"),
    ],
)
def test_test_with_a_checkpoint_of_another_kind(capsys, trained, data_root, tmp_path, content, culprit):
    log_dir = tmp_path / "foreign"
    log_dir.mkdir()
    torch.save(content, log_dir / "final_model_checkpoint.pth")
    fails_cleanly(
        capsys,
        ["--test", "--config", STAGE_1, "--opts", *tiny_opts(data_root, log_dir)],
        f"trained checkpoint {log_dir / 'final_model_checkpoint.pth'} is not a checkpoint",
        culprit,
        untouched=log_dir,
    )


def test_test_with_a_checkpoint_of_other_networks(capsys, trained, data_root):
    opts = tiny_opts(
        data_root, trained, **{"networks.feat_model.params.base_channels": 8, "training_opt.feature_dim": 64}
    )
    # --allow-config-change gets past the config check (test_run_dir.py) to the weights' own mismatch
    line = fails_cleanly(
        capsys,
        ["--test", "--allow-config-change", "--config", STAGE_1, "--opts", *opts],
        f"{trained / 'final_model_checkpoint.pth'} does not match the networks in this config",
        "size mismatch for",
        untouched=trained,
    )
    assert "test with the config that trained it" in line


def test_stage_2_without_its_stage_1_run(capsys, trained, data_root, tmp_path):
    stage1 = tmp_path / "no_stage1"
    opts = tiny_opts(data_root, trained, **{"training_opt.stage1_log_dir": stage1})
    line = fails_cleanly(
        capsys,
        ["--config", STAGE_2, "--opts", *opts],
        f"stage-1 checkpoint {stage1 / 'final_model_checkpoint.pth'}",
        untouched=trained,
    )
    assert "train stage 1 first" in line


def test_resume_with_a_checkpoint_of_another_config(capsys, trained, data_root):
    # Every file of the finished run stays as it was, config.yaml and metrics.jsonl included.
    line = fails_cleanly(
        capsys,
        ["--resume", "--config", STAGE_1, "--opts", *tiny_opts(data_root, trained), "seed=7"],
        f"{trained / 'last_checkpoint.pth'} was written with another config: seed: 0 -> 7",
        untouched=trained,
    )
    assert "resume with the config and --opts it was written with" in line


# ----------------------------------------------------------------------------- losses and networks


@pytest.mark.parametrize(
    "extra, culprits",
    [
        (
            ["--opts", "criterions.PerformanceLoss.loss=cfll"],
            ["criterions.PerformanceLoss", "unknown loss 'cfll'", "did you mean 'cfl'?"],
        ),
        (["--gamma_hc", "2"], ["criterions.PerformanceLoss", "loss 'softmax' has no parameter 'gamma_hc'"]),
        (
            ["--opts", "criterions.PerformanceLoss.loss=focal", "criterions.PerformanceLoss.loss_params.gamma=-1"],
            ["criterions.PerformanceLoss", "gamma must be a finite number >= 0, got -1"],
        ),
        (
            ["--opts", "networks.feat_model.type=resnt10"],
            ["networks.feat_model: unknown feature model type 'resnt10'", "did you mean 'resnet10'?"],
        ),
        (
            ["--opts", "networks.feat_model.params.use_fcc=true"],
            ["networks.feat_model: unknown param 'use_fcc' for feature model 'resnet10'", "did you mean 'use_fc'?"],
        ),
        (
            ["--opts", "networks.classifier.type=cosine"],
            ["networks.classifier: unknown classifier type 'cosine'", "did you mean 'cosine_norm'?"],
        ),
    ],
)
def test_bad_loss_or_network(capsys, trained, data_root, extra, culprits):
    argv = ["--config", STAGE_1, *extra]
    opts = tiny_opts(data_root, trained)
    argv = argv + opts if "--opts" in extra else argv + ["--opts", *opts]
    fails_cleanly(capsys, argv, *culprits, untouched=trained)


def test_bad_loss_with_debug_reraises(trained, data_root):
    with pytest.raises(ConfigError, match="gamma_hc"):
        main(["--debug", "--config", STAGE_1, "--gamma_hc", "2", "--opts", *tiny_opts(data_root, trained)])


def test_missing_checkpoint_with_debug_reraises(data_root, tmp_path):
    with pytest.raises(CheckpointError):
        main(["--debug", "--test", "--config", STAGE_1, "--opts", *tiny_opts(data_root, tmp_path / "none")])


# ----------------------------------------------------------------------------- a real terminal


def run_main_py(*argv):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run(
        [sys.executable, "main.py", *map(str, argv)], cwd=REPO, capture_output=True, text=True, timeout=120, env=env
    )


def test_subprocess_worker_error_prints_one_line(corrupt_image_root, tmp_path):
    root, victim = corrupt_image_root
    done = run_main_py("--config", STAGE_1, "--opts", *tiny_opts(root, tmp_path / "log", **workers(2)))
    assert done.returncode == 2
    assert done.stderr.splitlines() == [done.stderr.strip()], done.stderr
    assert done.stderr.startswith(f"error: image {victim} cannot be read as an image")
    assert "Traceback" not in done.stderr + done.stdout


def test_subprocess_config_error_and_debug(tmp_path):
    config = tmp_path / "broken.py"
    config.write_text("config = {\n  'seed': 0\n  'training_opt': {}\n}\n")
    done = run_main_py("--config", config)
    assert (done.returncode, done.stdout) == (2, "")
    assert done.stderr.startswith(f"error: {config}:2: Python syntax error") and done.stderr.count("\n") == 1
    debug = run_main_py("--config", config, "--debug")
    assert debug.returncode == 1 and "Traceback" in debug.stderr and "ConfigError" in debug.stderr
