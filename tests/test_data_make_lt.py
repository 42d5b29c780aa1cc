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


@pytest.fixture
def distinct_image_root(tmp_path):
    """A tree like image_root, each file with its own bytes, so content equality means a copy."""
    root = tmp_path / "distinct"
    for name in ("ant", "bee", "cat"):
        (root / name).mkdir(parents=True)
        for i in range(30):
            (root / name / f"{i}.png").write_bytes(f"{name}-{i}".encode())
    return root


def test_open_from_another_folder_leaves_out_copies_of_training_images(distinct_image_root, tmp_path):
    other = tmp_path / "textures"
    for name in ("dotted", "striped"):
        (other / name).mkdir(parents=True)
        for i in range(6):
            (other / name / f"{i}.png").write_bytes(f"{name}-{i}".encode())
    # a copy of a training image (same bytes, other name), and a same-size image with other bytes
    train_first = make_lt(distinct_image_root, tmp_path / "probe", "Toy", val_per_class=5, test_per_class=5)
    trained = read_all(tmp_path / "probe", distinct_image_root, 3)["train"][0][0]
    copy = other / "striped" / "copy.png"
    copy.write_bytes(open(trained, "rb").read())
    (other / "striped" / "near.png").write_bytes(b"x" * len(open(trained, "rb").read()))
    assert train_first["sizes"]["open"] == 0
    out = tmp_path / "splits"
    summary = make_lt(
        distinct_image_root, out, "Toy", val_per_class=5, test_per_class=5, open_per_class=20, open_from=other
    )
    splits = read_all(out, distinct_image_root, 3)
    opened = sorted(path.split("textures/")[1] for path, _ in splits["open"])
    assert summary["open_duplicates_of_train"] == ["../textures/striped/copy.png"]
    assert opened == sorted(
        [f"dotted/{i}.png" for i in range(6)] + [f"striped/{i}.png" for i in range(6)] + ["striped/near.png"]
    )
    assert all(label == -1 for _, label in splits["open"]) and summary["open_classes"] == ["dotted", "striped"]
    # the split's paths are relative to the image root, so the config's data_root finds both trees
    assert all(open(path, "rb").read() for path, _ in splits["open"])
    with pytest.raises(DataError, match="not both"):
        make_lt(distinct_image_root, out, "Toy", val_per_class=5, test_per_class=5, open_classes=1, open_from=other)
    with pytest.raises(DataError, match="the image folder itself"):
        make_lt(distinct_image_root, out, "Toy", val_per_class=5, test_per_class=5, open_from=distinct_image_root)


def test_make_lt_cli_takes_open_from_and_names_what_it_left_out(distinct_image_root, tmp_path, capsys):
    from oltr.data.__main__ import main

    other = tmp_path / "svhn"
    (other / "0").mkdir(parents=True)
    (other / "0" / "b.png").write_bytes(b"svhn-b")
    args = [
        "make-lt",
        str(distinct_image_root),
        str(tmp_path / "out"),
        "--dataset",
        "Toy",
        "--val_per_class",
        "5",
        "--test_per_class",
        "5",
        "--open_from",
        str(other),
    ]
    assert main(args) == 0
    trained = (tmp_path / "out" / "Toy_train.txt").read_text().splitlines()[0].rsplit(" ", 1)[0]
    (other / "0" / "a.png").write_bytes((distinct_image_root / trained).read_bytes())  # a training image's bytes
    assert main([*args, "--force"]) == 0
    printed = capsys.readouterr().out
    assert "left out of the open split, equal to a training image (1): ../svhn/0/a.png" in printed
    assert (tmp_path / "out" / "Toy_open.txt").read_text().splitlines() == ["../svhn/0/b.png -1"]
