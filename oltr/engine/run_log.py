"""A run's human log (log.txt) and machine log (metrics.jsonl); only rank 0 writes."""

import json
import sys
import time
from pathlib import Path

from tqdm import tqdm

from ..common.atomic import output_error
from ..common.run_files import HUMAN_LOG, METRICS_LOG


class RunLogger:
    """``deferred``: keep the lines in memory until ``open()`` (a run writes nothing before it has
    claimed its log_dir: see ``run_dir.py``)."""

    def __init__(self, log_dir, enabled=True, echo=True, deferred=False):
        self.log_dir = Path(log_dir)
        self.enabled = enabled
        self.echo = echo
        self.pending = [] if deferred else None
        if enabled and not deferred:
            self.open()

    def open(self):
        """Create the log_dir and write the lines kept so far."""
        if not self.enabled:
            return
        try:
            self.log_dir.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise output_error(self.log_dir, error) from None
        pending, self.pending = self.pending or [], None
        for name, text in pending:
            self._append(name, text)

    def info(self, message):
        if not self.enabled:
            return
        if self.echo:
            print(message, flush=True)
        self._append(HUMAN_LOG, f"{time.strftime('%Y-%m-%d %H:%M:%S')} {message}\n")

    def metrics(self, record):
        if not self.enabled:
            return
        self._append(METRICS_LOG, json.dumps(record, default=float) + "\n")

    def _append(self, name, text):
        if self.pending is not None:
            self.pending.append((name, text))
            return
        path = self.log_dir / name
        try:
            with open(path, "a", encoding="utf-8") as f:
                f.write(text)
        except OSError as error:
            raise output_error(path, error) from None


def progress_enabled():
    """tqdm bars only on an interactive terminal, so logs and CI stay clean."""
    return sys.stderr.isatty()


def progress_bar(description, ctx):
    """``bar(iterable)`` wraps an iterable in a tqdm bar, shown only on rank 0 of an interactive run."""
    enabled = progress_enabled() and ctx.is_main
    return lambda iterable: tqdm(iterable, desc=description, leave=False, disable=not enabled)
