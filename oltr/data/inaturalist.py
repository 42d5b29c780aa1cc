"""iNaturalist 2018 (Van Horn et al., CVPR 2018) in OLTR's split-file layout: ``python -m oltr.data inat18``.

classifier-balancing (Kang et al., ICLR 2020) publishes ``iNaturalist18_train.txt`` (437,513 images) and
``iNaturalist18_val.txt`` (24,426 images, 3 per class), 8,142 classes, lines such as
``train_val2018/Plantae/7477/<hash>.jpg 7477`` relative to the folder holding the 2018 competition's
``train_val2018/``. The field reports on that val list (the 2018 test labels were never published), so
``iNaturalist18_test.txt`` is written as a copy of it; model selection then sees the reported split,
as in every published iNat number. iNat 2018 has no open split in OLTR's protocol: all 8,142 classes
are known. Given ``open_split`` (default advice: OLTR's ImageNet-LT open set, 18,000 images of ImageNet-2010
classes outside ImageNet-1k) its lines become ``iNaturalist18_open.txt`` (labels -1) and ``open_root``
is linked as ``<split_dir>/iNaturalist18_open``, where the loaders look for open images. Natural images
of another dataset: a far out-of-distribution open set (a few may show animals or plants that iNat
knows as a species); docs/datasets.md says so.
"""

import os
import re
from pathlib import Path

from ..common.errors import DataError
from .split_file import scan_split, split_path, write_split

DATASET = "iNaturalist18"
NUM_CLASSES = 8142
# train_val2018/<super-category>/<class id>/<image>.jpg: the class folder is the label
_LAYOUT = re.compile(r"^train_val2018/[^/]+/(\d+)/[^/]+$")


def read_published(path, num_classes, allow_open=False):
    """The (relative path, label) lines of a published list; a DataError naming the first bad line."""
    if not Path(path).is_file():
        raise DataError(
            f"split file {path} does not exist; download classifier-balancing's data/iNaturalist18/"
            f"{Path(path).name} (or write it with its gen_lists.py from the 2018 json files) into that folder"
        )
    scan = scan_split(path, None, num_classes, allow_open=allow_open, check_files=False)
    bad = scan.defects()
    if bad:
        raise DataError(f"{bad[0].message} ({len(bad)} bad line(s) in all)")
    if not scan.lines:
        raise DataError(f"split file {path} has no 'relative/path label' lines")
    return scan.lines


def check_layout(path, lines):
    """Every image sits in the folder of its label, as in the 2018 release; a DataError at the first that does not."""
    for line in lines:
        match = _LAYOUT.match(line.relative_path)
        if match is None or int(match.group(1)) != line.label:
            raise DataError(
                f"{path}:{line.line_number}: {line.relative_path} (label {line.label}) is not "
                "train_val2018/<super-category>/<label>/<image>; use the lists as classifier-balancing publishes them"
            )


def prepare_inaturalist18(split_dir, open_split=None, open_root=None, num_classes=NUM_CLASSES, force=False):
    """Write ``iNaturalist18_test.txt`` (the val list) and, given ``open_split``, ``iNaturalist18_open.txt``.

    ``split_dir`` holds the published train and val lists. Returns the summary the data tools print.
    """
    split_dir = Path(split_dir)
    lists = {}
    for split in ("train", "val"):
        path = split_path(split_dir, DATASET, split)
        lists[split] = read_published(path, num_classes)
        check_layout(path, lists[split])
    test_path, open_path = split_path(split_dir, DATASET, "test"), split_path(split_dir, DATASET, "open")
    existing = [p for p in (test_path, open_path, split_dir / f"{DATASET}_open") if os.path.lexists(p)]
    if existing and not force:
        raise DataError(f"{existing[0]} already exists; nothing was written. Pass --force to replace it")
    if open_root is not None and open_split is None:
        raise DataError("--open_root needs --open_split, the list of open-set images under it")
    files = [write_split(test_path, [(line.relative_path, line.label) for line in lists["val"]])]
    open_count = 0
    if open_split is not None:
        open_lines = read_published(open_split, num_classes, allow_open=True)
        known = [line for line in open_lines if line.label != -1]
        if known:
            raise DataError(f"{open_split}:{known[0].line_number}: an open split has label -1 on every line")
        files.append(write_split(open_path, [(line.relative_path, -1) for line in open_lines]))
        open_count = len(open_lines)
        if open_root is not None:
            link = split_dir / f"{DATASET}_open"
            if os.path.lexists(link):
                link.unlink()
            link.symlink_to(Path(open_root).resolve(), target_is_directory=True)
            files.append(link)
    train_counts = [0] * num_classes
    for line in lists["train"]:
        train_counts[line.label] += 1
    return {
        "dataset": DATASET,
        "num_classes": num_classes,
        "train_counts": train_counts,
        "profile": "as published",
        "sizes": {split: len(lists[name]) for split, name in (("train", "train"), ("val", "val"), ("test", "val"))}
        | {"open": open_count},
        "open_classes": "none (open split from another dataset)" if open_count else "none (no open split)",
        "files": [str(path) for path in files],
    }
