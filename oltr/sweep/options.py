"""The sweep's options (``./run_all.sh --help``): what to run, where, and how to reach a GPU node or a cluster."""

import argparse

from ..recipes import recipe_names
from .plan import DEFAULT_RECIPE, LOSSES
from .state import SWEEP_FILE

DEFAULT_DATASETS = ("Digits_LT",)


# The CFL fork (lnsmith54/CFL) published OLTR runs, and configs, for these datasets only.
PUBLISHED_DATASETS = ("ImageNet_LT", "Places_LT")


REPLAY_LOGS, REPLAY_OUT = "logs/replay_published", "results/replay_published"


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
        raise argparse.ArgumentTypeError(
            f"expected KEY=VALUE (an sbatch option without its dashes, e.g. constraint=a100), got {text!r}"
        )
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
        "`oltr sweep status LOGS` shows a sweep's steps and states.",
    )
    parser.add_argument(
        "datasets",
        nargs="*",
        metavar="DATASET",
        help="datasets with config/<DATASET>/stage_1.py and stage_2_meta_embedding.py "
        "(default: Digits_LT; with --replay-published: ImageNet_LT Places_LT)",
    )
    parser.add_argument("--seeds", type=int, default=1, help="repeat every run with seeds 0..N-1 (default: 1)")
    parser.add_argument(
        "--losses",
        nargs="+",
        default=list(LOSSES),
        metavar="LOSS",
        help=f"any performance loss of the losses registry (default: the table's {', '.join(LOSSES)})",
    )
    parser.add_argument(
        "--recipes",
        nargs="+",
        default=[DEFAULT_RECIPE],
        metavar="RECIPE",
        help=f"stage-2 recipes over each loss's stage-1 run: {', '.join(recipe_names())} (default: "
        f"{DEFAULT_RECIPE}, OLTR's; the others are the decoupled classifiers of Kang et al. "
        "2020, each in stage2_<loss>_<recipe>/)",
    )
    parser.add_argument(
        "--replay-published",
        action="store_true",
        help="replay the CFL fork's OLTR runs: its reference xi schedule with its loss-local "
        f"epochs (config/replay_published/<loss>.py, for cfl and casl), on "
        f"{' and '.join(PUBLISHED_DATASETS)}, into {REPLAY_LOGS}/ and {REPLAY_OUT}/",
    )
    parser.add_argument("--dry-run", action="store_true", help="print the plan's commands without running them")
    parser.add_argument(
        "--skip-done",
        action="store_true",
        help="keep steps whose checkpoint or results file exists and run the others (an "
        "interrupted training continues from its last finished epoch)",
    )
    parser.add_argument(
        "--overwrite",
        action="store_true",
        help="run every step again, moving each run already there aside to "
        "<log_dir>.old-<timestamp> (default: a sweep over existing runs is refused before "
        "anything runs, unless --skip-done)",
    )
    parser.add_argument(
        "--logs",
        default=None,
        help=f"root of the runs' log dirs and of {SWEEP_FILE} (default: logs; with --replay-published: {REPLAY_LOGS})",
    )
    parser.add_argument(
        "--out",
        default=None,
        help=f"where the report writes its tables (default: results; with --replay-published: {REPLAY_OUT})",
    )
    parser.add_argument(
        "--executor",
        choices=("local", "slurm"),
        default="local",
        help="local: this machine's CPU or GPUs (default); slurm: one SLURM job per step (submitit)",
    )
    parser.add_argument(
        "--gpus-per-step",
        type=_positive,
        default=None,
        metavar="K",
        help="GPUs of each training step, DDP over them (torchrun locally; K tasks per node on "
        "SLURM) (default: 1 where there are GPUs)",
    )
    local = parser.add_argument_group("local executor")
    local.add_argument(
        "--jobs",
        type=_positive,
        default=None,
        metavar="N",
        help="steps at a time (default: one per visible GPU, or per K GPUs; 1 on a CPU)",
    )
    local.add_argument(
        "--threads-per-step",
        type=_positive,
        default=None,
        metavar="T",
        help="CPU threads of each step (default: the cores split between the --jobs; with one "
        "job, torch's own default)",
    )
    slurm = parser.add_argument_group("SLURM executor (--executor slurm)")
    slurm.add_argument("--partition", help="sbatch --partition (default: the cluster's)")
    slurm.add_argument("--account", help="sbatch --account")
    slurm.add_argument("--qos", help="sbatch --qos")
    slurm.add_argument(
        "--time",
        type=_positive,
        default=1440,
        metavar="MINUTES",
        help="time limit of each job in minutes (default: 1440); a job that reaches it is requeued and resumes",
    )
    slurm.add_argument("--cpus-per-step", type=_positive, default=None, metavar="C", help="CPUs of each job (per node)")
    slurm.add_argument(
        "--mem-per-step", type=_positive, default=None, metavar="GB", help="memory of each job (per node)"
    )
    slurm.add_argument(
        "--nodes-per-step",
        type=_positive,
        default=1,
        metavar="M",
        help="nodes of each training job, --gpus-per-step on each (multi-node DDP) (default: 1)",
    )
    slurm.add_argument(
        "--sbatch-arg",
        type=_key_value,
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="any other sbatch option, e.g. --sbatch-arg constraint=a100 (repeatable)",
    )
    slurm.add_argument(
        "--signal-delay",
        type=_positive,
        default=120,
        metavar="S",
        help="seconds before the time limit at which SLURM signals a job to stop and requeue (default: 120)",
    )
    slurm.add_argument(
        "--poll",
        type=float,
        default=10.0,
        metavar="S",
        help="seconds between two looks at the queue while following the jobs (default: 10)",
    )
    slurm.add_argument(
        "--detach", action="store_true", help="submit and return; `oltr sweep status LOGS` follows the jobs"
    )
    return parser
