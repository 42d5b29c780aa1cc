"""Stage-1 training throughput: our trainer against a bare PyTorch loop, and fp32 / bf16 / channels_last / compile.

    python benchmarks/bench_train.py [--config config/Digits_LT/stage_1.py] [--steps 11] [--repeats 5]
                                     [--modes fp32,bf16,channels_last,bf16_cl,compile] [--device cpu] [--quick]

Four measurements, all in this one process:

1. Overhead. ``oltr.engine.trainer.train_step`` on a Run from ``build_run`` against a
   bare loop (``F.cross_entropy`` + one SGD) on the same network (``build.build_network``,
   same initial weights) and the same pre-loaded batches; then a whole
   ``train_one_epoch`` (our DataLoader) against the bare loop iterating the same dataset
   through a plain shuffled DataLoader. Both use softmax cross-entropy in fp32, so the
   ratio ours/bare is the pipeline's own cost (target >= 0.95).
2. CFL against softmax inside our trainer (same batches).
3. fp32, bf16 autocast, channels_last, bf16 + channels_last and torch.compile on the
   config (Digits_LT: 16 px, thin ResNet-10) through the real trainer path, and
4. the same on a realistic shape (standard-width ResNet-10, synthetic images).

Every mode starts from the same weights and sees the same batches in the same order,
so the loss after the last repetition is comparable across modes; a same-weights check
(one batch, loss and gradient against fp32) isolates the numerics of each mode.

Timing: a warm-up, then ``--repeats`` rounds, each timing every candidate once in a
shuffled order; tables give medians (and the min..max), ratios are medians of the
per-round ratios, so load on a shared machine hits all candidates alike. Nothing is
asserted. Logs, the Digits_LT build and the inductor cache go to a temporary
directory that is deleted at the end; nothing is written under logs/.

To see what bf16 costs on a CPU without native bf16 (AVX2 only), cap the ISA:
    ONEDNN_MAX_CPU_ISA=AVX2 ATEN_CPU_CAPABILITY=avx2 python benchmarks/bench_train.py --sections config,realistic
"""
import argparse
import contextlib
import copy
import os
import platform
import random
import shutil
import signal
import statistics
import sys
import tempfile
import threading
import time

import torch
import torch.nn.functional as F

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from oltr import build  # noqa: E402
from oltr.config import load_config  # noqa: E402
from oltr.engine import trainer  # noqa: E402
from oltr.engine.distributed import DistContext  # noqa: E402
from oltr.engine.inference import autocast, to_device  # noqa: E402
from oltr.errors import OltrError  # noqa: E402

DEFAULT_CONFIG = os.path.join("config", "Digits_LT", "stage_1.py")

# mode -> training_opt overrides (+ torch threads); each mode is one thing alone, plus the
# bf16 + channels_last pair. The *_1t modes run on one thread: small convolutions on a
# shared machine can lose more to OpenMP synchronisation than they gain from a second core.
MODES = {
    "fp32": {"amp": "off", "channels_last": False, "compile": False, "threads": None},
    "bf16": {"amp": "bf16", "channels_last": False, "compile": False, "threads": None},
    "channels_last": {"amp": "off", "channels_last": True, "compile": False, "threads": None},
    "bf16_cl": {"amp": "bf16", "channels_last": True, "compile": False, "threads": None},
    "compile": {"amp": "off", "channels_last": False, "compile": True, "threads": None},
    "fp32_1t": {"amp": "off", "channels_last": False, "compile": False, "threads": 1},
    "bf16_cl_1t": {"amp": "bf16", "channels_last": True, "compile": False, "threads": 1},
}
MODE_ALIASES = {"bf16+channels_last": "bf16_cl", "bf16+cl": "bf16_cl", "cl": "channels_last", "off": "fp32"}

# The Digits_LT demo's CFL (config/Digits_LT/stage_1_cfl.py), timed at a progress where both terms are live.
CFL_PARAMS = {"gamma": 2.0, "gamma_hc": 2.0, "cyclical_factor": 2.0, "label_smoothing": 0.1}
CFL_PROGRESS = 0.1

# A mode is "safe" when, on the same weights and batch, its loss is within SAFE_LOSS_REL of fp32's and
# its gradient error is a small fraction of the gradient noise SGD already has from batch to batch
# (SAFE_GRAD_FALLBACK: absolute limit when there is only one batch to compare).
SAFE_LOSS_REL = 0.01
SAFE_GRAD_FRACTION = 0.25
SAFE_GRAD_FALLBACK = 0.25
SPEEDUP_MARGIN = 0.05


def log(message):
    """Progress goes to stderr, so stdout is only the report."""
    print(f"# {message}", file=sys.stderr, flush=True)


def load_text():
    try:
        one, five, fifteen = os.getloadavg()
        return f"{one:.2f} / {five:.2f} / {fifteen:.2f}"
    except OSError:
        return "n/a"


# ----------------------------------------------------------------------------- machine

def cpu_flags():
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("flags"):
                    return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


def cpu_model():
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def onednn_bf16():
    """Whether oneDNN has native bf16 kernels here (avx512_bf16 / AMX); without them bf16 is emulated."""
    try:
        return str(bool(torch.ops.mkldnn._is_mkldnn_bf16_supported()))
    except (AttributeError, RuntimeError):
        return "unknown"


def machine_lines(device):
    flags = cpu_flags()
    bf16_flags = [flag for flag in ("avx512_bf16", "amx_bf16", "avx512_fp16") if flag in flags]
    lines = [
        f"- torch {torch.__version__}, Python {platform.python_version()}, {platform.system()} {platform.machine()}",
        f"- CPU: {cpu_model()}, {os.cpu_count()} logical cores, torch threads {torch.get_num_threads()}, "
        f"ATen capability {torch.backends.cpu.get_cpu_capability()}, oneDNN {torch.backends.mkldnn.is_available()}",
        f"- bf16 CPU flags: {', '.join(bf16_flags) if bf16_flags else 'none'} "
        f"(avx512_bf16 {'present' if 'avx512_bf16' in flags else 'absent'}, "
        f"amx_bf16 {'present' if 'amx_bf16' in flags else 'absent'}); oneDNN native bf16: {onednn_bf16()}",
        f"- C++ compiler for torch.compile: {shutil.which('g++') or shutil.which('c++') or 'none found'}",
    ]
    if device.type == "cuda":
        lines.append(f"- device: {torch.cuda.get_device_name(device)}")
    return lines


# ----------------------------------------------------------------------------- configs and runs

def bench_overrides(tmp, name, data_overrides, mode="fp32", loss=None, extra=()):
    """--opts for one benchmark run: a private log dir, the data root, the mode, optionally the loss."""
    opts = MODES[mode]
    overrides = [f"training_opt.log_dir={os.path.join(tmp, 'logs', name)}", *data_overrides,
                 f"training_opt.amp='{opts['amp']}'",  # quoted: YAML reads a bare off as false
                 f"training_opt.channels_last={str(opts['channels_last']).lower()}",
                 f"training_opt.compile={str(opts['compile']).lower()}"]
    if loss is not None:
        name_, params = loss
        overrides += [f"criterions.PerformanceLoss.loss={name_}", "criterions.PerformanceLoss.loss_params={}"]
        overrides += [f"criterions.PerformanceLoss.loss_params.{k}={v}" for k, v in params.items()]
    return overrides + list(extra)


def data_overrides_for(config_path, tmp):
    """A dataset that builds itself (Digits_LT) is built in ``tmp``; others are read where the config says."""
    dataset = load_config(config_path)["training_opt"]["dataset"]
    if dataset in build.PREPARERS:
        root = os.path.join(tmp, "data", dataset)
        return [f"training_opt.data_root={root}", f"training_opt.split_dir={root}"]
    return []


def make_run(config_path, overrides, ctx):
    config = load_config(config_path, overrides)
    return trainer.build_run(config, ctx, echo=False)


def preload_batches(run, count, device):
    """The first ``count`` batches of the run's own training loader, kept on the device."""
    batches = []
    for images, labels, _ in run.train_loader:
        batches.append((images.to(device), labels.to(device)))
        if len(batches) == count:
            break
    return batches


def synthetic_batches(count, batch, size, num_classes, device, seed=0):
    generator = torch.Generator().manual_seed(seed)
    return [(torch.randn(batch, 3, size, size, generator=generator).to(device),
             torch.randint(0, num_classes, (batch,), generator=generator).to(device)) for _ in range(count)]


class TrainerSteps:
    """Calls oltr's train_step over pre-loaded batches, as train_one_epoch would (to_device included)."""

    def __init__(self, run, batches, threads=None):
        self.run = run
        self.threads = threads
        self.batches = batches
        self.device = run.ctx.device
        self.channels_last = run.config["training_opt"]["channels_last"]
        self.step = 0
        self.losses = []
        run.train_model.train()
        for module, _ in run.criterions.values():
            module.train()

    def __call__(self, steps):
        with thread_count(self.threads):
            self._steps(steps)

    def _steps(self, steps):
        for _ in range(steps):
            images, labels = self.batches[self.step % len(self.batches)]
            parts = trainer.train_step(self.run, to_device(images, self.device, self.channels_last), labels,
                                       self.step)
            self.losses.append(parts["loss"])
            self.step += 1


class BareSteps:
    """The textbook loop: forward, F.cross_entropy, backward, one SGD step, read the loss."""

    def __init__(self, network, config, batches):
        self.network = network.train()
        self.batches = batches
        groups = []
        for name in ("feat_model", "classifier"):
            optim = config["networks"][name]["optim_params"]
            groups.append({"params": list(getattr(network, name).parameters()), "lr": optim["lr"],
                           "momentum": optim["momentum"], "weight_decay": optim["weight_decay"],
                           "nesterov": optim["nesterov"]})
        self.optimizer = torch.optim.SGD(groups)
        self.step = 0
        self.losses = []

    def train_batch(self, images, labels):
        self.optimizer.zero_grad(set_to_none=True)
        logits, _ = self.network(images)
        loss = F.cross_entropy(logits, labels)
        loss.backward()
        self.optimizer.step()
        self.losses.append(loss.item())
        self.step += 1

    def __call__(self, steps):
        for _ in range(steps):
            self.train_batch(*self.batches[self.step % len(self.batches)])


# ----------------------------------------------------------------------------- timing

@contextlib.contextmanager
def thread_count(threads):
    """Run the block on ``threads`` torch threads (None: leave as is)."""
    previous = torch.get_num_threads()
    if threads is None or threads == previous:
        yield
        return
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


class CompileTimeout(Exception):
    pass


@contextlib.contextmanager
def time_limit(seconds):
    """Raise CompileTimeout after ``seconds`` (main thread, POSIX); a no-op otherwise."""
    usable = seconds and hasattr(signal, "SIGALRM") and threading.current_thread() is threading.main_thread()
    if not usable:
        yield
        return

    def expire(signum, frame):
        raise CompileTimeout(f"took longer than {seconds:.0f} s (--compile-timeout)")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def synchronizer(device):
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


def rate_text(rate):
    median, low, high = rate
    return f"{median:,.0f} ({low:,.0f}-{high:,.0f})"


# ----------------------------------------------------------------------------- numerics

def loss_and_gradient(model, params, loss_fn, batch, device, amp, channels_last):
    """Loss and flattened float64 gradient w.r.t. ``params`` of one training-mode forward of ``model``."""
    images, labels = batch
    with autocast(device, amp):
        logits, _ = model(to_device(images, device, channels_last), None)
    loss = loss_fn(logits.float(), labels)
    grads = torch.autograd.grad(loss, params)
    return loss.item(), torch.cat([g.detach().flatten().double() for g in grads])


def relative_error(value, reference):
    return (torch.linalg.vector_norm(value - reference) / torch.linalg.vector_norm(reference)).item()


def eager_gradient(network, loss_fn, batch, device, amp="off", channels_last=False):
    model = copy.deepcopy(network).train()  # a copy: BatchNorm's running statistics are left alone
    if channels_last:
        model.to(memory_format=torch.channels_last)
    params = [p for p in model.parameters() if p.requires_grad]
    return loss_and_gradient(model, params, loss_fn, batch, device, amp, channels_last)


def same_weights_check(network, loss_fn, batch, device, mode):
    """(loss rel. error, gradient rel. error) of ``mode`` against fp32, on one batch and the same weights."""
    ref_loss, ref_grad = eager_gradient(network, loss_fn, batch, device)
    opts = MODES[mode]
    loss, grad = eager_gradient(network, loss_fn, batch, device, opts["amp"], opts["channels_last"])
    return abs(loss - ref_loss) / max(abs(ref_loss), 1e-12), relative_error(grad, ref_grad)


def compiled_check(run, batch):
    """The compiled model against its own eager module, on the weights it has now."""
    loss_fn = run.criterions["PerformanceLoss"][0]
    params = [p for p in run.network.parameters() if p.requires_grad]
    device = run.ctx.device
    ref_loss, ref_grad = loss_and_gradient(run.network, params, loss_fn, batch, device, "off", False)
    loss, grad = loss_and_gradient(run.train_model, params, loss_fn, batch, device, "off", False)
    return abs(loss - ref_loss) / max(abs(ref_loss), 1e-12), relative_error(grad, ref_grad)


def minibatch_noise(network, loss_fn, batches, device):
    """||g(batch 1) - g(batch 0)|| / ||g(batch 0)|| in fp32: the scale of SGD's own gradient noise."""
    _, first = eager_gradient(network, loss_fn, batches[0], device)
    _, second = eager_gradient(network, loss_fn, batches[1], device)
    return relative_error(second, first)


# ----------------------------------------------------------------------------- sections

def on_threads(function, threads):
    def call(units):
        with thread_count(threads):
            function(units)
    return call


def thread_variants(ours, bare):
    """Ours/bare at torch's thread count, and again on one thread when that differs."""
    candidates = {"ours": ours, "bare": bare}
    if torch.get_num_threads() > 1:
        candidates.update({"ours_1t": on_threads(ours, 1), "bare_1t": on_threads(bare, 1)})
    return candidates


def overhead_rows(times, images):
    rows = []
    for suffix, threads in (("", torch.get_num_threads()), ("_1t", 1)):
        if f"ours{suffix}" in times:
            ours, bare = times[f"ours{suffix}"], times[f"bare{suffix}"]
            rows.append((threads, throughput(ours, images), throughput(bare, images), paired_ratio(ours, bare)))
    return rows


def section_overhead(args, ctx, tmp, data_overrides, sync):
    log("overhead: our trainer vs a bare PyTorch loop (fp32, softmax cross-entropy)")
    overrides = bench_overrides(tmp, "overhead", data_overrides, "fp32", loss=("softmax", {}),
                                extra=args.batch_overrides)
    run = make_run(args.config, overrides, ctx)
    training_opt = run.config["training_opt"]
    batch = training_opt["batch_size"]
    bare_network = build.build_network(run.config).to(ctx.device)
    bare_network.load_state_dict(run.network.state_dict())
    batches = preload_batches(run, min(args.steps, run.steps_per_epoch), ctx.device)
    ours, bare = TrainerSteps(run, batches), BareSteps(bare_network, run.config, batches)
    candidates = thread_variants(ours, bare)
    for runner in candidates.values():
        runner(args.warmup)
    step_times = time_interleaved(candidates, args.repeats, args.steps, sync)

    # Whole epochs: our train_one_epoch (our loader, sampler, seeding) vs a plain shuffled DataLoader.
    plain_loader = torch.utils.data.DataLoader(
        run.train_loader.dataset, batch_size=batch, shuffle=True, drop_last=True,
        num_workers=training_opt["num_workers"], pin_memory=ctx.device.type == "cuda")

    def our_epoch(epochs):
        for _ in range(epochs):
            trainer.train_one_epoch(run)
            run.epoch += 1

    def bare_epoch(epochs):
        for _ in range(epochs):
            for step, (images, labels, _) in enumerate(plain_loader):
                if step == run.steps_per_epoch:
                    break
                bare.train_batch(images.to(ctx.device, non_blocking=True), labels.to(ctx.device, non_blocking=True))

    epoch_rows = []
    if args.epoch_repeats:
        candidates = thread_variants(our_epoch, bare_epoch)
        for runner in candidates.values():
            runner(1)
        epoch_times = time_interleaved(candidates, args.epoch_repeats, 1, sync)
        epoch_rows = overhead_rows(epoch_times, run.steps_per_epoch * batch)
    return {
        "batch": batch, "steps": args.steps, "steps_per_epoch": run.steps_per_epoch,
        "num_workers": training_opt["num_workers"],
        "step": overhead_rows(step_times, args.steps * batch),
        "epoch": epoch_rows,
    }


def section_loss(args, ctx, tmp, data_overrides, sync):
    log("loss: CFL vs softmax inside our trainer (fp32)")
    runners = {}
    batches = None
    for name, loss in (("softmax", ("softmax", {})), ("cfl", ("cfl", CFL_PARAMS))):
        run = make_run(args.config, bench_overrides(tmp, f"loss_{name}", data_overrides, "fp32", loss=loss,
                                                    extra=args.batch_overrides), ctx)
        trainer.set_progress(run.criterions, CFL_PROGRESS)
        if batches is None:
            batches = preload_batches(run, min(args.steps, run.steps_per_epoch), ctx.device)
            batch = run.config["training_opt"]["batch_size"]
        runners[name] = TrainerSteps(run, batches)
        runners[name](args.warmup)
    times = time_interleaved(runners, args.repeats, args.steps, sync)
    return {"batch": batch,
            "softmax": throughput(times["softmax"], args.steps * batch),
            "cfl": throughput(times["cfl"], args.steps * batch),
            "ratio": paired_ratio(times["cfl"], times["softmax"])}


def section_modes(args, ctx, tmp, data_overrides, sync, shape_overrides, synthetic, steps, repeats, label):
    """Throughput and numerics of every mode through build_run + train_step, from the same weights."""
    runners, notes, warm_seconds = {}, {}, {}
    batches, reference = None, None
    for mode in args.modes:
        log(f"{label}: building {mode}")
        run = make_run(args.config, bench_overrides(tmp, f"{label}_{mode}", data_overrides, mode,
                                                    extra=shape_overrides), ctx)
        training_opt = run.config["training_opt"]
        if batches is None:
            batch, steps_per_epoch = training_opt["batch_size"], run.steps_per_epoch
            count = max(2, steps)  # two at least, for the minibatch-noise reference
            if synthetic:
                size = training_opt["transforms"]["input_size"]
                batches = synthetic_batches(count, batch, size, training_opt["num_classes"], ctx.device)
            else:
                batches = preload_batches(run, min(count, run.steps_per_epoch), ctx.device)
            # A copy of the common initial weights (build_run seeds identically) for the same-weights check.
            reference = (copy.deepcopy(run.network), run.criterions["PerformanceLoss"][0])
        runner = TrainerSteps(run, batches, MODES[mode]["threads"])
        started = time.perf_counter()
        try:
            with time_limit(args.compile_timeout if training_opt["compile"] else None):
                runner(args.warmup)
                sync()
        except Exception as error:  # compile can fail in many ways (no compiler, inductor bug, timeout)
            reason = " ".join(str(error).split()).split(" Set TORCHDYNAMO_VERBOSE")[0][:160] or "no message"
            notes[mode] = f"unavailable: {type(error).__name__}: {reason}"
            log(f"{label}: {mode} {notes[mode]}")
            if training_opt["compile"]:
                torch._dynamo.reset()
            continue
        warm_seconds[mode] = time.perf_counter() - started
        runners[mode] = runner
    log(f"{label}: timing {', '.join(runners)}")
    times = time_interleaved(runners, repeats, steps, sync) if runners else {}
    noise = minibatch_noise(reference[0], reference[1], batches, ctx.device) if len(batches) > 1 else None
    rows = []
    baseline = times.get("fp32")
    fp32 = runners.get("fp32")
    for mode in args.modes:
        if mode not in runners:
            rows.append({"mode": mode, "note": notes.get(mode, "not run")})
            continue
        runner = runners[mode]
        # Mean over every step trained (same batches, same order for every mode): less chaotic than the last loss.
        mean_loss = statistics.fmean(runner.losses)
        row = {"mode": mode, "rate": throughput(times[mode], steps * batch),
               "vs_fp32": paired_ratio(times[mode], baseline) if baseline else None,
               "warm_s": warm_seconds[mode], "mean_loss": mean_loss, "last_loss": runner.losses[-1],
               "loss_delta": mean_loss / statistics.fmean(fp32.losses) - 1 if fp32 else None,
               "steps_trained": runner.step, "val_top1": None}
        if MODES[mode]["compile"]:
            row["check"] = compiled_check(runner.run, batches[0])
        else:
            row["check"] = same_weights_check(reference[0], reference[1], batches[0], ctx.device, mode)
        if not synthetic:
            with thread_count(MODES[mode]["threads"]):
                row["val_top1"] = trainer.validate(runner.run)
        rows.append(row)
    return {"label": label, "batch": batch, "steps": steps, "repeats": repeats, "steps_per_epoch": steps_per_epoch,
            "shape": tuple(batches[0][0].shape), "rows": rows, "noise": noise}


# ----------------------------------------------------------------------------- report

def print_overhead(result, args):
    print(f"### Trainer overhead (fp32, softmax = F.cross_entropy, batch {result['batch']})")
    print()
    print("| measurement | ours (img/s) | bare PyTorch (img/s) | ours / bare | target |")
    print("|---|---:|---:|---:|---:|")
    for key, text in (("step", f"train_step, same pre-loaded tensors ({result['steps']} steps x {args.repeats})"),
                      ("epoch", f"train_one_epoch vs plain DataLoader loop ({result['steps_per_epoch']} steps, "
                                f"num_workers={result['num_workers']}, x {args.epoch_repeats})")):
        for threads, ours, bare, ratio in result[key]:
            verdict = "ok" if ratio >= 0.95 else "**below**"
            print(f"| {text}, {threads} thread{'s' if threads > 1 else ''} | {rate_text(ours)} | {rate_text(bare)} "
                  f"| {ratio:.3f} | >= 0.95 ({verdict}) |")
    print()


def print_loss(result, args):
    print(f"### Performance loss inside our trainer (fp32, batch {result['batch']}, "
          f"{args.steps} steps x {args.repeats})")
    print()
    print("| loss | img/s | vs softmax |")
    print("|---|---:|---:|")
    print(f"| softmax | {rate_text(result['softmax'])} | 1.000 |")
    params = ", ".join(f"{k}={v}" for k, v in CFL_PARAMS.items())
    print(f"| cfl ({params}, t={CFL_PROGRESS}) | {rate_text(result['cfl'])} | {result['ratio']:.3f} |")
    print()


def print_modes(result, title):
    shape = "x".join(str(d) for d in result["shape"])
    noise = "n/a (one batch)" if result["noise"] is None else f"{result['noise']:.2f}"
    print(f"### {title}: input {shape}, {result['steps']} steps x {result['repeats']} rounds")
    print()
    print("| mode | img/s median (min-max) | vs fp32 | warm-up s | mean train loss over N steps (vs fp32) "
          "| val top-1 | same weights vs fp32: loss / grad rel. err |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for row in result["rows"]:
        if "note" in row:
            print(f"| {row['mode']} | {row['note']} | | | | | |")
            continue
        ratio = f"{row['vs_fp32']:.2f}x" if row["vs_fp32"] is not None else "n/a"
        delta = f" ({row['loss_delta']:+.1%})" if row["loss_delta"] is not None and row["mode"] != "fp32" else ""
        top1 = "" if row["val_top1"] is None else f"{row['val_top1']:.3f}"
        check = f"{row['check'][0]:.1e} / {row['check'][1]:.1e}"
        if MODES[row["mode"]]["compile"]:
            check += " (vs eager, current weights)"
        print(f"| {row['mode']} | {rate_text(row['rate'])} | {ratio} | {row['warm_s']:.1f} "
              f"| {row['mean_loss']:.4f}, N={row['steps_trained']}{delta} | {top1} | {check} |")
    print()
    one_thread = any(MODES[row["mode"]]["threads"] == 1 for row in result["rows"])
    print(f"Gradient rel. err between two fp32 minibatches (SGD's own noise): {noise}."
          + (" Modes ending in _1t ran on one torch thread." if one_thread else ""))
    print()


def is_safe(row, noise):
    """Same-weights loss within SAFE_LOSS_REL and gradient error well inside the minibatch noise."""
    if "note" in row:
        return False
    loss_err, grad_err = row["check"]
    grad_limit = SAFE_GRAD_FRACTION * noise if noise is not None else SAFE_GRAD_FALLBACK
    return loss_err <= SAFE_LOSS_REL and grad_err <= grad_limit


def print_recommendation(result, total_steps):
    """Fastest safe mode for a whole run of ``total_steps`` steps, warm-up (compile) included."""
    fp32 = next((row for row in result["rows"] if row["mode"] == "fp32" and "note" not in row), None)
    if fp32 is None:
        print("fp32 did not run; no recommendation.")
        return
    fp32_step = result["batch"] / fp32["rate"][0]
    candidates = []
    for row in result["rows"]:
        if not is_safe(row, result["noise"]):
            continue
        # The paired (round-by-round) ratio to fp32 is steadier under load than a ratio of medians.
        step_seconds = fp32_step / row["vs_fp32"]
        candidates.append((row["warm_s"] + total_steps * step_seconds, row["mode"]))
    if not candidates:
        print("No mode ran safely; keep fp32.")
        return
    candidates.sort()
    summary = ", ".join(f"{mode} {seconds:.0f} s" for seconds, mode in candidates)
    unsafe = [row["mode"] for row in result["rows"] if "note" not in row and not is_safe(row, result["noise"])]
    print(f"Projected training time for this config's {total_steps} steps (warm-up/compile included), safe modes: "
          f"{summary}" + (f"; not safe: {', '.join(unsafe)}" if unsafe else "") + ".")
    print(f"Safe = same-weights loss within {SAFE_LOSS_REL:.0%} of fp32 and gradient error below "
          f"{SAFE_GRAD_FRACTION:g} x the minibatch noise.")
    fp32_total = next(seconds for seconds, mode in candidates if mode == "fp32")

    def clearly_faster(threads_ok):
        # A mode must save SPEEDUP_MARGIN of fp32's projected time to be worth recommending over it.
        for seconds, mode in candidates:
            if threads_ok or MODES[mode]["threads"] is None:
                return mode if mode == "fp32" or seconds <= (1 - SPEEDUP_MARGIN) * fp32_total else "fp32"
        return "fp32"

    print(f"**Fastest safe mode: {clearly_faster(True)}; fastest settable in training_opt alone: "
          f"{clearly_faster(False)}** (a mode must save {SPEEDUP_MARGIN:.0%} over fp32 to count). "
          "(*_1t modes need OMP_NUM_THREADS=1 or torch.set_num_threads(1), which is not a config key.)")
    print()


# ----------------------------------------------------------------------------- main

def parse_modes(text):
    modes = []
    for item in text.split(","):
        item = MODE_ALIASES.get(item.strip(), item.strip())
        if item not in MODES:
            raise SystemExit(f"--modes: unknown mode {item!r}; choose from {', '.join(MODES)}")
        if item not in modes:
            modes.append(item)
    if "fp32" not in modes:
        modes.insert(0, "fp32")  # the reference every other mode is compared with
    return modes


def build_parser():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default=DEFAULT_CONFIG, help="stage-1 config (default: %(default)s)")
    parser.add_argument("--steps", type=int, default=None, help="steps per timed round (default 11, quick 3)")
    parser.add_argument("--batch", type=int, default=None, help="batch size (default: the config's)")
    parser.add_argument("--repeats", type=int, default=None, help="timed rounds (default 7, quick 2)")
    parser.add_argument("--epoch-repeats", type=int, default=None,
                        help="timed epochs each (default 9, quick 2; 0 skips the epoch-level comparison)")
    parser.add_argument("--warmup", type=int, default=2, help="untimed steps per candidate (default 2)")
    parser.add_argument("--modes", default=None,
                        help=f"comma list from {','.join(MODES)} (default all; quick: no compile)")
    parser.add_argument("--sections", default="overhead,loss,config,realistic",
                        help="comma list from overhead,loss,config,realistic (default all)")
    parser.add_argument("--real-size", type=int, default=None, help="realistic input size (default 112, quick 32)")
    parser.add_argument("--real-batch", type=int, default=None, help="realistic batch (default 32, quick 4)")
    parser.add_argument("--real-steps", type=int, default=None, help="realistic steps per round (default 2, quick 1)")
    parser.add_argument("--real-repeats", type=int, default=None, help="realistic rounds (default 3, quick 1)")
    parser.add_argument("--compile-timeout", type=float, default=240.0,
                        help="seconds allowed for torch.compile's first steps before it is reported unavailable")
    parser.add_argument("--device", default="cpu", help="cpu (default) or cuda[:N] when available")
    parser.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (default: torch's)")
    parser.add_argument("--opts", nargs="*", default=[], metavar="KEY=VALUE",
                        help="config overrides for every run, e.g. training_opt.num_workers=2")
    parser.add_argument("--quick", action="store_true", help="tiny settings, no compile: a smoke run")
    return parser


def resolve_args(args):
    quick = args.quick

    def pick(value, normal, small):
        return value if value is not None else (small if quick else normal)

    args.steps = pick(args.steps, 11, 3)
    args.repeats = pick(args.repeats, 7, 2)
    args.epoch_repeats = pick(args.epoch_repeats, 9, 2)
    args.real_size = pick(args.real_size, 112, 32)
    args.real_batch = pick(args.real_batch, 32, 4)
    args.real_steps = pick(args.real_steps, 2, 1)
    args.real_repeats = pick(args.real_repeats, 3, 1)
    several_threads = (args.threads or torch.get_num_threads()) > 1
    default_modes = ",".join(m for m in MODES if not (quick and MODES[m]["compile"])
                             and (several_threads or MODES[m]["threads"] is None))
    args.modes = parse_modes(args.modes or default_modes)
    args.sections = [s.strip() for s in args.sections.split(",") if s.strip()]
    unknown = set(args.sections) - {"overhead", "loss", "config", "realistic"}
    if unknown:
        raise SystemExit(f"--sections: unknown {', '.join(sorted(unknown))}; "
                         "choose from overhead,loss,config,realistic")
    if min(args.steps, args.repeats, args.real_steps, args.real_repeats, args.warmup) < 1 or args.epoch_repeats < 0:
        raise SystemExit("--steps, --repeats, --real-steps, --real-repeats and --warmup must be >= 1, "
                         "--epoch-repeats >= 0")
    # Applied to every run built from --config (the realistic shape's own keys still win there).
    args.batch_overrides = list(args.opts) + ([f"training_opt.batch_size={args.batch}"] if args.batch else [])
    return args


def main(argv=None):
    args = resolve_args(build_parser().parse_args(argv))
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise SystemExit("--device cuda: CUDA is not available on this machine; use --device cpu")
    if args.threads:
        torch.set_num_threads(args.threads)
    ctx = DistContext(device=device)
    sync = synchronizer(device)
    load_start = load_text()
    started = time.perf_counter()

    with tempfile.TemporaryDirectory(prefix="oltr-bench-train-") as tmp:
        # A fresh inductor cache: the compile time reported is what a first run pays.
        previous_cache = os.environ.get("TORCHINDUCTOR_CACHE_DIR")
        os.environ["TORCHINDUCTOR_CACHE_DIR"] = os.path.join(tmp, "inductor")
        try:
            data_overrides = data_overrides_for(args.config, tmp)
            results, durations = {}, {}
            realistic_shape = [
                # Standard-width ResNet-10 with a 1000-way classifier (ImageNet-LT-like), synthetic images.
                "networks.feat_model.params.small_input=false", "networks.feat_model.params.base_channels=64",
                "networks.feat_model.params.use_fc=false", "training_opt.feature_dim=512",
                "training_opt.num_classes=1000", f"training_opt.transforms.input_size={args.real_size}",
                f"training_opt.transforms.resize_size={args.real_size}", f"training_opt.batch_size={args.real_batch}"]
            sections = {
                "overhead": lambda: section_overhead(args, ctx, tmp, data_overrides, sync),
                "loss": lambda: section_loss(args, ctx, tmp, data_overrides, sync),
                "config": lambda: section_modes(args, ctx, tmp, data_overrides, sync, args.batch_overrides,
                                                synthetic=False, steps=args.steps, repeats=args.repeats,
                                                label="config"),
                "realistic": lambda: section_modes(args, ctx, tmp, data_overrides, sync,
                                                   list(args.opts) + realistic_shape,
                                                   synthetic=True, steps=args.real_steps,
                                                   repeats=args.real_repeats, label="realistic"),
            }
            for name, section in sections.items():
                if name in args.sections:
                    section_started = time.perf_counter()
                    results[name] = section()
                    durations[name] = time.perf_counter() - section_started
                    log(f"{name}: done in {durations[name]:.0f} s (load {load_text()})")
            config = load_config(args.config, args.batch_overrides)
        except OltrError as error:
            raise SystemExit(f"error: {error}") from None
        finally:
            if previous_cache is None:
                os.environ.pop("TORCHINDUCTOR_CACHE_DIR", None)
            else:
                os.environ["TORCHINDUCTOR_CACHE_DIR"] = previous_cache

    elapsed = time.perf_counter() - started
    print(f"## Training throughput ({args.config}, device {device})")
    print()
    for line in machine_lines(device):
        print(line)
    print(f"- load average (1/5/15 min) at start {load_start}, at end {load_text()}; "
          f"benchmark took {elapsed:.0f} s ({', '.join(f'{k} {v:.0f} s' for k, v in durations.items())})")
    print()
    if "overhead" in results:
        print_overhead(results["overhead"], args)
    if "loss" in results:
        print_loss(results["loss"], args)
    if "config" in results:
        feat = config["networks"]["feat_model"]
        print_modes(results["config"], f"Modes on {config['training_opt']['dataset']} stage 1 ({feat['type']}, "
                                       f"base_channels={feat['params'].get('base_channels', 64)})")
        total_steps = config["training_opt"]["num_epochs"] * results["config"]["steps_per_epoch"]
        print_recommendation(results["config"], total_steps)
    if "realistic" in results:
        print_modes(results["realistic"], f"Modes on a realistic shape (resnet10, base_channels=64, "
                                          f"1000 classes, synthetic images)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
