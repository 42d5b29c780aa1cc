"""Issue 20: silent cases, tracebacks and unclear messages become one accurate line (or a correct result).

Through the real CLIs where a user meets them (main.py, ``oltr data``, the report), each refusal is exit 2
and one ``error:`` line naming the culprit, with every file written before unchanged (SHA-256).
"""

import json
import os
import shutil
from pathlib import Path

import pytest
import torch
from conftest import hashes, one_line_error, refused, run_cli, tiny_opts

from oltr import report
from oltr.cli import main
from oltr.common.errors import ConfigError, DataError
from oltr.config.schema import load_config
from oltr.data.__main__ import main as data_main
from oltr.data.split_file import read_split, scan_split
from oltr.runs import evaluate, trainer
from oltr.sweep import plan
from oltr.sweep.local import failure_text

REPO = Path(__file__).resolve().parents[1]
STAGE_1 = "config/Digits_LT/stage_1.py"
pytestmark = pytest.mark.usefixtures("one_torch_thread")


def split_copy(tiny_digits_root, folder):
    """The Tiny split files in a folder of their own (images stay under the data root)."""
    folder.mkdir(parents=True, exist_ok=True)
    for path in tiny_digits_root.glob("Tiny_*.txt"):
        shutil.copy(path, folder / path.name)
    return folder


# ----------------------------------------------------------------------------- --resume


def test_resume_after_the_training_split_changed_is_refused(capsys, tiny_digits_root, tmp_path):
    splits = split_copy(tiny_digits_root, tmp_path / "splits")
    log_dir = tmp_path / "run"
    argv = ["--config", STAGE_1, "--opts", *tiny_opts(tiny_digits_root, log_dir, split_dir=splits)]
    assert main([str(a) for a in argv]) == 0
    capsys.readouterr()
    train = splits / "Tiny_train.txt"
    train.write_text("\n".join(train.read_text().splitlines()[:-1]) + "\n")  # one image fewer
    refused(capsys, ["--resume", *argv], log_dir, "last_checkpoint.pth was trained on another training split")


def test_resume_names_the_changed_keys(capsys, tiny_digits_root, run_copy):
    argv = ["--config", STAGE_1, "--opts", *tiny_opts(tiny_digits_root, run_copy, **{"training_opt.batch_size": 8})]
    refused(capsys, ["--resume", *argv], run_copy, "another config: training_opt.batch_size: 16 -> 8")


def test_a_moved_run_resumes_in_its_new_place(capsys, tiny_digits_root, tmp_path, monkeypatch):
    old, new = tmp_path / "old", tmp_path / "new"
    epochs = {"training_opt.num_epochs": 2}
    real_run_epoch, calls = trainer._run_epoch, []

    def stop_in_the_second_epoch(run, *args):
        calls.append(run.epoch)
        if len(calls) == 2:
            raise KeyboardInterrupt
        real_run_epoch(run, *args)

    with monkeypatch.context() as patch:
        patch.setattr(trainer, "_run_epoch", stop_in_the_second_epoch)
        code, _, _ = run_cli(capsys, ["--config", STAGE_1, "--opts", *tiny_opts(tiny_digits_root, old, **epochs)])
    assert code == 130 and not (old / "final_model_checkpoint.pth").exists()
    os.rename(old, new)
    code, err, _ = run_cli(
        capsys, ["--resume", "--config", STAGE_1, "--opts", *tiny_opts(tiny_digits_root, new, **epochs)]
    )
    assert code == 0, err
    assert f"resumed from {new / 'last_checkpoint.pth'} at epoch 2" in (new / "log.txt").read_text()
    assert torch.load(new / "final_model_checkpoint.pth", weights_only=True)["config"]["training_opt"][
        "log_dir"
    ] == str(new)


def test_ctrl_c_during_a_test_does_not_suggest_resume(capsys, tiny_digits_root, run_copy, monkeypatch):
    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(evaluate, "collect_logits", interrupted)
    before = hashes(run_copy)
    code, err, _ = run_cli(capsys, ["--test", "--config", STAGE_1, "--opts", *tiny_opts(tiny_digits_root, run_copy)])
    assert code == 130 and "--resume" not in err and "run it again" in err and len(err.strip().splitlines()) == 1
    assert hashes(run_copy) == before


# ----------------------------------------------------------------------------- config values


@pytest.mark.parametrize(
    "opt, culprit",
    [
        (
            "training_opt.transforms.crop_scale=[0.9,0.5]",
            "crop_scale is [0.9, 0.5]; it must be [min, max] with 0 < min",
        ),
        ("training_opt.transforms.std=[0.5,0,0.5]", "std is [0.5, 0, 0.5]; every channel's std must be > 0"),
        ("training_opt.transforms.mean=[0.5,0.5]", "mean is [0.5, 0.5]; it must be 3 finite numbers"),
        ("seed=18446744073709551616", "seed"),
    ],
)
def test_transform_values_and_seeds_out_of_range_are_one_line(capsys, tiny_digits_root, tmp_path, opt, culprit):
    line = refused(
        capsys, ["--config", STAGE_1, "--opts", *tiny_opts(tiny_digits_root, tmp_path / "run"), opt], tmp_path, culprit
    )
    assert "learning rate" not in line
    assert not (tmp_path / "run").exists()


def test_a_repeated_opts_key_is_named_and_the_last_counts(capsys):
    config = load_config(STAGE_1, ["training_opt.num_epochs=3", "seed=1", "training_opt.num_epochs=5"])
    out = capsys.readouterr().out
    assert config["training_opt"]["num_epochs"] == 5
    assert out.count("note:") == 1 and "'training_opt.num_epochs=5' sets training_opt.num_epochs" in out


@pytest.mark.parametrize("kind", ["directory", "fifo", "symlink loop"])
def test_a_config_path_that_is_not_a_file_says_what_it_is(capsys, tmp_path, kind):
    path = tmp_path / "config"
    if kind == "directory":
        path.mkdir()
        expected = "is a directory"
    elif kind == "fifo":
        os.mkfifo(path)
        expected = "is a FIFO"
    else:
        path.symlink_to(path)
        expected = "is a symlink loop"
    code, err, _ = run_cli(capsys, ["--config", path])
    line = one_line_error(code, err, f"config file {path} {expected}")
    assert "does not exist" not in line


def test_a_bad_loss_parameter_in_an_overlay_stops_the_sweep_before_any_run(tmp_path):
    overlay = tmp_path / "focal.py"
    overlay.write_text('config = {"criterions": {"PerformanceLoss": {"loss": "focal", "loss_params": {"gama": 2}}}}\n')
    with pytest.raises(ConfigError, match=r"focal.py: criterions.PerformanceLoss: .*gama"):
        plan._check_resolves(["--config", STAGE_1, "--overlay", str(overlay)], [])


def test_a_killed_sweep_step_names_its_signal():
    assert failure_text(-9, 4.2) == "killed by SIGKILL after 4s"
    assert failure_text(137, 4.2) == "FAILED after 4s (exit code 137: ended by SIGKILL)"
    assert failure_text(2, 4.2) == "FAILED after 4s (exit code 2)"


# ----------------------------------------------------------------------------- splits and images


def test_an_open_split_line_with_a_known_label_is_one_line(capsys, tiny_digits_root, run_copy, tmp_path):
    splits = split_copy(tiny_digits_root, tmp_path / "splits")
    lines = (splits / "Tiny_open.txt").read_text().splitlines()
    lines[1] = lines[1].rsplit(None, 1)[0] + " 3"
    (splits / "Tiny_open.txt").write_text("\n".join(lines) + "\n")
    argv = ["--test_open", "--config", STAGE_1, "--opts", *tiny_opts(tiny_digits_root, run_copy, split_dir=splits)]
    refused(capsys, argv, run_copy, "Tiny_open.txt:2: label 3 is a known class, but the open split holds only")


def test_check_fails_on_training_images_in_the_test_or_open_split_and_on_empty_images(
    capsys, tiny_digits_root, tmp_path
):
    data = tmp_path / "data"
    shutil.copytree(tiny_digits_root / "images", data / "images")
    splits = split_copy(tiny_digits_root, tmp_path / "splits")
    check = ["check", "--split_dir", splits, "--dataset", "Tiny", "--data_root", data, "--open_root", data]
    assert data_main([str(a) for a in check]) == 0 and "OK: no defects" in capsys.readouterr().out
    first_train = (splits / "Tiny_train.txt").read_text().splitlines()[0]
    with open(splits / "Tiny_test.txt", "a") as handle:
        handle.write(first_train + "\n")
    assert data_main([str(a) for a in check]) == 1
    out = capsys.readouterr().out
    assert "1 test images are also training images" in out and "FAILED" in out and "OK" not in out
    with open(splits / "Tiny_test.txt", "w") as handle:  # no leak, one empty image
        handle.write("images/empty.png 0\n")
    (data / "images" / "empty.png").write_bytes(b"")
    assert data_main([str(a) for a in check]) == 1
    assert "is empty (0 bytes)" in capsys.readouterr().out


@pytest.mark.parametrize(
    "kind, expected", [("directory", "is a directory"), ("fifo", "is a FIFO"), ("loop", "is a symlink loop")]
)
def test_an_image_path_that_is_not_a_file_says_what_it_is(tmp_path, kind, expected):
    target = tmp_path / "img" / "x.png"
    target.parent.mkdir()
    if kind == "directory":
        target.mkdir()
    elif kind == "fifo":
        os.mkfifo(target)
    else:
        target.symlink_to(target)
    split = tmp_path / "T_train.txt"
    split.write_text("img/x.png 0\n")
    with pytest.raises(DataError, match=f"T_train.txt:1: image {target} {expected}") as caught:
        read_split(split, tmp_path, 2)
    assert "does not exist" not in str(caught.value)


def test_a_bom_is_dropped_and_an_invisible_character_is_named(tmp_path):
    (tmp_path / "a.png").write_bytes(b"x")
    split = tmp_path / "T_train.txt"
    split.write_bytes("\ufeffa.png 0\n".encode())  # as Notepad saves UTF-8
    assert read_split(split, tmp_path, 1) == [(str(tmp_path / "a.png"), 0)]
    split.write_text("a.png 0\n\ufeffa.png 0\n")
    (bad,) = scan_split(split, tmp_path, 1).defects()
    assert "U+FEFF (a byte-order mark)" in bad.message


@pytest.mark.parametrize(
    "flags, culprit",
    [
        (["--val_per_class", "0"], "val_per_class must be an integer >= 1"),
        (["--test_per_class", "0"], "test_per_class must be an integer >= 1"),
        (["--imbalance_factor", "inf"], "imbalance_factor must be a finite number >= 1, got inf"),
        (["--imbalance_factor", "-3"], "imbalance_factor must be a finite number >= 1, got -3"),
        (["--max_count", "-5"], "max_count must be a positive integer, got -5"),
    ],
)
def test_make_lt_refuses_empty_splits_and_impossible_counts(capsys, tiny_digits_root, tmp_path, flags, culprit):
    out = tmp_path / "out"
    small = ["--val_per_class", "5", "--test_per_class", "5"]  # the last of a repeated flag counts
    code = data_main(["make-lt", str(tiny_digits_root / "images"), str(out), "--dataset", "X", *small, *flags])
    one_line_error(code, capsys.readouterr().err, culprit)
    assert not out.exists() or not list(out.iterdir())


# ----------------------------------------------------------------------------- checkpoints and stage 2


def test_a_checkpoint_whose_class_counts_has_the_wrong_length_is_one_line(capsys, tiny_digits_root, run_copy):
    path = run_copy / "final_model_checkpoint.pth"
    checkpoint = torch.load(path, weights_only=True)
    for counts, culprit in (
        ([3, 2, 1], "holds class counts of 3 classes but training_opt.num_classes is 8"),
        ("many", "its class_counts is many, not a list of image counts"),
    ):
        checkpoint["class_counts"] = counts
        torch.save(checkpoint, path)
        argv = ["--test", "--config", STAGE_1, "--opts", *tiny_opts(tiny_digits_root, run_copy)]
        refused(capsys, argv, run_copy, culprit)


@pytest.mark.parametrize("recipe", ["crt", "meta_embedding"])
def test_stage_2_from_another_datasets_stage_1_run_is_one_line(capsys, tiny_digits_root, trained, tmp_path, recipe):
    splits = tmp_path / "splits"  # the same images and classes under another dataset name
    splits.mkdir()
    for path in tiny_digits_root.glob("Tiny_*.txt"):
        shutil.copy(path, splits / path.name.replace("Tiny_", "Other_"))
    opts = tiny_opts(tiny_digits_root, tmp_path / "stage2", split_dir=splits, **{"training_opt.dataset": "Other"})
    argv = [
        "--config",
        f"config/Digits_LT/stage_2_{recipe}.py",
        "--opts",
        *opts,
        f"training_opt.stage1_log_dir={trained}",
    ]
    refused(capsys, argv, trained, "was trained on dataset 'Tiny' but this run's training_opt.dataset is 'Other'")
    assert not (tmp_path / "stage2").exists()


# ----------------------------------------------------------------------------- the report


def _result(folder, dataset, **extra):
    folder.mkdir(parents=True)
    body = {"dataset": dataset, "loss": "softmax", "seed": 0, "overall_top1": 0.5, **extra}
    (folder / "results_test_closed.json").write_text(json.dumps(body))


def test_report_datasets_whose_names_make_one_folder_get_two(capsys, tmp_path):
    _result(tmp_path / "runs" / "a", "My LT", overall_top1=0.25)
    _result(tmp_path / "runs" / "b", "My_LT", overall_top1=0.75)
    out = tmp_path / "out"
    assert report.main([str(tmp_path / "runs"), "--out", str(out), "--no-plots", "--no-html"]) == 0
    err = capsys.readouterr().err
    folders = sorted(p.name for p in out.iterdir())
    assert len(folders) == 2 and "My_LT" in folders and "make one folder name" in err
    tables = {name: (out / name / "table.md").read_text() for name in folders}
    assert sum("25.0" in text for text in tables.values()) == 1 and sum("75.0" in text for text in tables.values()) == 1


def test_zero_class_counts_draw_no_per_class_plot_and_raise_nothing(tmp_path):
    pytest.importorskip("matplotlib")
    _result(tmp_path / "r", "D", per_class_top1=[0.5, 0.5], class_counts=[0, 0])
    results = report.collect_results([tmp_path])
    assert len(results) == 1
    assert report.plot_per_class_accuracy(results, "D", tmp_path / "p.png") is False
