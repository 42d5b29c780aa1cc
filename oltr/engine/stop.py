"""Stop requests from a scheduler: SIGTERM, SIGUSR1 or SIGUSR2 end training at the next safe point.

SLURM sends one of these before it kills a job at its time limit or preempts it (``--signal``;
submitit uses SIGUSR2). While ``handling()`` is active a signal only sets a flag; the trainer looks
at it after every step (``check``) and stops with ``Preempted`` before the next step starts. The
safe point is the last finished epoch: its ``last_checkpoint.pth`` was written atomically when that
epoch ended, and ``--resume`` replays the interrupted epoch from there. Every epoch reseeds its
sampler, workers and augmentations from (seed, epoch), so the replayed epoch draws the same batches
and the resumed run ends with the weights of an uninterrupted one.
"""

import contextlib
import signal
import threading

import torch

from ..common.errors import OltrError

STOP_SIGNALS = tuple(getattr(signal, name) for name in ("SIGTERM", "SIGUSR1", "SIGUSR2") if hasattr(signal, name))


def exit_code(signum):
    """128 + the signal's number (143 for SIGTERM): what a shell reports for a process the signal ended."""
    return 128 + int(signum)


_received = None  # the first stop signal of this process, or None


class Preempted(OltrError):
    """Training stopped on a scheduler's signal; --resume continues from the last finished epoch.
    ``exit_code``: 128 + the signal's number."""

    def __init__(self, message, signum):
        super().__init__(message)
        self.exit_code = exit_code(signum)


def _record(signum, frame):
    global _received
    if _received is None:
        _received = signum


@contextlib.contextmanager
def handling():
    """Within the block, the stop signals set the flag instead of ending the process (main thread only)."""
    global _received
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    _received = None
    previous = {signum: signal.signal(signum, _record) for signum in STOP_SIGNALS}
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def requested(ctx=None):
    """The stop signal received (any rank's, under DDP: every rank stops at the same step), or None."""
    if ctx is None or not ctx.distributed:
        return _received
    import torch.distributed as dist

    flag = torch.tensor([_received or 0], dtype=torch.int64, device=ctx.device)
    dist.all_reduce(flag, op=dist.ReduceOp.MAX)
    return int(flag) or None


def check(ctx, where):
    """Raise Preempted when a stop was requested; ``where`` says what was interrupted (for the message)."""
    signum = requested(ctx)
    if signum:
        raise Preempted(
            f"stopped by {signal.Signals(signum).name} at {where}; --resume continues from the "
            "last finished epoch's checkpoint (the sweep requeues it so)",
            signum,
        )
