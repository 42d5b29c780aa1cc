"""Benchmark: fp32, bf16 autocast, channels_last, bf16 + channels_last and torch.compile through the real trainer.

``--sections config`` runs the modes on the config as it is (Digits_LT: 16 px, thin ResNet-10);
``--sections realistic`` on a realistic shape (standard-width ResNet-10, 1000 classes,
synthetic images). Every mode starts from the same weights and sees the same batches in the
same order, so the loss over the timed steps is comparable across modes; a same-weights check
(one batch, loss and gradient against fp32) isolates the numerics of each mode, and the
recommendation picks the fastest mode whose numerics are safe.

    python benchmarks/bench_train.py --sections config,realistic [--modes fp32,bf16,...]
"""

import copy
import statistics
import time

import torch
from harness import log, paired_ratio, rate_text, thread_count, throughput, time_interleaved, time_limit
from train_runs import MODES, TrainerSteps, bench_overrides, make_run, preload_batches, synthetic_batches

from oltr.engine.inference import autocast, to_device
from oltr.runs import trainer

# A mode is "safe" when, on the same weights and batch, its loss is within SAFE_LOSS_REL of fp32's and
# its gradient error is a small fraction of the gradient noise SGD already has from batch to batch
# (SAFE_GRAD_FALLBACK: absolute limit when there is only one batch to compare).
SAFE_LOSS_REL = 0.01
SAFE_GRAD_FRACTION = 0.25
SAFE_GRAD_FALLBACK = 0.25
SPEEDUP_MARGIN = 0.05


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
    loss_fn = run.criterions["PerformanceLoss"].module
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


# ----------------------------------------------------------------------------- measuring


def _warm_up(args, label, mode, run, runner, sync):
    """Seconds the warm-up (compile included) took, or a note saying why the mode cannot run."""
    started = time.perf_counter()
    try:
        with time_limit(args.compile_timeout if run.config["training_opt"]["compile"] else None, "--compile-timeout"):
            runner(args.warmup)
            sync()
    except Exception as error:  # compile can fail in many ways (no compiler, inductor bug, timeout)
        reason = " ".join(str(error).split()).split(" Set TORCHDYNAMO_VERBOSE")[0][:160] or "no message"
        note = f"unavailable: {type(error).__name__}: {reason}"
        log(f"{label}: {mode} {note}")
        if run.config["training_opt"]["compile"]:
            torch.compiler.reset()
        return None, note
    return time.perf_counter() - started, None


def measure(args, ctx, tmp, data_overrides, sync, shape_overrides, synthetic, steps, repeats, label):
    """Throughput and numerics of every mode through build_run + train_step, from the same weights."""
    runners, notes, warm_seconds = {}, {}, {}
    batches, reference = None, None
    for mode in args.modes:
        log(f"{label}: building {mode}")
        run = make_run(
            args.config,
            bench_overrides(tmp, f"{label}_{mode}", data_overrides, mode, extra=shape_overrides),
            ctx,
            synthetic=synthetic,
        )
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
            reference = (copy.deepcopy(run.network), run.criterions["PerformanceLoss"].module)
        runner = TrainerSteps(run, batches, MODES[mode]["threads"])
        seconds, note = _warm_up(args, label, mode, run, runner, sync)
        if note is not None:
            notes[mode] = note
            continue
        warm_seconds[mode] = seconds
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
        row = {
            "mode": mode,
            "rate": throughput(times[mode], steps * batch),
            "vs_fp32": paired_ratio(times[mode], baseline) if baseline else None,
            "warm_s": warm_seconds[mode],
            "mean_loss": mean_loss,
            "last_loss": runner.losses[-1],
            "loss_delta": mean_loss / statistics.fmean(fp32.losses) - 1 if fp32 else None,
            "steps_trained": runner.step,
            "val_top1": None,
        }
        if MODES[mode]["compile"]:
            row["check"] = compiled_check(runner.run, batches[0])
        else:
            row["check"] = same_weights_check(reference[0], reference[1], batches[0], ctx.device, mode)
        if not synthetic:
            with thread_count(MODES[mode]["threads"]):
                row["val_top1"] = trainer.validate(runner.run)
        rows.append(row)
    return {
        "label": label,
        "batch": batch,
        "steps": steps,
        "repeats": repeats,
        "steps_per_epoch": steps_per_epoch,
        "shape": tuple(batches[0][0].shape),
        "rows": rows,
        "noise": noise,
    }


# ----------------------------------------------------------------------------- printing


def print_result(result, title):
    shape = "x".join(str(d) for d in result["shape"])
    noise = "n/a (one batch)" if result["noise"] is None else f"{result['noise']:.2f}"
    print(f"### {title}: input {shape}, {result['steps']} steps x {result['repeats']} rounds")
    print()
    print(
        "| mode | img/s median (min-max) | vs fp32 | warm-up s | mean train loss over N steps (vs fp32) "
        "| val top-1 | same weights vs fp32: loss / grad rel. err |"
    )
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
        print(
            f"| {row['mode']} | {rate_text(row['rate'])} | {ratio} | {row['warm_s']:.1f} "
            f"| {row['mean_loss']:.4f}, N={row['steps_trained']}{delta} | {top1} | {check} |"
        )
    print()
    one_thread = any(MODES[row["mode"]]["threads"] == 1 for row in result["rows"])
    print(
        f"Gradient rel. err between two fp32 minibatches (SGD's own noise): {noise}."
        + (" Modes ending in _1t ran on one torch thread." if one_thread else "")
    )
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
    print(
        f"Projected training time for this config's {total_steps} steps (warm-up/compile included), safe modes: "
        f"{summary}" + (f"; not safe: {', '.join(unsafe)}" if unsafe else "") + "."
    )
    print(
        f"Safe = same-weights loss within {SAFE_LOSS_REL:.0%} of fp32 and gradient error below "
        f"{SAFE_GRAD_FRACTION:g} x the minibatch noise."
    )
    fp32_total = next(seconds for seconds, mode in candidates if mode == "fp32")

    def clearly_faster(threads_ok):
        # A mode must save SPEEDUP_MARGIN of fp32's projected time to be worth recommending over it.
        for seconds, mode in candidates:
            if threads_ok or MODES[mode]["threads"] is None:
                return mode if mode == "fp32" or seconds <= (1 - SPEEDUP_MARGIN) * fp32_total else "fp32"
        return "fp32"

    print(
        f"**Fastest safe mode: {clearly_faster(True)}; fastest settable in training_opt alone: "
        f"{clearly_faster(False)}** (a mode must save {SPEEDUP_MARGIN:.0%} over fp32 to count). "
        "(*_1t modes need OMP_NUM_THREADS=1 or torch.set_num_threads(1), which is not a config key.)"
    )
    print()
