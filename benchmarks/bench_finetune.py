"""Images/s and peak memory of a fine-tuning config on synthetic images (LIFT's CLIP ViT-B/16 recipe by default).

    python benchmarks/bench_finetune.py [--config config/ImageNet_LT/stage_2_finetune_clip_vit_b16.py]
        [--steps 200] [--warmup 20] [--batch N] [--device cuda] [--opts KEY=VALUE ...]

The config's network is built without its pretrained weights (speed and memory do not depend on their
values), its finetune mode applied as the recipe does, and it trains on random images with the run's own
optimizers, loss, autocast (``training_opt.amp``) and channels_last, one optimizer step per batch as the
trainer does. Prints images/s over the timed steps and, on CUDA, ``torch.cuda.max_memory_allocated``.
No data, no downloads: put the numbers in docs/backbones.md with the GPU and the command.
"""

import argparse
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from oltr.config.schema import load_config
from oltr.engine import optim
from oltr.engine.inference import autocast
from oltr.engine.precision import resolve_amp
from oltr.models.network import build_network
from oltr.recipes import resolve

DEFAULT_CONFIG = "config/ImageNet_LT/stage_2_finetune_clip_vit_b16.py"


def parse(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default=DEFAULT_CONFIG, help="a finetune config (default: %(default)s)")
    parser.add_argument("--steps", type=int, default=200, help="timed steps (default 200)")
    parser.add_argument("--warmup", type=int, default=20, help="untimed steps first (default 20)")
    parser.add_argument("--batch", type=int, default=None, help="batch size (default: the config's)")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--opts", nargs="*", default=[], help="KEY=VALUE overrides, as main.py's")
    return parser.parse_args(argv)


def measure(args):
    config = load_config(args.config, args.opts)
    training = config["training_opt"]
    device = torch.device(args.device)
    batch = args.batch or training["batch_size"]
    size, num_classes = training["transforms"]["input_size"], training["num_classes"]
    recipe = resolve(config, args.config)
    network, lines = recipe.prepare_network(build_network(config, for_training=False), config)
    network.to(device).train()
    memory_format = torch.channels_last if training["channels_last"] else torch.contiguous_format
    network.to(memory_format=memory_format)
    # a long tail over the classes, for losses that read the class counts
    counts = [max(1, int(1000 / (index + 1))) for index in range(num_classes)]
    criterion = optim.build_criterions(config, counts)["PerformanceLoss"].module.to(device)
    optimizers = optim.build_optimizers(network, {}, config)
    amp = resolve_amp(training["amp"], device)
    images = torch.randn(batch, 3, size, size, device=device).contiguous(memory_format=memory_format)
    labels = torch.randint(0, num_classes, (batch,), device=device)

    def step():
        with autocast(device, amp):
            logits, _ = network(images)
        loss = criterion(logits.float(), labels)
        for optimizer in optimizers.values():
            optimizer.zero_grad(set_to_none=True)
        loss.backward()
        for optimizer in optimizers.values():
            optimizer.step()

    for _ in range(args.warmup):
        step()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
    start = time.perf_counter()
    for _ in range(args.steps):
        step()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    seconds = time.perf_counter() - start
    peak = torch.cuda.max_memory_allocated(device) / 2**30 if device.type == "cuda" else None
    return {
        "config": args.config,
        "device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
        "batch": batch,
        "amp": amp,
        "trainable": lines[-1] if lines else "",
        "images_per_s": batch * args.steps / seconds,
        "peak_gib": peak,
    }


def main(argv=None):
    result = measure(parse(argv))
    peak = f"{result['peak_gib']:.1f} GiB" if result["peak_gib"] is not None else "n/a (CPU)"
    print(
        f"{result['config']} on {result['device']}: batch {result['batch']}, amp {result['amp']}; "
        f"{result['trainable']}\n  {result['images_per_s']:.1f} images/s, peak memory {peak}"
    )
    return result


if __name__ == "__main__":
    main()
