"""The sweep's command line: ``./run_all.sh [DATASET...] [options]`` and ``oltr sweep status LOGS``.

    plan (plan.py) -> sweep.json (state.py) -> an executor (local.py, slurm.py) -> summary

Every sweep writes its plan to ``<logs>/sweep.json`` and keeps each step's state there; ``--dry-run``
prints the plan's commands and writes nothing.
"""

import os
import sys
from pathlib import Path

from ..common.errors import OltrError
from .checks import (
    check_data_present,
    check_losses,
    check_main_py,
    check_recipes,
    performance_losses,  # noqa: F401  (the sweep's own list of losses, for its callers)
    refuse_existing_runs,
    refuse_live_jobs,
)
from .options import DEFAULT_DATASETS, PUBLISHED_DATASETS, REPLAY_LOGS, REPLAY_OUT, build_parser
from .plan import build_plan
from .state import SWEEP_FILE, SweepState
from .status import status_main

# ----------------------------------------------------------------------------- checks


def resolve_defaults(args):
    """Fill in the defaults that depend on other options; an OltrError for a bad combination."""
    if args.seeds < 1:
        raise OltrError(f"--seeds must be at least 1, got {args.seeds}")
    if args.skip_done and args.overwrite:
        raise OltrError("--skip-done keeps finished steps and --overwrite redoes them; choose one")
    if args.replay_published:
        args.datasets = args.datasets or list(PUBLISHED_DATASETS)
        unpublished = [d for d in args.datasets if d not in PUBLISHED_DATASETS]
        if unpublished:
            raise OltrError(
                f"--replay-published replays the CFL fork's OLTR runs, which exist for "
                f"{' and '.join(PUBLISHED_DATASETS)} only, not {', '.join(unpublished)}; drop "
                f"--replay-published, or by hand add --overlay config/replay_published/<loss>.py "
                f"to a main.py command"
            )
    args.datasets = args.datasets or list(DEFAULT_DATASETS)
    args.logs = args.logs or (REPLAY_LOGS if args.replay_published else "logs")
    args.out = args.out or (REPLAY_OUT if args.replay_published else "results")
    return args


# ----------------------------------------------------------------------------- executors


def visible_gpus():
    """The GPU ids this process may use (as CUDA_VISIBLE_DEVICES names them), or [] without CUDA."""
    import torch

    if not torch.cuda.is_available():
        return []
    count = torch.cuda.device_count()
    named = [part.strip() for part in os.environ.get("CUDA_VISIBLE_DEVICES", "").split(",") if part.strip()]
    return named[:count] if named else [str(index) for index in range(count)]


def local_executor(args):
    from .local import LocalExecutor

    gpus = visible_gpus()
    per_step = args.gpus_per_step or 1
    if args.gpus_per_step and len(gpus) < args.gpus_per_step:
        raise OltrError(
            f"--gpus-per-step {args.gpus_per_step}: this machine shows {len(gpus)} CUDA GPU(s) "
            f"(CUDA_VISIBLE_DEVICES={os.environ.get('CUDA_VISIBLE_DEVICES', 'unset')}); lower it, or "
            "use --executor slurm"
        )
    if gpus:
        slots = len(gpus) // per_step
        jobs = args.jobs or slots
        if jobs > slots:
            raise OltrError(
                f"--jobs {jobs} with {per_step} GPU(s) per step needs {jobs * per_step} GPUs; this "
                f"machine shows {len(gpus)}; use --jobs {slots} or fewer"
            )
        return LocalExecutor(jobs=jobs, threads=args.threads_per_step, gpus=gpus, gpus_per_step=per_step)
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    jobs = args.jobs or 1
    if jobs > cores:
        raise OltrError(f"--jobs {jobs} is more than this machine's {cores} CPU cores; use --jobs {cores} or fewer")
    threads = args.threads_per_step or (max(1, cores // jobs) if jobs > 1 else None)
    return LocalExecutor(jobs=jobs, threads=threads)


def slurm_executor(args):
    from .slurm import SlurmExecutor

    if args.poll <= 0:
        raise OltrError(f"--poll must be more than 0 seconds, got {args.poll}")
    return SlurmExecutor(
        args.logs,
        sys.executable,
        partition=args.partition,
        account=args.account,
        qos=args.qos,
        time_min=args.time,
        gpus_per_step=args.gpus_per_step or 0,
        cpus_per_step=args.cpus_per_step,
        mem_gb=args.mem_per_step,
        nodes_per_step=args.nodes_per_step,
        sbatch_args=dict(args.sbatch_arg),
        signal_delay_s=args.signal_delay,
        poll_s=args.poll,
        detach=args.detach,
    )


# ----------------------------------------------------------------------------- the sweep


def sweep(args, argv=()):
    args = resolve_defaults(args)
    if args.executor == "slurm" and args.jobs:
        raise OltrError(
            "--jobs is the local executor's; on SLURM every step is a job and the cluster decides how many run at once"
        )
    for dataset in args.datasets:
        if not args.dry_run:
            check_data_present(dataset)  # build_plan checks the configs in either case
    steps = build_plan(
        args.datasets,
        args.losses,
        args.seeds,
        args.logs,
        args.out,
        args.replay_published,
        list(dict.fromkeys(args.recipes)),
    )
    if args.dry_run:
        print(format_plan(steps))
        return 0
    check_main_py()
    executor = slurm_executor(args) if args.executor == "slurm" else local_executor(args)
    if args.executor == "slurm":
        refuse_live_jobs(args.logs)
    refuse_existing_runs(steps, args)
    if args.overwrite:
        from ..engine.run_dir import existing_run, move_aside_locked

        for step in steps:
            if step.trains and existing_run(step.log_dir):
                move_aside_locked(step.log_dir)  # a step's run that is live right now is refused, not moved
    state = SweepState(Path(args.logs) / SWEEP_FILE, steps, executor.name, argv, python=sys.executable, out=args.out)
    for step in steps:
        if args.skip_done and step.is_done():
            state.records[step.id]["state"] = "done"
    state.save()
    skipped = sum(state.state(step.id) == "done" for step in steps)
    print(
        f"sweep: {len(steps)} steps ({skipped} done already), {executor.name} executor; states in {state.path}",
        flush=True,
    )
    code = executor.run(steps, state)
    return summarize(steps, state, code)


def format_plan(steps):
    """The plan as --dry-run prints it: per step a ``#`` line (number, id, what it waits for, its log dir and
    done marker), then its command on a line of its own, ready to paste."""
    number = {step.id: index for index, step in enumerate(steps, 1)}
    lines = []
    for step in steps:
        waits = ", ".join(str(number[need]) for need in step.needs)
        if len(step.needs) > 8:
            waits = f"{len(step.needs)} steps"
        lines.append(
            f"# [{number[step.id]}] {step.id}"
            + (f"; after {'any end of' if step.after_any else ''} {waits}".replace("  ", " ") if step.needs else "")
            + f"; log {step.out_file}"
            + (f"; done when {step.done_marker} exists" if step.done_marker else "")
        )
        lines.append(step.text(sys.executable))
    return "\n".join(lines)


def summarize(steps, state, code):
    """The report's output (local runs), then one line per failed step: what, why, its log, how to rerun."""
    report = steps[-1]
    if state.state(report.id) == "done" and state.header["executor"] == "local":
        print(report.out_file.read_text(encoding="utf-8", errors="replace").rstrip())
    for step in steps:
        record = state[step.id]
        if record["state"] == "failed":
            seconds = f" after {record['seconds']:.0f}s" if isinstance(record.get("seconds"), (int, float)) else ""
            why = (
                f"killed by {record['signal']}{seconds}"
                if record["signal"]
                else (
                    f"exit code {record['exit_code']}"
                    if record["exit_code"] is not None
                    else record["note"] or "failed"
                )
            )
            print(
                f"FAILED {step.label()}: {why}; log {step.out_file}; rerun: {step.text(sys.executable)}",
                file=sys.stderr,
            )
    counts = state.counts()
    print(
        ", ".join(f"{count} {name}" for name, count in counts.items() if count) + f" (of {len(steps)} steps; "
        f"{state.path})",
        file=sys.stderr if code else sys.stdout,
    )
    if code == 130:
        print("interrupted; the same command with --skip-done continues from here", file=sys.stderr)
    return code


# ----------------------------------------------------------------------------- oltr sweep status


def main(argv=None):
    argv = sys.argv[1:] if argv is None else list(argv)
    try:
        if argv[:1] == ["status"]:
            return status_main(argv[1:])
        try:
            args = build_parser().parse_args(argv)
        except SystemExit as exit_:  # --help, or a bad option (one line already printed)
            return exit_.code
        unknown = check_losses(args.losses) or check_recipes(args.recipes)
        if unknown:
            raise OltrError(unknown)
        return sweep(args, argv)
    except OltrError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted; the same command with --skip-done continues from here", file=sys.stderr)
        return 130
