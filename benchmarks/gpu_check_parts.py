"""The pieces of benchmarks/gpu_check.py: preflight, device lines, the demo, and the timers.

preflight(...)      one line per piece the check needs, "ok" or "MISSING"
WaitTimer           time blocked in a DataLoader's next(): the data wait, not the device augmentation
StepSpans           CUDA events on the step's stream from a batch's arrival to the next request: GPU busy
count_syncs(fn)     fn under torch.cuda.set_sync_debug_mode("warn"), counting the host syncs it makes
time_epochs(...)    an untimed epoch, then timed ones: images/s, GPU busy, augmentation, data wait, syncs
"""

import json
import os
import shlex
import shutil
import statistics
import subprocess
import sys
import threading
import time
import warnings

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
MIN_TORCH = (2, 1)  # setup.py's torch>=2.1
SHM_PER_WORKER = 2 * 128 * 3 * 224 * 224  # two uint8 224 px batches of 128 in flight per worker


def say(text=""):
    print(text, flush=True)


def _version(text):
    return tuple(int(part) for part in text.split("+")[0].split(".")[:2] if part.isdigit())


def preflight(device, tmp_root, need_disk_bytes, workers):
    """(missing, lines): a line per piece; ``missing`` lists the pieces that stop the check."""
    import torchvision

    lines, missing = [], []

    def check(ok, text, fix):
        (lines if ok else missing).append(f"- {'ok' if ok else 'MISSING'}: {text}" + ("" if ok else f"; {fix}"))

    check(
        _version(torch.__version__) >= MIN_TORCH,
        f"torch {torch.__version__} (need >= 2.1), "
        f"torchvision {torchvision.__version__}, python {sys.version.split()[0]}",
        "pip install -e . first",
    )
    if device.type == "cuda":
        check(
            torch.cuda.is_available(),
            f"CUDA {torch.version.cuda}, {torch.cuda.device_count()} device(s)",
            "this torch has no CUDA or sees no GPU (CUDA_VISIBLE_DEVICES, the driver)",
        )
    shm = shutil.disk_usage("/dev/shm").free if os.path.isdir("/dev/shm") else 0
    check(
        shm >= workers * SHM_PER_WORKER,
        f"/dev/shm {shm / 2**30:.1f} GiB free for {workers} loader workers "
        f"(need {workers * SHM_PER_WORKER / 2**30:.1f})",
        "the check passes batches through files instead "
        "(sharing strategy file_system); give the container more --shm-size",
    )
    free = shutil.disk_usage(tmp_root).free
    check(
        free >= need_disk_bytes,
        f"{free / 2**30:.1f} GiB free in {tmp_root} (need {need_disk_bytes / 2**30:.1f})",
        "point TMPDIR at a larger disk or pass fewer --images",
    )
    essential = [line for line in missing if "/dev/shm" not in line]  # a small /dev/shm only slows the loaders
    return essential, lines + missing


def device_lines(device):
    lines = [
        f"- torch {torch.__version__}, CUDA {torch.version.cuda}, cuDNN "
        f"{torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else 'n/a'}",
        f"- CPU cores: {os.cpu_count()} logical, {len(os.sched_getaffinity(0))} usable (num_workers)",
    ]
    if device.type == "cuda":
        props = torch.cuda.get_device_properties(device)
        lines.insert(
            0,
            f"- device {device}: {torch.cuda.get_device_name(device)}, compute capability "
            f"{props.major}.{props.minor}, {props.total_memory / 2**30:.1f} GiB, "
            f"{props.multi_processor_count} SMs, bf16 {torch.cuda.is_bf16_supported()}",
        )
    else:
        from harness import cpu_flags, cpu_model, vector_isa

        lines.insert(
            0, f"- device cpu: {cpu_model()}, {vector_isa(cpu_flags())}, torch threads {torch.get_num_threads()}"
        )
    return lines


# ----------------------------------------------------------------------------- the demo


def demo_commands(tmp, device, demo_epochs, quick=False):
    """The sweep's own commands for the softmax demo, logs and data in ``tmp``, on ``device``."""
    logs = os.path.join(tmp, "demo_logs")
    plan = subprocess.run(
        [
            sys.executable,
            "-m",
            "oltr.sweep",
            "--dry-run",
            "--losses",
            "softmax",
            "--logs",
            logs,
            "--out",
            os.path.join(tmp, "demo_results"),
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    data = os.path.join(tmp, "data", "Digits_LT")
    extra = [f"training_opt.data_root={data}", f"training_opt.split_dir={data}"]
    if demo_epochs is not None:
        extra.append(f"training_opt.num_epochs={demo_epochs}")
    if quick:  # on a 2-core CPU the loader workers' start-up is most of a one-epoch run
        extra.append("training_opt.num_workers=0")
    commands = []
    for line in plan.splitlines():
        words = shlex.split(line)
        if len(words) > 1 and words[1] == "main.py":
            if "--opts" not in words:
                words.append("--opts")
            commands.append([sys.executable, *words[1:], *extra, "--device", str(device)])
    return commands


def option(words, key):
    """The value of ``key=`` among a command's --opts."""
    return next((word.split("=", 1)[1] for word in words if word.startswith(key + "=")), None)


def headline(words):
    log_dir = option(words, "training_opt.log_dir")
    if "--test" in words or "--test_open" in words:
        name = "results_test_open.json" if "--test_open" in words else "results_test_closed.json"
        with open(os.path.join(log_dir, name), encoding="utf-8") as handle:
            results = json.load(handle)
        keys = ["overall_top1", "many_shot_top1", "medium_shot_top1", "few_shot_top1"]
        keys += ["f_measure", "open_auroc"] if "--test_open" in words else ["macro_f1"]
        return ", ".join(f"{key} {results[key]:.4f}" for key in keys if isinstance(results.get(key), float))
    with open(os.path.join(log_dir, "metrics.jsonl"), encoding="utf-8") as handle:
        records = [json.loads(line) for line in handle if line.strip()]
    best = max(records, key=lambda record: record["val_top1"])
    return (
        f"{len(records)} epochs, best val_top1 {best['val_top1']:.4f} (epoch {best['epoch']}), "
        f"last epoch {records[-1]['images_per_s']:.0f} img/s"
    )


def run_demo(tmp, device, demo_epochs, quick=False):
    say("## 3. Demo (Digits_LT, softmax): the four commands of ./run_all.sh --dry-run --losses softmax")
    say()
    for words in demo_commands(tmp, device, demo_epochs, quick):
        mode = "--test_open" if "--test_open" in words else "--test" if "--test" in words else "train"
        stage = os.path.basename(words[words.index("--config") + 1])
        started = time.perf_counter()
        done = subprocess.run(words, cwd=REPO, capture_output=True, text=True)
        seconds = time.perf_counter() - started
        if done.returncode:
            say(
                f"- {stage} {mode}: FAILED (exit {done.returncode}) after {seconds:.1f} s: "
                f"{(done.stderr or done.stdout).strip().splitlines()[-1:]}"
            )
            return False
        say(f"- {stage} {mode}: {seconds:.1f} s; {headline(words)}")
    say()
    return True


# ----------------------------------------------------------------------------- timers


class GpuSampler:
    """nvidia-smi's utilization.gpu every 200 ms in the background, for one device; mean() at the end."""

    def __init__(self, device):
        self.values, self.process = [], None
        if device.type != "cuda" or not _which("nvidia-smi"):
            return
        try:
            target = f"GPU-{torch.cuda.get_device_properties(device).uuid}"
            self.process = subprocess.Popen(
                [
                    "nvidia-smi",
                    "-i",
                    target,
                    "--query-gpu=utilization.gpu",
                    "--format=csv,noheader,nounits",
                    "-lms",
                    "200",
                ],
                stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL,
                text=True,
            )
        except (AttributeError, OSError):
            return
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self):
        for line in self.process.stdout:
            try:
                self.values.append(float(line.strip()))
            except ValueError:
                pass

    def stop(self):
        if self.process is None:
            return None
        self.process.terminate()
        self.process.wait(timeout=10)
        self.thread.join(timeout=2)
        return statistics.fmean(self.values) / 100 if self.values else None


def _which(name):
    from shutil import which

    return which(name)


class WaitTimer:
    """Wraps a DataLoader: the time blocked in its next() (the workers falling behind), nothing after it."""

    def __init__(self, loader):
        self.loader, self.wait_s = loader, 0.0

    def __getattr__(self, name):
        return getattr(self.loader, name)

    def __len__(self):
        return len(self.loader)

    def __iter__(self):
        iterator = iter(self.loader)
        while True:
            started = time.perf_counter()
            try:
                batch = next(iterator)
            except StopIteration:
                return
            finally:
                self.wait_s += time.perf_counter() - started
            yield batch


class StepSpans:
    """Wraps the loader a training loop iterates: CUDA events on the step's stream at each batch's
    arrival and at the next request; their GPU time is the steps' (the side stream's augmentation is apart)."""

    def __init__(self, loader, device):
        self.loader, self.device, self.spans, self._open = loader, device, [], None

    def __getattr__(self, name):
        return getattr(self.loader, name)

    def __len__(self):
        return len(self.loader)

    def _event(self):
        if self.device.type != "cuda":
            return None
        event = torch.cuda.Event(enable_timing=True)
        event.record()
        return event

    def close_step(self):
        if self._open is not None:
            self.spans.append((self._open, self._event()))
            self._open = None

    def __iter__(self):
        for batch in self.loader:
            self.close_step()
            self._open = self._event()
            yield batch
        self.close_step()


def count_syncs(function, counter):
    """``function`` whose calls count, in ``counter["syncs"]``, the host syncs CUDA reports ("warn" mode)."""

    def counted(*args, **kwargs):
        if not torch.cuda.is_available():
            return function(*args, **kwargs)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            torch.cuda.set_sync_debug_mode("warn")
            try:
                return function(*args, **kwargs)
            finally:
                torch.cuda.set_sync_debug_mode("default")
                counter["syncs"] += sum("synchroniz" in str(w.message) for w in caught)

    return counted


def _seconds(pairs):
    return sum(start.elapsed_time(end) for start, end in pairs) / 1000


def time_epochs(epoch, device, epochs, batch, steps_per_epoch, spans=None, waits=(), augment=None, counter=None):
    """``epoch()`` once untimed, then ``epochs`` times: images/s, GPU busy and augmentation shares of the
    wall time (CUDA events), data wait per step at the DataLoader, host syncs per step."""
    sync = (lambda: torch.cuda.synchronize(device)) if device.type == "cuda" else (lambda: None)
    epoch()
    sync()
    for timer in waits:
        timer.wait_s = 0.0
    if spans is not None:
        spans.spans = []
    if augment is not None:
        augment.clear()
    if counter is not None:
        counter["syncs"] = 0
    sampler = GpuSampler(device)
    started = time.perf_counter()
    for _ in range(epochs):
        epoch()
    sync()
    wall = time.perf_counter() - started
    steps = steps_per_epoch * epochs
    on_gpu = device.type == "cuda"
    return {
        "rate": steps * batch / wall,
        "busy": _seconds(spans.spans) / wall if on_gpu and spans is not None else None,
        "augment": _seconds(augment) / wall if on_gpu and augment else None,
        "smi": sampler.stop(),
        "wait_ms": 1000 * sum(timer.wait_s for timer in waits) / max(steps, 1),
        "syncs": counter["syncs"] / max(steps, 1) if counter is not None and on_gpu else None,
        "steps": steps,
        "wall": wall,
    }


def percent(value):
    return "n/a" if value is None else f"{value:.0%}"


def print_rows(rows):
    say(
        "| run | img/s | x original | GPU busy (events) | augmentation (events) | nvidia-smi | data wait / step "
        "| host syncs / step | timed steps |"
    )
    say("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for row in rows:
        if "note" in row:
            say(f"| {row['name']} | unavailable: {row['note']} | | | | | | | |")
            continue
        ratio = f"{row['ratio']:.2f}x" if row.get("ratio") is not None else ""
        syncs = "n/a" if row.get("syncs") is None else f"{row['syncs']:.1f}"
        say(
            f"| {row['name']} | {row['rate']:,.0f} | {ratio} | {percent(row['busy'])} | {percent(row.get('augment'))} "
            f"| {percent(row['smi'])} | {row['wait_ms']:.1f} ms | {syncs} | {row['steps']} |"
        )
    say()
