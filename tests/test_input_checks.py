"""Inputs that cannot mean what they say are refused before anything is written (GitHub issue 10):
ambiguous configs, data that cannot train, split tools over existing files, implausible results
files in the report, and losses given tensors of the wrong shape, length or dtype.
"""

import json
import shutil
import struct
import zlib
from pathlib import Path

import pytest
import torch
from conftest import hashes, one_line_error, tiny_opts

import losses
from losses.registry import available_losses
from oltr import report
from oltr.cli import main
from oltr.data.__main__ import main as data_main
from oltr.sweep import cli as sweep
from oltr.sweep import local as sweep_local

STAGE_1 = "config/Digits_LT/stage_1.py"
REPO = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.usefixtures("one_torch_thread")


def cli(capsys, argv, entry=main):
    code = entry([str(arg) for arg in argv])
    return code, capsys.readouterr().err


# ----------------------------------------------------------------------------- ambiguous configs


def test_yaml_duplicate_key_names_file_and_line(capsys, tmp_path):
    config = tmp_path / "dup.yaml"
    config.write_text(
        f"_base_: {REPO / STAGE_1}\ntraining_opt:\n  log_dir: logs/a\n  num_epochs: 2\n  log_dir: logs/b\n"
    )
    code, err = cli(capsys, ["--config", config])
    one_line_error(code, err, f"{config}:5:", "duplicate key 'log_dir' (first at line 3)")


def test_python_duplicate_key_names_file_and_line(capsys, tmp_path):
    config = tmp_path / "dup.py"
    config.write_text(
        f'_base_ = "{REPO / STAGE_1}"\nconfig = {{\n    "training_opt": {{"log_dir": "logs/a",\n'
        '                     "log_dir": "logs/b"},\n}\n'
    )
    code, err = cli(capsys, ["--config", config])
    one_line_error(code, err, f"{config}:4:", "duplicate key 'log_dir' in a dict (first at line 3)")


@pytest.mark.parametrize(
    "name, content, culprits",
    [
        ("latin1.yaml", b"seed: 0\nnote: caf\xe9\n", [":2:", "not UTF-8 text"]),
        ("exits.py", b"import sys\nsys.exit(4)\n", [":2:", "called exit(4)"]),
    ],
)
def test_configs_the_loader_cannot_read_as_meant(capsys, tmp_path, name, content, culprits):
    config = tmp_path / name
    config.write_bytes(content)
    code, err = cli(capsys, ["--config", config])
    one_line_error(code, err, str(config), *culprits)


def test_duplicate_key_in_an_opts_value(capsys):
    code, err = cli(capsys, ["--config", STAGE_1, "--opts", "training_opt.shot_thresholds={many: 5, many: 9}"])
    one_line_error(code, err, "--opts", "duplicate key 'many'")


# ----------------------------------------------------------------------------- data that cannot train


def copy_tiny(data_root, root):
    shutil.copytree(data_root / "images", root / "images")
    for path in data_root.glob("Tiny_*.txt"):
        shutil.copy(path, root / path.name)
    return root


def test_a_class_without_training_images_stops_before_training(capsys, tiny_digits_root, tmp_path):
    root = copy_tiny(tiny_digits_root, tmp_path / "data")
    train = root / "Tiny_train.txt"
    train.write_text("".join(line + "\n" for line in train.read_text().splitlines() if not line.endswith(" 7")))
    log_dir = tmp_path / "log"
    code, err = cli(capsys, ["--config", STAGE_1, "--opts", *tiny_opts(root, log_dir)])
    one_line_error(code, err, f"{train}: 1 of the 8 known classes have no training image (class 7)")
    assert not log_dir.exists()


def png_chunk(kind, data):
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


# A valid PNG header claiming 100000 x 100000 pixels: PIL refuses it with DecompressionBombError,
# which is not an OSError; garbage and a broken data stream are OSErrors of PIL.
BOMB = (
    b"\x89PNG\r\n\x1a\n"
    + png_chunk(b"IHDR", struct.pack(">IIBBBBB", 100000, 100000, 8, 0, 0, 0, 0))
    + png_chunk(b"IEND", b"")
)


@pytest.mark.parametrize("num_workers", [0, 2])
@pytest.mark.parametrize("damage", ["decompression bomb", "broken data stream"])
def test_every_undecodable_image_is_one_line_naming_it(capsys, tiny_digits_root, tmp_path, num_workers, damage):
    root = copy_tiny(tiny_digits_root, tmp_path / "data")
    lines = (root / "Tiny_train.txt").read_text().splitlines()
    train = [line for label in range(8) for line in [x for x in lines if x.endswith(f" {label}")][:2]]
    (root / "Tiny_train.txt").write_text("\n".join(train) + "\n")  # one batch: the image is read
    victim = root / train[0].rsplit(None, 1)[0]
    if damage == "decompression bomb":
        victim.write_bytes(BOMB)
    else:
        good = bytearray(victim.read_bytes())
        good[good.index(b"IDAT") + 6] ^= 0xFF
        victim.write_bytes(bytes(good))
    log_dir = tmp_path / "log"
    code, err = cli(
        capsys,
        [
            "--config",
            STAGE_1,
            "--opts",
            *tiny_opts(
                root,
                log_dir,
                **{
                    "training_opt.num_workers": num_workers,
                    # with workers, decoded there, not into the store first
                    "training_opt.cache_images": "never" if num_workers else "auto",
                },
            ),
        ],
    )
    one_line_error(code, err, f"image {victim} cannot be read as an image")
    assert not (log_dir / "last_checkpoint.pth").exists()


# ----------------------------------------------------------------------------- split tools never overwrite silently


def test_make_lt_refuses_to_replace_split_files_without_force(capsys, tiny_digits_root, tmp_path):
    out = tmp_path / "splits"
    argv = [
        "make-lt",
        tiny_digits_root / "images",
        out,
        "--dataset",
        "Mine",
        "--val_per_class",
        "2",
        "--test_per_class",
        "2",
        "--max_count",
        "4",
        "--min_count",
        "1",
    ]
    assert cli(capsys, argv, data_main)[0] == 0
    before = hashes(out)
    code, err = cli(capsys, [*argv, "--seed", "3"], data_main)
    one_line_error(code, err, f"{out / 'Mine_train.txt'} already exists", "--force")
    assert hashes(out) == before
    assert cli(capsys, [*argv, "--seed", "3", "--force"], data_main)[0] == 0
    assert hashes(out) != before


def test_cifar_lt_refuses_before_reading_the_archive(capsys, tmp_path):
    out = tmp_path / "CIFAR10_LT"
    out.mkdir()
    (out / "CIFAR10_LT_train.txt").write_text("mine 0\n")
    code, err = cli(capsys, ["cifar-lt", "--out_dir", out, "--root", tmp_path / "none", "--no-download"], data_main)
    one_line_error(code, err, f"{out / 'CIFAR10_LT_train.txt'} already exists", "--force")
    assert (out / "CIFAR10_LT_train.txt").read_text() == "mine 0\n"


def test_digits_refuses_to_replace_an_older_build_without_force(capsys, tiny_digits_root, tmp_path):
    root = tmp_path / "Digits_LT"
    shutil.copytree(tiny_digits_root, root)
    (root / "Digits_LT_val.txt").write_text("images/0/0.png 0\n")  # edited: no longer the build
    before = hashes(root)
    code, err = cli(capsys, ["digits", "--root", root], data_main)
    one_line_error(code, err, f"{root} holds an older or incomplete Digits_LT build", "--force")
    assert hashes(root) == before


# ----------------------------------------------------------------------------- the report checks its inputs


def test_report_skips_values_that_cannot_be_what_they_claim(capsys, tmp_path):
    def result(name, **numbers):
        directory = tmp_path / "runs" / name
        directory.mkdir(parents=True)
        body = {"dataset": "Digits_LT", "loss": name, "stage": 2, "seed": 0, "overall_top1": 0.5, **numbers}
        (directory / "results_test_closed.json").write_text(json.dumps(body))
        return directory / "results_test_closed.json"

    good = result("softmax")
    over = result("focal", overall_top1=1.7)
    text = result("cfl", many_shot_top1="high")
    per_class = result("asl", per_class_top1=[0.5, -0.1])
    warnings = []
    results = report.collect_results([tmp_path / "runs"], warn=warnings.append)
    assert [r["_source"] for r in results] == [str(good)]
    assert sorted(warnings) == sorted(
        [
            f"skipping {per_class}: key 'per_class_top1'[1] is -0.1, not a number in [0, 1]",
            f"skipping {text}: key 'many_shot_top1' is 'high', not a number in [0, 1]",
            f"skipping {over}: key 'overall_top1' is 1.7, not a number in [0, 1]",
        ]
    )


@pytest.mark.parametrize("kind", ["empty", "missing"])
def test_report_on_an_empty_or_missing_directory_exits_2(capsys, tmp_path, kind):
    directory = tmp_path / "logs"
    if kind == "empty":
        directory.mkdir()
    code = report.main([str(directory), "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err
    one_line_error(code, err, str(directory))
    assert not (tmp_path / "out").exists()


# ----------------------------------------------------------------------------- losses check their inputs

CONTEXT = dict(num_classes=4, num_epochs=3, class_counts=[10, 5, 3, 1], feat_dim=6)


def bad_inputs(width):
    return {
        "float targets": (torch.randn(3, width), torch.tensor([0.0, 1.0, 2.0]), "targets must be integer"),
        "mismatched lengths": (torch.randn(3, width), torch.tensor([0, 1]), "targets must have shape (3,)"),
        "integer logits": (torch.randint(0, 3, (3, width)), torch.tensor([0, 1, 2]), "must be a floating-point"),
        "a list": ([[0.0] * width] * 3, torch.tensor([0, 1, 2]), "must be a torch.Tensor, got list"),
        "1-D logits": (torch.randn(width), torch.tensor([0]), "must have shape (batch,"),
    }


@pytest.mark.parametrize("name", available_losses())
@pytest.mark.parametrize("case", list(bad_inputs(4)))
def test_every_loss_refuses_inputs_of_the_wrong_shape_length_or_dtype(name, case):
    loss = losses.build_loss(name, **CONTEXT)
    argument = "features" if name == "disc_centroids" else "logits"
    inputs, targets, message = bad_inputs(6 if name == "disc_centroids" else 4)[case]
    with pytest.raises(ValueError) as raised:
        loss(inputs, targets)
    text = str(raised.value)
    assert message in text
    assert (argument if "targets" not in message else "targets") in text


def test_a_loss_with_num_classes_refuses_logits_of_another_width():
    with pytest.raises(ValueError, match=r"logits have 5 classes but class_counts has 4 entries"):
        losses.build_loss("ldam", **CONTEXT)(torch.randn(3, 5), torch.tensor([0, 1, 2]))


# ----------------------------------------------------------------------------- the sweep over existing runs


@pytest.fixture
def in_repo(monkeypatch):
    monkeypatch.chdir(REPO)


def test_a_plain_sweep_rerun_over_runs_refuses_before_running_anything(in_repo, capsys, tmp_path, monkeypatch):
    logs = tmp_path / "logs"
    finished = logs / "Digits_LT" / "stage1_softmax" / "final_model_checkpoint.pth"
    finished.parent.mkdir(parents=True)
    finished.write_text("a finished run")
    monkeypatch.setattr(sweep, "check_data_present", lambda dataset: None)
    monkeypatch.setattr(sweep_local.LocalExecutor, "run", lambda *args: pytest.fail("nothing may run"))
    code = sweep.main(["--losses", "softmax", "--logs", str(logs)])
    err = capsys.readouterr().err
    one_line_error(code, err, f"first: {finished.parent}", "--skip-done", "--overwrite")
    assert finished.read_text() == "a finished run"


def test_skip_done_trains_the_remaining_steps_with_resume(in_repo, capsys):
    assert sweep.main(["--dry-run", "--skip-done", "--losses", "softmax"]) == 0
    commands = [line for line in capsys.readouterr().out.splitlines() if not line.startswith("#")]
    assert ["--resume" in line for line in commands] == [True, True, False, False]  # training resumes


def test_sweep_overwrite_moves_each_run_aside_before_the_steps_run(in_repo, capsys, tmp_path, monkeypatch):
    logs = tmp_path / "logs"
    old = logs / "Digits_LT" / "stage1_softmax" / "final_model_checkpoint.pth"
    old.parent.mkdir(parents=True)
    old.write_text("old run")
    monkeypatch.setattr(sweep, "check_data_present", lambda dataset: None)
    monkeypatch.setattr(sweep_local.LocalExecutor, "run", lambda self, steps, state: 0)
    assert sweep.main(["--losses", "softmax", "--overwrite", "--logs", str(logs)]) == 0
    (aside,) = (logs / "Digits_LT").glob("stage1_softmax.old-*")
    assert (aside / "final_model_checkpoint.pth").read_text() == "old run"


def test_an_image_cache_that_cannot_be_created_is_one_line(capsys, tiny_digits_root, tmp_path):
    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder")
    log_dir = tmp_path / "log"
    code, err = cli(
        capsys,
        [
            "--config",
            STAGE_1,
            "--opts",
            *tiny_opts(tiny_digits_root, log_dir, **{"training_opt.cache_dir": blocker / "cache"}),
        ],
    )
    one_line_error(
        code, err, f"cannot create the image cache {blocker / 'cache'}", "training_opt.cache_dir", "cache_images"
    )
    assert not log_dir.exists()
