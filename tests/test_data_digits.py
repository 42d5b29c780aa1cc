"""Digits_LT: builds from scikit-learn's digits, deterministically, with the documented splits."""

import json
import threading
from collections import Counter

import numpy as np
import pytest
from PIL import Image
from sklearn.datasets import load_digits

from oltr.common.errors import DataError
from oltr.data.digits_lt import ensure_digits_lt, is_complete
from oltr.data.profiles import long_tail_counts
from oltr.data.split_file import read_split

SPLIT_NAMES = ("train", "val", "test", "open")


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    return ensure_digits_lt(tmp_path_factory.mktemp("a") / "Digits_LT")


def splits(root):
    return {s: read_split(root / f"Digits_LT_{s}.txt", root, 8, allow_open=(s == "open")) for s in SPLIT_NAMES}


def test_counts_follow_the_exponential_profile(built):
    parts = splits(built)
    train = Counter(label for _, label in parts["train"])
    expected = long_tail_counts(8, 140, 5, "exponential")
    assert [train[c] for c in range(8)] == expected == [140, 86, 54, 33, 20, 12, 8, 5]
    assert Counter(label for _, label in parts["val"]) == {c: 10 for c in range(8)}
    assert Counter(label for _, label in parts["test"]) == {c: 20 for c in range(8)}
    assert len(parts["open"]) == 100 and {label for _, label in parts["open"]} == {-1}
    meta = json.loads((built / "meta.json").read_text())
    assert meta["train_counts"] == expected and meta["open_classes"] == [8, 9]
    assert meta["sizes"] == {"train": 358, "val": 80, "test": 160, "open": 100}


def test_splits_are_disjoint_and_open_classes_held_out(built):
    parts = splits(built)
    paths = {s: {p for p, _ in parts[s]} for s in SPLIT_NAMES}
    assert sum(len(p) for p in paths.values()) == len(set().union(*paths.values()))
    digits = load_digits()
    for split in ("train", "val", "test"):
        for path, label in parts[split]:
            index = int(path.rsplit("/", 1)[1][:-4])
            assert digits.target[index] == label  # label = digit, known digits only (0-7)
    assert {digits.target[int(p.rsplit("/", 1)[1][:-4])] for p, _ in parts["open"]} == {8, 9}


def test_images_are_8x8_grayscale_pngs_of_the_digits(built):
    digits = load_digits()
    for path, _ in splits(built)["train"][:20]:
        with Image.open(path) as image:
            assert image.format == "PNG" and image.mode == "L" and image.size == (8, 8)
            pixels = np.asarray(image)
        index = int(path.rsplit("/", 1)[1][:-4])
        assert np.array_equal(pixels, np.rint(digits.images[index] * 255 / 16).astype(np.uint8))


def test_build_is_deterministic(built, tmp_path):
    again = ensure_digits_lt(tmp_path / "Digits_LT")
    for split in SPLIT_NAMES:
        name = f"Digits_LT_{split}.txt"
        assert (again / name).read_bytes() == (built / name).read_bytes()
    assert (again / "meta.json").read_bytes() == (built / "meta.json").read_bytes()


def test_second_call_reuses_and_damage_is_refused_never_rebuilt_over(tmp_path):
    root = ensure_digits_lt(tmp_path / "Digits_LT")
    stamp = (root / "Digits_LT_train.txt").stat().st_mtime_ns
    assert ensure_digits_lt(root) == root and (root / "Digits_LT_train.txt").stat().st_mtime_ns == stamp
    (root / "Digits_LT_val.txt").write_text("edited 0\n")
    (root / "notes.txt").write_text("mine")
    assert not is_complete(root)
    with pytest.raises(DataError, match="Digits_LT_val.txt was edited"):
        ensure_digits_lt(root)
    assert (root / "Digits_LT_val.txt").read_text() == "edited 0\n" and (root / "notes.txt").read_text() == "mine"
    # replace=True (oltr data digits --force) moves the edited copy aside, whole, and builds afresh
    assert is_complete(ensure_digits_lt(root, replace=True))
    (old,) = tmp_path.glob("Digits_LT.old-*")
    assert (old / "notes.txt").read_text() == "mine" and (old / "Digits_LT_val.txt").read_text() == "edited 0\n"
    next(iter((root / "images" / "0").iterdir())).unlink()
    with pytest.raises(DataError, match="image .* is missing"):
        ensure_digits_lt(root)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["Digits_LT", old.name]  # no staging left behind


def test_racing_builders_both_succeed(tmp_path):
    root = tmp_path / "Digits_LT"
    errors = []

    def build():
        try:
            ensure_digits_lt(root)
        except Exception as error:  # pragma: no cover - reported below
            errors.append(error)

    threads = [threading.Thread(target=build) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors and is_complete(root)
    assert [p.name for p in tmp_path.iterdir()] == ["Digits_LT"]


def test_refuses_to_replace_a_foreign_directory(tmp_path):
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep me")
    with pytest.raises(DataError, match="is not a Digits_LT build"):
        ensure_digits_lt(tmp_path / "mine")
    assert (tmp_path / "mine" / "notes.txt").read_text() == "keep me"
