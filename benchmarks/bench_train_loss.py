"""Benchmark: CFL against softmax inside our trainer, on the same batches (``--sections loss`` of bench_train.py).

python benchmarks/bench_train.py --sections loss
"""

from harness import log, paired_ratio, print_table, rate_text, throughput, time_interleaved
from train_runs import TrainerSteps, bench_overrides, make_run, preload_batches

from oltr.runs import trainer

# The Digits_LT demo's CFL (config/Digits_LT/stage_1_cfl.py), timed at a progress where both terms are live.
CFL_PARAMS = {"gamma": 2.0, "gamma_hc": 2.0, "cyclical_factor": 2.0, "label_smoothing": 0.1}
CFL_PROGRESS = 0.1


def measure(args, ctx, tmp, data_overrides, sync):
    log("loss: CFL vs softmax inside our trainer (fp32)")
    runners = {}
    batches = None
    for name, loss in (("softmax", ("softmax", {})), ("cfl", ("cfl", CFL_PARAMS))):
        run = make_run(
            args.config,
            bench_overrides(tmp, f"loss_{name}", data_overrides, "fp32", loss=loss, extra=args.batch_overrides),
            ctx,
        )
        trainer.set_progress(run.criterions, CFL_PROGRESS)
        if batches is None:
            batches = preload_batches(run, min(args.steps, run.steps_per_epoch), ctx.device)
            batch = run.config["training_opt"]["batch_size"]
        runners[name] = TrainerSteps(run, batches)
        runners[name](args.warmup)
    times = time_interleaved(runners, args.repeats, args.steps, sync)
    return {
        "batch": batch,
        "softmax": throughput(times["softmax"], args.steps * batch),
        "cfl": throughput(times["cfl"], args.steps * batch),
        "ratio": paired_ratio(times["cfl"], times["softmax"]),
    }


def print_result(result, args):
    print(
        f"### Performance loss inside our trainer (fp32, batch {result['batch']}, {args.steps} steps x {args.repeats})"
    )
    print()
    params = ", ".join(f"{k}={v}" for k, v in CFL_PARAMS.items())
    print_table(
        ["loss", "img/s", "vs softmax"],
        [
            ["softmax", rate_text(result["softmax"]), "1.000"],
            [f"cfl ({params}, t={CFL_PROGRESS})", rate_text(result["cfl"]), f"{result['ratio']:.3f}"],
        ],
    )
