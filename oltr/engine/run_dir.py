"""A run directory's protection: what may be written into a ``log_dir``, and by whom.

    claim(config, ctx, mode, resume, overwrite)   a context manager around training or a test:
        - the log_dir is a usable directory (not empty, not a file, not under a file, writable);
        - stage 2 does not write into its stage-1 run (same directory, or one inside the other);
        - training never replaces a run already there: a finished run, an unfinished one or a
          run of another config stops with one line offering --resume (same config), a new
          log_dir, or --overwrite, which moves the old run aside to <log_dir>.old-<timestamp>;
        - a log_dir holding files a run writes (config.yaml, log.txt, metrics.jsonl) but no run of
          ours (no checkpoint, no results) is someone else's: refused, or moved aside by --overwrite;
        - one process per directory: <log_dir>/.lock holds the owner's pid and host; a second
          process stops naming them, and a lock of a dead process on this host is taken over
          with a note. The lock is taken before anything is checked or moved, so --overwrite
          never moves a live run from under its process.

Nothing here deletes a file of a run.
"""

import contextlib
import errno
import json
import os
import socket
import time
from pathlib import Path

from ..common.errors import ConfigError, OltrError, OutputError
from ..common.run_files import (
    FINAL_CHECKPOINT,
    HUMAN_LOG,
    LAST_CHECKPOINT,
    LOCK_FILE,
    METRICS_LOG,
    RESOLVED_CONFIG,
    RESULTS_CLOSED,
    RESULTS_OPEN,
)

# The files whose presence means "a run lives here" (logs and the sweep's <phase>.out do not).
RUN_FILES = (FINAL_CHECKPOINT, LAST_CHECKPOINT, RESULTS_CLOSED, RESULTS_OPEN)
# The other files training writes (replaces): without a RUN_FILES beside them they are not a run of ours.
WRITTEN_FILES = (RESOLVED_CONFIG, HUMAN_LOG, METRICS_LOG)


class RunDirError(OltrError):
    """The log_dir holds a run that this command would replace, or another process holds it."""


def note(message):
    print(f"note: {message}", flush=True)  # stdout: stderr is kept for the one error line


def describe_os_error(error):
    """'[Errno 30] Read-only file system' -> 'Read-only file system (EROFS)'."""
    name = errno.errorcode.get(error.errno or 0)
    reason = error.strerror or str(error) or type(error).__name__
    return f"{reason} ({name})" if name else reason


# ----------------------------------------------------------------------------- checks


def check_log_dir_path(log_dir, key="training_opt.log_dir"):
    """A log_dir that can be a directory: not empty, not a file, no file on the way to it."""
    if not str(log_dir).strip():
        raise ConfigError(f"{key} is empty; name the directory this run writes into (e.g. logs/<dataset>/<run>)")
    path = Path(log_dir)
    resolved, here = path.resolve(), Path.cwd().resolve()
    if resolved == here or resolved in here.parents:
        what = "the file system's root" if resolved.parent == resolved else "the current directory or one above it"
        raise ConfigError(
            f"{key} {log_dir} is {what}; a run (and --overwrite, which moves its log_dir aside) needs a "
            f"directory of its own, e.g. logs/<dataset>/<run>"
        )
    if path.exists() and not path.is_dir():
        raise OutputError(f"{key} {path} is a file, not a directory; point {key} at a directory")
    for parent in path.parents:
        if parent.exists():
            if not parent.is_dir():
                raise OutputError(f"cannot create {key} {path}: {parent} is a file, not a directory")
            break
    return path


def check_not_in_stage1(config):
    """Stage 2 writes its own run: its log_dir is neither its stage-1 run's nor inside it (or around it)."""
    training_opt = config["training_opt"]
    stage1 = training_opt.get("stage1_log_dir")
    if not stage1:
        return
    own, theirs = Path(training_opt["log_dir"]).resolve(), Path(stage1).resolve()
    if own == theirs:
        relation = "is its stage-1 run's directory"
    elif theirs in own.parents:
        relation = f"is inside its stage-1 run {stage1}"
    elif own in theirs.parents:
        relation = f"holds its stage-1 run {stage1}"
    else:
        return
    raise ConfigError(
        f"training_opt.log_dir {training_opt['log_dir']} {relation} (training_opt.stage1_log_dir); "
        "give stage 2 a log_dir of its own"
    )


def existing_run(log_dir):
    """The run files already in ``log_dir`` (names), [] when there is none."""
    return [name for name in RUN_FILES if (Path(log_dir) / name).is_file()]


def check_training_target(config, resume, overwrite):
    """Refuse (or with ``overwrite``, move aside) a run already in the log_dir; returns the moved-aside path."""
    log_dir = Path(config["training_opt"]["log_dir"])
    found = existing_run(log_dir)
    foreign = [] if found or _unfinished_run_of_ours(log_dir) else [n for n in WRITTEN_FILES if (log_dir / n).exists()]
    if (found or foreign) and overwrite:
        return move_aside(log_dir)
    if foreign:
        raise RunDirError(
            f"training_opt.log_dir {log_dir} holds {', '.join(foreign)} but no run of this project (no checkpoint, "
            "no results), which training would replace; nothing was written. Use another training_opt.log_dir, "
            f"move those files away, or --overwrite to move {log_dir} aside to {log_dir}.old-<timestamp>"
        )
    if not found:
        return None
    if resume:
        return None  # restore_last checks the config; a finished run of the same config stays as it was
    what = "a finished run" if FINAL_CHECKPOINT in found else f"an unfinished run ({', '.join(found)})"
    raise RunDirError(
        f"training_opt.log_dir {log_dir} already holds {what}; nothing was written. Use --resume to continue it "
        "(same config and --opts), another training_opt.log_dir, or --overwrite to move the old run aside "
        f"to {log_dir}.old-<timestamp> and start over"
    )


def _unfinished_run_of_ours(log_dir):
    """A run of ours stopped before its first checkpoint: its config.yaml is a resolved config (what training
    writes first), so rerunning it (a sweep's --resume) starts it over; a user's own config.yaml is not."""
    path = Path(log_dir) / RESOLVED_CONFIG
    try:
        import yaml

        from ..config.schema import validate

        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
        return isinstance(raw, dict) and validate(raw) == raw
    except Exception:  # unreadable, not YAML, not a valid config: not ours
        return False


def move_aside(log_dir):
    """Rename ``log_dir`` to ``<log_dir>.old-<UTC timestamp>`` (never deleted); returns the new path."""
    log_dir = Path(log_dir)
    stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime())
    target = log_dir.with_name(f"{log_dir.name}.old-{stamp}")
    number = 1
    while target.exists():
        number += 1
        target = log_dir.with_name(f"{log_dir.name}.old-{stamp}-{number}")
    try:
        os.rename(log_dir, target)
    except OSError as error:
        raise OutputError(f"--overwrite: cannot move {log_dir} aside to {target}: {describe_os_error(error)}") from None
    note(f"--overwrite: moved the old run {log_dir} aside to {target}")
    return target


# ----------------------------------------------------------------------------- the lock


def _alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # it exists, owned by someone else
    return True


def read_lock(path):
    try:
        owner = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return owner if isinstance(owner, dict) else None


class RunLock:
    """``<log_dir>/.lock`` for the life of a training run or a test; see the module docstring."""

    def __init__(self, log_dir, purpose):
        self.log_dir = Path(log_dir)
        self.path = self.log_dir / LOCK_FILE
        self.purpose = purpose
        self.created_dir = False
        self.held = False

    def acquire(self):
        try:
            if not self.log_dir.is_dir():
                self.log_dir.mkdir(parents=True)
                self.created_dir = True
        except FileExistsError:
            pass
        except OSError as error:
            raise OutputError(
                f"cannot create training_opt.log_dir {self.log_dir}: {describe_os_error(error)}"
            ) from None
        for _ in range(3):
            if self._try_create():
                self.held = True
                return self
            owner = read_lock(self.path)
            if owner is None:  # being written right now, or damaged: look again shortly
                time.sleep(0.05)
                owner = read_lock(self.path)
            if (
                owner is not None
                and owner.get("host") == socket.gethostname()
                and isinstance(owner.get("pid"), int)
                and not _alive(owner["pid"])
            ):
                stale = self.path.with_name(f"{LOCK_FILE}.stale-{os.getpid()}")
                try:
                    os.replace(self.path, stale)  # one taker wins the rename; the others retry
                    stale.unlink()
                except FileNotFoundError:
                    continue
                note(
                    f"{self.path}: took over a stale lock of process {owner['pid']} on {owner['host']} "
                    f"({owner.get('purpose', 'a run')}), which is no longer running"
                )
                continue
            if owner is None:
                raise RunDirError(
                    f"{self.path} exists but is not a lock this project wrote; if no run is using "
                    f"{self.log_dir}, delete it"
                )
            raise RunDirError(
                f"{self.log_dir} is in use by process {owner.get('pid')} on {owner.get('host')} "
                f"({owner.get('purpose', 'a run')}, since {owner.get('since', '?')}); wait for it to finish, or "
                f"use another training_opt.log_dir (if that process is gone, delete {self.path})"
            )
        raise RunDirError(f"could not take the lock {self.path}; another process keeps taking it")

    def _try_create(self):
        """Create the lock with its content in one step (a hard link fails if it exists)."""
        owner = {
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "purpose": self.purpose,
            "since": time.strftime("%Y-%m-%d %H:%M:%S"),
        }
        tmp = self.path.with_name(f"{LOCK_FILE}.tmp-{os.getpid()}")
        try:
            tmp.write_text(json.dumps(owner) + "\n", encoding="utf-8")
            try:
                os.link(tmp, self.path)
                return True
            except FileExistsError:
                return False
            except OSError as error:
                if error.errno not in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EXDEV):
                    raise
            # a filesystem without hard links: exclusive create, then the content (a reader may see it empty)
            try:
                fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
            except FileExistsError:
                return False
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                handle.write(json.dumps(owner) + "\n")
            return True
        except OSError as error:
            raise OutputError(f"cannot write {self.path} in training_opt.log_dir: {describe_os_error(error)}") from None
        finally:
            with contextlib.suppress(OSError):
                tmp.unlink()

    def moved_to(self, target):
        """The holder moved the locked directory to ``target``: drop the lock that went with it."""
        RunLock(target, self.purpose)._release_own()
        self.held, self.created_dir = False, False

    def _release_own(self):
        owner = read_lock(self.path)
        if owner and owner.get("pid") == os.getpid() and owner.get("host") == socket.gethostname():
            with contextlib.suppress(OSError):
                self.path.unlink()

    def release(self):
        if self.held:
            self._release_own()
            self.held = False
        if self.created_dir:  # a run that failed before writing anything leaves no empty directory
            with contextlib.suppress(OSError):
                self.log_dir.rmdir()


def move_aside_locked(log_dir, purpose="--overwrite"):
    """``move_aside`` under the run's lock: a live run is refused (one line), never moved from under it."""
    lock = RunLock(log_dir, purpose).acquire()
    try:
        moved = move_aside(log_dir)
    except OltrError:
        lock.release()
        raise
    lock.moved_to(moved)
    return moved


# ----------------------------------------------------------------------------- together


def _agree(failed, ctx):
    """Under DDP: whether rank 0 failed its checks, known on every rank (so none hangs)."""
    if not ctx.distributed:
        return failed
    import torch
    import torch.distributed as dist

    flag = torch.tensor([1.0 if failed else 0.0], device=ctx.device)
    dist.broadcast(flag, src=0)
    return bool(flag.item())


@contextlib.contextmanager
def claim(config, ctx, mode, resume=False, overwrite=False):
    """Check and lock ``training_opt.log_dir`` for ``mode`` ('train' or 'test') around the block."""
    log_dir = config["training_opt"]["log_dir"]
    lock, error = None, None
    purpose = "training" if mode == "train" else "a test"
    if ctx.is_main:
        try:
            check_log_dir_path(log_dir)
            check_not_in_stage1(config)
            # the lock first: a live run's directory is neither inspected nor moved aside under it
            lock = RunLock(log_dir, purpose).acquire()
            if mode == "train":
                moved = check_training_target(config, resume, overwrite)
                if moved is not None:  # our lock went with the old run: drop it there, lock the new log_dir
                    lock.moved_to(moved)
                    lock = RunLock(log_dir, purpose).acquire()
        except OltrError as caught:
            error = caught
            if lock is not None:
                lock.release()
                lock = None
    if _agree(error is not None, ctx):
        raise (
            error
            if error is not None
            else RunDirError(f"rank 0 could not claim training_opt.log_dir {log_dir}; see its error")
        )
    try:
        yield
    finally:
        if lock is not None:
            lock.release()
