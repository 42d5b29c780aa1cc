"""The plan of a sweep: every step with its exact command, log dir, done marker and the steps it waits for.

Per (dataset, seed, loss): ``stage1`` trains the loss's stage-1 run; for each stage-2 recipe
``stage2`` trains over that stage-1 run and ``test`` scores it closed- and open-set in one command
(``main.py ... --test --test_open``). The ``report`` comes last and waits for every test, whatever
their outcome (SLURM's ``afterany``): it covers the finished runs and names the missing ones.

A dataset needs only ``config/<Dataset>/stage_1.py`` and ``stage_2_meta_embedding.py``. Any
performance loss of the registry runs on it, its stage config found in this order: the dataset's own
``stage_1_<loss>.py`` / ``stage_2_<loss>_<recipe>.py``, else the base file with the shared loss
overlay ``config/losses/<loss>.py``, else the base file with the registry loss at its defaults
(``--opts criterions.PerformanceLoss.loss=<loss> criterions.PerformanceLoss.loss_params={}``).
``--replay-published`` adds ``config/replay_published/<loss>.py`` where one exists (cfl, casl).
A decoupled recipe ``R`` writes ``stage2_<loss>_<R>`` beside the meta-embedding's ``stage2_<loss>``.
"""

import shlex
from dataclasses import dataclass, field
from pathlib import Path

from ..common.errors import ConfigError, OltrError
from ..common.run_files import FINAL_CHECKPOINT, RESULTS_OPEN
from ..config.schema import load_config
from ..recipes import get_recipe, resolve

LOSSES = ("softmax", "focal", "asl", "cfl", "casl")  # the rows of Tables 3-4, the default --losses
DEFAULT_RECIPE = "meta_embedding"  # OLTR's stage 2, the default --recipes
CONFIG_ROOT = Path("config")
LOSS_OVERLAYS = CONFIG_ROOT / "losses"
REPLAY_OVERLAYS = CONFIG_ROOT / "replay_published"
TRAINING_PHASES = ("stage1", "stage2")
# The programs a step runs: its command is ``python <words...> <argv...>``, and its entry point is the
# function that command calls (the local executor calls it in a fresh process, without a new interpreter).
PROGRAMS = {"main": (["main.py"], "oltr.cli:main"), "report": (["-m", "oltr.report"], "oltr.report.cli:main")}


@dataclass
class Step:
    """One command of the sweep. ``needs``: the ids of the steps it waits for; ``after_any``: it runs
    once they have ended, however they ended (the report), instead of only after they succeeded."""

    id: str
    phase: str  # stage1, stage2, test, report
    program: str  # a key of PROGRAMS
    argv: list
    log_dir: Path
    done_marker: Path = None  # None: never done before it runs (the report)
    needs: list = field(default_factory=list)
    after_any: bool = False
    dataset: str = ""
    loss: str = ""
    seed: int = 0
    recipe: str = ""

    def command(self, python="python"):
        return [python, *PROGRAMS[self.program][0], *self.argv]

    def text(self, python="python"):
        return " ".join(shlex.quote(part) for part in self.command(python))

    @property
    def out_file(self):
        """Where the step's output goes: ``<log_dir>/<phase>.out``."""
        return self.log_dir / f"{self.phase}.out"

    @property
    def trains(self):
        return self.phase in TRAINING_PHASES

    def is_done(self):
        return self.done_marker is not None and self.done_marker.is_file()

    def label(self):
        recipe = f" {self.recipe}" if self.recipe and self.recipe != DEFAULT_RECIPE and self.phase != "stage1" else ""
        if self.phase == "report":
            return "report"
        return f"{self.dataset} {self.loss}{recipe} seed {self.seed} {self.phase}"


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
        raise OltrError(
            f"unknown dataset {dataset!r}: no {' or '.join(missing)}; datasets with configs: "
            f"{', '.join(datasets_with_configs())}"
        )


def check_recipe_configs(dataset, recipes):
    missing = [
        str(recipe_config(dataset, recipe)) for recipe in recipes if not recipe_config(dataset, recipe).is_file()
    ]
    if missing:
        raise OltrError(
            f"{dataset} has no {', '.join(missing)}; write it over stage_1.py and "
            "config/recipes/<that recipe's file> as the other datasets do, or drop it from --recipes"
        )


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
    """Load the config a step will run and resolve its recipe, so a broken file, overlay or recipe setting
    stops the sweep before anything runs."""
    overlays = [args[i + 1] for i, arg in enumerate(args) if arg == "--overlay"]
    path = args[args.index("--config") + 1]
    config = load_config(path, opts, overlays=overlays)
    resolve(config, where=path)
    # the losses too: a bad loss parameter of an overlay stops the sweep here, not when its step runs
    from ..engine.optim import build_criterions  # imports torch and the loss registry

    try:
        build_criterions(config, [1] * config["training_opt"]["num_classes"])
    except ConfigError as error:
        where = path + "".join(f" + {overlay}" for overlay in overlays) + (" (with --opts)" if opts else "")
        raise ConfigError(f"{where}: {error}") from None


def stage2_dir_name(loss, recipe):
    """stage2_<loss> plus the recipe's run-dir suffix: none for the meta-embedding, _<recipe> for the others."""
    return f"stage2_{loss}{get_recipe(recipe).run_dir_suffix}"


def run_steps(dataset, loss, seed, num_seeds, logs_root="logs", replay=False, recipes=(DEFAULT_RECIPE,)):
    """The steps of one (dataset, loss, seed): stage 1, then each recipe's stage 2 and its test.

    Training steps carry ``--resume``: a fresh run simply starts, and an interrupted one (Ctrl-C, a
    SLURM time limit) continues from its last finished epoch.
    """
    check_dataset(dataset)
    check_recipe_configs(dataset, recipes)
    run_root = Path(logs_root) / dataset / (f"seed{seed}" if num_seeds > 1 else "")
    key = f"{dataset}/seed{seed}/{loss}"
    about = dict(dataset=dataset, loss=loss, seed=seed)
    stage1_dir = run_root / f"stage1_{loss}"
    stage1_args, stage1_loss_opts = stage_command(dataset, loss, 1, replay)
    stage1_opts = [f"seed={seed}", f"training_opt.log_dir={stage1_dir}", *stage1_loss_opts]
    _check_resolves(stage1_args, stage1_opts)
    stage1 = Step(
        f"{key}/stage1",
        "stage1",
        "main",
        [*stage1_args, "--resume", "--opts", *stage1_opts],
        stage1_dir,
        stage1_dir / FINAL_CHECKPOINT,
        **about,
    )
    steps = [stage1]
    for recipe in recipes:
        stage2_dir = run_root / stage2_dir_name(loss, recipe)
        stage2_args, stage2_loss_opts = stage_command(dataset, loss, 2, replay, recipe)
        stage2_opts = [
            f"seed={seed}",
            f"training_opt.log_dir={stage2_dir}",
            f"training_opt.stage1_log_dir={stage1_dir}",
            *stage2_loss_opts,
        ]
        _check_resolves(stage2_args, stage2_opts)
        stage2 = Step(
            f"{key}/{recipe}/stage2",
            "stage2",
            "main",
            [*stage2_args, "--resume", "--opts", *stage2_opts],
            stage2_dir,
            stage2_dir / FINAL_CHECKPOINT,
            [stage1.id],
            recipe=recipe,
            **about,
        )
        # Both tests in one command: the test split is scored once; the open results are written last.
        test = Step(
            f"{key}/{recipe}/test",
            "test",
            "main",
            [*stage2_args, "--test", "--test_open", "--opts", *stage2_opts],
            stage2_dir,
            stage2_dir / RESULTS_OPEN,
            [stage2.id],
            recipe=recipe,
            **about,
        )
        steps += [stage2, test]
    return steps


def report_step(steps, logs_root, datasets, out):
    """The report over ``datasets``' runs, after every test has ended (its output in ``<logs>/report.out``)."""
    argv = [
        *(str(Path(logs_root) / dataset) for dataset in datasets),
        "--out",
        str(out),
        "--sweep",
        str(Path(logs_root) / "sweep.json"),
    ]
    return Step(
        "report",
        "report",
        "report",
        argv,
        Path(logs_root),
        needs=[step.id for step in steps if step.phase == "test"],
        after_any=True,
    )


def build_plan(datasets, losses, seeds, logs_root, out, replay=False, recipes=(DEFAULT_RECIPE,)):
    """Every step of the sweep in a valid order (each after the steps it needs), the report last."""
    steps = []
    for dataset in datasets:
        for seed in range(seeds):
            for loss in losses:
                steps += run_steps(dataset, loss, seed, seeds, logs_root, replay, recipes)
    return steps + [report_step(steps, logs_root, datasets, out)]


def dependents(steps, failed_id):
    """The ids of every step that waits, directly or not, for ``failed_id`` to succeed."""
    found, frontier = set(), {failed_id}
    while frontier:
        frontier = {step.id for step in steps if not step.after_any and set(step.needs) & frontier} - found
        found |= frontier
    return found
