"""Digits-LT: the embedded default dataset, built from scikit-learn's handwritten digits.

A fresh clone with no data and no network still runs the whole OLTR pipeline
on it through the same split-file code path as ImageNet-LT. The build is
deterministic (seed 0) and takes well under a second:

* source: ``sklearn.datasets.load_digits`` (1,797 8x8 images, values 0-16,
  174-183 per digit), written as 8x8 grayscale PNGs scaled to 0-255 under
  ``images/<digit>/<index in load_digits>.png``;
* open set: digits 8 and 9 are held out; 50 images of each (100) form the open
  split with label -1;
* known classes: digits 0-7, label = digit; per class a shuffled list gives
  20 test images, then 10 val images, then the train images;
* train counts follow the exponential profile from 140 (digit 0) to 5
  (digit 7): 140, 86, 54, 33, 20, 12, 8, 5 (358 images, imbalance factor 28);
* suggested shot thresholds for its configs (scaled to its size): many-shot
  >= 50 training images (3 classes), few-shot <= 10 (2 classes), inclusive.

``meta.json`` records all of this plus the train pixel mean/std; the marker
file ``.complete`` holds the build version and a hash of the split files and
meta, so a stale or edited build is noticed.
"""

import contextlib
import hashlib
import json
import os
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

from ..common.errors import DataError
from .profiles import long_tail_counts
from .split_file import OPEN_LABEL, SPLITS, split_path, write_split

DATASET = "Digits_LT"
VERSION = 1
SEED = 0
OPEN_DIGITS = (8, 9)
KNOWN_DIGITS = (0, 1, 2, 3, 4, 5, 6, 7)
MAX_COUNT, MIN_COUNT, PROFILE = 140, 5, "exponential"
VAL_PER_CLASS, TEST_PER_CLASS, OPEN_PER_CLASS = 10, 20, 50
SHOT_THRESHOLDS = {"many": 50, "few": 10, "inclusive": True}
MARKER = ".complete"
_HASHED_FILES = [f"{DATASET}_{split}.txt" for split in SPLITS] + ["meta.json"]


def _file_hashes(root):
    return {name: hashlib.sha256((Path(root) / name).read_bytes()).hexdigest() for name in _HASHED_FILES}


def _content_hash(root):
    digest = hashlib.sha256()
    for name in _HASHED_FILES:
        digest.update(name.encode())
        digest.update((Path(root) / name).read_bytes())
    return digest.hexdigest()


def build_problem(root):
    """Why ``root`` is not a finished build of this version with its files intact ('' when it is)."""
    root = Path(root)
    try:
        marker = json.loads((root / MARKER).read_text())
    except FileNotFoundError:
        return f"it is not a Digits_LT build (no {MARKER} marker)"
    except (OSError, ValueError) as error:
        return f"its {MARKER} marker cannot be read ({error})"
    if not isinstance(marker, dict) or marker.get("version") != VERSION:
        return f"it is a build of another version (marker {MARKER}: {marker!r:.80})"
    try:
        if marker.get("hash") != _content_hash(root):
            files = marker.get("files") if isinstance(marker.get("files"), dict) else {}
            now = _file_hashes(root) if files else {}
            edited = [name for name in _HASHED_FILES if files and files.get(name) != now.get(name)]
            return f"{root / edited[0] if edited else 'one of ' + ', '.join(_HASHED_FILES)} was edited after the build"
        for split in SPLITS:
            for line in split_path(root, DATASET, split).read_text().splitlines():
                if not (root / line.rsplit(None, 1)[0]).is_file():
                    return f"its image {root / line.rsplit(None, 1)[0]} is missing"
    except OSError as error:
        return f"{error.filename or root} cannot be read ({error.strerror or error})"
    return ""


def is_complete(root):
    """True when ``root`` holds a finished build of this version with its files intact."""
    return not build_problem(root)


def _save_png(pixels_0_to_16, path):
    path.parent.mkdir(parents=True, exist_ok=True)
    pixels = np.rint(pixels_0_to_16 * (255.0 / 16.0)).astype(np.uint8)
    Image.fromarray(pixels, mode="L").save(path, format="PNG")


def _build_into(root):
    """Write images, split files, meta.json and the marker into the empty directory ``root``."""
    from sklearn.datasets import load_digits  # the heavy import only when building

    digits = load_digits()
    images, targets = digits.images, digits.target
    rng = np.random.default_rng(SEED)
    train_counts = long_tail_counts(len(KNOWN_DIGITS), MAX_COUNT, MIN_COUNT, PROFILE)
    splits = {split: [] for split in SPLITS}
    for label, digit in enumerate(KNOWN_DIGITS):
        members = rng.permutation(np.flatnonzero(targets == digit))
        cuts = np.cumsum([TEST_PER_CLASS, VAL_PER_CLASS, train_counts[label]])
        if cuts[-1] > len(members):
            raise AssertionError(f"digit {digit} has {len(members)} images, needs {cuts[-1]}")
        for split, part in zip(("test", "val", "train"), np.split(members[: cuts[-1]], cuts[:-1])):
            splits[split].extend((int(index), label) for index in sorted(part))
    for digit in OPEN_DIGITS:
        members = rng.permutation(np.flatnonzero(targets == digit))[:OPEN_PER_CLASS]
        splits["open"].extend((int(index), OPEN_LABEL) for index in sorted(members))

    relative = {}
    for split, samples in splits.items():
        lines = []
        for index, label in samples:
            path = relative.setdefault(index, f"images/{targets[index]}/{index}.png")
            lines.append((path, label))
        write_split(split_path(root, DATASET, split), lines)
    for index, path in relative.items():
        _save_png(images[index], root / path)

    train_pixels = images[[index for index, _ in splits["train"]]] / 16.0
    meta = {
        "dataset": DATASET,
        "version": VERSION,
        "source": "sklearn.datasets.load_digits",
        "seed": SEED,
        "profile": PROFILE,
        "num_classes": len(KNOWN_DIGITS),
        "known_classes": list(KNOWN_DIGITS),
        "open_classes": list(OPEN_DIGITS),
        "train_counts": train_counts,
        "val_per_class": VAL_PER_CLASS,
        "test_per_class": TEST_PER_CLASS,
        "open_per_class": OPEN_PER_CLASS,
        "sizes": {split: len(samples) for split, samples in splits.items()},
        "shot_thresholds": SHOT_THRESHOLDS,
        "pixel_mean": round(float(train_pixels.mean()), 4),
        "pixel_std": round(float(train_pixels.std()), 4),
    }
    (root / "meta.json").write_text(json.dumps(meta, indent=2) + "\n")
    marker = {"version": VERSION, "hash": _content_hash(root), "files": _file_hashes(root)}
    (root / MARKER).write_text(json.dumps(marker) + "\n")


def _check_replaceable(root, replace):
    """Nothing of a previous copy is ever deleted: an empty directory makes way; with ``replace`` a previous
    copy is moved aside to ``<root>.old-<timestamp>``; otherwise a copy that is not intact is refused."""
    if not root.exists():
        return
    if root.is_dir() and not any(root.iterdir()):
        with contextlib.suppress(OSError):
            root.rmdir()
        return
    if replace:
        stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime())
        target = root.with_name(f"{root.name}.old-{stamp}")
        with contextlib.suppress(FileNotFoundError):  # another process moved it first
            os.rename(root, target)
            print(f"note: moved the previous {root} aside to {target}", flush=True)
        return
    raise DataError(
        f"{root} is not an intact Digits_LT build: {build_problem(root)}; nothing was changed or deleted. Restore "
        f"it, point training_opt.data_root (and split_dir) at another folder to build there, or run "
        f"`oltr data digits --root {root} --force` to move it aside to {root}.old-<timestamp> and build afresh"
    )


def ensure_digits_lt(root="data/Digits_LT", replace=False):
    """Return ``root`` after making sure a complete Digits-LT build is there.

    Built when ``root`` is missing (or an empty directory); a copy that is not intact (an edited split,
    a missing image, other files) is refused, never rebuilt over, unless ``replace`` moves it aside.
    The build happens in a temporary sibling directory renamed into place, so an interrupted build
    leaves nothing half-written, and two processes racing both end up with the one complete copy.
    """
    root = Path(root)
    if is_complete(root):
        return root
    _check_replaceable(root, replace)
    root.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{root.name}.build-", dir=root.parent))
    staging.chmod(0o755)  # mkdtemp makes it private; the dataset should be readable like any other
    try:
        _build_into(staging)
        try:
            os.rename(staging, root)  # fails if root reappeared (not empty): another process built it first
            return root
        except OSError:
            pass
        if is_complete(root):
            return root
        _check_replaceable(root, replace=False)
        raise DataError(f"could not put the Digits_LT build in place at {root}; retry")
    finally:
        shutil.rmtree(staging, ignore_errors=True)
