"""Check a dataset's split files before training on them, reporting every defect at once.

Per split: image count, classes present, label range, missing images,
duplicate lines, malformed lines and bad labels, each with the first few
``file:line`` examples; for train also the class-count summary and the
many/medium/few-shot group sizes (OLTR's code convention by default:
many >= 100, few <= 20 training images). Lines are judged by
``split_file.scan_split``, the same code that ``read_split`` uses.
"""

import os
import sys
from pathlib import Path

import numpy as np

from ..common.errors import DataError
from ..evaluation.metrics import check_shot_thresholds, shot_groups
from .split_file import SPLITS, find_image_root, scan_split, split_path

REQUIRED_SPLITS = ("train", "val", "test")
LEAK_SPLITS = ("test", "open")  # a training image in one of these is a defect (in val: a warning)
SHOWN_EXAMPLES = 3


def shot_group_sizes(class_counts, many_threshold=100, few_threshold=20, inclusive=True):
    """Number of many-, medium- and few-shot classes by training count, by ``metrics.shot_groups``' rule."""
    groups = shot_groups(class_counts, many_threshold, few_threshold, inclusive)
    return {name: int(np.count_nonzero(mask)) for name, mask in groups.items()}


def _split_report(scan):
    good = scan.good
    labels = np.asarray([line.label for line in good], dtype=np.int64)
    report = {
        "file": str(scan.path),
        "present": True,
        "images": len(good),
        "lines": len(scan.lines),
        "classes_present": int(np.unique(labels[labels >= 0]).size),
        "label_min": int(labels.min()) if labels.size else None,
        "label_max": int(labels.max()) if labels.size else None,
        "open_images": int((labels == -1).sum()),
        "duplicates": len(scan.duplicates),
        "examples": [],
    }
    for kind in ("malformed", "label", "missing", "empty"):
        found = scan.defects(kind)
        report["empty_images" if kind == "empty" else kind] = len(found)
        report["examples"] += [line.message for line in found[:SHOWN_EXAMPLES]]
    report["examples"] += [
        f"{scan.path}:{again}: duplicate of line {first} ({path})"
        for first, again, path in scan.duplicates[:SHOWN_EXAMPLES]
    ]
    report["empty"] = int(not scan.lines)
    if report["empty"]:
        report["examples"].append(f"{scan.path}: the file has no 'relative/path label' lines")
    report["defects"] = (
        report["malformed"]
        + report["label"]
        + report["missing"]
        + report["empty_images"]
        + report["duplicates"]
        + report["empty"]
    )
    return report


def _train_summary(scan, num_classes, many_threshold, few_threshold, inclusive):
    labels = np.asarray([line.label for line in scan.good if line.label >= 0], dtype=np.int64)
    counts = np.bincount(labels, minlength=num_classes or 0)
    summary = {
        "max_count": int(counts.max()) if counts.size else 0,
        "min_count": int(counts.min()) if counts.size else 0,
        "empty_classes": [int(c) for c in np.flatnonzero(counts == 0)],
        "thresholds": {"many": many_threshold, "few": few_threshold, "inclusive": inclusive},
        "groups": shot_group_sizes(counts, many_threshold, few_threshold, inclusive),
        "class_counts": counts.tolist(),
    }
    return summary


def check_split(
    split_dir,
    dataset,
    data_root,
    num_classes=None,
    many_threshold=100,
    few_threshold=20,
    inclusive=True,
    open_root=None,
    verbose=True,
    stream=None,
):
    """Scan ``<split_dir>/<dataset>_{train,val,test,open}.txt`` and return a report dict.

    ``num_classes`` defaults to the largest train label + 1. The open split's
    images are looked for under ``open_root``, else the first of data_root,
    ``<split_dir>/<dataset>_open`` (OLTR's layout) and ``split_dir`` that holds
    them. ``report["ok"]`` is False when any defect is found: a missing
    train/val/test file, a malformed or out-of-range line, a missing image, a
    duplicate line, or a class with no training image. Thresholds that overlap
    (few_threshold >= many_threshold) are a DataError, as they are for the evaluation.
    """
    split_dir = Path(split_dir)
    try:  # overlapping thresholds are refused before scanning, as the evaluation refuses them
        check_shot_thresholds(many_threshold, few_threshold)
    except ValueError as error:
        raise DataError(str(error)) from None
    if not split_dir.is_dir():
        raise DataError(f"split_dir {split_dir} does not exist or is not a directory.")
    report = {"dataset": dataset, "split_dir": str(split_dir), "data_root": str(data_root), "splits": {}}
    defects = 0
    scans = {}
    for split in SPLITS:
        path = split_path(split_dir, dataset, split)
        if not path.is_file():
            report["splits"][split] = {"file": str(path), "present": False}
            defects += split in REQUIRED_SPLITS
            continue
        root = data_root
        if split == "open":
            root = open_root or find_image_root(path, [data_root, split_dir / f"{dataset}_open", split_dir])
        scans[split] = scan_split(path, root, num_classes, allow_open=(split == "open"), check_empty=True)
        if split == "train" and num_classes is None:
            train_labels = [line.label for line in scans["train"].good if line.label >= 0]
            num_classes = max(train_labels) + 1 if train_labels else None
        report["splits"][split] = _split_report(scans[split])
        report["splits"][split]["root"] = str(root)
        defects += report["splits"][split]["defects"]
    report["num_classes"] = num_classes
    if "train" in scans:
        report["train"] = _train_summary(scans["train"], num_classes, many_threshold, few_threshold, inclusive)
        defects += len(report["train"]["empty_classes"])
        # the same file, wherever each split's root puts it; an image trained on cannot measure the model
        train_files = {os.path.realpath(line.full_path) for line in scans["train"].good}
        report["train_overlap"] = {
            split: sum(os.path.realpath(line.full_path) in train_files for line in scans[split].good)
            for split in ("val", "test", "open")
            if split in scans
        }
        defects += sum(report["train_overlap"].get(split, 0) for split in LEAK_SPLITS)
    report["defects"] = defects
    report["ok"] = defects == 0
    if verbose:
        print(format_report(report), file=stream or sys.stdout)
    return report


def format_report(report):
    """The human-readable form of ``check_split``'s report."""
    lines = [
        f"{report['dataset']}: split_dir={report['split_dir']} data_root={report['data_root']} "
        f"num_classes={report.get('num_classes')}"
    ]
    for split, info in report["splits"].items():
        if not info["present"]:
            required = "MISSING" if split in REQUIRED_SPLITS else "absent (optional)"
            lines.append(f"  {split:5s}: {info['file']} {required}")
            continue
        label_range = f"{info['label_min']}..{info['label_max']}" if info["images"] else "none"
        lines.append(
            f"  {split:5s}: {info['images']:,} images, {info['classes_present']} classes, labels {label_range}; "
            f"missing {info['missing']}, empty {info['empty_images']}, duplicates {info['duplicates']}, "
            f"malformed {info['malformed']}, bad labels {info['label']}"
        )
        lines += [f"         {example}" for example in info["examples"]]
    train = report.get("train")
    if train:
        groups, thresholds = train["groups"], train["thresholds"]
        many_op, few_op = (">=", "<=") if thresholds["inclusive"] else (">", "<")
        lines.append(
            f"  train per class: {train['max_count']} to {train['min_count']}; "
            f"many ({many_op}{thresholds['many']}) {groups['many']}, medium {groups['medium']}, "
            f"few ({few_op}{thresholds['few']}) {groups['few']} classes"
        )
        if train["empty_classes"]:
            lines.append(f"  classes with no training image: {train['empty_classes'][:10]}")
        overlap = report.get("train_overlap", {})
        for split in LEAK_SPLITS:
            if overlap.get(split):
                lines.append(
                    f"  {overlap[split]:,} {split} images are also training images: the {split} numbers "
                    "would measure images the model trained on; remove them from one of the splits"
                )
        if overlap.get("val"):
            lines.append(f"  warning: {overlap['val']:,} val images are also training images")
    lines.append("OK: no defects found" if report["ok"] else f"FAILED: {report['defects']} defect(s) found")
    return "\n".join(lines)
