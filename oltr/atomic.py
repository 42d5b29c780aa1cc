"""Write a file all or nothing: checkpoints, results JSON, metrics.jsonl, split files.

The content goes to a temp file beside the target (same directory, so the rename
cannot cross filesystems), is flushed and fsynced, and ``os.replace`` puts it in
place. A reader, or a run resumed after a crash, sees the old file or the new one,
never half of either; an interrupted write removes its temp file and leaves the
old file as it was.
"""
import json
import os
from pathlib import Path


def write_atomic(path, write, binary=False):
    """Call ``write(handle)`` on a temp file beside ``path``, then rename it over ``path``.

    The handle is binary with ``binary``, else UTF-8 text with ``\\n`` line ends.
    Missing parent directories are created. Returns ``path`` as a Path.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        with open(tmp, "wb") if binary else open(tmp, "w", encoding="utf-8", newline="\n") as handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    _fsync_directory(path.parent)
    return path


def write_text_atomic(path, text):
    """``path.write_text(text)``, all or nothing."""
    return write_atomic(path, lambda handle: handle.write(text))


def write_json_atomic(path, obj, **dump_options):
    """``obj`` as JSON (``json.dump`` with ``dump_options``) and a final newline, all or nothing."""

    def write(handle):
        json.dump(obj, handle, **dump_options)
        handle.write("\n")

    return write_atomic(path, write)


def _fsync_directory(directory):
    """Persist the rename itself; some filesystems refuse to open a directory."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
