"""Send everything a step prints into its ``<phase>.out``, as a child process with its output in that file would.

Both levels are redirected: ``sys.stdout``/``sys.stderr`` (print, tracebacks, warnings) and file
descriptors 1 and 2 (C extensions, DataLoader workers, anything that writes to the descriptors
directly). Both Python streams write straight through to the file, so their lines keep the order in
which they were written; the file is not a terminal, so tqdm bars stay off exactly as they do in a
child whose output goes to a file.
"""
import contextlib
import os
import sys


@contextlib.contextmanager
def output_into(log):
    """Within the block, the process's stdout and stderr go to the open binary or text file ``log``."""
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):  # a closed or odd stream has nothing to flush
            stream.flush()
    saved_fds = [os.dup(1), os.dup(2)]
    saved_streams = sys.stdout, sys.stderr
    stream = None
    try:
        os.dup2(log.fileno(), 1)
        os.dup2(log.fileno(), 2)
        # Its own descriptor (not 1 or 2), so closing it later leaves the redirected 1 and 2 alone.
        stream = open(os.dup(log.fileno()), "w", encoding="utf-8", errors="backslashreplace", buffering=1)
        stream.reconfigure(write_through=True)
        sys.stdout = sys.stderr = stream
        yield
    finally:
        with contextlib.suppress(Exception):
            if stream is not None:
                stream.flush()
        sys.stdout, sys.stderr = saved_streams
        os.dup2(saved_fds[0], 1)
        os.dup2(saved_fds[1], 2)
        for fd in saved_fds:
            os.close(fd)
        if stream is not None:
            stream.close()
