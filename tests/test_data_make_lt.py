"""make_lt on a generated image folder: profile counts, disjoint splits, open classes, errors."""

import json
from collections import Counter

import pytest

from oltr.common.errors import DataError
from oltr.data.make_lt import make_lt
from oltr.data.profiles import long_tail_counts
from oltr.data.split_file import read_split

CLASS_SIZES = {"ant": 40, "bee": 35, "cat": 38, "dog": 30, "eel": 33, "fox": 12}


@pytest.fixture
def image_root(tmp_path):
    root = tmp_path / "images"
    for name, size in CLASS_SIZES.items():
        (root / name / "sub").mkdir(parents=True)
        for i in range(size):
            folder = root / name / ("sub" if i % 2 else "")
            (folder / f"img {i}.png").write_bytes(b"")  # a space in the name on purpose
        (root / name / "notes.txt").write_text("not an image")
    return root


def read_all(out_dir, root, num_classes, name="Toy"):
    return {
        split: read_split(out_dir / f"{name}_{split}.txt", root, num_classes, allow_open=(split == "open"))
        for split in ("train", "val", "test", "open")
        if (out_dir / f"{name}_{split}.txt").exists()
    }


def test_counts_follow_the_profile_and_splits_are_disjoint(image_root, tmp_path):
    out = tmp_path / "splits"
    summary = make_lt(
        image_root,
        out,
        "Toy",
        profile="pareto",
        max_count=20,
        min_count=3,
        val_per_class=4,
        test_per_class=6,
        open_classes=["fox"],
        seed=3,
    )
    known = ["ant", "bee", "cat", "dog", "eel"]
    assert summary["classes"] == known and summary["open_classes"] == ["fox"]
    parts = read_all(out, image_root, 5)
    train = Counter(label for _, label in parts["train"])
    assert sorted(train.values(), reverse=True) == long_tail_counts(5, 20, 3, "pareto")
    assert [train[c] for c in range(5)] == summary["train_counts"]
    assert Counter(label for _, label in parts["val"]) == {c: 4 for c in range(5)}
    assert Counter(label for _, label in parts["test"]) == {c: 6 for c in range(5)}
    assert len(parts["open"]) == 6 and all("/fox/" in p for p, _ in parts["open"])
    paths = [p for samples in parts.values() for p, _ in samples]
    assert len(paths) == len(set(paths))  # no image in two splits
    for label, name in enumerate(known):  # every image sits in its own class folder
        assert all(f"/{name}/" in p for s in ("train", "val", "test") for p, l in parts[s] if l == label)
    assert (out / "Toy_classes.txt").read_text().splitlines() == [f"{i} {n}" for i, n in enumerate(known)]
    assert json.loads((out / "Toy_meta.json").read_text())["sizes"] == summary["sizes"]


def test_same_seed_same_files_other_seed_differs(image_root, tmp_path):
    kwargs = dict(profile="exponential", min_count=2, val_per_class=3, test_per_class=3, open_classes=1)
    make_lt(image_root, tmp_path / "a", "Toy", seed=0, **kwargs)
    make_lt(image_root, tmp_path / "b", "Toy", seed=0, **kwargs)
    make_lt(image_root, tmp_path / "c", "Toy", seed=1, **kwargs)
    text = lambda d: (tmp_path / d / "Toy_train.txt").read_text()
    assert text("a") == text("b") and text("a") != text("c")


def test_default_max_count_is_what_every_class_can_give(image_root, tmp_path):
    summary = make_lt(
        image_root,
        tmp_path / "out",
        "Toy",
        profile="exponential",
        imbalance_factor=2,
        val_per_class=2,
        test_per_class=3,
        shuffle_profile=False,
    )
    assert summary["train_counts"] == long_tail_counts(6, 12 - 5, imbalance_factor=2)
    assert summary["open_classes"] == [] and not (tmp_path / "out" / "Toy_open.txt").exists()


def test_too_few_images_names_the_class_and_counts(image_root, tmp_path):
    with pytest.raises(DataError, match=r"class 'fox' .* has 12 images but needs \d+ \(train \d+ \+ val 5 \+ test 5\)"):
        make_lt(
            image_root,
            tmp_path / "out",
            "Toy",
            max_count=20,
            min_count=5,
            val_per_class=5,
            test_per_class=5,
            shuffle_profile=False,
        )


@pytest.mark.parametrize(
    "kwargs, fragment",
    [
        (dict(open_classes=["yak"]), "open class 'yak'"),
        (dict(open_classes=6), "open_classes must be between 0 and 5"),
        (dict(val_per_class=-1), "val_per_class must be an integer"),
    ],
)
def test_bad_arguments(image_root, tmp_path, kwargs, fragment):
    with pytest.raises(DataError, match=fragment):
        make_lt(image_root, tmp_path / "out", "Toy", min_count=1, **kwargs)


def test_missing_image_folder(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        make_lt(tmp_path / "nope", tmp_path / "out", "Toy")
