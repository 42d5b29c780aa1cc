"""What every benchmark here shares: the machine's description, paired timing, and printing.

Timing is paired and interleaved: after a warm-up, ``time_interleaved`` runs ``repeats``
rounds, each timing every candidate once in a shuffled order, so load on a shared machine
hits all candidates alike; tables give medians (and the min..max) and ratios are medians
of the per-round ratios (``paired_ratio``). torch.utils.benchmark's Timer is not used for
these: its ``timeit`` runs extra warm-up calls before each measurement and
``blocked_autorange`` times one candidate for a whole block, while the candidates here are
stateful training loops (each call trains) that must be timed round by round, side by
side. Its ``set_torch_threads`` runs a candidate on a given number of threads.

Nothing here imports the package (oltr, losses): only torch and the standard library.
"""

import contextlib
import os
import platform
import random
import shutil
import signal
import statistics
import sys
import threading
import time

import torch
from torch.utils.benchmark import set_torch_threads


def picker(quick):
    """``pick(value, normal, small)``: a command-line value if given, else the normal or the --quick default."""

    def pick(value, normal, small):
        return value if value is not None else (small if quick else normal)

    return pick


def log(message):
    """Progress goes to stderr, so stdout is only the report."""
    print(f"# {message}", file=sys.stderr, flush=True)


def load_text():
    try:
        one, five, fifteen = os.getloadavg()
        return f"{one:.2f} / {five:.2f} / {fifteen:.2f}"
    except OSError:
        return "n/a"


# ----------------------------------------------------------------------------- the machine


def _cpuinfo_field(name):
    """The first ``name: value`` line of /proc/cpuinfo (what lscpu reads on Linux), or None."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith(name):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return None


def cpu_flags():
    return set((_cpuinfo_field("flags") or "").split())


def cpu_model():
    return _cpuinfo_field("model name") or platform.processor() or "unknown"


def vector_isa(flags):
    """The widest x86 vector extension the CPU has: what decides fp32 speed and whether bf16 is native."""
    if "avx512f" in flags:
        return "AVX-512"
    if "avx2" in flags:
        return "AVX2"
    return "no AVX2" if flags else "unknown"


def onednn_bf16():
    """Whether oneDNN has native bf16 kernels here (avx512_bf16 / AMX); without them bf16 is emulated."""
    try:
        return str(bool(torch.ops.mkldnn._is_mkldnn_bf16_supported()))
    except (AttributeError, RuntimeError):
        return "unknown"


def machine_lines(device):
    """Markdown bullet lines: torch, CPU and vector ISA, bf16 support, compiler, GPU."""
    flags = cpu_flags()
    bf16_flags = [flag for flag in ("avx512_bf16", "amx_bf16", "avx512_fp16") if flag in flags]
    lines = [
        f"- torch {torch.__version__}, Python {platform.python_version()}, {platform.system()} {platform.machine()}",
        f"- CPU: {cpu_model()}, {os.cpu_count()} logical cores, torch threads {torch.get_num_threads()}, "
        f"ATen capability {torch.backends.cpu.get_cpu_capability()}, oneDNN {torch.backends.mkldnn.is_available()}",
        f"- vector ISA: {vector_isa(flags)}; bf16 CPU flags: {', '.join(bf16_flags) if bf16_flags else 'none'} "
        f"(avx512_bf16 {'present' if 'avx512_bf16' in flags else 'absent'}, "
        f"amx_bf16 {'present' if 'amx_bf16' in flags else 'absent'}); oneDNN native bf16: {onednn_bf16()}",
        f"- C++ compiler for torch.compile: {shutil.which('g++') or shutil.which('c++') or 'none found'}",
    ]
    if device.type == "cuda":
        lines.append(f"- device: {torch.cuda.get_device_name(device)}")
    return lines


# ----------------------------------------------------------------------------- timing


def thread_count(threads):
    """A context that runs its block on ``threads`` torch threads (None, or the current count: as is)."""
    if threads is None or threads == torch.get_num_threads():
        return contextlib.nullcontext()
    return set_torch_threads(threads)


def on_threads(function, threads):
    """``function`` wrapped to run on ``threads`` torch threads."""

    def call(units):
        with thread_count(threads):
            function(units)

    return call


class TimeLimitExceeded(Exception):
    pass


@contextlib.contextmanager
def time_limit(seconds, what="it"):
    """Raise TimeLimitExceeded after ``seconds`` (main thread, POSIX); a no-op otherwise or for None."""
    usable = seconds and hasattr(signal, "SIGALRM") and threading.current_thread() is threading.main_thread()
    if not usable:
        yield
        return

    def expire(signum, frame):
        raise TimeLimitExceeded(f"took longer than {seconds:.0f} s ({what})")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def synchronizer(device):
    """A function that waits for ``device`` to finish its queued work (nothing to wait for on a CPU)."""
    if device.type == "cuda":
        return lambda: torch.cuda.synchronize(device)
    return lambda: None


def time_interleaved(candidates, repeats, units, sync, seed=0):
    """{name: [seconds per round]}: every round times each candidate once, in a shuffled order."""
    shuffler = random.Random(seed)
    seconds = {name: [] for name in candidates}
    order = list(candidates)
    for _ in range(repeats):
        shuffler.shuffle(order)
        for name in order:
            sync()
            started = time.perf_counter()
            candidates[name](units)
            sync()
            seconds[name].append(time.perf_counter() - started)
    return seconds


def throughput(samples, images_per_unit):
    """(median, min, max) images/s from per-round seconds."""
    rates = [images_per_unit / s for s in samples]
    return statistics.median(rates), min(rates), max(rates)


def paired_ratio(samples_a, samples_b):
    """Median over rounds of throughput(a)/throughput(b) = time(b)/time(a), round by round."""
    return statistics.median(b / a for a, b in zip(samples_a, samples_b))


# ----------------------------------------------------------------------------- printing


def rate_text(rate):
    median, low, high = rate
    return f"{median:,.0f} ({low:,.0f}-{high:,.0f})"


def print_table(header, rows, right_from=1):
    """A Markdown table, columns from ``right_from`` on right-aligned, then a blank line."""
    print("| " + " | ".join(header) + " |")
    print("|" + "|".join("---:" if index >= right_from else "---" for index in range(len(header))) + "|")
    for row in rows:
        print("| " + " | ".join(row) + " |")
    print()
