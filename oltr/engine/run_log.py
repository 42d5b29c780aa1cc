"""A run's human log (log.txt) and machine log (metrics.jsonl); only rank 0 writes."""
import json
import sys
import time
from pathlib import Path

from tqdm import tqdm

from ..run_files import HUMAN_LOG, METRICS_LOG


class RunLogger:
    def __init__(self, log_dir, enabled=True, echo=True):
        self.log_dir = Path(log_dir)
        self.enabled = enabled
        self.echo = echo
        if enabled:
            self.log_dir.mkdir(parents=True, exist_ok=True)

    def info(self, message):
        if not self.enabled:
            return
        if self.echo:
            print(message, flush=True)
        with open(self.log_dir / HUMAN_LOG, "a", encoding="utf-8") as f:
            f.write(f"{time.strftime('%Y-%m-%d %H:%M:%S')} {message}\n")

    def metrics(self, record):
        if not self.enabled:
            return
        with open(self.log_dir / METRICS_LOG, "a", encoding="utf-8") as f:
            f.write(json.dumps(record, default=float) + "\n")


def progress_enabled():
    """tqdm bars only on an interactive terminal, so logs and CI stay clean."""
    return sys.stderr.isatty()


def progress_bar(description, ctx):
    """``bar(iterable)`` wraps an iterable in a tqdm bar, shown only on rank 0 of an interactive run."""
    enabled = progress_enabled() and ctx.is_main
    return lambda iterable: tqdm(iterable, desc=description, leave=False, disable=not enabled)
