"""The local executor: the plan's ready steps, ``--jobs N`` at a time, each in a fresh process.

Every step runs in a new process forked from a fork server (``multiprocessing``'s forkserver)
that imported torch, torchvision, scikit-learn and this package once, before any step ran and
without running anything else. A step's process therefore starts with nothing from the step before
it, as ``python main.py ...`` would, but without paying for those imports again
(``benchmarks/bench_sweep_start.py`` measures the difference). The step's output goes to its
``<phase>.out``; its environment gets ``CUDA_VISIBLE_DEVICES`` (its own GPUs) or, on a CPU with
several jobs, its share of the cores (``OMP_NUM_THREADS`` and ``torch.set_num_threads``). A step
that needs several GPUs runs under torchrun, as its own process tree.

Ctrl-C stops the sweep: running steps get one SIGINT (a training step then stops at its next step,
keeping its last finished epoch), are waited for, and go back to ``pending``; ``--skip-done``
continues from there.
"""

import importlib
import multiprocessing
import os
import signal
import subprocess
import sys
import time
from multiprocessing.connection import wait

from .plan import PROGRAMS, dependents
from .state import signal_name

# Imported once by the fork server; every step's process starts with them in memory.
PRELOAD = [
    "numpy",
    "torch",
    "torchvision",
    "sklearn",
    "oltr.cli",
    "oltr.runs.trainer",
    "oltr.runs.evaluate",
    "oltr.report.cli",
    "losses",
]
INTERRUPTED = 130
STOP_GRACE_S = 60  # how long interrupted steps get to stop cleanly before they are killed


def _first_sigint_only(signum, frame):
    """The first Ctrl-C interrupts the step; more (the terminal's and the sweep's) are not allowed to
    interrupt its clean-up."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    raise KeyboardInterrupt


def step_process(entry, argv, out_file, env, threads):
    """The body of one step's process: its output into ``out_file``, then ``entry`` ("module:function")
    called with ``argv``; the process exits with what it returns."""
    os.environ.update(env)
    fd = os.open(out_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    os.close(fd)
    sys.stdout = open(1, "w", encoding="utf-8", errors="backslashreplace", buffering=1, closefd=False)
    sys.stderr = open(2, "w", encoding="utf-8", errors="backslashreplace", buffering=1, closefd=False)
    signal.signal(signal.SIGINT, _first_sigint_only)
    import torch

    if threads:
        torch.set_num_threads(threads)
    module, function = entry.split(":")
    sys.argv = [module, *argv]
    try:
        code = getattr(importlib.import_module(module), function)(list(argv))
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
    sys.exit(code if isinstance(code, int) else 1)


def _as_keyboard_interrupt(signum, frame):
    raise KeyboardInterrupt


def _main_thread():
    import threading

    return threading.current_thread() is threading.main_thread()


class _Running:
    """A started step: a fork-server child (one process) or a torchrun process tree."""

    def __init__(self, step, handle, gpus, log):
        self.step, self.handle, self.gpus, self.log = step, handle, gpus, log
        self.started = time.perf_counter()

    @property
    def sentinel(self):
        return getattr(self.handle, "sentinel", None)

    def exit_code(self):
        """None while running, else the exit status (negative: the signal that ended it)."""
        if isinstance(self.handle, subprocess.Popen):
            return self.handle.poll()
        return None if self.handle.is_alive() else self.handle.exitcode

    def wait(self):
        return self.handle.wait() if isinstance(self.handle, subprocess.Popen) else self.handle.join()

    def signal(self, signum):
        try:
            os.kill(self.handle.pid, signum)
        except ProcessLookupError:
            pass

    def close(self):
        if self.log is not None:
            self.log.close()


def failure_text(code, seconds):
    """'killed by SIGKILL after 4s' (a signal ended it, or a shell or torchrun reported 128 + the signal),
    else 'FAILED after 4s (exit code 2)'."""
    name = signal_name(code)
    if name and code < 0:
        return f"killed by {name} after {seconds:.0f}s"
    if name:
        return f"FAILED after {seconds:.0f}s (exit code {code}: ended by {name})"
    return f"FAILED after {seconds:.0f}s (exit code {code})"


class LocalExecutor:
    """Runs a plan on this machine. ``gpus``: the GPU ids the steps share (empty on a CPU)."""

    name = "local"

    def __init__(self, jobs=1, threads=None, gpus=(), gpus_per_step=1, python=sys.executable, echo=print):
        self.jobs, self.threads, self.gpus = jobs, threads, list(gpus)
        self.gpus_per_step, self.python, self.echo = gpus_per_step, python, echo
        self._context = None

    # -------------------------------------------------------------------- starting steps

    def _fork_server(self):
        if self._context is None:
            self._context = multiprocessing.get_context("forkserver")
            self._context.set_forkserver_preload(PRELOAD)
        return self._context

    def _environment(self, gpus):
        env = {}
        if gpus:
            env["CUDA_VISIBLE_DEVICES"] = ",".join(gpus)
        if self.threads:
            env.update(OMP_NUM_THREADS=str(self.threads), MKL_NUM_THREADS=str(self.threads))
        return env

    def start(self, step, gpus=()):
        step.log_dir.mkdir(parents=True, exist_ok=True)
        env = self._environment(gpus)
        if self.gpus_per_step > 1 and step.program == "main":  # DDP over this step's GPUs
            log = open(step.out_file, "wb")
            command = [
                self.python,
                "-m",
                "torch.distributed.run",
                "--standalone",
                f"--nproc_per_node={self.gpus_per_step}",
                *PROGRAMS[step.program][0],
                *step.argv,
            ]
            handle = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env={**os.environ, **env})
            return _Running(step, handle, gpus, log)
        process = self._fork_server().Process(
            target=step_process,
            name=step.id,
            args=(PROGRAMS[step.program][1], step.argv, str(step.out_file), env, self.threads),
        )
        process.start()
        return _Running(step, process, gpus, None)

    # -------------------------------------------------------------------- the loop

    def run(self, steps, state):
        """Run every step not yet done; 0 when all succeeded, 1 when some failed, 130 on Ctrl-C (or SIGTERM)."""
        # A SIGTERM to the sweep (kill, a batch system) stops it as Ctrl-C does: its steps are not orphaned.
        previous = signal.signal(signal.SIGTERM, _as_keyboard_interrupt) if _main_thread() else None
        try:
            return self._run(steps, state)
        finally:
            if previous is not None:
                signal.signal(signal.SIGTERM, previous)

    def _run(self, steps, state):
        waiting = [step for step in steps if state.state(step.id) != "done"]
        running, free_gpus = [], list(self.gpus)
        try:
            while waiting or running:
                for step in list(waiting):
                    if len(running) >= self.jobs:
                        break
                    verdict = self._readiness(step, state)
                    if verdict == "wait":
                        continue
                    waiting.remove(step)
                    if verdict == "skip":
                        continue
                    gpus = [free_gpus.pop(0) for _ in range(self.gpus_per_step)] if free_gpus else []
                    state.set(step.id, "running", exit_code=None, signal=None, note=None)
                    self.echo(f"[{step.label()}] started: {step.text()}" + (f" (GPU {','.join(gpus)})" if gpus else ""))
                    running.append(self.start(step, gpus))
                if not running:
                    if waiting:  # nothing can start: every waiting step needs one that will never succeed
                        for step in waiting:
                            self._skip(step, state, "a step it needs did not succeed")
                    break
                self._wait(running)
                for finished in [r for r in running if r.exit_code() is not None]:
                    running.remove(finished)
                    free_gpus.extend(finished.gpus)
                    finished.close()
                    self._finish(finished, steps, state)
        except KeyboardInterrupt:
            self._interrupt(running, state)
            return INTERRUPTED
        return 1 if any(state.state(step.id) in ("failed", "skipped") for step in steps) else 0

    @staticmethod
    def _readiness(step, state):
        needs = [state.state(need) for need in step.needs]
        if step.after_any:
            return "go" if all(s in ("done", "failed", "skipped") for s in needs) else "wait"
        if any(s in ("failed", "skipped") for s in needs):
            return "skip"
        return "go" if all(s == "done" for s in needs) else "wait"

    def _skip(self, step, state, why):
        if state.state(step.id) != "skipped":
            state.set(step.id, "skipped", note=why)

    @staticmethod
    def _wait(running):
        sentinels = [r.sentinel for r in running if r.sentinel is not None]
        timeout = 0.2 if len(sentinels) < len(running) else None  # torchrun trees are polled
        wait(sentinels, timeout=timeout) if sentinels else time.sleep(timeout)

    def _finish(self, finished, steps, state):
        step, code = finished.step, finished.exit_code()
        seconds = round(time.perf_counter() - finished.started, 1)
        if code == 0 and (step.done_marker is None or step.done_marker.is_file()):
            state.set(step.id, "done", exit_code=0, seconds=seconds)
            self.echo(f"[{step.label()}] done in {seconds:.0f}s")
            return
        fields = {"exit_code": code, "seconds": seconds}
        if code < 0:
            fields.update(exit_code=None, signal=signal.Signals(-code).name)
        elif code == 0:
            fields["note"] = f"exited 0 without writing {step.done_marker}"
        state.set(step.id, "failed", **fields)
        self.echo(f"[{step.label()}] {failure_text(code, seconds)}; output: {step.out_file}")
        for dependent in dependents(steps, step.id):
            self._skip(next(s for s in steps if s.id == dependent), state, f"{step.id} failed")

    def _interrupt(self, running, state):
        """Ctrl-C: one SIGINT to every running step, a grace period, then SIGKILL; they go back to pending."""
        for r in running:
            r.signal(signal.SIGINT)
        deadline = time.monotonic() + STOP_GRACE_S
        try:
            while any(r.exit_code() is None for r in running) and time.monotonic() < deadline:
                time.sleep(0.1)
        except KeyboardInterrupt:  # a second Ctrl-C: do not wait
            pass
        for r in running:
            if r.exit_code() is None:
                r.signal(signal.SIGKILL)
                r.wait()
            r.close()
            state.set(r.step.id, "pending", note="interrupted (Ctrl-C); --skip-done continues it")
