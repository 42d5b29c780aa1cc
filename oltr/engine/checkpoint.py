"""Checkpoints: written atomically, read with ``weights_only=True``.

A checkpoint holds only tensors and plain Python containers, so the safe
unpickler can read it; an interrupted write never replaces the last good file.
"""

import re
from pathlib import Path

import torch

from ..common.atomic import write_atomic
from ..common.errors import CheckpointError


def save_atomic(obj, path):
    """Write ``obj`` to ``path`` with ``torch.save``, all or nothing (``oltr.common.atomic.write_atomic``)."""
    write_atomic(path, lambda handle: torch.save(obj, handle), binary=True)


def load_checkpoint(path, what="checkpoint", required=()):
    """Read a checkpoint (a dict) safely; missing, corrupt or foreign files are one-line CheckpointErrors.

    ``required`` names keys the caller needs, so a file of another kind is refused here
    rather than failing later with a KeyError.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{what} {path} does not exist; train that run first (or check training_opt.log_dir)")
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # a damaged file can fail anywhere in the unpickler (IndexError, KeyError, struct.error...)
        raise CheckpointError(
            f"{what} {path} is corrupt or not a PyTorch checkpoint ({_short_reason(e)}); delete it and train again"
        ) from None
    if not isinstance(checkpoint, dict):
        raise CheckpointError(
            f"{what} {path} is not a checkpoint written by this project (it holds a "
            f"{type(checkpoint).__name__}, not a dict)"
        )
    missing = [key for key in required if key not in checkpoint]
    if missing:
        keys = ", ".join(sorted(map(str, checkpoint))[:8]) or "nothing"
        raise CheckpointError(
            f"{what} {path} is not a checkpoint of the kind needed here (no {missing[0]!r} entry; it holds {keys})"
        )
    return checkpoint


def check_class_counts(checkpoint, path, num_classes, what="checkpoint"):
    """The checkpoint's ``class_counts`` (training images per class) as a list of ``num_classes`` ints >= 0."""
    counts = checkpoint.get("class_counts")
    if isinstance(counts, torch.Tensor):
        counts = counts.tolist()
    if not isinstance(counts, (list, tuple)) or not all(
        isinstance(n, int) and not isinstance(n, bool) and n >= 0 for n in counts
    ):
        raise CheckpointError(f"{what} {path}: its class_counts is {str(counts)[:60]}, not a list of image counts")
    if len(counts) != num_classes:
        raise CheckpointError(
            f"{what} {path} holds class counts of {len(counts)} classes but training_opt.num_classes is "
            f"{num_classes}; use the run of this dataset (or its config)"
        )
    return list(counts)


def _short_reason(error):
    """The first sentence of what torch said; its weights-only errors bury the cause after a long preamble."""
    text = str(error)
    marker = "WeightsUnpickler error:"
    if marker in text:
        text = text.split(marker, 1)[1]
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    if not lines:
        return type(error).__name__
    sentence = re.split(r"(?<=\.)\s", lines[0], maxsplit=1)[0]
    return f"{type(error).__name__}: {sentence[:160]}"
