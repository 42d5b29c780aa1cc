"""Benchmark: one epoch of the ImageNet-LT stage-1 recipe, our trainer against OLTR's original loop
(``--sections oltr`` of bench_train.py).

Both train ResNet-10 from scratch with a dot-product classifier, SGD and softmax on the same
synthetic 500x375 JPEGs (synthetic_images.py) on the same device, from the same initial weights:

* original: oltr_reference.py, OLTR's LT_Dataset + data_transforms['train'] + shuffled
  DataLoader + its per-step loop, fp32, contiguous (see that file for what is restated);
* ours: ``train_one_epoch`` over a Run from ``build_run`` on config/ImageNet_LT/stage_1.py with
  only the data (dataset, data_root, split_dir), log_dir and num_workers overridden. amp,
  channels_last, compile and the data pipeline are whatever that config sets, and are printed.

Timing is paired and interleaved (harness.time_interleaved): one untimed epoch each, then
``--oltr-repeats`` rounds of one epoch each in a shuffled order. The ratio is ours / original
time per epoch, the median of the per-round ratios (min..max beside it). Targets, printed and
not asserted: <= 0.75 on an AVX2 CPU, <= 0.45 where the CPU has native bf16.

    python benchmarks/bench_train.py --sections oltr [--oltr-images 256] [--oltr-repeats 3] [--quick]
"""

import os
import statistics

import synthetic_images
from harness import cpu_flags, log, picker, rate_text, throughput, time_interleaved
from oltr_reference import OriginalStage1

from oltr.config.schema import load_config
from oltr.runs import trainer

DEFAULT_CONFIG = os.path.join("config", "ImageNet_LT", "stage_1.py")
TARGET_AVX2 = 0.75
TARGET_NATIVE_BF16 = 0.45
DATASET = "Synthetic_LT"


def default_workers():
    """The number of cores this process may run on (OLTR's loader took num_workers from its config)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def sizes(args):
    """The section's sizes: images, batch and input size (None: the config's), repeats, JPEG size, workers."""
    pick = picker(args.quick)

    return {
        "images": pick(args.oltr_images, 256, 16),
        "batch": pick(args.oltr_batch, None, 8),
        "input_size": pick(args.oltr_size, None, 64),
        "repeats": pick(args.oltr_repeats, 3, 2),
        "jpeg_size": (160, 120) if args.quick else (500, 375),
        "workers": args.oltr_workers if args.oltr_workers is not None else default_workers(),
    }


def ours_overrides(tmp, data_root, size, extra=()):
    overrides = [
        *synthetic_images.dataset_overrides(data_root, DATASET),
        f"training_opt.log_dir={os.path.join(tmp, 'logs', 'oltr_ours')}",
        f"training_opt.num_workers={size['workers']}",
        *extra,
    ]
    if size["batch"] is not None:
        overrides.append(f"training_opt.batch_size={size['batch']}")
    if size["input_size"] is not None:
        overrides += [
            f"training_opt.transforms.input_size={size['input_size']}",
            f"training_opt.transforms.resize_size={size['input_size']}",
        ]
    return overrides


def original_from_config(config, data_root, device, workers, initial_state=None):
    """OLTR's loop with the recipe's numbers (batch, lr, momentum, weight decay, display step, input size)."""
    training_opt, networks = config["training_opt"], config["networks"]
    feat_optim, cls_optim = networks["feat_model"]["optim_params"], networks["classifier"]["optim_params"]
    return OriginalStage1(
        data_root,
        os.path.join(data_root, f"{DATASET}_train.txt"),
        device,
        batch_size=training_opt["batch_size"],
        num_workers=workers,
        input_size=training_opt["transforms"]["input_size"],
        num_classes=training_opt["num_classes"],
        lr=(feat_optim["lr"], cls_optim["lr"]),
        momentum=feat_optim["momentum"],
        weight_decay=feat_optim["weight_decay"],
        display_step=training_opt["display_step"],
        loss_weight=config["criterions"]["PerformanceLoss"]["weight"],
        initial_state=initial_state,
    )


def initial_state(run):
    return {"feat_model": run.network.feat_model.state_dict(), "classifier": run.network.classifier.state_dict()}


def modes_text(run):
    """What the loaded config trains with: read from it, never assumed."""
    training_opt = run.config["training_opt"]
    dataset = run.train_loader.dataset
    transform = getattr(dataset, "transform", None)
    steps = getattr(transform, "transforms", None)
    pipeline = type(dataset).__name__ + (f" [{', '.join(type(t).__name__ for t in steps)}]" if steps else "")
    return (
        f"amp {training_opt.get('amp')}, channels_last {training_opt.get('channels_last')}, "
        f"compile {training_opt.get('compile')}, data pipeline {pipeline}"
    )


def target_for_cpu():
    """The target of the bf16 CPUs where oneDNN may use bf16 (the rule of ``amp: auto``, so an ISA capped
    with ONEDNN_MAX_CPU_ISA=AVX2 gets the AVX2 target), else the AVX2 one."""
    from oltr.engine.precision import cpu_has_native_bf16

    if cpu_has_native_bf16():
        return TARGET_NATIVE_BF16, "native bf16 CPU"
    return TARGET_AVX2, "AVX2 CPU" if "avx2" in cpu_flags() else "target for AVX2; this CPU has no AVX2"


def measure(args, ctx, tmp, sync, config_path=DEFAULT_CONFIG):
    size = sizes(args)
    data_root = os.path.join(tmp, "synthetic_jpeg")
    log(f"oltr: writing {size['images']} synthetic {size['jpeg_size'][0]}x{size['jpeg_size'][1]} JPEGs")
    synthetic_images.write_jpeg_dataset(
        data_root,
        DATASET,
        num_train=size["images"],
        num_val=2,
        num_test=2,
        num_open=2,
        num_classes=1000,
        size=size["jpeg_size"],
        seed=0,
    )
    config = load_config(config_path, ours_overrides(tmp, data_root, size, args.opts))
    # The set has fewer images than classes: most classes lack one, which training proper would refuse.
    run = trainer.build_run(config, ctx, echo=False, require_every_class=False)
    original = original_from_config(run.config, data_root, ctx.device, size["workers"], initial_state(run))
    batch = run.config["training_opt"]["batch_size"]
    losses = {"ours": []}

    def ours(epochs):
        for _ in range(epochs):
            losses["ours"].append(trainer.train_one_epoch(run)["loss"])
            run.epoch += 1

    def reference(epochs):
        for _ in range(epochs):
            original.epoch()

    candidates = {"ours": ours, "original": reference}
    log(f"oltr: warm-up epoch each ({run.steps_per_epoch} steps of {batch}, {modes_text(run)})")
    for runner in candidates.values():
        runner(1)
        sync()
    log(f"oltr: timing {size['repeats']} rounds")
    times = time_interleaved(candidates, size["repeats"], 1, sync)
    images = run.steps_per_epoch * batch
    ratios = [ours_s / original_s for ours_s, original_s in zip(times["ours"], times["original"])]
    return {
        "config": config_path,
        "images": images,
        "batch": batch,
        "steps": run.steps_per_epoch,
        "input_size": run.config["training_opt"]["transforms"]["input_size"],
        "jpeg_size": size["jpeg_size"],
        "workers": size["workers"],
        "repeats": size["repeats"],
        "modes": modes_text(run),
        "ours": throughput(times["ours"], images),
        "original": throughput(times["original"], images),
        "ratio": (statistics.median(ratios), min(ratios), max(ratios)),
        "loss": {"ours": losses["ours"][-1], "original": original.displayed[-1][1]},
    }


def print_result(result):
    width, height = result["jpeg_size"]
    print(
        f"### Ours vs OLTR's original loop ({result['config']}, one epoch = {result['steps']} steps of "
        f"{result['batch']}, {result['input_size']} px crops of {width}x{height} JPEGs, "
        f"num_workers={result['workers']}, {result['repeats']} rounds)"
    )
    print()
    print(f"- ours: {result['modes']}")
    print(
        "- original: OLTR's LT_Dataset + data_transforms['train'] + DataLoader(shuffle) + its step loop, "
        "fp32, contiguous; same ResNet-10 (oltr's), same initial weights"
    )
    print(f"- images/s median (min-max): ours {rate_text(result['ours'])}, original {rate_text(result['original'])}")
    print(
        f"- last loss logged: ours {result['loss']['ours']:.4f} (epoch mean), "
        f"original {result['loss']['original']:.4f} (a displayed step)"
    )
    target, where = target_for_cpu()
    median, low, high = result["ratio"]
    print(
        f"- ratio ours/original time per epoch: {median:.3f} (min {low:.3f} .. max {high:.3f}); "
        f"target <= {target} ({where}): {'met' if median <= target else 'not met'}"
    )
    print()
