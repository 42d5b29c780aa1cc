"""Checkpoints: written atomically, read with ``weights_only=True``.

A checkpoint holds only tensors and plain Python containers, so the safe
unpickler can read it; an interrupted write never replaces the last good file.
"""
import os
import pickle
import zipfile
from pathlib import Path

import torch

from ..errors import CheckpointError


def save_atomic(obj, path):
    """Write ``obj`` to ``path`` via a temp file, fsync and rename (all or nothing)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        with open(tmp, "wb") as f:
            torch.save(obj, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    # Persist the rename itself; some filesystems refuse to open a directory.
    try:
        fd = os.open(path.parent, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def load_checkpoint(path, what="checkpoint"):
    """Read a checkpoint safely; missing or corrupt files are one-line CheckpointErrors."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{what} {path} does not exist; train that run first (or check training_opt.log_dir)")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except (RuntimeError, EOFError, pickle.UnpicklingError, zipfile.BadZipFile, ValueError, OSError) as e:
        reason = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise CheckpointError(f"{what} {path} is corrupt or not a PyTorch checkpoint ({reason[:200]}); "
                              "delete it and train again") from None
