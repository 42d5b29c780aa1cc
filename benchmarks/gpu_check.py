"""One check of this repository on a GPU: preflight, the device, the demo, and ImageNet-LT's throughput.

    benchmarks/gpu_check.sh [--device cuda[:N]|cpu] [--quick] [--images 3072] [--epochs 2] [--workers N]
                            [--skip-demo] [--preflight]

1. preflight: torch / torchvision / python versions, CUDA, /dev/shm and free disk, one line per piece
   (a missing one stops the check with exit 2; a small /dev/shm switches the loaders to file sharing);
2. the device: name, compute capability, memory, cuDNN, cores;
3. the demo's four commands (``./run_all.sh --dry-run --losses softmax``) on Digits_LT;
4. config/ImageNet_LT/stage_1.py on synthetic 500x375 JPEGs of ImageNet's mean file size (~110 kB at
   quality 90; 512 distinct images written in parallel, the rest hard links under their own names):
   not cached (decoded every epoch, as ImageNet-LT's training split is under ``cache_images: auto``) in
   fp32, bf16 + channels_last and bf16 + channels_last + compile; cached; gpu_decode; then OLTR's
   original loop (oltr_reference.py: PIL, fp32) on the same files, stage 2 (meta-embedding,
   centroids) over the fp32 stage-1 weights, and a 2-GPU DDP row where two GPUs are there.

How it measures: the data wait is the time blocked in the DataLoader's next() (the workers
falling behind; the device augmentation is not in it); GPU busy is the GPU time of the step's
stream between a batch's arrival and the next request (CUDA events), and the augmentation the
GPU time of the loader's side stream (CUDA events), each as a share of the wall time; host
syncs per step are counted inside ``train_step`` with ``torch.cuda.set_sync_debug_mode("warn")``.
cuDNN's autotuner is on, as main.py sets it. Each run trains one untimed epoch (compile, cuDNN
autotuning, worker start-up), then ``--epochs`` timed ones. num_workers is ``auto`` (cores - 2).
Everything (JPEGs, the decoded store, the inductor cache, logs) goes to one temporary directory,
deleted at the end. ``--device cpu --quick`` is the CPU dry run (tiny sizes, no compile, no
gpu_decode); ``--preflight`` stops after the preflight.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path[:0] = [HERE, REPO]

import synthetic_images  # noqa: E402
import torch  # noqa: E402
from gpu_check_parts import (  # noqa: E402
    StepSpans,
    WaitTimer,
    count_syncs,
    device_lines,
    preflight,
    print_rows,
    run_demo,
    say,
    time_epochs,
)

from oltr.common.errors import OltrError  # noqa: E402
from oltr.config.schema import load_config  # noqa: E402
from oltr.data.loaders import resolve_num_workers  # noqa: E402
from oltr.engine.distributed import DistContext  # noqa: E402
from oltr.runs import trainer  # noqa: E402
from oltr.runs.run_state import network_state, save_final  # noqa: E402

STAGE1 = os.path.join("config", "ImageNet_LT", "stage_1.py")
STAGE2 = os.path.join("config", "ImageNet_LT", "stage_2_meta_embedding.py")
DATASET = "Synthetic_LT"
TARGET_RATIO, TARGET_BUSY = 3.0, 0.90
MODES = {  # amp, channels_last, compile
    "fp32": ("off", False, False),
    "bf16 + channels_last": ("bf16", True, False),
    "bf16 + channels_last + compile": ("bf16", True, True),
}
DATA = {  # the decoded store, gpu_decode
    "not cached": ("never", False),
    "cached": ("always", False),
    "gpu_decode": ("never", True),
}
ROWS = [  # stage 1: (data, mode); the first is the original loop's comparison and stage 2's weights
    ("not cached", "fp32"),
    ("not cached", "bf16 + channels_last"),
    ("not cached", "bf16 + channels_last + compile"),
    ("cached", "bf16 + channels_last"),
    ("gpu_decode", "bf16 + channels_last"),
]
DISTINCT_JPEGS = 512
JPEG_NOISE = 28.0  # synthetic_images: ~110 kB at 500x375, quality 90


def build_parser():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default=None, help="cuda[:N] (default when CUDA is present) or cpu")
    parser.add_argument("--quick", action="store_true", help="tiny sizes, no compile: the CPU dry run")
    parser.add_argument("--images", type=int, default=None, help="synthetic training images (default 3072, quick 16)")
    parser.add_argument("--epochs", type=int, default=None, help="timed epochs per run (default 2, quick 1)")
    parser.add_argument("--workers", default="auto", help="num_workers (default auto: the usable cores minus 2)")
    parser.add_argument("--skip-demo", action="store_true", help="leave out the demo")
    parser.add_argument("--preflight", action="store_true", help="stop after the preflight")
    parser.add_argument("--ddp-worker", default=None, help=argparse.SUPPRESS)  # one rank of the DDP row
    return parser


def resolve(args, device):
    args.images = args.images or (16 if args.quick else 3072)
    args.epochs = args.epochs or (1 if args.quick else 2)
    args.workers = resolve_num_workers(args.workers if args.workers == "auto" else int(args.workers), device)
    args.num_classes = 10 if args.quick else 1000
    args.jpeg_size = (160, 120) if args.quick else (500, 375)
    args.sizes = ["training_opt.batch_size=8", "training_opt.transforms.input_size=32",
                  "training_opt.transforms.resize_size=32"] if args.quick else []  # fmt: skip
    args.rows = [row for row in ROWS if not (args.quick and (row[0] == "gpu_decode" or "compile" in row[1]))]
    return args


def overrides(args, tmp, name, data="not cached", mode=None):
    cache, gpu_decode = DATA[data]
    words = [
        *synthetic_images.dataset_overrides(os.path.join(tmp, "jpegs"), DATASET),
        f"training_opt.log_dir={os.path.join(tmp, 'runs', name)}",
        f"training_opt.num_workers={args.workers}",
        f"training_opt.num_classes={args.num_classes}",
        f"training_opt.cache_images={cache}",
        f"training_opt.cache_dir={os.path.join(tmp, 'cache')}",
        f"training_opt.gpu_decode={str(gpu_decode).lower()}",
        *args.sizes,
    ]
    if mode is not None:
        amp, channels_last, compiled = MODES[mode]
        words += [f"training_opt.amp={amp}", f"training_opt.channels_last={str(channels_last).lower()}",
                  f"training_opt.compile={str(compiled).lower()}"]  # fmt: skip
    return words


def measure_ours(run, args, device, epochs):
    """Time ``run``'s epochs with the data wait at its DataLoader, spans, augmentation events and syncs."""
    loader = run.train_loader
    waits = WaitTimer(loader.loader)
    loader.loader, loader.augment_events = waits, []
    spans = run.train_loader = StepSpans(loader, device)
    counter = {"syncs": 0}
    step = trainer.train_step
    trainer.train_step = count_syncs(step, counter)

    def epoch():
        trainer.train_one_epoch(run)
        run.epoch += 1

    try:
        batch = run.config["training_opt"]["batch_size"]
        return time_epochs(epoch, device, epochs, batch, run.steps_per_epoch, spans, [waits],
                           loader.augment_events, counter)  # fmt: skip
    finally:
        trainer.train_step = step


def stage1_rows(args, tmp, ctx):
    from bench_train_oltr import initial_state, original_from_config

    rows, stage1_dir, original = [], None, None
    every_class = args.images >= args.num_classes
    for data, mode in args.rows:
        name = f"ours stage 1, {data}, {mode}"
        config = load_config(STAGE1, overrides(args, tmp, f"s1_{len(rows)}", data, mode))
        try:
            run = trainer.build_run(config, ctx, echo=False, require_every_class=every_class)
            if original is None:  # OLTR's loop starts from the same weights, in fp32
                original = original_from_config(run.config, os.path.join(tmp, "jpegs"), ctx.device, args.workers,
                                                initial_state(run))  # fmt: skip
            rows.append({"name": name, **measure_ours(run, args, ctx.device, args.epochs)})
        except Exception as error:  # compile or nvJPEG can fail in many ways: report it and go on
            rows.append({"name": name, "note": f"{type(error).__name__}: {str(error)[:160]}"})
            torch.compiler.reset()
            continue
        if stage1_dir is None:  # stage 2 starts from these weights
            run.best = {"epoch": run.epoch - 1, "top1": 0.0, "networks": network_state(run), "centroids": None}
            save_final(run)
            stage1_dir = run.config["training_opt"]["log_dir"]
        run.close()
        del run
    if original is None:
        return rows + [{"name": "original OLTR loop (PIL, fp32)", "note": "no stage-1 run was built"}], stage1_dir
    waits = WaitTimer(original.loader)
    spans = original.loader = StepSpans(waits, ctx.device)
    batch = waits.loader.batch_size
    result = time_epochs(original.epoch, ctx.device, args.epochs, batch, original.epoch_steps, spans, [waits])
    rows.append({"name": "original OLTR loop (PIL, fp32)", **result})
    return rows, stage1_dir


def stage2_row(args, tmp, ctx, stage1_dir):
    if stage1_dir is None:
        return {"name": "ours stage 2, centroids", "note": "no stage-1 weights (the first stage-1 row failed)"}
    config = load_config(STAGE2, overrides(args, tmp, "s2") + [f"training_opt.stage1_log_dir={stage1_dir}"])
    started = time.perf_counter()
    run = trainer.build_run(config, ctx, echo=False, require_every_class=args.images >= args.num_classes)
    name = f"ours stage 2, centroids (set-up {time.perf_counter() - started:.0f} s)"
    try:
        return {"name": name, **measure_ours(run, args, ctx.device, 1)}
    except OltrError as error:  # a diverging loss, say: report it beside the other numbers
        return {"name": name, "note": str(error)[:200]}
    finally:
        run.close()


def ddp_row(args, tmp):
    """Stage 1 (not cached, bf16 + channels_last) on two GPUs under torchrun; rank 0 prints its row."""
    spec = json.dumps({"tmp": tmp, "images": args.images, "epochs": args.epochs, "workers": max(args.workers // 2, 1)})
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", __file__,
               "--ddp-worker", spec]  # fmt: skip
    done = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=600)
    lines = [line for line in done.stdout.splitlines() if line.startswith("DDP_ROW ")]
    if done.returncode or not lines:
        return {"name": "ours stage 1 DDP x2", "note": (done.stderr.strip().splitlines() or ["no output"])[-1][:160]}
    return json.loads(lines[-1][len("DDP_ROW ") :])


def ddp_worker(spec):
    from oltr.engine.distributed import init_distributed, shutdown_distributed

    spec = json.loads(spec)
    ctx = init_distributed("cuda")
    torch.backends.cudnn.benchmark = True
    args = argparse.Namespace(workers=spec["workers"], num_classes=1000, sizes=[], quick=False)
    config = load_config(STAGE1, overrides(args, spec["tmp"], "ddp", "not cached", "bf16 + channels_last"))
    run = trainer.build_run(config, ctx, echo=False, require_every_class=spec["images"] >= 1000)
    result = measure_ours(run, args, ctx.device, spec["epochs"])
    result["rate"] *= ctx.world_size  # each rank's batch is the global batch / world_size
    if ctx.is_main:
        print("DDP_ROW " + json.dumps({"name": "ours stage 1 DDP x2, not cached, bf16 + channels_last", **result}))
    run.close()
    shutdown_distributed(ctx)
    return 0


def verdict(rows):
    original = next(row for row in rows if row["name"].startswith("original"))
    if "rate" not in original:
        return
    for row in rows:
        row["ratio"] = row["rate"] / original["rate"] if "rate" in row else None
    target = next((row for row in rows if row["name"] == "ours stage 1, not cached, bf16 + channels_last"), None)
    if target is None or "rate" not in target:
        return
    busy = "n/a" if target["busy"] is None else f"{target['busy']:.0%}"
    syncs = "n/a" if target["syncs"] is None else f"{target['syncs']:.1f}"
    say(
        f"- targets (not cached, bf16 + channels_last): images/s {target['ratio']:.2f}x the original loop "
        f"(>= {TARGET_RATIO:g}x), GPU busy {busy} (>= {TARGET_BUSY:.0%}), host syncs per step {syncs} (0)"
    )
    say()


def main(argv=None):
    args = build_parser().parse_args(argv)
    if args.ddp_worker:
        return ddp_worker(args.ddp_worker)
    if args.device is None and not torch.cuda.is_available():
        print("gpu_check: no CUDA device here (torch.cuda.is_available() is False); pass --device cpu to run "
              "the checks on the CPU", file=sys.stderr)  # fmt: skip
        return 2
    device = torch.device(args.device or "cuda")
    if device.type == "cuda" and device.index is None:
        device = torch.device("cuda", 0)
    args = resolve(args, device)
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="oltr-gpu-check-") as tmp:
        width, height = args.jpeg_size
        need = args.images * (150_000 + 3 * width * height) + 2**30  # JPEGs, the decoded store, logs
        say(f"# GPU check ({'quick, ' if args.quick else ''}device {device})")
        say()
        say("## 1. Preflight")
        say()
        missing, lines = preflight(device, tmp, need, args.workers)
        for line in lines:
            say(line)
        say()
        if missing:
            return 2
        if any("/dev/shm" in line and "MISSING" in line for line in lines):
            torch.multiprocessing.set_sharing_strategy("file_system")
        if args.preflight:
            return 0
        for variable, folder in (("TORCHINDUCTOR_CACHE_DIR", "inductor"), ("OLTR_CACHE_DIR", "cache")):
            os.environ[variable] = os.path.join(tmp, folder)  # nothing under ~/.cache
        if device.type == "cuda":
            torch.cuda.set_device(device)
            torch.backends.cudnn.benchmark = True  # as main.py sets it
        ctx = DistContext(device=device)
        say("## 2. Device")
        say()
        for line in device_lines(device):
            say(line)
        say()
        ok = args.skip_demo or run_demo(tmp, device, 1 if args.quick else None, args.quick)
        section = time.perf_counter()
        synthetic_images.write_jpeg_dataset(
            os.path.join(tmp, "jpegs"), DATASET, num_train=args.images, num_val=2, num_test=2, num_open=2,
            num_classes=args.num_classes, size=args.jpeg_size, fine_noise=JPEG_NOISE,
            workers=max(args.workers, 1), distinct=DISTINCT_JPEGS,
        )  # fmt: skip
        written = time.perf_counter() - section
        rows, stage1_dir = stage1_rows(args, tmp, ctx)
        rows.append(stage2_row(args, tmp, ctx, stage1_dir))
        if device.type == "cuda" and torch.cuda.device_count() >= 2:
            rows.append(ddp_row(args, tmp))
        card = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
        say(f"## 4. ImageNet-LT ({STAGE1}, batch 128 at 224 px unless --quick) on {args.images} synthetic "
            f"{width}x{height} JPEGs (written in {written:.0f} s), num_workers={args.workers}, "
            f"1 untimed + {args.epochs} timed epochs each; {card}")  # fmt: skip
        say()
        verdict(rows)
        print_rows(rows)
    say(f"gpu_check took {time.perf_counter() - started:.0f} s")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
