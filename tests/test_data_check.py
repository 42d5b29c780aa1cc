"""check_split and the CLI: every planted defect is found, counted and makes the exit code non-zero."""

import json

import pytest

from oltr.common.errors import DataError
from oltr.data.__main__ import main
from oltr.data.check import check_split, shot_group_sizes
from oltr.evaluation.metrics import shot_groups


def make_dataset(root, train=None, val=None, test=None, open_=None):
    """Images a0..a9 (class 0), b0..b3 (class 1), c0 (class 2), o0..o1 (open); the given split texts."""
    for name in [f"a{i}" for i in range(10)] + [f"b{i}" for i in range(4)] + ["c0", "o0", "o1"]:
        (root / "img" / f"{name}.png").parent.mkdir(parents=True, exist_ok=True)
        (root / "img" / f"{name}.png").write_bytes(b"\x89PNG not decoded by check")
    good = {
        "train": "".join(f"img/a{i}.png 0\n" for i in range(2, 10)) + "img/b2.png 1\nimg/b3.png 1\nimg/c0.png 2\n",
        "val": "img/a0.png 0\nimg/b0.png 1\n",
        "test": "img/a1.png 0\nimg/b1.png 1\n",
        "open": "img/o0.png -1\nimg/o1.png -1\n",
    }
    for split, text in dict(
        good, **{k: v for k, v in dict(train=train, val=val, test=test, open=open_).items() if v is not None}
    ).items():
        (root / f"T_{split}.txt").write_text(text)
    return root


def test_clean_dataset_passes_with_summary(tmp_path, capsys):
    report = check_split(make_dataset(tmp_path), "T", tmp_path, many_threshold=8, few_threshold=1)
    assert report["ok"] and report["defects"] == 0 and report["num_classes"] == 3
    train = report["splits"]["train"]
    assert (train["images"], train["classes_present"], train["label_min"], train["label_max"]) == (11, 3, 0, 2)
    assert report["train"]["class_counts"] == [8, 2, 1]
    assert report["train"]["groups"] == {"many": 1, "medium": 1, "few": 1}  # 8 >= 8, 1 <= 1
    assert report["splits"]["open"]["open_images"] == 2
    printed = capsys.readouterr().out
    assert "train per class: 8 to 1" in printed and "OK: no defects found" in printed


@pytest.mark.parametrize(
    "splits, kind, split, where",
    [
        (dict(val="img/a0.png 0\nimg/gone.png 1\n"), "missing", "val", "T_val.txt:2:"),
        (dict(test="img/a1.png 0\nimg/a1.png 0\n"), "duplicates", "test", "T_test.txt:2: duplicate of line 1"),
        (dict(train="img/a2.png 0\nimg/b2.png\n img/c0.png 2\n"), "malformed", "train", "T_train.txt:2:"),
        (dict(val="img/a0.png 0\nimg/b0.png 7\n"), "label", "val", "T_val.txt:2: label 7 is outside [0, 3)"),
        (dict(open_="img/o0.png -1\nimg/o1.png -4\n"), "label", "open", "T_open.txt:2:"),
    ],
)
def test_each_planted_defect_is_found(tmp_path, capsys, splits, kind, split, where):
    report = check_split(make_dataset(tmp_path, **splits), "T", tmp_path)
    assert not report["ok"] and report["splits"][split][kind] == 1
    assert any(where in example for example in report["splits"][split]["examples"])
    assert where in capsys.readouterr().out


def test_all_defects_are_collected_not_just_the_first(tmp_path):
    train = "bad line here x\nimg/a2.png 0\nimg/zz.png 0\nimg/a2.png 0\nimg/b2.png 9\nimg/c0.png 2\nalso-bad\n"
    report = check_split(make_dataset(tmp_path, train=train), "T", tmp_path, num_classes=3, verbose=False)
    info = report["splits"]["train"]
    assert (info["malformed"], info["missing"], info["duplicates"], info["label"]) == (2, 1, 1, 1)
    assert report["train"]["empty_classes"] == [1]  # class 1's only line was out of range
    assert report["defects"] == 5 + 1


def test_missing_required_split_and_optional_open(tmp_path):
    make_dataset(tmp_path)
    (tmp_path / "T_open.txt").unlink()
    assert check_split(tmp_path, "T", tmp_path, verbose=False)["ok"]
    (tmp_path / "T_val.txt").unlink()
    report = check_split(tmp_path, "T", tmp_path, verbose=False)
    assert not report["ok"] and report["splits"]["val"]["present"] is False


def test_open_images_found_in_oltr_layout(tmp_path):
    make_dataset(tmp_path)
    (tmp_path / "T_open").mkdir()
    (tmp_path / "T_open" / "x.jpg").write_bytes(b"\xff\xd8 not decoded by check")
    (tmp_path / "T_open.txt").write_text("/x.jpg -1\n")  # OLTR: open images next to the split files
    report = check_split(tmp_path, "T", tmp_path, verbose=False)
    assert report["ok"] and report["splits"]["open"]["root"] == str(tmp_path / "T_open")


def test_shot_groups_inclusive_and_exclusive():
    counts = [100, 101, 99, 20, 21, 19]
    assert shot_group_sizes(counts, 100, 20, inclusive=True) == {"many": 2, "medium": 2, "few": 2}
    assert shot_group_sizes(counts, 100, 20, inclusive=False) == {"many": 1, "medium": 4, "few": 1}


COUNTS = [5, 9, 10, 11, 12, 20, 100]


@pytest.mark.parametrize("many, few, inclusive", [(11, 10, True), (11, 10, False), (100, 20, True), (12, 5, False)])
def test_check_groups_classes_as_the_results_files_do(many, few, inclusive):
    groups = shot_groups(COUNTS, many, few, inclusive)
    sizes = shot_group_sizes(COUNTS, many, few, inclusive)
    assert sizes == {name: int(mask.sum()) for name, mask in groups.items()}
    assert sum(sizes.values()) == len(COUNTS)


@pytest.mark.parametrize("many, few, inclusive", [(10, 10, True), (10, 10, False), (10, 12, True)])
def test_overlapping_thresholds_are_refused_alike_by_check_and_metrics(many, few, inclusive):
    # A count of 10 would be many- and few-shot at once: neither place picks a group for it.
    with pytest.raises(ValueError) as by_metrics:
        shot_groups(COUNTS, many, few, inclusive)
    with pytest.raises(ValueError) as by_check:
        shot_group_sizes(COUNTS, many, few, inclusive)
    assert (
        str(by_check.value)
        == str(by_metrics.value)
        == (f"few_threshold ({few}) must be smaller than many_threshold ({many})")
    )


def test_overlapping_thresholds_are_a_one_line_error(tmp_path, capsys):
    make_dataset(tmp_path)
    with pytest.raises(DataError, match=r"^few_threshold \(10\) must be smaller than many_threshold \(10\)$"):
        check_split(tmp_path, "T", tmp_path, many_threshold=10, few_threshold=10, verbose=False)
    args = [
        "check",
        "--split_dir",
        str(tmp_path),
        "--dataset",
        "T",
        "--data_root",
        str(tmp_path),
        "--many_threshold",
        "10",
        "--few_threshold",
        "10",
    ]
    assert main(args) == 2
    assert capsys.readouterr().err == "error: few_threshold (10) must be smaller than many_threshold (10)\n"


def test_cli_exit_codes(tmp_path, capsys):
    make_dataset(tmp_path)
    args = ["check", "--split_dir", str(tmp_path), "--dataset", "T", "--data_root", str(tmp_path)]
    assert main(args + ["--json", str(tmp_path / "r.json")]) == 0
    assert json.loads((tmp_path / "r.json").read_text())["ok"] is True
    (tmp_path / "T_test.txt").write_text("img/a1.png 0\nimg/nothere.png 1\n")
    assert main(args) == 1
    capsys.readouterr()
    assert main(["check", "--split_dir", str(tmp_path / "no"), "--dataset", "T", "--data_root", "."]) == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and "split_dir" in error and "Traceback" not in error


def test_cli_digits_and_make_lt(tmp_path, capsys):
    assert main(["digits", "--root", str(tmp_path / "D")]) == 0
    assert "Digits_LT ready" in capsys.readouterr().out
    images = tmp_path / "D" / "images"
    assert (
        main(
            [
                "make-lt",
                str(images),
                str(tmp_path / "S"),
                "--dataset",
                "Re",
                "--profile",
                "exponential",
                "--max_count",
                "10",
                "--imbalance_factor",
                "5",
                "--val_per_class",
                "1",
                "--test_per_class",
                "1",
                "--open_classes",
                "8,9",
                "--open_per_class",
                "3",
            ]
        )
        == 0
    )
    assert (tmp_path / "S" / "Re_open.txt").read_text().count("\n") == 6
    assert main(["make-lt", str(images), str(tmp_path / "S"), "--dataset", "Re", "--max_count", "500"]) == 2
    assert "needs" in capsys.readouterr().err
