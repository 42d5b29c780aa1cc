"""export_cifar_lt on a tiny stand-in CIFAR-10 in the python-pickle layout (no network)."""

import pickle
import urllib.error
from collections import Counter

import numpy as np
import pytest
import torchvision
from PIL import Image

from oltr.common.errors import DataError
from oltr.data.cifar_lt import export_cifar_lt
from oltr.data.profiles import long_tail_counts
from oltr.data.split_file import read_split

NAMES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
TRAIN_PER_CLASS, TEST_PER_CLASS = 30, 4


def image_of(label, i):
    """A 32x32x3 image whose pixels encode its class and number, so exports can be traced back."""
    return np.full((3, 32, 32), 0, np.uint8) + np.array([label * 20, i, 7], np.uint8)[:, None, None]


@pytest.fixture
def cifar_root(tmp_path, monkeypatch):
    folder = tmp_path / "cifar" / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    train = [(label, i) for i in range(TRAIN_PER_CLASS) for label in range(10)]
    for batch in range(5):
        part = train[batch::5]
        data = np.stack([image_of(label, i).reshape(-1) for label, i in part])
        with open(folder / f"data_batch_{batch + 1}", "wb") as handle:
            pickle.dump({"data": data, "labels": [label for label, _ in part]}, handle)
    test = [(label, 100 + i) for i in range(TEST_PER_CLASS) for label in range(10)]
    with open(folder / "test_batch", "wb") as handle:
        pickle.dump(
            {"data": np.stack([image_of(l, i).reshape(-1) for l, i in test]), "labels": [l for l, _ in test]}, handle
        )
    with open(folder / "batches.meta", "wb") as handle:
        pickle.dump({"label_names": NAMES}, handle)
    # The stand-in files cannot match the real archive's MD5 sums.
    monkeypatch.setattr(torchvision.datasets.cifar, "check_integrity", lambda *args, **kwargs: True)
    return tmp_path / "cifar"


def test_export_long_tail_val_test_and_open(cifar_root, tmp_path):
    out = tmp_path / "CIFAR10_LT"
    summary = export_cifar_lt(cifar_root, out, "cifar10", imbalance_factor=10, val_per_class=3, download=False)
    assert summary["classes"] == NAMES[:8] and summary["open_classes"] == ["ship", "truck"]
    expected = long_tail_counts(8, TRAIN_PER_CLASS - 3, imbalance_factor=10, profile="exponential")
    assert summary["train_counts"] == expected == [27, 19, 13, 10, 7, 5, 3, 2]  # 27 * 0.1 ** (i / 7), floored
    parts = {
        s: read_split(out / f"CIFAR10_LT_{s}.txt", out, 8, allow_open=(s == "open"))
        for s in ("train", "val", "test", "open")
    }
    assert [Counter(l for _, l in parts["train"])[c] for c in range(8)] == expected
    assert Counter(l for _, l in parts["val"]) == {c: 3 for c in range(8)}
    assert Counter(l for _, l in parts["test"]) == {c: TEST_PER_CLASS for c in range(8)}
    assert len(parts["open"]) == 2 * TEST_PER_CLASS and {l for _, l in parts["open"]} == {-1}
    paths = [p for samples in parts.values() for p, _ in samples]
    assert len(paths) == len(set(paths))
    for split, samples in parts.items():  # each PNG is the right class's image, from the right CIFAR split
        for path, label in samples[:: max(1, len(samples) // 10)]:
            with Image.open(path) as image:
                pixels = np.asarray(image)
            assert pixels.shape == (32, 32, 3)
            source_class, number = pixels[0, 0, 0] // 20, pixels[0, 0, 1]
            assert source_class == (label if label >= 0 else source_class) and (source_class >= 8) == (label == -1)
            assert (number >= 100) == (split in ("test", "open"))


def test_open_classes_by_name_and_determinism(cifar_root, tmp_path):
    kwargs = dict(which="cifar10", imbalance_factor=5, val_per_class=2, open_classes=["cat", 0], download=False)
    first = export_cifar_lt(cifar_root, tmp_path / "a", **kwargs)
    export_cifar_lt(cifar_root, tmp_path / "b", **kwargs)
    assert first["open_classes"] == ["airplane", "cat"] and first["num_classes"] == 8
    for split in ("train", "val", "test", "open"):
        name = f"CIFAR10_LT_{split}.txt"
        assert (tmp_path / "a" / name).read_text() == (tmp_path / "b" / name).read_text()


def test_missing_archive_says_what_to_download(tmp_path):
    with pytest.raises(
        DataError, match=r"download https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz.*cifar-10-batches-py"
    ):
        export_cifar_lt(tmp_path / "empty", tmp_path / "out", download=False)


def test_failed_download_becomes_a_data_error(tmp_path, monkeypatch):
    def offline(self):
        raise urllib.error.URLError("no network")

    monkeypatch.setattr(torchvision.datasets.CIFAR100, "download", offline)
    with pytest.raises(DataError, match=r"could not download CIFAR100 .*cifar-100-python.tar.gz"):
        export_cifar_lt(tmp_path / "empty", tmp_path / "out", which="cifar100", download=True)


def test_too_large_max_count(cifar_root, tmp_path):
    with pytest.raises(DataError, match="max_count"):
        export_cifar_lt(cifar_root, tmp_path / "out", max_count=29, val_per_class=3, download=False)
