"""The Tables 3-4 sweep behind ``./run_all.sh``: every loss, both stages, both tests, then the report.

Each run is the documented command line (``python main.py --config ... [--overlay ...] --opts ...``),
printed before it runs and writing into its own log_dir (its output in ``<phase>.out``), so a user
can re-run any step by hand. By default the steps run in this one process: each is a call of the
same entry point, ``oltr.cli.main(argv)``, with its output redirected into its ``.out`` and the
process-wide state put back after it (``in_process.py``), which saves torch's imports at every step
(seconds each) and gives the same results as the commands run one by one. ``--isolate`` starts one
``python main.py ...`` process per step instead, as the report's ``python -m oltr.report``.

A dataset needs only ``config/<Dataset>/stage_1.py`` and ``stage_2_meta_embedding.py``. Any
performance loss of the registry runs on it, its stage config found in this order: the dataset's own
``stage_1_<loss>.py`` / ``stage_2_<loss>_meta_embedding.py``, else the base file with the shared loss
overlay ``config/losses/<loss>.py``, else the base file with the registry loss at its defaults
(``--opts criterions.PerformanceLoss.loss=<loss> criterions.PerformanceLoss.loss_params={}``).
``--replay-published`` adds ``config/replay_published/<loss>.py`` where one exists (cfl, casl).

``--recipes`` picks the stage-2 recipes run over each loss's stage-1 run (default: meta_embedding):
a decoupled recipe ``R`` (crt, lws, tau_norm, ncm) uses the dataset's ``stage_2_<loss>_<R>.py`` if
it exists, else ``stage_2_<R>.py`` with the loss found as above, and writes ``stage2_<loss>_<R>``
beside the meta-embedding's ``stage2_<loss>``.
"""
import argparse
import inspect
import shlex
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from .config import RECIPES, load_config
from .engine.run_dir import existing_run, move_aside
from .errors import OltrError
from .in_process import INTERRUPTED, call_in_process
from .run_files import FINAL_CHECKPOINT, RESULTS_CLOSED, RESULTS_OPEN

LOSSES = ("softmax", "focal", "asl", "cfl", "casl")  # the rows of Tables 3-4, the default --losses
DEFAULT_RECIPE = "meta_embedding"  # OLTR's stage 2, the default --recipes
DEFAULT_DATASETS = ("Digits_LT",)
CONFIG_ROOT = Path("config")
LOSS_OVERLAYS = CONFIG_ROOT / "losses"
REPLAY_OVERLAYS = CONFIG_ROOT / "replay_published"
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


@dataclass
class Step:
    dataset: str
    loss: str
    seed: int
    phase: str  # stage1, stage2, test, test_open
    command: list
    log_dir: Path
    done_marker: Path
    recipe: str = DEFAULT_RECIPE

    def text(self):
        return " ".join(shlex.quote(part) for part in self.command)


def base_configs(dataset):
    """The dataset's two base files: stage 1 and the stage-2 meta-embedding run (softmax, OLTR's row)."""
    root = CONFIG_ROOT / dataset
    return root / "stage_1.py", root / "stage_2_meta_embedding.py"


def recipe_config(dataset, recipe):
    """The dataset's base stage-2 file of ``recipe``: stage_2_meta_embedding.py, stage_2_crt.py, ..."""
    return CONFIG_ROOT / dataset / f"stage_2_{recipe}.py"


def config_paths(dataset, loss, recipe=DEFAULT_RECIPE):
    """The dataset's own stage-1 and stage-2 files for ``loss`` (which may not exist: see stage_command)."""
    if loss == "softmax":
        return base_configs(dataset)[0], recipe_config(dataset, recipe)
    root = CONFIG_ROOT / dataset
    return root / f"stage_1_{loss}.py", root / f"stage_2_{loss}_{recipe}.py"


def datasets_with_configs():
    return sorted(p.name for p in CONFIG_ROOT.iterdir() if all(path.is_file() for path in base_configs(p.name)))


def check_dataset(dataset):
    missing = [str(path) for path in base_configs(dataset) if not path.is_file()]
    if missing:
        raise OltrError(f"unknown dataset {dataset!r}: no {' or '.join(missing)}; datasets with configs: "
                        f"{', '.join(datasets_with_configs())}")


def check_recipe_configs(dataset, recipes):
    missing = [str(recipe_config(dataset, recipe)) for recipe in recipes if not recipe_config(dataset, recipe).is_file()]
    if missing:
        raise OltrError(f"{dataset} has no {', '.join(missing)}; write it over stage_1.py and "
                        "config/recipes/<that recipe's file> as the other datasets do, or drop it from --recipes")


def stage_command(dataset, loss, stage, replay=False, recipe=DEFAULT_RECIPE):
    """``--config FILE [--overlay FILE ...]`` and the loss's ``--opts`` for one stage of one loss."""
    own = config_paths(dataset, loss, recipe)[stage - 1]
    base = base_configs(dataset)[0] if stage == 1 else recipe_config(dataset, recipe)
    shared = LOSS_OVERLAYS / f"{loss}.py"
    if own.is_file():
        args, loss_opts = ["--config", str(own)], []
    elif shared.is_file():
        args, loss_opts = ["--config", str(base), "--overlay", str(shared)], []
    else:  # any registry loss, at its default parameters
        args = ["--config", str(base)]
        loss_opts = [f"criterions.PerformanceLoss.loss={loss}", "criterions.PerformanceLoss.loss_params={}"]
    replay_overlay = REPLAY_OVERLAYS / f"{loss}.py"
    if replay and replay_overlay.is_file():
        args += ["--overlay", str(replay_overlay)]
    return args, loss_opts


def _check_resolves(args, opts):
    """Load the config a step will run, so a broken file or overlay stops the sweep before anything runs."""
    overlays = [args[i + 1] for i, arg in enumerate(args) if arg == "--overlay"]
    load_config(args[args.index("--config") + 1], opts, overlays=overlays)


def stage2_dir_name(loss, recipe):
    """stage2_<loss> for the meta-embedding (as always), stage2_<loss>_<recipe> for the others."""
    return f"stage2_{loss}" if recipe == DEFAULT_RECIPE else f"stage2_{loss}_{recipe}"


def plan(dataset, loss, seed, num_seeds, python=sys.executable, logs_root="logs", replay=False,
         recipes=(DEFAULT_RECIPE,), resume=False):
    """The steps of one (dataset, loss, seed): stage 1, then each recipe's stage 2, closed and open test,
    with per-seed log dirs when several seeds run.

    ``resume`` (the sweep's --skip-done): the training steps run with --resume, so an interrupted
    stage continues from its last finished epoch (and a fresh one simply starts).
    """
    check_dataset(dataset)
    check_recipe_configs(dataset, recipes)
    run_root = Path(logs_root) / dataset / (f"seed{seed}" if num_seeds > 1 else "")
    stage1_dir = run_root / f"stage1_{loss}"
    stage1_args, stage1_loss_opts = stage_command(dataset, loss, 1, replay)
    common = [f"seed={seed}"]
    stage1_opts = common + [f"training_opt.log_dir={stage1_dir}"] + stage1_loss_opts
    _check_resolves(stage1_args, stage1_opts)
    main = [python, "main.py"]
    train = ["--resume"] if resume else []
    steps = [Step(dataset, loss, seed, "stage1", main + stage1_args + train + ["--opts", *stage1_opts],
                  stage1_dir, stage1_dir / FINAL_CHECKPOINT)]
    for recipe in recipes:
        stage2_dir = run_root / stage2_dir_name(loss, recipe)
        stage2_args, stage2_loss_opts = stage_command(dataset, loss, 2, replay, recipe)
        stage2_opts = (common + [f"training_opt.log_dir={stage2_dir}", f"training_opt.stage1_log_dir={stage1_dir}"]
                       + stage2_loss_opts)
        _check_resolves(stage2_args, stage2_opts)
        steps += [
            Step(dataset, loss, seed, "stage2", main + stage2_args + train + ["--opts", *stage2_opts],
                 stage2_dir, stage2_dir / FINAL_CHECKPOINT, recipe),
            Step(dataset, loss, seed, "test", main + stage2_args + ["--test", "--opts", *stage2_opts],
                 stage2_dir, stage2_dir / RESULTS_CLOSED, recipe),
            Step(dataset, loss, seed, "test_open", main + stage2_args + ["--test_open", "--opts", *stage2_opts],
                 stage2_dir, stage2_dir / RESULTS_OPEN, recipe),
        ]
    return steps


def check_data_present(dataset):
    """Stop with what to download, and where to put it, when a dataset's files are missing."""
    check_dataset(dataset)
    training_opt = load_config(base_configs(dataset)[0])["training_opt"]
    from .build import prepare_data  # imports torch: only when really running
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


TRAINING_PHASES = ("stage1", "stage2")


def _refuse_existing_runs(steps, args):
    """A plain rerun over runs already there never replaces them: stop before anything runs."""
    if args.skip_done and args.overwrite:
        raise OltrError("--skip-done keeps finished steps and --overwrite redoes them; choose one")
    if args.skip_done or args.overwrite:
        return
    held = [step.log_dir for step in steps if step.phase in TRAINING_PHASES and existing_run(step.log_dir)]
    if held:
        raise OltrError(f"{len(held)} run directories already hold runs (first: {held[0]}); nothing was run. "
                        "Pass --skip-done to keep finished steps and continue the others, --overwrite to move "
                        "them aside (<log_dir>.old-<timestamp>) and run everything again, or another --logs")


def run_step(step, isolate=False):
    """Run one step, its output into ``<log_dir>/<phase>.out``; returns (ok, seconds, last lines of output).

    In this process (oltr.cli.main with the step's argv) unless ``isolate``: then in a process of its own.
    """
    step.log_dir.mkdir(parents=True, exist_ok=True)
    log_path = step.log_dir / f"{step.phase}.out"
    started = time.perf_counter()
    with open(log_path, "w", encoding="utf-8") as log:
        if isolate:
            returncode = subprocess.run(step.command, stdout=log, stderr=subprocess.STDOUT).returncode
        else:
            from . import cli  # looked up at each call, so a test can stand in for it
            from .step_output import output_into

            with output_into(log):
                returncode = call_in_process(cli.main, step.command[2:], program=step.command[1])
    if returncode in (INTERRUPTED, -2):  # Ctrl-C: the step stopped itself (130) or was killed by SIGINT (-2)
        raise KeyboardInterrupt
    seconds = time.perf_counter() - started
    tail = log_path.read_text(encoding="utf-8", errors="replace").strip().splitlines()[-5:]
    return returncode == 0, seconds, tail


def run_report(command, isolate=False):
    """The report's exit status: ``command`` is ``python -m oltr.report ...``, here or in its own process."""
    if isolate:
        return subprocess.run(command).returncode
    from .report import cli as report_cli

    return call_in_process(report_cli.main, command[3:], program="oltr.report")


def build_parser():
    parser = argparse.ArgumentParser(
        prog="run_all.sh",
        description="Train every loss through both OLTR stages, test closed- and open-set, and print the "
                    "paper's Tables 3-4 with our numbers. With no dataset it runs the embedded Digits_LT.")
    parser.add_argument("datasets", nargs="*", metavar="DATASET",
                        help="datasets with config/<DATASET>/stage_1.py and stage_2_meta_embedding.py "
                             "(default: Digits_LT; with --replay-published: ImageNet_LT Places_LT)")
    parser.add_argument("--seeds", type=int, default=1, help="repeat every run with seeds 0..N-1 (default: 1)")
    parser.add_argument("--losses", nargs="+", default=list(LOSSES), metavar="LOSS",
                        help=f"any performance loss of the losses registry (default: the table's "
                             f"{', '.join(LOSSES)})")
    parser.add_argument("--recipes", nargs="+", default=[DEFAULT_RECIPE], metavar="RECIPE",
                        help=f"stage-2 recipes over each loss's stage-1 run: {', '.join(RECIPES)} (default: "
                             f"{DEFAULT_RECIPE}, OLTR's; the others are the decoupled classifiers of Kang et al. "
                             "2020, each in stage2_<loss>_<recipe>/)")
    parser.add_argument("--replay-published", action="store_true",
                        help="replay the CFL fork's OLTR runs: its reference xi schedule with its loss-local "
                             f"epochs (config/replay_published/<loss>.py, for cfl and casl), on "
                             f"{' and '.join(PUBLISHED_DATASETS)}, into {REPLAY_LOGS}/ and {REPLAY_OUT}/")
    parser.add_argument("--dry-run", action="store_true", help="print the commands without running them")
    parser.add_argument("--isolate", action="store_true",
                        help="run each step (and the report) as its own python process (default: every step "
                             "in this process, through the same entry point as main.py, its output still in "
                             "its <phase>.out: the same results without paying for torch's imports each step)")
    parser.add_argument("--skip-done", action="store_true",
                        help="skip steps whose checkpoint or results file already exists, and train the others "
                             "with --resume (an interrupted stage continues)")
    parser.add_argument("--overwrite", action="store_true",
                        help="run every step again, moving each run already there aside to "
                             "<log_dir>.old-<timestamp> (default: a sweep over existing runs is refused before "
                             "anything runs, unless --skip-done)")
    parser.add_argument("--logs", default=None,
                        help=f"root of the runs' log dirs (default: logs; with --replay-published: {REPLAY_LOGS})")
    parser.add_argument("--out", default=None,
                        help=f"where the report writes its tables (default: results; with --replay-published: "
                             f"{REPLAY_OUT})")
    return parser


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

    unknown = [name for name in names if name not in RECIPES]
    if not unknown:
        return None
    described = []
    for name in unknown:
        close = closest_name(name, RECIPES)
        described.append(repr(name) + (f" (did you mean {close!r}?)" if close else ""))
    return f"unknown recipe(s) {', '.join(described)} for --recipes; choose from {', '.join(RECIPES)}"


def resolve_defaults(args):
    """Fill in the defaults that depend on --replay-published; an OltrError for a bad combination."""
    if args.seeds < 1:
        raise OltrError(f"--seeds must be at least 1, got {args.seeds}")
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


def sweep(args):
    args = resolve_defaults(args)
    steps = []
    for dataset in args.datasets:
        if not args.dry_run:
            check_data_present(dataset)  # plan() checks the configs in either case
        for seed in range(args.seeds):
            for loss in args.losses:
                steps.extend(plan(dataset, loss, seed, args.seeds, logs_root=args.logs,
                                  replay=args.replay_published, recipes=list(dict.fromkeys(args.recipes)),
                                  resume=args.skip_done))
    report = [sys.executable, "-m", "oltr.report", *[str(Path(args.logs) / d) for d in args.datasets],
              "--out", args.out]
    if args.dry_run:
        for step in steps:
            print(step.text())
        print(" ".join(shlex.quote(part) for part in report))
        return 0
    _refuse_existing_runs(steps, args)
    started, skipped = time.perf_counter(), 0
    for number, step in enumerate(steps, 1):
        recipe = "" if step.recipe == DEFAULT_RECIPE or step.phase == "stage1" else f" {step.recipe}"
        label = f"[{number}/{len(steps)}] {step.dataset} {step.loss}{recipe} seed {step.seed} {step.phase}"
        if args.skip_done and step.done_marker.is_file():
            print(f"{label}: done already, skipped", flush=True)
            skipped += 1
            continue
        if args.overwrite and step.phase in TRAINING_PHASES and existing_run(step.log_dir):
            move_aside(step.log_dir)  # here, not by main.py: the step's output file goes into the new directory
        print(f"{label}: {step.text()}", flush=True)
        try:
            ok, seconds, tail = run_step(step, isolate=args.isolate)
        except KeyboardInterrupt:
            print(f"{label}: interrupted; ./run_all.sh --skip-done with the same arguments continues from here",
                  file=sys.stderr)
            return INTERRUPTED
        except OSError as error:
            raise OltrError(f"{label}: cannot write its output in {step.log_dir}: {error.strerror or error}") from None
        if not ok:
            print(f"{label}: FAILED after {seconds:.0f}s\n  command: {step.text()}\n  output ({step.log_dir}/"
                  f"{step.phase}.out), last lines:\n    " + "\n    ".join(tail), file=sys.stderr)
            return 1
        print(f"{label}: {seconds:.0f}s", flush=True)
    print(f"ran {len(steps) - skipped} of {len(steps)} steps in {time.perf_counter() - started:.0f}s"
          + (f" ({skipped} done already)" if skipped else "") + "; the report:", flush=True)
    return run_report(report, isolate=args.isolate)


def main(argv=None):
    args = build_parser().parse_args(argv)
    unknown = check_losses(args.losses) or check_recipes(args.recipes)
    if unknown:
        print(f"error: {unknown}", file=sys.stderr)
        return 2
    try:
        return sweep(args)
    except OltrError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
