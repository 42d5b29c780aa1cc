"""Stage-1 training throughput: our trainer against a bare PyTorch loop, and fp32 / bf16 / channels_last / compile.

    python benchmarks/bench_train.py [--config config/Digits_LT/stage_1.py] [--steps 11] [--repeats 5]
                                     [--modes fp32,bf16,channels_last,bf16_cl,compile] [--device cpu] [--quick]
                                     [--sections overhead,loss,config,realistic,oltr]
                                     [--oltr-images 256] [--oltr-repeats 3] [--oltr-workers N]

Five benchmarks, all in this one process; ``--sections`` picks them (default all):

    overhead   bench_train_overhead.py  train_step and train_one_epoch against a bare PyTorch loop
                                        (fp32, softmax): the pipeline's own cost, target ours/bare >= 0.95
    loss       bench_train_loss.py      CFL against softmax inside our trainer, same batches
    config     bench_train_modes.py     fp32 / bf16 / channels_last / bf16 + channels_last / compile on
                                        the config (Digits_LT: 16 px, thin ResNet-10), numerics checked
    realistic  bench_train_modes.py     the same on a standard-width ResNet-10, 1000 classes, synthetic images
    oltr       bench_train_oltr.py      one epoch of config/ImageNet_LT/stage_1.py on synthetic JPEGs: our
                                        trainer against OLTR's original loop (oltr_reference.py), ours/original
                                        time, target <= 0.75 (AVX2) or <= 0.45 (native bf16)

Timing (harness.py): a warm-up, then ``--repeats`` rounds, each timing every candidate once
in a shuffled order; tables give medians (and the min..max), ratios are medians of the
per-round ratios, so load on a shared machine hits all candidates alike. Nothing is
asserted. Logs, the Digits_LT build and the inductor cache go to a temporary directory
that is deleted at the end; nothing is written under logs/.

To see what bf16 costs on a CPU without native bf16 (AVX2 only), cap the ISA:
    ONEDNN_MAX_CPU_ISA=AVX2 ATEN_CPU_CAPABILITY=avx2 python benchmarks/bench_train.py --sections config,realistic
"""

import argparse
import os
import sys
import tempfile
import time

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
# the repository first (this checkout's oltr, not an installed one), then the benchmark modules beside this file
sys.path[:0] = [HERE, os.path.dirname(HERE)]

import bench_train_loss  # noqa: E402
import bench_train_modes  # noqa: E402
import bench_train_oltr  # noqa: E402
import bench_train_overhead  # noqa: E402
from harness import load_text, log, machine_lines, picker, synchronizer  # noqa: E402
from train_runs import MODES, data_overrides_for, parse_modes  # noqa: E402

from oltr.common.errors import OltrError  # noqa: E402
from oltr.config.schema import load_config  # noqa: E402
from oltr.engine.distributed import DistContext  # noqa: E402

DEFAULT_CONFIG = os.path.join("config", "Digits_LT", "stage_1.py")
SECTIONS = ("overhead", "loss", "config", "realistic", "oltr")


def build_parser():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default=DEFAULT_CONFIG, help="stage-1 config (default: %(default)s)")
    parser.add_argument("--steps", type=int, default=None, help="steps per timed round (default 11, quick 3)")
    parser.add_argument("--batch", type=int, default=None, help="batch size (default: the config's)")
    parser.add_argument("--repeats", type=int, default=None, help="timed rounds (default 7, quick 2)")
    parser.add_argument(
        "--epoch-repeats",
        type=int,
        default=None,
        help="timed epochs each (default 9, quick 2; 0 skips the epoch-level comparison)",
    )
    parser.add_argument("--warmup", type=int, default=2, help="untimed steps per candidate (default 2)")
    parser.add_argument(
        "--modes", default=None, help=f"comma list from {','.join(MODES)} (default all; quick: no compile)"
    )
    parser.add_argument(
        "--sections", default=",".join(SECTIONS), help=f"comma list from {','.join(SECTIONS)} (default all)"
    )
    parser.add_argument("--real-size", type=int, default=None, help="realistic input size (default 112, quick 32)")
    parser.add_argument("--real-batch", type=int, default=None, help="realistic batch (default 32, quick 4)")
    parser.add_argument("--real-steps", type=int, default=None, help="realistic steps per round (default 2, quick 1)")
    parser.add_argument("--real-repeats", type=int, default=None, help="realistic rounds (default 3, quick 1)")
    parser.add_argument(
        "--oltr-config",
        default=bench_train_oltr.DEFAULT_CONFIG,
        help="oltr section: the stage-1 config (default: %(default)s)",
    )
    parser.add_argument("--oltr-images", type=int, default=None, help="oltr: training images (default 256, quick 16)")
    parser.add_argument("--oltr-batch", type=int, default=None, help="oltr: batch (default the config's, quick 8)")
    parser.add_argument("--oltr-size", type=int, default=None, help="oltr: input size (default the config's, quick 64)")
    parser.add_argument("--oltr-repeats", type=int, default=None, help="oltr: timed epochs each (default 3, quick 2)")
    parser.add_argument(
        "--oltr-workers",
        type=int,
        default=None,
        help="oltr: num_workers of both loaders (default: the number of cores)",
    )
    parser.add_argument(
        "--compile-timeout",
        type=float,
        default=240.0,
        help="seconds allowed for torch.compile's first steps before it is reported unavailable",
    )
    parser.add_argument("--device", default="cpu", help="cpu (default) or cuda[:N] when available")
    parser.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (default: torch's)")
    parser.add_argument(
        "--opts",
        nargs="*",
        default=[],
        metavar="KEY=VALUE",
        help="config overrides for every run, e.g. training_opt.num_workers=2",
    )
    parser.add_argument("--quick", action="store_true", help="tiny settings, no compile: a smoke run")
    return parser


def resolve_args(args):
    pick = picker(args.quick)

    args.steps = pick(args.steps, 11, 3)
    args.repeats = pick(args.repeats, 7, 2)
    args.epoch_repeats = pick(args.epoch_repeats, 9, 2)
    args.real_size = pick(args.real_size, 112, 32)
    args.real_batch = pick(args.real_batch, 32, 4)
    args.real_steps = pick(args.real_steps, 2, 1)
    args.real_repeats = pick(args.real_repeats, 3, 1)
    several_threads = (args.threads or torch.get_num_threads()) > 1
    default_modes = ",".join(
        m
        for m in MODES
        if not (args.quick and MODES[m]["compile"]) and (several_threads or MODES[m]["threads"] is None)
    )
    args.modes = parse_modes(args.modes or default_modes)
    args.sections = [s.strip() for s in args.sections.split(",") if s.strip()]
    unknown = set(args.sections) - set(SECTIONS)
    if unknown:
        raise SystemExit(f"--sections: unknown {', '.join(sorted(unknown))}; choose from {','.join(SECTIONS)}")
    if min(args.steps, args.repeats, args.real_steps, args.real_repeats, args.warmup) < 1 or args.epoch_repeats < 0:
        raise SystemExit(
            "--steps, --repeats, --real-steps, --real-repeats and --warmup must be >= 1, --epoch-repeats >= 0"
        )
    # Applied to every run built from --config (the realistic shape's own keys still win there).
    args.batch_overrides = list(args.opts) + ([f"training_opt.batch_size={args.batch}"] if args.batch else [])
    return args


def measurements(args, ctx, tmp, data_overrides, sync):
    """{section: a function that measures it}, each in its own bench_train_* file."""
    realistic_shape = [
        # Standard-width ResNet-10 with a 1000-way classifier (ImageNet-LT-like), synthetic images.
        "networks.feat_model.params.small_input=false",
        "networks.feat_model.params.base_channels=64",
        "networks.feat_model.params.use_fc=false",
        "training_opt.feature_dim=512",
        "training_opt.num_classes=1000",
        f"training_opt.transforms.input_size={args.real_size}",
        f"training_opt.transforms.resize_size={args.real_size}",
        f"training_opt.batch_size={args.real_batch}",
    ]
    common = (args, ctx, tmp, data_overrides, sync)
    return {
        "overhead": lambda: bench_train_overhead.measure(*common),
        "loss": lambda: bench_train_loss.measure(*common),
        "config": lambda: bench_train_modes.measure(
            *common, args.batch_overrides, synthetic=False, steps=args.steps, repeats=args.repeats, label="config"
        ),
        "realistic": lambda: bench_train_modes.measure(
            *common,
            list(args.opts) + realistic_shape,
            synthetic=True,
            steps=args.real_steps,
            repeats=args.real_repeats,
            label="realistic",
        ),
        "oltr": lambda: bench_train_oltr.measure(args, ctx, tmp, sync, args.oltr_config),
    }


def print_results(results, args, config):
    """Each section's tables, in SECTIONS order."""
    if "overhead" in results:
        bench_train_overhead.print_result(results["overhead"], args)
    if "loss" in results:
        bench_train_loss.print_result(results["loss"], args)
    if "config" in results:
        feat = config["networks"]["feat_model"]
        bench_train_modes.print_result(
            results["config"],
            f"Modes on {config['training_opt']['dataset']} stage 1 ({feat['type']}, "
            f"base_channels={feat['params'].get('base_channels', 64)})",
        )
        total_steps = config["training_opt"]["num_epochs"] * results["config"]["steps_per_epoch"]
        bench_train_modes.print_recommendation(results["config"], total_steps)
    if "realistic" in results:
        bench_train_modes.print_result(
            results["realistic"],
            "Modes on a realistic shape (resnet10, base_channels=64, 1000 classes, synthetic images)",
        )
    if "oltr" in results:
        bench_train_oltr.print_result(results["oltr"])


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
            sections = measurements(args, ctx, tmp, data_overrides, sync)
            for name in SECTIONS:
                if name in args.sections:
                    section_started = time.perf_counter()
                    results[name] = sections[name]()
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
    print(
        f"- load average (1/5/15 min) at start {load_start}, at end {load_text()}; "
        f"benchmark took {elapsed:.0f} s ({', '.join(f'{k} {v:.0f} s' for k, v in durations.items())})"
    )
    print()
    print_results(results, args, config)
    return 0


if __name__ == "__main__":
    sys.exit(main())
