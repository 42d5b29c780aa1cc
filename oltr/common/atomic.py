"""Write a file all or nothing: checkpoints, results JSON, metrics.jsonl, split files.

The content goes to a temp file beside the target (same directory, so the rename
cannot cross filesystems), is flushed and fsynced, and ``os.replace`` puts it in
place. A reader, or a run resumed after a crash, sees the old file or the new one,
never half of either; an interrupted write removes its temp file and leaves the
old file as it was.
"""

import errno
import json
import os
from pathlib import Path

from .errors import OutputError


class _RecordingHandle:
    """A file handle that remembers the OSError of a failed write.

    ``torch.save`` turns a failed ``write`` into a RuntimeError ("file write failed"); the
    recorded OSError (EFBIG, ENOSPC, EROFS...) is the cause a user can act on.
    """

    def __init__(self, handle):
        self._handle = handle
        self.error = None

    def write(self, data):
        try:
            return self._handle.write(data)
        except OSError as error:
            self.error = error
            raise

    def __getattr__(self, name):
        return getattr(self._handle, name)


def output_error(path, error):
    """OutputError: one line naming ``path`` and the cause, saying that the old file is kept."""
    name = errno.errorcode.get(error.errno or 0)
    reason = (error.strerror or str(error)) + (f" ({name})" if name else "")
    return OutputError(
        f"cannot write {path}: {reason}; nothing of it was written, and the file already there (if any) is as it was"
    )


def write_atomic(path, write, binary=False):
    """Call ``write(handle)`` on a temp file beside ``path``, then rename it over ``path``.

    The handle is binary with ``binary``, else UTF-8 text with ``\\n`` line ends.
    Missing parent directories are created. Returns ``path`` as a Path.
    """
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    recorder = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(tmp, "wb") if binary else open(tmp, "w", encoding="utf-8", newline="\n") as handle:
            recorder = _RecordingHandle(handle)
            write(recorder)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except OSError as error:
        raise output_error(path, error) from None
    except Exception:  # torch.save reports a failed write as a RuntimeError; the recorded OSError says why
        if recorder is not None and recorder.error is not None:
            raise output_error(path, recorder.error) from None
        raise
    finally:
        try:
            if tmp.exists():
                tmp.unlink()
        except OSError:
            pass
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
