"""Split files in the OLTR convention: one ``relative/path label`` line per image.

Liu et al., "Large-Scale Long-Tailed Recognition in an Open World" (CVPR 2019)
publish ImageNet-LT and Places-LT as ``<Dataset>_{train,val,test,open}.txt``
files whose lines name an image relative to a data root and its integer label;
open-set images carry label -1.

Rules this module enforces (one place, shared by the loader and ``check``):

* blank lines are ignored; the label is the text after the LAST whitespace,
  so image paths may contain spaces;
* a path starting with ``/`` is read relative to ``data_root``, as OLTR's
  loader did (``root + path``), because some published lines start with ``/``;
* labels are ASCII integers in ``[0, num_classes)``, or -1 in an open split;
* every image must exist; a repeated image path is warned about, not fatal.
"""

import os
import re
import warnings
from dataclasses import dataclass, field
from pathlib import Path, PurePath

from ..common.atomic import write_atomic
from ..common.errors import DataError
from ..common.paths import file_problem

SPLITS = ("train", "val", "test", "open")
OPEN_LABEL = -1
_INTEGER = re.compile(r"[+-]?[0-9]+")
_SHOWN_DUPLICATES = 5
_LINE_PREVIEW = 80


def split_path(split_dir, dataset, split):
    """``<split_dir>/<dataset>_<split>.txt``, split one of train/val/test/open."""
    if split not in SPLITS:
        raise DataError(f"split must be one of {', '.join(SPLITS)}, got {split!r}.")
    return Path(split_dir) / f"{dataset}_{split}.txt"


@dataclass
class SplitLine:
    """One parsed line: where it came from, what it names, and its defect if any."""

    line_number: int
    relative_path: str = ""
    label: int = 0
    full_path: str = ""
    defect: str = ""  # "" | "malformed" | "label" | "missing" | "empty" (a 0-byte image file)
    message: str = ""


@dataclass
class SplitScan:
    """Everything found in one split file, good lines and defects alike."""

    path: Path
    lines: list = field(default_factory=list)  # SplitLine, in file order
    duplicates: list = field(default_factory=list)  # (first line, repeated line, relative path)

    @property
    def good(self):
        return [line for line in self.lines if not line.defect]

    def defects(self, kind=None):
        return [line for line in self.lines if line.defect and (kind is None or line.defect == kind)]


def _preview(text):
    return text if len(text) <= _LINE_PREVIEW else text[:_LINE_PREVIEW] + "..."


def _label_range(num_classes, allow_open):
    known = f"[0, {num_classes})" if num_classes is not None else "[0, num_classes)"
    return f"{known} or -1 (open set)" if allow_open else known


def _parse_line(text, path, line_number, num_classes, allow_open):
    """``(relative_path, label, defect, message)``; defect is "", "malformed" or "label"."""
    fields = text.rsplit(None, 1)
    if len(fields) == 2 and fields[1].isascii() and fields[1].isdigit() and not allow_open:  # the common case, fast
        label = int(fields[1])
        if num_classes is None or label < num_classes:
            return fields[0].strip(), label, "", ""
    where = f"{path}:{line_number}"
    if len(fields) != 2:
        return (
            "",
            0,
            "malformed",
            (
                f"{where}: expected 'relative/path label' (an image path, whitespace, an integer label) "
                f"but found {_preview(text)!r}."
            ),
        )
    relative_path, label_text = fields[0].strip(), fields[1]
    if not _INTEGER.fullmatch(label_text):
        return (
            relative_path,
            0,
            "malformed",
            (f"{where}: label {_preview(label_text)!r} is not an integer; expected 'relative/path label'."),
        )
    label = int(label_text)
    if allow_open and 0 <= label and (num_classes is None or label < num_classes):
        return (
            relative_path,
            label,
            "label",
            (
                f"{where}: label {label} is a known class, but the open split holds only images of no known class "
                f"(label -1); move the line to another split, or write -1."
            ),
        )
    if label == OPEN_LABEL:
        if allow_open:
            return relative_path, label, "", ""
        return (
            relative_path,
            label,
            "label",
            (
                f"{where}: label -1 marks an open-set image, which only the open split may hold; "
                f"this split expects labels in {_label_range(num_classes, False)}."
            ),
        )
    if label < 0 or (num_classes is not None and label >= num_classes):
        return (
            relative_path,
            label,
            "label",
            (
                f"{where}: label {label} is outside {_label_range(num_classes, allow_open)}; "
                f"check the label or num_classes."
            ),
        )
    return relative_path, label, "", ""


def image_path(data_root, relative_path):
    """Join a split-file path to the data root (a leading '/' stays under the root, as in OLTR)."""
    if data_root is None:
        return relative_path
    return os.path.join(os.fspath(data_root), relative_path.lstrip("/"))


def _decoded_lines(path):
    """Yield ``(line_number, text or None)``; None means the line is not UTF-8."""
    try:
        raw = Path(path).read_bytes()
    except FileNotFoundError:
        raise DataError(
            f"split file {path} {file_problem(path) or 'does not exist'}; expected <split_dir>/<dataset>_<split>.txt "
            f"(see 'python -m oltr.data check --help')."
        ) from None
    except OSError as error:  # a directory, a symlink loop, no permission...
        problem = file_problem(path) or f"cannot be read ({error.strerror or error})"
        raise DataError(
            f"split file {path} {problem}; it should be a text file of 'relative/path label' lines."
        ) from None
    if raw.startswith(b"\xef\xbb\xbf"):  # a byte-order mark (Windows editors): not part of the first path
        raw = raw[3:]
    for number, raw_line in enumerate(raw.splitlines(), start=1):
        try:
            yield number, raw_line.decode("utf-8")
        except UnicodeDecodeError:
            yield number, None


def scan_split(path, data_root, num_classes=None, allow_open=False, check_files=True, check_empty=False):
    """Read a split file collecting every defect instead of stopping at the first.

    ``check_empty`` (``oltr data check``): a 0-byte image is a defect too (training names it when decoding).

    ``read_split`` and ``oltr.data.check`` both build on this, so a line is
    judged the same way everywhere.
    """
    path = Path(path)
    if num_classes is not None and (not isinstance(num_classes, int) or num_classes < 1):
        raise DataError(f"num_classes must be a positive integer, got {num_classes!r}.")
    scan = SplitScan(path=path)
    first_seen = {}
    for number, text in _decoded_lines(path):
        if text is None:
            message = f"{path}:{number}: line is not valid UTF-8 text."
            scan.lines.append(SplitLine(number, defect="malformed", message=message))
            continue
        text = text.strip()
        if not text:
            continue
        relative_path, label, defect, message = _parse_line(text, path, number, num_classes, allow_open)
        line = SplitLine(number, relative_path, label, defect=defect, message=message)
        if defect:
            scan.lines.append(line)
            continue
        line.full_path = image_path(data_root, line.relative_path)
        if check_files and not os.path.isfile(line.full_path):
            line.defect = "missing"
            problem = file_problem(line.full_path) or "is not a regular file"
            fix = f"check data_root ({data_root})" if problem == "does not exist" else "list an image file"
            line.message = f"{path}:{number}: image {line.full_path} {problem}; {fix}."
        elif check_empty and os.path.getsize(line.full_path) == 0:
            line.defect = "empty"
            line.message = f"{path}:{number}: image {line.full_path} is empty (0 bytes); replace it or remove the line."
        earlier = first_seen.setdefault(line.relative_path.lstrip("/"), number)
        if earlier != number:
            scan.duplicates.append((earlier, number, line.relative_path))
        scan.lines.append(line)
    return scan


def _warn_duplicates(scan):
    if not scan.duplicates:
        return
    shown = ", ".join(
        f"{path!r} on lines {first} and {again}" for first, again, path in scan.duplicates[:_SHOWN_DUPLICATES]
    )
    more = len(scan.duplicates) - _SHOWN_DUPLICATES
    warnings.warn(
        f"{scan.path}: {len(scan.duplicates)} duplicate image path(s): {shown}"
        + (f" and {more} more" if more > 0 else "")
        + "; each copy is kept.",
        stacklevel=3,
    )


def read_split(path, data_root, num_classes, allow_open=False, check_files=True):
    """Read a split file into ``[(image_path, label), ...]``, image paths joined to ``data_root``.

    Raises DataError naming ``file:line`` for the first defect in file order
    (malformed line, non-integer or out-of-range label, -1 outside an open
    split, missing image) and for a missing or empty split file. Duplicate
    image paths only warn.
    """
    scan = scan_split(path, data_root, num_classes, allow_open, check_files)
    defects = scan.defects()
    if defects:
        raise DataError(defects[0].message)
    _warn_duplicates(scan)
    if not scan.lines:
        raise DataError(f"split file {path} has no 'relative/path label' lines.")
    return [(line.full_path, line.label) for line in scan.lines]


def find_image_root(path, candidates, probe_lines=5):
    """The first candidate root under which the split's first images exist, else the first candidate.

    OLTR ships its open-set images next to the split files
    (``<split_dir>/<Dataset>_open/``) rather than under the data root, so the
    open split may need a different root; this picks it without guessing twice.
    """
    candidates = [c for c in candidates if c is not None]
    probes = []
    for number, text in _decoded_lines(path):
        if text and text.strip():
            relative_path, _, defect, _ = _parse_line(text.strip(), path, number, None, True)
            if not defect:
                probes.append(relative_path)
        if len(probes) >= probe_lines:
            break
    for root in candidates:
        if probes and all(os.path.isfile(image_path(root, p)) for p in probes):
            return Path(root)
    return Path(candidates[0]) if candidates else None


def write_split(path, samples):
    """Write ``[(relative_path, label), ...]`` as a split file (forward slashes, atomic replace)."""

    def write(handle):
        for relative_path, label in samples:
            handle.write(f"{PurePath(relative_path).as_posix()} {int(label)}\n")

    return write_atomic(path, write)


def refuse_existing(out_dir, dataset, force):
    """Split files of ``dataset`` already in ``out_dir`` are not replaced silently: a DataError unless ``force``."""
    names = [split_path(out_dir, dataset, split) for split in SPLITS]
    names += [Path(out_dir) / f"{dataset}_classes.txt", Path(out_dir) / f"{dataset}_meta.json"]
    found = [str(path) for path in names if path.exists()]
    if found and not force:
        raise DataError(
            f"{found[0]} already exists"
            + (f" (and {len(found) - 1} more of {dataset}'s files)" if len(found) > 1 else "")
            + "; nothing was written. Choose another output folder or --dataset, or pass --force "
            "to replace them"
        )
