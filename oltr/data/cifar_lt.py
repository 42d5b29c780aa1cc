"""Export CIFAR-10/100-LT as PNGs and OLTR split files, with held-out classes as the open set.

The long-tailed train split uses the exponential profile of Cui et al. (CVPR
2019, class-balanced loss) and Cao et al. (NeurIPS 2019, LDAM): known class k
(labels in the original class order) keeps ``floor(max_count * (1/IF) **
(k / (K-1)))`` images, IF being the imbalance factor. Differences from the
usual CIFAR-LT, so that the OLTR protocol (val + open set) applies:

* open set: the last ``open_classes`` classes are held out (default 2 of
  CIFAR-10, i.e. ship and truck; 10 of CIFAR-100, classes 90-99); their TEST
  images form the open split with label -1; known classes are relabelled 0..K-1;
* val: ``val_per_class`` images per known class carved from the train images
  the long tail leaves unused (default 100 for CIFAR-10, 10 for CIFAR-100),
  so ``max_count`` defaults to the per-class train size minus val (4900 / 490);
* test: the full, balanced test set of the known classes (1000 / 100 per class);
* which train images a class keeps is a seeded random choice (LDAM keeps the first ones).

Images go to ``<out_dir>/images/{train,test}/<class name>/<index>.png`` and the
split files' paths are relative to ``out_dir`` (the config's data_root and split_dir).
"""

from pathlib import Path

import numpy as np
from PIL import Image

from ..common.errors import DataError
from .make_lt import write_split_files
from .profiles import long_tail_counts
from .split_file import OPEN_LABEL

VARIANTS = {
    # which: (torchvision class name, dataset name, default open classes, default val per class, archive, folder)
    "cifar10": (
        "CIFAR10",
        "CIFAR10_LT",
        2,
        100,
        "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz",
        "cifar-10-batches-py",
    ),
    "cifar100": (
        "CIFAR100",
        "CIFAR100_LT",
        10,
        10,
        "https://www.cs.toronto.edu/~kriz/cifar-100-python.tar.gz",
        "cifar-100-python",
    ),
}


def load_cifar(which, root, train, download):
    """The torchvision CIFAR dataset, or a DataError saying what to download and where to put it."""
    import torchvision

    class_name, _, _, _, archive, folder = VARIANTS[which]
    dataset_class = getattr(torchvision.datasets, class_name)
    try:
        return dataset_class(str(root), train=train, download=download)
    # URLError is an OSError; torchvision raises RuntimeError when files are absent
    except (OSError, RuntimeError) as error:
        action = "download" if download else "find"
        raise DataError(
            f"could not {action} {class_name} under {root} ({error}); download {archive}, extract it so that "
            f"{Path(root) / folder}/ exists, and rerun with download disabled (--no-download)."
        ) from None


def _choose_open(open_classes, class_names, default_count):
    if open_classes is None:
        open_classes = default_count
    if isinstance(open_classes, int) and not isinstance(open_classes, bool):
        if not 0 <= open_classes < len(class_names):
            raise DataError(f"open_classes must be between 0 and {len(class_names) - 1}, got {open_classes}.")
        return list(range(len(class_names) - open_classes, len(class_names)))
    chosen = []
    for item in open_classes:
        if isinstance(item, str) and item in class_names:
            chosen.append(class_names.index(item))
        elif isinstance(item, int) and 0 <= item < len(class_names):
            chosen.append(item)
        else:
            raise DataError(f"open class {item!r} is neither a class index nor a name of this dataset.")
    if len(set(chosen)) >= len(class_names):
        raise DataError("open_classes must leave at least one known class.")
    return sorted(set(chosen))


def _save_pngs(images, indices, folder, class_names, targets, out_dir):
    """Save the chosen images as PNGs; returns their paths relative to out_dir."""
    paths = []
    for index in indices:
        relative = f"images/{folder}/{class_names[targets[index]]}/{index:05d}.png"
        destination = out_dir / relative
        destination.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(images[index]).save(destination, format="PNG")
        paths.append(relative)
    return paths


def export_cifar_lt(
    root,
    out_dir,
    which="cifar10",
    imbalance_factor=100,
    profile="exponential",
    open_classes=None,
    val_per_class=None,
    max_count=None,
    download=True,
    seed=0,
    dataset_name=None,
):
    """Write CIFAR-{10,100}-LT under ``out_dir``; returns the summary saved as ``<dataset>_meta.json``.

    ``root`` is where torchvision keeps (or downloads) the CIFAR python
    archive; ``open_classes`` is a count (the last classes) or a list of class
    indices or names. See the module docstring for the protocol.
    """
    if which not in VARIANTS:
        raise DataError(f"which must be one of {', '.join(VARIANTS)}, got {which!r}.")
    _, default_name, default_open, default_val, _, _ = VARIANTS[which]
    dataset_name = dataset_name or default_name
    val_per_class = default_val if val_per_class is None else val_per_class
    if not isinstance(val_per_class, int) or val_per_class < 1:
        raise DataError(f"val_per_class must be a positive integer, got {val_per_class!r}.")
    train_set = load_cifar(which, root, train=True, download=download)
    test_set = load_cifar(which, root, train=False, download=False)
    class_names = list(train_set.classes)
    train_targets, test_targets = np.asarray(train_set.targets), np.asarray(test_set.targets)
    open_ids = _choose_open(open_classes, class_names, default_open)
    known_ids = [c for c in range(len(class_names)) if c not in open_ids]
    available = min(int((train_targets == c).sum()) for c in known_ids)
    max_count = available - val_per_class if max_count is None else max_count
    if max_count < 1 or max_count + val_per_class > available:
        raise DataError(
            f"max_count ({max_count}) must be at least 1 and, with val_per_class ({val_per_class}), fit in the "
            f"{available} train images of the smallest known class."
        )
    counts = long_tail_counts(len(known_ids), max_count, profile=profile, imbalance_factor=imbalance_factor)

    out_dir = Path(out_dir)
    rng = np.random.default_rng(seed)
    splits = {"train": [], "val": [], "test": [], "open": []}
    for label, class_id in enumerate(known_ids):
        order = rng.permutation(np.flatnonzero(train_targets == class_id))
        val_indices = sorted(order[:val_per_class])
        train_indices = sorted(order[val_per_class : val_per_class + counts[label]])
        test_indices = np.flatnonzero(test_targets == class_id)
        for split, indices, source, folder in (
            ("train", train_indices, train_set, "train"),
            ("val", val_indices, train_set, "train"),
            ("test", test_indices, test_set, "test"),
        ):
            targets = train_targets if folder == "train" else test_targets
            paths = _save_pngs(source.data, indices, folder, class_names, targets, out_dir)
            splits[split] += [(path, label) for path in paths]
    for class_id in open_ids:
        paths = _save_pngs(
            test_set.data, np.flatnonzero(test_targets == class_id), "test", class_names, test_targets, out_dir
        )
        splits["open"] += [(path, OPEN_LABEL) for path in paths]

    summary = {
        "dataset": dataset_name,
        "source": f"torchvision.datasets.{VARIANTS[which][0]}",
        "num_classes": len(known_ids),
        "classes": [class_names[c] for c in known_ids],
        "open_classes": [class_names[c] for c in open_ids],
        "profile": profile,
        "imbalance_factor": imbalance_factor,
        "train_counts": counts,
        "val_per_class": val_per_class,
        "seed": seed,
    }
    return write_split_files(out_dir, dataset_name, splits, summary["classes"], summary)
