"""The sweep's command line: ``./run_all.sh [DATASET...] [options]`` and ``oltr sweep status LOGS``.

    plan (plan.py) -> sweep.json (state.py) -> an executor (local.py, slurm.py) -> summary

Every sweep writes its plan to ``<logs>/sweep.json`` and keeps each step's state there; ``--dry-run``
prints the plan's commands and writes nothing.
"""
import argparse
import inspect
import os
import shlex
import sys
from pathlib import Path

from ..config.schema import load_config
from ..recipes import recipe_names
from ..common.errors import OltrError
from .plan import DEFAULT_RECIPE, LOSSES, base_configs, build_plan, check_dataset
from .state import STATES, SWEEP_FILE, SweepState, load_state

DEFAULT_DATASETS = ("Digits_LT",)
# The CFL fork (lnsmith54/CFL) published OLTR runs, and configs, for these datasets only.
PUBLISHED_DATASETS = ("ImageNet_LT", "Places_LT")
REPLAY_LOGS, REPLAY_OUT = "logs/replay_published", "results/replay_published"

# What to fetch for the datasets that cannot be built here.
DOWNLOAD_HINTS = {
    "ImageNet_LT": "OLTR's ImageNet_LT_{train,val,test,open}.txt split files and ImageNet_LT_open/ images (the "
                   "Google Drive folder linked from the README of zhmiao/OpenLongTailRecognition-OLTR) and the "
                   "ImageNet 2012 (ILSVRC2012) train and val images, val sorted into class folders",
    "Places_LT": "OLTR's Places_LT_{train,val,test,open}.txt split files and Places_LT_open/ images (the Google "
                 "Drive folder linked from the README of zhmiao/OpenLongTailRecognition-OLTR) and the "
                 "Places365-Standard 256x256 train and val images (data_256/, val_256/)",
}


def _positive(text):
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number of at least 1, got {text!r}")
    return value


def _key_value(text):
    if "=" not in text or not text.split("=", 1)[0].strip():
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE (an sbatch option without its dashes, e.g. "
                                         f"constraint=a100), got {text!r}")
    key, value = text.split("=", 1)
    return key.strip().lstrip("-"), value


class _Parser(argparse.ArgumentParser):
    """argparse, with a bad option as one line (not the usage block) naming it and the help."""

    def error(self, message):
        self.exit(2, f"error: {message}; see {self.prog} --help\n")


def build_parser():
    parser = _Parser(
        prog="run_all.sh",
        description="Train every loss through both OLTR stages, test closed- and open-set, and print the "
                    "paper's Tables 3-4 with our numbers. With no dataset it runs the embedded Digits_LT. "
                    "`oltr sweep status LOGS` shows a sweep's steps and states.")
    parser.add_argument("datasets", nargs="*", metavar="DATASET",
                        help="datasets with config/<DATASET>/stage_1.py and stage_2_meta_embedding.py "
                             "(default: Digits_LT; with --replay-published: ImageNet_LT Places_LT)")
    parser.add_argument("--seeds", type=int, default=1, help="repeat every run with seeds 0..N-1 (default: 1)")
    parser.add_argument("--losses", nargs="+", default=list(LOSSES), metavar="LOSS",
                        help=f"any performance loss of the losses registry (default: the table's {', '.join(LOSSES)})")
    parser.add_argument("--recipes", nargs="+", default=[DEFAULT_RECIPE], metavar="RECIPE",
                        help=f"stage-2 recipes over each loss's stage-1 run: {', '.join(recipe_names())} (default: "
                             f"{DEFAULT_RECIPE}, OLTR's; the others are the decoupled classifiers of Kang et al. "
                             "2020, each in stage2_<loss>_<recipe>/)")
    parser.add_argument("--replay-published", action="store_true",
                        help="replay the CFL fork's OLTR runs: its reference xi schedule with its loss-local "
                             f"epochs (config/replay_published/<loss>.py, for cfl and casl), on "
                             f"{' and '.join(PUBLISHED_DATASETS)}, into {REPLAY_LOGS}/ and {REPLAY_OUT}/")
    parser.add_argument("--dry-run", action="store_true", help="print the plan's commands without running them")
    parser.add_argument("--skip-done", action="store_true",
                        help="keep steps whose checkpoint or results file exists and run the others (an "
                             "interrupted training continues from its last finished epoch)")
    parser.add_argument("--overwrite", action="store_true",
                        help="run every step again, moving each run already there aside to "
                             "<log_dir>.old-<timestamp> (default: a sweep over existing runs is refused before "
                             "anything runs, unless --skip-done)")
    parser.add_argument("--logs", default=None,
                        help=f"root of the runs' log dirs and of {SWEEP_FILE} (default: logs; with "
                             f"--replay-published: {REPLAY_LOGS})")
    parser.add_argument("--out", default=None,
                        help=f"where the report writes its tables (default: results; with --replay-published: "
                             f"{REPLAY_OUT})")
    parser.add_argument("--executor", choices=("local", "slurm"), default="local",
                        help="local: this machine's CPU or GPUs (default); slurm: one SLURM job per step (submitit)")
    parser.add_argument("--gpus-per-step", type=_positive, default=None, metavar="K",
                        help="GPUs of each training step, DDP over them (torchrun locally; K tasks per node on "
                             "SLURM) (default: 1 where there are GPUs)")
    local = parser.add_argument_group("local executor")
    local.add_argument("--jobs", type=_positive, default=None, metavar="N",
                       help="steps at a time (default: one per visible GPU, or per K GPUs; 1 on a CPU)")
    local.add_argument("--threads-per-step", type=_positive, default=None, metavar="T",
                       help="CPU threads of each step (default: the cores split between the --jobs; with one "
                            "job, torch's own default)")
    slurm = parser.add_argument_group("SLURM executor (--executor slurm)")
    slurm.add_argument("--partition", help="sbatch --partition (default: the cluster's)")
    slurm.add_argument("--account", help="sbatch --account")
    slurm.add_argument("--qos", help="sbatch --qos")
    slurm.add_argument("--time", type=_positive, default=1440, metavar="MINUTES",
                       help="time limit of each job in minutes (default: 1440); a job that reaches it is "
                            "requeued and resumes")
    slurm.add_argument("--cpus-per-step", type=_positive, default=None, metavar="C", help="CPUs of each job (per node)")
    slurm.add_argument("--mem-per-step", type=_positive, default=None, metavar="GB", help="memory of each job (per node)")
    slurm.add_argument("--nodes-per-step", type=_positive, default=1, metavar="M",
                       help="nodes of each training job, --gpus-per-step on each (multi-node DDP) (default: 1)")
    slurm.add_argument("--sbatch-arg", type=_key_value, action="append", default=[], metavar="KEY=VALUE",
                       help="any other sbatch option, e.g. --sbatch-arg constraint=a100 (repeatable)")
    slurm.add_argument("--signal-delay", type=_positive, default=120, metavar="S",
                       help="seconds before the time limit at which SLURM signals a job to stop and requeue "
                            "(default: 120)")
    slurm.add_argument("--poll", type=float, default=10.0, metavar="S",
                       help="seconds between two looks at the queue while following the jobs (default: 10)")
    slurm.add_argument("--detach", action="store_true",
                       help="submit and return; `oltr sweep status LOGS` follows the jobs")
    return parser


# ----------------------------------------------------------------------------- checks

def performance_losses():
    """Every registry loss that scores logits: all but the feature losses (``loss(features, targets)``)."""
    import losses  # registers every loss; imports torch

    def first_input(name):
        parameters = list(inspect.signature(losses.get_loss_class(name).forward).parameters)
        return parameters[1] if len(parameters) > 1 else None

    return [name for name in losses.available_losses() if first_input(name) != "features"]


def check_losses(names):
    """One line naming each unknown ``--losses`` name, its closest match and the choices; None if all are known."""
    from losses.registry import available_losses, closest_name

    choices = performance_losses()
    unknown = [name for name in names if name not in choices]
    if not unknown:
        return None
    described = []
    for name in unknown:
        if name in available_losses():
            described.append(f"{name!r} (a feature loss: it scores features, not logits, and stage 2 already "
                             "uses it as criterions.FeatureLoss)")
        else:
            close = closest_name(name, choices)
            described.append(repr(name) + (f" (did you mean {close!r}?)" if close else ""))
    others = [name for name in choices if name not in LOSSES]
    return (f"unknown loss(es) {', '.join(described)} for --losses; choose from the table's {', '.join(LOSSES)} "
            f"or any other registry loss: {', '.join(others)}")


def check_recipes(names):
    """One line naming each unknown ``--recipes`` name and its closest match; None if all are known."""
    from losses.registry import closest_name

    known = recipe_names()
    unknown = [name for name in names if name not in known]
    if not unknown:
        return None
    described = [repr(name) + (f" (did you mean {closest_name(name, known)!r}?)" if closest_name(name, known)
                               else "") for name in unknown]
    return f"unknown recipe(s) {', '.join(described)} for --recipes; choose from {', '.join(known)}"


def check_data_present(dataset):
    """Stop with what to download, and where to put it, when a dataset's files are missing."""
    check_dataset(dataset)
    training_opt = load_config(base_configs(dataset)[0])["training_opt"]
    from ..data.loaders import prepare_data  # imports torch: only when really running

    prepare_data(training_opt)  # Digits_LT is built, CIFAR*_LT exported (or a DataError saying what to download)
    split_dir, data_root = Path(training_opt["split_dir"]), Path(training_opt["data_root"])
    missing = [split_dir / f"{dataset}_{split}.txt" for split in ("train", "val", "test", "open")
               if not (split_dir / f"{dataset}_{split}.txt").is_file()]
    hint = DOWNLOAD_HINTS.get(dataset, "the dataset's split files and images")
    if missing:
        raise OltrError(f"{dataset}: missing split file(s) {', '.join(map(str, missing))}; download {hint}, "
                        f"put the split files in {split_dir}/ and the images under {data_root}/ "
                        "(see data/README.md)")
    first_line = (split_dir / f"{dataset}_train.txt").read_text().split("\n", 1)[0].strip()
    first_image = data_root / first_line.rsplit(None, 1)[0] if first_line else None
    if first_image is None or not first_image.is_file():
        raise OltrError(f"{dataset}: image {first_image} (first line of {split_dir / (dataset + '_train.txt')}) is "
                        f"missing; download {hint} and put the images under {data_root}/ (see data/README.md)")


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
            raise OltrError(f"--replay-published replays the CFL fork's OLTR runs, which exist for "
                            f"{' and '.join(PUBLISHED_DATASETS)} only, not {', '.join(unpublished)}; drop "
                            f"--replay-published, or by hand add --overlay config/replay_published/<loss>.py "
                            f"to a main.py command")
    args.datasets = args.datasets or list(DEFAULT_DATASETS)
    args.logs = args.logs or (REPLAY_LOGS if args.replay_published else "logs")
    args.out = args.out or (REPLAY_OUT if args.replay_published else "results")
    return args


def check_main_py():
    """The steps run ``python main.py ...`` from the current folder."""
    if not Path("main.py").is_file():
        raise OltrError(f"the steps run `python main.py ...` in the current folder, and {Path.cwd()} has no "
                        "main.py; run the sweep from the project's folder (./run_all.sh does)")


def _refuse_existing_runs(steps, args):
    """A plain rerun over runs already there never replaces them: stop before anything runs."""
    from ..engine.run_dir import existing_run

    if args.skip_done or args.overwrite:
        return
    held = [step.log_dir for step in steps if step.trains and existing_run(step.log_dir)]
    if held:
        raise OltrError(f"{len(held)} run directories already hold runs (first: {held[0]}); nothing was run. "
                        "Pass --skip-done to keep finished steps and continue the others, --overwrite to move "
                        "them aside (<log_dir>.old-<timestamp>) and run everything again, or another --logs")


def _refuse_live_jobs(logs):
    """A new submission while the last one's jobs are still queued or running would run them twice."""
    path = Path(logs) / SWEEP_FILE
    if not path.is_file():
        return
    try:
        _, data = load_state(path)
    except OltrError:
        return
    if data.get("executor") != "slurm":
        return
    from .slurm import RUNNING, WAITING, squeue_states

    ids = [r["job_id"] for r in data["steps"] if isinstance(r, dict) and r.get("job_id")
           and r.get("state") in ("pending", "running")]
    live = [job for job, (name, _) in squeue_states(ids).items() if name in WAITING + RUNNING]
    if live:
        raise OltrError(f"{len(live)} jobs of the last submission to {logs} are still queued or running (first: "
                        f"{live[0]}); wait for them (oltr sweep status {logs}) or cancel them (scancel "
                        f"{' '.join(live)}), then run the sweep again")


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
        raise OltrError(f"--gpus-per-step {args.gpus_per_step}: this machine shows {len(gpus)} CUDA GPU(s) "
                        f"(CUDA_VISIBLE_DEVICES={os.environ.get('CUDA_VISIBLE_DEVICES', 'unset')}); lower it, or "
                        "use --executor slurm")
    if gpus:
        slots = len(gpus) // per_step
        jobs = args.jobs or slots
        if jobs > slots:
            raise OltrError(f"--jobs {jobs} with {per_step} GPU(s) per step needs {jobs * per_step} GPUs; this "
                            f"machine shows {len(gpus)}; use --jobs {slots} or fewer")
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
    return SlurmExecutor(args.logs, sys.executable, partition=args.partition, account=args.account, qos=args.qos,
                         time_min=args.time, gpus_per_step=args.gpus_per_step or 0, cpus_per_step=args.cpus_per_step,
                         mem_gb=args.mem_per_step, nodes_per_step=args.nodes_per_step,
                         sbatch_args=dict(args.sbatch_arg), signal_delay_s=args.signal_delay, poll_s=args.poll,
                         detach=args.detach)


# ----------------------------------------------------------------------------- the sweep

def sweep(args, argv=()):
    args = resolve_defaults(args)
    if args.executor == "slurm" and args.jobs:
        raise OltrError("--jobs is the local executor's; on SLURM every step is a job and the cluster decides how "
                        "many run at once")
    for dataset in args.datasets:
        if not args.dry_run:
            check_data_present(dataset)  # build_plan checks the configs in either case
    steps = build_plan(args.datasets, args.losses, args.seeds, args.logs, args.out, args.replay_published,
                       list(dict.fromkeys(args.recipes)))
    if args.dry_run:
        print(format_plan(steps))
        return 0
    check_main_py()
    executor = slurm_executor(args) if args.executor == "slurm" else local_executor(args)
    if args.executor == "slurm":
        _refuse_live_jobs(args.logs)
    _refuse_existing_runs(steps, args)
    if args.overwrite:
        from ..engine.run_dir import existing_run, move_aside

        for step in steps:
            if step.trains and existing_run(step.log_dir):
                move_aside(step.log_dir)
    state = SweepState(Path(args.logs) / SWEEP_FILE, steps, executor.name, argv, python=sys.executable, out=args.out)
    for step in steps:
        if args.skip_done and step.is_done():
            state.records[step.id]["state"] = "done"
    state.save()
    skipped = sum(state.state(step.id) == "done" for step in steps)
    print(f"sweep: {len(steps)} steps ({skipped} done already), {executor.name} executor; states in {state.path}",
          flush=True)
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
        lines.append(f"# [{number[step.id]}] {step.id}" + (f"; after {'any end of' if step.after_any else ''} "
                                                          f"{waits}".replace("  ", " ") if step.needs else "")
                     + f"; log {step.out_file}" + (f"; done when {step.done_marker} exists" if step.done_marker else ""))
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
            why = f"signal {record['signal']}" if record["signal"] else (
                f"exit code {record['exit_code']}" if record["exit_code"] is not None else record["note"] or "failed")
            print(f"FAILED {step.label()}: {why}; log {step.out_file}; rerun: {step.text(sys.executable)}",
                  file=sys.stderr)
    counts = state.counts()
    print(", ".join(f"{count} {name}" for name, count in counts.items() if count) + f" (of {len(steps)} steps; "
          f"{state.path})", file=sys.stderr if code else sys.stdout)
    if code == 130:
        print(f"interrupted; the same command with --skip-done continues from here", file=sys.stderr)
    return code


# ----------------------------------------------------------------------------- oltr sweep status

def status_main(argv):
    parser = argparse.ArgumentParser(prog="oltr sweep status",
                                     description=f"The steps of a sweep, their states and job ids, from <LOGS>/{SWEEP_FILE} "
                                                 "(brought up to date from SLURM for a SLURM sweep).")
    parser.add_argument("logs", help=f"the sweep's --logs folder (or its {SWEEP_FILE})")
    args = parser.parse_args(argv)
    path, data = load_state(args.logs)
    if data.get("executor") == "slurm":
        data = _refreshed(path, data)
    print(format_status(data))
    return 0


def _refreshed(path, data):
    """The SLURM sweep's states brought up to date (and written back)."""
    from .slurm import SUBMITIT_FOLDER, check_slurm, refresh

    try:
        check_slurm()
    except OltrError as error:
        print(f"note: states as last written ({error})", file=sys.stderr)
        return data
    state = SweepState.__new__(SweepState)
    state.path, state.steps = path, {}
    state.header = {key: value for key, value in data.items() if key not in ("steps", "updated")}
    state.records = {record["id"]: record for record in data["steps"]}
    refresh(state, path.parent / SUBMITIT_FOLDER)
    return {**state.header, "steps": list(state.records.values())}


def format_status(data):
    rows = [("step", "state", "job", "exit", "seconds", "note")]
    for record in data["steps"]:
        code = record.get("signal") or ("" if record.get("exit_code") is None else str(record["exit_code"]))
        seconds = "" if record.get("seconds") is None else f"{record['seconds']:.0f}"
        rows.append((record.get("label") or record["id"], record["state"], record.get("job_id") or "", code, seconds,
                     record.get("note") or ""))
    widths = [max(len(row[i]) for row in rows) for i in range(5)]
    lines = ["  ".join(cell.ljust(width) for cell, width in zip(row[:5], widths)) + "  " + row[5] for row in rows]
    counts = {name: sum(record["state"] == name for record in data["steps"]) for name in STATES}
    lines.append(f"{data.get('executor', '?')} sweep, updated {data.get('updated', '?')}: "
                 + ", ".join(f"{count} {name}" for name, count in counts.items() if count))
    return "\n".join(line.rstrip() for line in lines)


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
