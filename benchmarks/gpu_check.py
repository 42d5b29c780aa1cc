"""One check of this repository on a GPU: the device, the demo, and the ImageNet-LT recipes' throughput.

    benchmarks/gpu_check.sh [--device cuda[:N]|cpu] [--quick] [--images 3072] [--epochs 2]
                            [--modes fp32,bf16,channels_last,bf16_cl,compile] [--skip-demo]

1. the device: name, compute capability, memory, torch / CUDA / cuDNN versions, CPU cores;
2. the demo's four commands (``./run_all.sh --dry-run --losses softmax``: stage 1, stage 2
   meta-embedding, --test, --test_open) on Digits_LT with ``--device``, logs in a temporary
   directory: each one's wall time and headline metrics from its metrics.jsonl / results JSON;
3. config/ImageNet_LT/stage_1.py on synthetic 500x375 JPEGs (synthetic_images.py) in every mode
   (and as the config sets it), plus OLTR's original loop (oltr_reference.py): images/s, the
   share of the wall time the GPU is busy, the mean time a step waits for the data loader, and
   the images/s ratio ours / original (target >= 3x, GPU busy >= 90%);
4. config/ImageNet_LT/stage_2_meta_embedding.py (centroids) over step 3's fp32 stage-1 weights:
   images/s.

How it measures. Each loader is wrapped so that the time spent blocked in ``next()`` is the data
wait. On CUDA an event is recorded when a batch arrives and another when the next one is asked
for; the GPU time between each pair, summed over the steps and divided by the wall time, is the
share the GPU spent on steps rather than idling between them for data (work the host launches
too slowly inside a step counts as busy here, so nvidia-smi's utilization.gpu, sampled every
200 ms in the background when nvidia-smi exists, is printed beside it). Each run trains one
untimed epoch (compile, cuDNN autotuning, worker start-up), then ``--epochs`` timed ones.
num_workers = the number of CPU cores for every loader. Everything is written to a temporary
directory deleted at the end; nothing under logs/ or results/.

Without CUDA and without ``--device`` it says so and exits 2. ``--device cpu --quick`` is the
CPU smoke run (tiny sizes, 10 classes, one demo epoch on num_workers=0, modes fp32 and bf16_cl; about a minute
on 2 cores, of which the demo's four processes are half).
"""

import argparse
import json
import os
import shlex
import statistics
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path[:0] = [HERE, REPO]

import synthetic_images  # noqa: E402
import torch  # noqa: E402

from oltr.common.errors import OltrError  # noqa: E402
from oltr.config.schema import load_config  # noqa: E402
from oltr.engine.distributed import DistContext  # noqa: E402
from oltr.runs import trainer  # noqa: E402
from oltr.runs.run_state import network_state, save_final  # noqa: E402

# bench_train_oltr and train_runs import harness, whose torch.utils.benchmark logs a warning when CUDA is
# absent: they are imported by load_benchmarks(), after the device check, so "no CUDA" stays one line.

STAGE1 = os.path.join("config", "ImageNet_LT", "stage_1.py")
STAGE2 = os.path.join("config", "ImageNet_LT", "stage_2_meta_embedding.py")
TARGET_RATIO = 3.0
TARGET_BUSY = 0.90
DEFAULT_MODES = "fp32,bf16,channels_last,bf16_cl,compile"
QUICK_MODES = "fp32,bf16_cl"  # the autocast and channels_last paths, without compile's minutes on a CPU


def load_benchmarks():
    global DATASET, MODES, default_workers, initial_state, modes_text, original_from_config, parse_modes
    from bench_train_oltr import DATASET, default_workers, initial_state, modes_text, original_from_config
    from train_runs import MODES, parse_modes


def say(text=""):
    print(text, flush=True)


def build_parser():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default=None, help="cuda[:N] (default when CUDA is present) or cpu")
    parser.add_argument("--quick", action="store_true", help="tiny sizes for a CPU smoke run")
    parser.add_argument("--images", type=int, default=None, help="synthetic training images (default 3072, quick 16)")
    parser.add_argument("--batch", type=int, default=None, help="batch size (default the config's, quick 8)")
    parser.add_argument("--input-size", type=int, default=None, help="crop size (default the config's, quick 32)")
    parser.add_argument("--epochs", type=int, default=None, help="timed epochs per run (default 2, quick 1)")
    parser.add_argument("--modes", default=None, help=f"stage-1 modes (default {DEFAULT_MODES}; quick {QUICK_MODES})")
    parser.add_argument("--workers", type=int, default=None, help="num_workers (default: the number of cores)")
    parser.add_argument(
        "--demo-epochs", type=int, default=None, help="epochs of each demo stage (default: the config's, quick 1)"
    )
    parser.add_argument("--skip-demo", action="store_true", help="leave out step 2")
    return parser


def resolve(args):
    from harness import picker  # here, not at the top: see load_benchmarks

    pick = picker(args.quick)

    args.images = pick(args.images, 3072, 16)
    args.batch = pick(args.batch, None, 8)
    args.input_size = pick(args.input_size, None, 32)
    args.epochs = pick(args.epochs, 2, 1)
    args.demo_epochs = pick(args.demo_epochs, None, 1)
    args.modes = parse_modes(args.modes or (QUICK_MODES if args.quick else DEFAULT_MODES))
    args.workers = args.workers if args.workers is not None else default_workers()
    args.num_classes = 10 if args.quick else 1000
    args.jpeg_size = (160, 120) if args.quick else (500, 375)
    return args


# ----------------------------------------------------------------------------- 1. the device


def device_lines(device):
    lines = [
        f"- torch {torch.__version__}, CUDA {torch.version.cuda}, cuDNN "
        f"{torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else 'n/a'}",
        f"- CPU cores: {os.cpu_count()} logical, {default_workers()} usable (num_workers)",
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


# ----------------------------------------------------------------------------- 2. the demo


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
    say("## 2. Demo (Digits_LT, softmax): the four commands of ./run_all.sh --dry-run --losses softmax")
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


# ----------------------------------------------------------------------------- 3-4. throughput


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


class TimedLoader:
    """Wraps a DataLoader: time blocked in next(), and CUDA events at each batch's arrival and the next request."""

    def __init__(self, loader, device):
        self.loader, self.device = loader, device
        self.wait_s, self.batches, self.spans = 0.0, 0, []
        self._open = None

    def __getattr__(self, name):  # sampler, generator, dataset, batch_size: the loader's own
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
        iterator = iter(self.loader)
        while True:
            self.close_step()
            started = time.perf_counter()
            try:
                batch = next(iterator)
            except StopIteration:
                self.wait_s += time.perf_counter() - started
                return
            self.wait_s += time.perf_counter() - started
            self.batches += 1
            self._open = self._event()
            yield batch

    def reset(self):
        self.wait_s, self.batches, self.spans, self._open = 0.0, 0, [], None

    def busy_seconds(self):
        if self.device.type != "cuda":
            return None
        return sum(start.elapsed_time(end) for start, end in self.spans) / 1000


def time_epochs(epoch, loader, device, epochs, batch, steps_per_epoch):
    """Run ``epoch()`` once untimed, then ``epochs`` times: images/s, GPU-busy share, data wait per step."""
    sync = (lambda: torch.cuda.synchronize(device)) if device.type == "cuda" else (lambda: None)
    epoch()
    loader.close_step()
    sync()
    loader.reset()
    sampler = GpuSampler(device)
    started = time.perf_counter()
    for _ in range(epochs):
        epoch()
        loader.close_step()
    sync()
    wall = time.perf_counter() - started
    smi = sampler.stop()
    steps = steps_per_epoch * epochs  # a partial last batch the loop skips is fetched, not trained
    busy = loader.busy_seconds()
    return {
        "rate": steps * batch / wall,
        "busy": None if busy is None else busy / wall,
        "smi": smi,
        "wait_ms": 1000 * loader.wait_s / max(steps, 1),
        "steps": steps,
        "wall": wall,
    }


def size_overrides(args, tmp, data_root, name):
    overrides = [
        *synthetic_images.dataset_overrides(data_root, DATASET),
        f"training_opt.log_dir={os.path.join(tmp, 'runs', name)}",
        f"training_opt.num_workers={args.workers}",
        f"training_opt.num_classes={args.num_classes}",
    ]
    if args.batch is not None:
        overrides.append(f"training_opt.batch_size={args.batch}")
    if args.input_size is not None:
        overrides += [
            f"training_opt.transforms.input_size={args.input_size}",
            f"training_opt.transforms.resize_size={args.input_size}",
        ]
    return overrides


def mode_overrides(mode):
    if mode == "config":
        return []
    opts = MODES[mode]
    return [
        f"training_opt.amp='{opts['amp']}'",
        f"training_opt.channels_last={str(opts['channels_last']).lower()}",
        f"training_opt.compile={str(opts['compile']).lower()}",
    ]


def ours_epoch(run, loader):
    run.train_loader = loader

    def epoch():
        trainer.train_one_epoch(run)
        run.epoch += 1

    return epoch


def stage1_runs(args, tmp, data_root, ctx):
    rows, stage1_dir = [], None
    every_class = args.images >= args.num_classes
    for mode in ["config", *args.modes]:
        config = load_config(STAGE1, size_overrides(args, tmp, data_root, f"stage1_{mode}") + mode_overrides(mode))
        run = trainer.build_run(config, ctx, echo=False, require_every_class=every_class)
        if mode == "fp32":  # OLTR's loop starts from the same weights, in fp32
            original = original_from_config(run.config, data_root, ctx.device, args.workers, initial_state(run))
        loader = TimedLoader(run.train_loader, ctx.device)
        started = time.perf_counter()
        try:
            result = time_epochs(
                ours_epoch(run, loader),
                loader,
                ctx.device,
                args.epochs,
                run.config["training_opt"]["batch_size"],
                run.steps_per_epoch,
            )
        except Exception as error:  # compile can fail in many ways; report it and go on
            rows.append({"name": f"ours {mode}", "note": f"{type(error).__name__}: {str(error)[:160]}"})
            if config["training_opt"]["compile"]:
                torch.compiler.reset()
            continue
        result.update(
            name=f"ours {mode}", total=time.perf_counter() - started, modes=modes_text(run) if mode == "config" else ""
        )
        rows.append(result)
        if mode == "fp32":  # stage 2 starts from these weights
            run.best = {"epoch": run.epoch - 1, "top1": 0.0, "networks": network_state(run), "centroids": None}
            save_final(run)
            stage1_dir = run.config["training_opt"]["log_dir"]
        del run, loader
    original.loader = loader = TimedLoader(original.loader, ctx.device)
    started = time.perf_counter()
    result = time_epochs(
        original.epoch, loader, ctx.device, args.epochs, original.loader.batch_size, original.epoch_steps
    )
    result.update(name="original (OLTR's loop)", total=time.perf_counter() - started, modes="")
    rows.append(result)
    return rows, stage1_dir


def stage2_run(args, tmp, data_root, ctx, stage1_dir):
    overrides = size_overrides(args, tmp, data_root, "stage2") + [f"training_opt.stage1_log_dir={stage1_dir}"]
    config = load_config(STAGE2, overrides)
    started = time.perf_counter()
    run = trainer.build_run(config, ctx, echo=False, require_every_class=args.images >= args.num_classes)
    built = time.perf_counter() - started
    loader = TimedLoader(run.train_loader, ctx.device)
    try:
        result = time_epochs(
            ours_epoch(run, loader),
            loader,
            ctx.device,
            1,
            run.config["training_opt"]["batch_size"],
            run.steps_per_epoch,
        )
    except OltrError as error:  # a diverging loss, say: report it beside the other numbers
        return {"name": "ours stage 2 (config)", "note": str(error)[:200], "build_s": built, "modes": modes_text(run)}
    result.update(name="ours stage 2 (config)", build_s=built, modes=modes_text(run))
    return result


def percent(value):
    return "n/a" if value is None else f"{value:.0%}"


def print_rows(rows):
    say("| run | img/s | GPU busy (events) | nvidia-smi util | data wait / step | timed steps | run s |")
    say("|---|---:|---:|---:|---:|---:|---:|")
    for row in rows:
        if "note" in row:
            say(f"| {row['name']} | unavailable: {row['note']} | | | | | |")
            continue
        say(
            f"| {row['name']} | {row['rate']:,.0f} | {percent(row['busy'])} | {percent(row['smi'])} "
            f"| {row['wait_ms']:.1f} ms | {row['steps']} | {row.get('total', row['wall']):.0f} |"
        )
    say()


def print_verdict(rows):
    original = next(row for row in rows if row["name"].startswith("original"))
    ours = [row for row in rows if row["name"].startswith("ours") and "note" not in row]
    for row in ours:
        row["ratio"] = row["rate"] / original["rate"]
    best = max(ours, key=lambda row: row["rate"])
    configured = next((row for row in ours if row["name"] == "ours config"), None)
    if configured is not None:
        say(f"- the config as it is: {configured['modes']}")
    for label, row in (("as configured", configured), ("fastest mode", best)):
        if row is None:
            continue
        busy = (
            ""
            if row["busy"] is None
            else (
                f"; GPU busy {percent(row['busy'])} (target >= {TARGET_BUSY:.0%}: "
                f"{'met' if row['busy'] >= TARGET_BUSY else 'not met'})"
            )
        )
        say(
            f"- {label} ({row['name']}): images/s ratio ours/original {row['ratio']:.2f}x (target >= "
            f"{TARGET_RATIO:g}x: {'met' if row['ratio'] >= TARGET_RATIO else 'not met'}){busy}"
        )
    say()


def main(argv=None):
    args = build_parser().parse_args(argv)
    if args.device is None:
        if not torch.cuda.is_available():
            print(
                "gpu_check: no CUDA device here (torch.cuda.is_available() is False); "
                "pass --device cpu to run the checks on the CPU",
                file=sys.stderr,
            )
            return 2
        args.device = "cuda"
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        print(f"gpu_check: --device {args.device}, but CUDA is not available here", file=sys.stderr)
        return 2
    load_benchmarks()
    args = resolve(args)
    if device.type == "cuda":
        if device.index is None:  # set_device and the events need an index
            device = torch.device("cuda", torch.cuda.current_device())
        torch.cuda.set_device(device)
    ctx = DistContext(device=device)
    started = time.perf_counter()
    say(f"# GPU check ({'quick, ' if args.quick else ''}device {device})")
    say()
    say("## 1. Device")
    say()
    for line in device_lines(device):
        say(line)
    say()
    ok = True
    with tempfile.TemporaryDirectory(prefix="oltr-gpu-check-") as tmp:
        previous_cache = os.environ.get("TORCHINDUCTOR_CACHE_DIR")
        os.environ["TORCHINDUCTOR_CACHE_DIR"] = os.path.join(tmp, "inductor")
        try:
            if not args.skip_demo:
                section = time.perf_counter()
                ok = run_demo(tmp, device, args.demo_epochs, args.quick)
                say(f"(demo: {time.perf_counter() - section:.0f} s)")
                say()
            section = time.perf_counter()
            data_root = os.path.join(tmp, "synthetic_jpeg")
            synthetic_images.write_jpeg_dataset(
                data_root,
                DATASET,
                num_train=args.images,
                num_val=2,
                num_test=2,
                num_open=2,
                num_classes=args.num_classes,
                size=args.jpeg_size,
            )
            written = time.perf_counter() - section
            rows, stage1_dir = stage1_runs(args, tmp, data_root, ctx)
            width, height = args.jpeg_size
            say(
                f"## 3. ImageNet-LT stage 1 ({STAGE1}) on {args.images} synthetic {width}x{height} JPEGs "
                f"({args.num_classes} classes; written in {written:.0f} s), num_workers={args.workers}, "
                f"1 untimed + {args.epochs} timed epochs each"
            )
            say()
            print_rows(rows)
            print_verdict(rows)
            say(f"(stage 1: {time.perf_counter() - section:.0f} s)")
            say()
            section = time.perf_counter()
            stage2 = stage2_run(args, tmp, data_root, ctx, stage1_dir)
            say(f"## 4. ImageNet-LT stage 2 ({STAGE2}, centroids) over the fp32 stage-1 weights")
            say()
            say(f"- {stage2['modes']}; set-up with the centroid pass {stage2['build_s']:.1f} s")
            print_rows([stage2])
            say(f"(stage 2: {time.perf_counter() - section:.0f} s)")
        finally:
            if previous_cache is None:
                os.environ.pop("TORCHINDUCTOR_CACHE_DIR", None)
            else:
                os.environ["TORCHINDUCTOR_CACHE_DIR"] = previous_cache
    say()
    say(f"gpu_check took {time.perf_counter() - started:.0f} s")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
