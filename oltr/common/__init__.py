"""The few rules every package shares, one of each:

errors.py      the user errors, printed by the CLI as one line (exit 2)
atomic.py      all-or-nothing writes (temp file, fsync, rename)
run_files.py   the names of the files a run directory holds
seeding.py     how seeds are derived (per epoch, per rank, per worker)
paths.py       what is at a path that should be a file, in words (a directory, a FIFO, a symlink loop...)
"""
