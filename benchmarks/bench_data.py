"""Data pipeline throughput: our uint8 tensor pipeline against OLTR's PIL one, side by side.

    python benchmarks/bench_data.py [--images 64] [--batch 32] [--repeats 7] [--quick] [--sections imagenet,digits]

imagenet  synthetic 500x375 JPEGs (benchmarks/synthetic_images.py) through OLTR's training transform
          (RandomResizedCrop 224 + horizontal flip + ColorJitter 0.4/0.4/0.4 + normalise), one torch
          thread, in images/s per core:
            pil      Image.open().convert('RGB') + torchvision's PIL transforms, image by image, then
                     collated: OLTR's LT_Dataset and data_transforms['train']
            tensor   torchvision.io decoding + our batched transforms (oltr/data/batch_transforms.py)
            store    the same from the decoded store (training_opt.cache_images: a split decoded once)
          target: tensor / pil >= 2 per core
digits    one Digits_LT stage-1 epoch (config/Digits_LT/stage_1.py): the seconds spent in the loaders
          (training batches, then the validation pass) against the whole epoch (train_one_epoch +
          validate), for the tensor pipeline (the default, warm store) and the PIL one.
          target: the data pipeline under 10% of the stage
workers   the Digits_LT training loader with two worker processes, epoch after epoch, with workers that
          persist (training_opt.persistent_workers, the default) against workers started every epoch
shipped   the bytes a training batch carries from the loader's workers to a GPU, 500x375 JPEGs at 224 px:
          before, the decoded full-size images (the device cropped them); now, the uint8 crops at the
          output size plus the packed parameters (BatchTransform.prepare). target: >= 3x fewer

Timing as in every benchmark here (harness.py): a warm-up, then rounds that time every candidate
once in a shuffled order; medians (min..max) and medians of per-round ratios. Nothing is asserted;
everything is written to a temporary directory that is deleted at the end.
"""

import argparse
import os
import sys
import tempfile
import time

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [HERE, os.path.dirname(HERE)]  # this checkout's oltr first, then the modules beside this file

from harness import log, machine_lines, paired_ratio, print_table, rate_text, throughput, time_interleaved  # noqa: E402
from synthetic_images import write_jpeg_dataset  # noqa: E402

TARGET_SPEEDUP = 2.0
TARGET_DATA_SHARE = 0.10
SECTIONS = ("imagenet", "digits", "workers", "shipped")
TARGET_FEWER_BYTES = 3.0


def build_parser():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=None, help="synthetic JPEGs (default 64, quick 16)")
    parser.add_argument("--batch", type=int, default=32, help="batch size of the tensor pipeline (default 32)")
    parser.add_argument("--repeats", type=int, default=None, help="timed rounds (default 7, quick 2)")
    parser.add_argument("--sections", default=",".join(SECTIONS), help=f"comma list of {','.join(SECTIONS)}")
    parser.add_argument("--quick", action="store_true", help="few images and rounds (the smoke test)")
    return parser


# ----------------------------------------------------------------------------- imagenet-shaped decode + augment


def imagenet_candidates(paths, batch_size, cache_dir):
    from PIL import Image

    from oltr.data.batch_transforms import BatchTransform
    from oltr.data.decode import read_image
    from oltr.data.image_store import open_or_build
    from oltr.data.transforms import build_transform

    pil_transform = build_transform(True)
    ours = BatchTransform(True)
    store = open_or_build(paths, cache_dir, "bench")
    generator = torch.Generator().manual_seed(0)
    batches = [list(range(start, min(start + batch_size, len(paths)))) for start in range(0, len(paths), batch_size)]

    def pil(_):
        for batch in batches:
            images = []
            for index in batch:
                with Image.open(paths[index]) as image:
                    images.append(pil_transform(image.convert("RGB")))
            torch.stack(images)

    def tensor(_):
        for batch in batches:
            ours([read_image(paths[index]) for index in batch], generator)

    def from_store(_):
        for batch in batches:
            ours([store[index] for index in batch], generator)

    return {"pil": pil, "tensor": tensor, "store": from_store}


def run_imagenet(args, tmp):
    count = args.images or (16 if args.quick else 64)
    log(f"imagenet: writing {count} synthetic 500x375 JPEGs")
    splits = write_jpeg_dataset(
        os.path.join(tmp, "synthetic"), num_train=count, num_val=1, num_test=1, num_open=1, num_classes=10
    )
    from oltr.data.split_file import read_split

    paths = [path for path, _ in read_split(splits["train"], os.path.join(tmp, "synthetic"), 10)]
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # per core
    try:
        candidates = imagenet_candidates(paths, args.batch, os.path.join(tmp, "cache"))
        for candidate in candidates.values():
            candidate(1)
        seconds = time_interleaved(candidates, args.repeats, 1, lambda: None)
    finally:
        torch.set_num_threads(threads)
    rows = []
    for name, text in (
        ("pil", "PIL: open + convert + torchvision PIL transforms (OLTR)"),
        ("tensor", "tensor: torchvision.io decode + batched transforms (ours)"),
        ("store", "tensor from the decoded store (ours, cache_images)"),
    ):
        ratio = paired_ratio(seconds[name], seconds["pil"])
        rows.append([text, rate_text(throughput(seconds[name], len(paths))), f"{ratio:.2f}"])
    print(
        f"### Decode + augment, ImageNet-shaped ({len(paths)} synthetic 500x375 JPEGs, RandomResizedCrop 224 + "
        f"flip + jitter 0.4, batch {args.batch}, 1 thread, x {args.repeats})"
    )
    print()
    print_table(["pipeline", "images/s per core", "x PIL"], rows)
    speedup = paired_ratio(seconds["tensor"], seconds["pil"])
    print(
        f"tensor / PIL per core: {speedup:.2f}x (target >= {TARGET_SPEEDUP:.0f}x: "
        f"{'met' if speedup >= TARGET_SPEEDUP else 'NOT met'})"
    )
    print()


# ----------------------------------------------------------------------------- digits: the data share of a stage


def digits_epoch_parts(pipeline, tmp):
    """(seconds in the loaders, seconds of the epoch) callables for one Digits_LT stage-1 epoch."""
    from oltr.config.schema import load_config
    from oltr.engine.distributed import DistContext
    from oltr.runs import trainer
    from oltr.runs.run import build_run

    data = os.path.join(tmp, "Digits_LT")
    config = load_config(
        os.path.join("config", "Digits_LT", "stage_1.py"),
        [
            f"training_opt.data_root={data}",
            f"training_opt.split_dir={data}",
            f"training_opt.log_dir={os.path.join(tmp, 'logs', pipeline)}",
            f"training_opt.data_pipeline={pipeline}",
            f"training_opt.cache_dir={os.path.join(tmp, 'cache')}",
        ],
    )
    run = build_run(config, DistContext(), echo=False)

    def data_only(_):
        trainer.start_epoch(run.train_loader, 0, 0)
        for step, _batch in enumerate(run.train_loader):
            if step + 1 == run.steps_per_epoch:
                break
        for _batch in run.val_loader:
            pass

    def epoch(_):
        trainer.train_one_epoch(run)
        trainer.validate(run)

    return data_only, epoch


def run_digits(args, tmp):
    log("digits: one Digits_LT stage-1 epoch, loaders alone and the whole epoch")
    candidates = {}
    for pipeline in ("tensor", "pil"):
        data_only, epoch = digits_epoch_parts(pipeline, tmp)
        candidates[f"{pipeline} data"], candidates[f"{pipeline} epoch"] = data_only, epoch
    for candidate in candidates.values():
        candidate(1)
    seconds = time_interleaved(candidates, args.repeats, 1, lambda: None)
    rows = []
    for pipeline in ("tensor", "pil"):
        data, whole = seconds[f"{pipeline} data"], seconds[f"{pipeline} epoch"]
        share = sorted(d / w for d, w in zip(data, whole))[len(data) // 2]
        rows.append(
            [
                pipeline,
                f"{1000 * sorted(data)[len(data) // 2]:.0f}",
                f"{1000 * sorted(whole)[len(whole) // 2]:.0f}",
                f"{100 * share:.1f}%",
            ]
        )
    print(
        f"### Data pipeline share of a Digits_LT stage-1 epoch (median of {args.repeats} rounds; "
        f"{torch.get_num_threads()} torch threads)"
    )
    print()
    print_table(["pipeline", "loaders (ms)", "epoch + validation (ms)", "data share"], rows)
    print(f"target: the tensor pipeline under {100 * TARGET_DATA_SHARE:.0f}% of the stage")
    print()


# ----------------------------------------------------------------------------- workers that persist


def run_workers(args, tmp):
    from oltr.config.schema import load_config
    from oltr.data import loaders
    from oltr.engine.distributed import DistContext
    from oltr.runs import trainer

    log("workers: the Digits_LT training loader, 2 workers, persistent or started every epoch")
    data = os.path.join(tmp, "Digits_LT")
    epochs = 2 if args.quick else 4
    candidates = {}
    for persistent in (True, False):
        config = load_config(
            os.path.join("config", "Digits_LT", "stage_1.py"),
            [
                f"training_opt.data_root={data}",
                f"training_opt.split_dir={data}",
                "training_opt.log_dir=unused",
                "training_opt.num_workers=2",
                f"training_opt.persistent_workers={str(persistent).lower()}",
                f"training_opt.cache_dir={os.path.join(tmp, 'cache')}",
            ],
        )
        training_opt = config["training_opt"]
        loaders.prepare_data(training_opt)
        dataset = loaders.build_dataset(training_opt, loaders.load_samples(training_opt, "train"), train=True)
        loader = loaders.build_train_loader(training_opt, dataset, 0, DistContext())

        def epochs_of(_, loader=loader):
            for epoch in range(epochs):
                trainer.start_epoch(loader, epoch, epoch)
                for _batch in loader:
                    pass

        candidates["persistent" if persistent else "restarted"] = epochs_of
    for candidate in candidates.values():
        candidate(1)
    seconds = time_interleaved(candidates, args.repeats, 1, lambda: None)
    print(f"### Loader workers across epochs (Digits_LT training loader, 2 workers, {epochs} epochs, x {args.repeats})")
    print()
    rows = [
        [
            name,
            f"{1000 * sorted(seconds[name])[len(seconds[name]) // 2] / epochs:.0f}",
            f"{paired_ratio(seconds[name], seconds['restarted']):.2f}",
        ]
        for name in ("persistent", "restarted")
    ]
    print_table(["workers", "ms per epoch", "speed vs restarted"], rows)


def run_shipped(args, tmp):
    """Bytes per training batch from the workers to the device: full images before, output-size crops now."""
    from oltr.data.batch_transforms import BatchTransform
    from oltr.data.batches import PreparingCollate, raw_collate
    from oltr.data.decode import read_image
    from oltr.data.split_file import read_split

    count = args.batch
    splits = write_jpeg_dataset(
        os.path.join(tmp, "shipped"), num_train=count, num_val=1, num_test=1, num_open=1, num_classes=10
    )
    paths = [path for path, _ in read_split(splits["train"], os.path.join(tmp, "shipped"), 10)]
    items = [(read_image(path), 0, k, 7) for k, path in enumerate(paths)]
    before = sum(image.nbytes for image in raw_collate(items)[0])
    batch, packed, _, _ = PreparingCollate(BatchTransform(True, input_size=224))(items)
    after = batch.nbytes + packed.nbytes
    ratio = before / after
    print(f"### Bytes shipped per training batch to the device ({count} synthetic 500x375 JPEGs, 224 px crops)")
    print()
    print_table(
        ["what the workers ship", "MB per batch", "MB per 128 images"],
        [
            ["before: decoded full-size images (uint8)", f"{before / 1e6:.2f}", f"{before / count * 128 / 1e6:.1f}"],
            [
                "now: uint8 (B, 3, 224, 224) + packed parameters",
                f"{after / 1e6:.2f}",
                f"{after / count * 128 / 1e6:.1f}",
            ],
        ],
    )
    print(
        f"fewer bytes: {ratio:.2f}x (target >= {TARGET_FEWER_BYTES:.0f}x: "
        f"{'met' if ratio >= TARGET_FEWER_BYTES else 'NOT met'})"
    )
    print()


def main(argv=None):
    args = build_parser().parse_args(argv)
    args.repeats = args.repeats or (2 if args.quick else 7)
    sections = [name.strip() for name in args.sections.split(",") if name.strip()]
    unknown = [name for name in sections if name not in SECTIONS]
    if unknown:
        print(
            f"error: unknown section(s) {', '.join(unknown)} for --sections; choose from {', '.join(SECTIONS)}",
            file=sys.stderr,
        )
        return 2
    print("## Data pipeline benchmark")
    print()
    for line in machine_lines(torch.device("cpu")):
        print(line)
    print()
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="bench-data-") as tmp:
        if "imagenet" in sections:
            run_imagenet(args, tmp)
        if "digits" in sections:
            run_digits(args, tmp)
        if "workers" in sections:
            run_workers(args, tmp)
        if "shipped" in sections:
            run_shipped(args, tmp)
    log(f"done in {time.perf_counter() - started:.0f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
