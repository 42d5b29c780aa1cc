"""Generate long-tailed, open-set split files for any labelled image folder.

This is how OLTR (Liu et al., CVPR 2019) built ImageNet-LT: keep a balanced
val and test set per class, subsample each class's training images to a
heavy-tailed count, and hold out some classes as the open set. The folder is
laid out like torchvision's ImageFolder (``<image_root>/<class name>/...``);
known classes get labels 0..K-1 in sorted name order.

With a fixed seed the choice is deterministic: the open classes (when given as
a count) are drawn first, then the profile positions are dealt to the known
classes in a shuffled order (``shuffle_profile``; otherwise in label order, as
CIFAR-LT does), then per class, in label order, a shuffled image list gives
``test_per_class`` test, ``val_per_class`` val and the class's train images.

``open_from``: the open split comes from another ImageFolder tree instead of held-out classes, as
PASCL (Wang et al., CVPR 2022) pairs CIFAR-LT with SVHN or Textures: ``open_per_class`` images of each of
its classes, written relative to ``image_root`` (``../other/...``), so the config's data_root serves both.
An image of that tree whose bytes equal a training image's is left out and named in the summary
(``open_duplicates_of_train``): an open image the model trained on would not be unknown.
"""

import hashlib
import os
from pathlib import Path

import numpy as np

from ..common.atomic import write_json_atomic, write_text_atomic
from ..common.errors import DataError
from .profiles import long_tail_counts
from .split_file import OPEN_LABEL, refuse_existing, split_path, write_split

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".pgm", ".tif", ".tiff", ".webp")
DEFAULT_MIN_COUNT = 5  # OLTR's smallest class in ImageNet-LT and Places-LT


def scan_image_folder(image_root):
    """``{class name: [relative image paths, sorted]}`` for each subfolder of ``image_root``."""
    image_root = Path(image_root)
    if not image_root.is_dir():
        raise DataError(f"image folder {image_root} does not exist or is not a directory.")
    classes = {}
    for entry in sorted(os.scandir(image_root), key=lambda e: e.name):
        if not entry.is_dir() or entry.name.startswith("."):
            continue
        files = []
        for folder, subfolders, names in os.walk(entry.path):
            subfolders[:] = sorted(name for name in subfolders if not name.startswith("."))
            for name in names:
                if name.lower().endswith(IMAGE_EXTENSIONS) and not name.startswith("."):
                    files.append(Path(folder, name).relative_to(image_root).as_posix())
        classes[entry.name] = sorted(files)
    if not classes:
        raise DataError(f"image folder {image_root} has no class subfolders (expected <image_root>/<class>/<image>).")
    return classes


def _choose_open_classes(names, open_classes, rng):
    if isinstance(open_classes, int) and not isinstance(open_classes, bool):
        if not 0 <= open_classes < len(names):
            raise DataError(
                (
                    f"open_classes must be between 0 and {len(names) - 1} (there are {len(names)} classes), got "
                    f"{open_classes}."
                )
            )
        return sorted(rng.choice(names, size=open_classes, replace=False).tolist())
    chosen = sorted(str(name) for name in open_classes)
    unknown = [name for name in chosen if name not in names]
    if unknown:
        raise DataError(
            f"open class {unknown[0]!r} is not a subfolder of the image folder; choose from {names[:10]}..."
        )
    if len(chosen) >= len(names):
        raise DataError("open_classes must leave at least one known class.")
    return chosen


def _check_count(name, value, minimum=0):
    if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
        raise DataError(f"{name} must be an integer >= {minimum}, got {value!r}.")


def make_lt(
    image_root,
    out_dir,
    dataset_name,
    profile="pareto",
    max_count=None,
    min_count=None,
    imbalance_factor=None,
    val_per_class=20,
    test_per_class=50,
    open_classes=0,
    open_per_class=None,
    seed=0,
    shuffle_profile=True,
    force=True,
    open_from=None,
):
    """Write ``<out_dir>/<dataset_name>_{train,val,test,open}.txt`` (+ ``_classes.txt``, ``_meta.json``).

    Paths in the split files are relative to ``image_root`` (use it as the
    config's ``data_root``). ``max_count`` defaults to the most every known
    class can give after val and test; ``min_count`` to 5 unless
    ``imbalance_factor`` (max/min) is given. ``open_classes`` is a count (drawn
    with the seed) or a list of class names; each contributes
    ``open_per_class`` images (default ``test_per_class``, fewer if it has
    fewer). ``open_from``: a folder whose classes are the open set instead (``open_classes`` must be 0).
    Returns the summary also saved as ``_meta.json``. ``force=False`` refuses (DataError)
    to replace split files of ``dataset_name`` already in ``out_dir``, after every other check.
    """
    for name, value in (("val_per_class", val_per_class), ("test_per_class", test_per_class)):
        # an empty val split picks no best epoch, an empty test split measures nothing: refused, not written
        _check_count(name, value, minimum=1)
    open_per_class = test_per_class if open_per_class is None else open_per_class
    _check_count("open_per_class", open_per_class, minimum=1)
    classes = scan_image_folder(image_root)
    outside = None
    if open_from is not None:
        if open_classes:
            raise DataError("give either --open_from (an open split from another folder) or --open_classes, not both.")
        if Path(open_from).resolve() == Path(image_root).resolve():
            raise DataError(f"--open_from {open_from} is the image folder itself; name another dataset's folder.")
        outside = scan_image_folder(open_from)
    names = sorted(classes)
    rng = np.random.default_rng(seed)
    open_names = _choose_open_classes(names, open_classes, rng)
    known = [name for name in names if name not in open_names]
    reserved = val_per_class + test_per_class
    if max_count is None:
        max_count = min(len(classes[name]) for name in known) - reserved
        if max_count < 1:
            poorest = min(known, key=lambda name: len(classes[name]))
            raise DataError(
                f"class {poorest!r} has {len(classes[poorest])} images, too few for val {val_per_class} + "
                f"test {test_per_class} + at least 1 train image; lower val_per_class/test_per_class."
            )
    if min_count is None and imbalance_factor is None:
        min_count = min(DEFAULT_MIN_COUNT, max_count)
    counts = long_tail_counts(len(known), max_count, min_count, profile, imbalance_factor)
    positions = rng.permutation(len(known)) if shuffle_profile else np.arange(len(known))
    train_counts = [counts[position] for position in positions]

    splits = {"train": [], "val": [], "test": [], "open": []}
    for label, name in enumerate(known):
        need = train_counts[label] + reserved
        if len(classes[name]) < need:
            raise DataError(
                f"class {name!r} in {image_root} has {len(classes[name])} images but needs {need} "
                f"(train {train_counts[label]} + val {val_per_class} + test {test_per_class}); "
                f"lower max_count, val_per_class or test_per_class, or drop the class."
            )
        order = rng.permutation(len(classes[name]))
        chosen = [classes[name][i] for i in order[:need]]
        splits["test"] += [(path, label) for path in sorted(chosen[:test_per_class])]
        splits["val"] += [(path, label) for path in sorted(chosen[test_per_class:reserved])]
        splits["train"] += [(path, label) for path in sorted(chosen[reserved:])]
    for name in open_names:
        order = rng.permutation(len(classes[name]))[:open_per_class]
        splits["open"] += [(classes[name][i], OPEN_LABEL) for i in sorted(order)]
    duplicates = []
    if outside is not None:
        splits["open"], duplicates = _open_from_folder(
            outside, open_from, image_root, splits["train"], open_per_class, rng
        )

    summary = {
        "dataset": dataset_name,
        "image_root": str(image_root),
        "num_classes": len(known),
        "classes": known,
        "open_classes": open_names,
        "profile": profile,
        "max_count": max(train_counts),
        "min_count": min(train_counts),
        "train_counts": train_counts,
        "val_per_class": val_per_class,
        "test_per_class": test_per_class,
        "open_per_class": open_per_class,
        "seed": seed,
    }
    if outside is not None:
        summary.update(
            {"open_from": str(open_from), "open_classes": sorted(outside), "open_duplicates_of_train": duplicates}
        )
    if not force:
        refuse_existing(out_dir, dataset_name, force)
    return write_split_files(out_dir, dataset_name, splits, known, summary)


def _digest(path):
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _open_from_folder(outside, open_from, image_root, train, open_per_class, rng):
    """(open split drawn from ``outside``, paths left out as byte-equal to a training image).

    Only files of a size some training image has are hashed: the rest cannot be equal.
    """
    train_files = [os.path.join(image_root, path) for path, _ in train]
    by_size = {}
    for path in train_files:
        by_size.setdefault(os.path.getsize(path), []).append(path)
    train_digests = None
    relative_root = os.path.relpath(open_from, image_root)
    chosen, duplicates = [], []
    for name in sorted(outside):
        files = outside[name]
        for index in sorted(rng.permutation(len(files))[:open_per_class]):
            full = os.path.join(open_from, files[index])
            if os.path.getsize(full) in by_size:
                if train_digests is None:  # hashed once, only the sizes that can collide
                    train_digests = {}
                size = os.path.getsize(full)
                known = train_digests.setdefault(size, {_digest(path) for path in by_size[size]})
                if _digest(full) in known:
                    duplicates.append(Path(relative_root, files[index]).as_posix())
                    continue
            chosen.append((Path(relative_root, files[index]).as_posix(), OPEN_LABEL))
    if not chosen:
        raise DataError(f"--open_from {open_from}: every image drawn is also a training image; name another folder.")
    return chosen, duplicates


def write_split_files(out_dir, dataset_name, splits, class_names, summary):
    """Write the split files, ``<dataset>_classes.txt`` (label name) and ``<dataset>_meta.json``.

    An empty open split is not written (an old one is removed). Returns ``summary`` completed with the
    split sizes and the files written.
    """
    out_dir = Path(out_dir)
    written = [
        write_split(split_path(out_dir, dataset_name, split), samples)
        for split, samples in splits.items()
        if split != "open" or samples
    ]
    if not splits.get("open"):  # a stale open split from an earlier run would contradict this one
        split_path(out_dir, dataset_name, "open").unlink(missing_ok=True)
    classes_file = out_dir / f"{dataset_name}_classes.txt"
    write_text_atomic(classes_file, "".join(f"{label} {name}\n" for label, name in enumerate(class_names)))
    meta_file = out_dir / f"{dataset_name}_meta.json"
    summary = dict(summary)
    summary["sizes"] = {split: len(samples) for split, samples in splits.items()}
    summary["files"] = [str(path) for path in written + [classes_file, meta_file]]
    write_json_atomic(meta_file, summary, indent=1)
    return summary
