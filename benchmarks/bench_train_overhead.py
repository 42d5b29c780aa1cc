"""Benchmark: our trainer's own cost, against a bare PyTorch loop (``--sections overhead`` of bench_train.py).

``oltr.runs.trainer.train_step`` on a Run from ``build_run`` against a bare loop
(``F.cross_entropy`` + one SGD) on the same network (``networks.build_network``, same initial
weights) and the same pre-loaded batches; then a whole ``train_one_epoch`` (our loader and data
pipeline) against the bare loop iterating the same images through a plain shuffled DataLoader
with per-image PIL transforms (OLTR's, the textbook way). Both
use softmax cross-entropy in fp32, so the ratio ours/bare is the pipeline's own cost
(target >= 0.95). Each is timed again on one thread when torch uses more.

    python benchmarks/bench_train.py --sections overhead
"""

import torch
from harness import log, on_threads, paired_ratio, print_table, rate_text, throughput, time_interleaved
from train_runs import BareSteps, TrainerSteps, bench_overrides, make_run, preload_batches

from oltr.data import SplitDataset, build_transform
from oltr.models import network as networks
from oltr.runs import trainer

TARGET = 0.95


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


def measure(args, ctx, tmp, data_overrides, sync):
    log("overhead: our trainer vs a bare PyTorch loop (fp32, softmax cross-entropy)")
    overrides = bench_overrides(
        tmp, "overhead", data_overrides, "fp32", loss=("softmax", {}), extra=args.batch_overrides
    )
    run = make_run(args.config, overrides, ctx)
    training_opt = run.config["training_opt"]
    batch = training_opt["batch_size"]
    bare_network = networks.build_network(run.config).to(ctx.device)
    bare_network.load_state_dict(run.network.state_dict())
    batches = preload_batches(run, min(args.steps, run.steps_per_epoch), ctx.device)
    ours, bare = TrainerSteps(run, batches), BareSteps(bare_network, run.config, batches)
    candidates = thread_variants(ours, bare)
    for runner in candidates.values():
        runner(args.warmup)
    step_times = time_interleaved(candidates, args.repeats, args.steps, sync)

    # Whole epochs: our train_one_epoch (our loader, sampler, seeding, data pipeline) vs a plain shuffled
    # DataLoader over the textbook dataset (PIL images, per-image torchvision transforms).
    ours_set = run.train_loader.dataset
    plain_set = SplitDataset(
        list(zip(ours_set.paths, ours_set.labels.tolist())), build_transform(True, **training_opt["transforms"])
    )
    plain_loader = torch.utils.data.DataLoader(
        plain_set,
        batch_size=batch,
        shuffle=True,
        drop_last=True,
        num_workers=training_opt["num_workers"],
        pin_memory=ctx.device.type == "cuda",
    )

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
        "batch": batch,
        "steps": args.steps,
        "steps_per_epoch": run.steps_per_epoch,
        "num_workers": training_opt["num_workers"],
        "step": overhead_rows(step_times, args.steps * batch),
        "epoch": epoch_rows,
    }


def print_result(result, args):
    print(f"### Trainer overhead (fp32, softmax = F.cross_entropy, batch {result['batch']})")
    print()
    rows = []
    for key, text in (
        ("step", f"train_step, same pre-loaded tensors ({result['steps']} steps x {args.repeats})"),
        (
            "epoch",
            f"train_one_epoch vs plain DataLoader loop ({result['steps_per_epoch']} steps, "
            f"num_workers={result['num_workers']}, x {args.epoch_repeats})",
        ),
    ):
        for threads, ours, bare, ratio in result[key]:
            verdict = "ok" if ratio >= TARGET else "**below**"
            rows.append(
                [
                    f"{text}, {threads} thread{'s' if threads > 1 else ''}",
                    rate_text(ours),
                    rate_text(bare),
                    f"{ratio:.3f}",
                    f">= {TARGET} ({verdict})",
                ]
            )
    print_table(["measurement", "ours (img/s)", "bare PyTorch (img/s)", "ours / bare", "target"], rows)
