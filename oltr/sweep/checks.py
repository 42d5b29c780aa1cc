"""What the sweep checks before anything runs: the losses and recipes asked for, each dataset's files,
where the steps run from, and the runs or jobs already there.
"""

import inspect
from pathlib import Path

from ..common.errors import OltrError
from ..config.schema import load_config
from ..engine.run_dir import existing_run
from ..recipes import recipe_names
from .plan import LOSSES, base_configs, check_dataset
from .state import SWEEP_FILE, load_state

# What to fetch for the datasets that cannot be built here.
DOWNLOAD_HINTS = {
    "ImageNet_LT": "OLTR's ImageNet_LT_{train,val,test,open}.txt split files and ImageNet_LT_open/ images (the "
    "Google Drive folder linked from the README of zhmiao/OpenLongTailRecognition-OLTR) and the "
    "ImageNet 2012 (ILSVRC2012) train and val images, val sorted into class folders",
    "Places_LT": "OLTR's Places_LT_{train,val,test,open}.txt split files and Places_LT_open/ images (the Google "
    "Drive folder linked from the README of zhmiao/OpenLongTailRecognition-OLTR) and the "
    "Places365-Standard 256x256 train and val images (data_256/, val_256/)",
    "iNaturalist18": "classifier-balancing's iNaturalist18_{train,val}.txt and the 2018 train_val2018/ images, "
    "then write the test and open splits with python -m oltr.data inat18 --open_split ... (docs/datasets.md)",
}


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
            described.append(
                f"{name!r} (a feature loss: it scores features, not logits, and stage 2 already "
                "uses it as criterions.FeatureLoss)"
            )
        else:
            close = closest_name(name, choices)
            described.append(repr(name) + (f" (did you mean {close!r}?)" if close else ""))
    others = [name for name in choices if name not in LOSSES]
    return (
        f"unknown loss(es) {', '.join(described)} for --losses; choose from the table's {', '.join(LOSSES)} "
        f"or any other registry loss: {', '.join(others)}"
    )


def check_recipes(names):
    """One line naming each unknown ``--recipes`` name and its closest match; None if all are known."""
    from losses.registry import closest_name

    known = recipe_names()
    unknown = [name for name in names if name not in known]
    if not unknown:
        return None
    described = [
        repr(name) + (f" (did you mean {close!r}?)" if close else "")
        for name, close in ((name, closest_name(name, known)) for name in unknown)
    ]
    return f"unknown recipe(s) {', '.join(described)} for --recipes; choose from {', '.join(known)}"


def check_data_present(dataset):
    """Stop with what to download, and where to put it, when a dataset's files are missing."""
    check_dataset(dataset)
    training_opt = load_config(base_configs(dataset)[0])["training_opt"]
    from ..data.loaders import prepare_data  # imports torch: only when really running

    prepare_data(training_opt)  # Digits_LT is built, CIFAR*_LT exported (or a DataError saying what to download)
    split_dir, data_root = Path(training_opt["split_dir"]), Path(training_opt["data_root"])
    # the split files' prefix is the config's dataset: a config folder may hold another backbone's runs of it
    prefix = training_opt["dataset"]
    missing = [
        split_dir / f"{prefix}_{split}.txt"
        for split in ("train", "val", "test", "open")
        if not (split_dir / f"{prefix}_{split}.txt").is_file()
    ]
    hint = DOWNLOAD_HINTS.get(prefix, "the dataset's split files and images")
    if missing:
        raise OltrError(
            f"{dataset}: missing split file(s) {', '.join(map(str, missing))}; download {hint}, "
            f"put the split files in {split_dir}/ and the images under {data_root}/ "
            "(see data/README.md)"
        )
    first_line = (split_dir / f"{prefix}_train.txt").read_text().split("\n", 1)[0].strip()
    first_image = data_root / first_line.rsplit(None, 1)[0] if first_line else None
    if first_image is None or not first_image.is_file():
        raise OltrError(
            f"{dataset}: image {first_image} (first line of {split_dir / (prefix + '_train.txt')}) is "
            f"missing; download {hint} and put the images under {data_root}/ (see data/README.md)"
        )


def check_main_py():
    """The steps run ``python main.py ...`` from the current folder."""
    if not Path("main.py").is_file():
        raise OltrError(
            f"the steps run `python main.py ...` in the current folder, and {Path.cwd()} has no "
            "main.py; run the sweep from the project's folder (./run_all.sh does)"
        )


def refuse_existing_runs(steps, args):
    """A plain rerun over runs already there never replaces them: stop before anything runs."""

    if args.skip_done or args.overwrite:
        return
    held = [step.log_dir for step in steps if step.trains and existing_run(step.log_dir)]
    if held:
        raise OltrError(
            f"{len(held)} run directories already hold runs (first: {held[0]}); nothing was run. "
            "Pass --skip-done to keep finished steps and continue the others, --overwrite to move "
            "them aside (<log_dir>.old-<timestamp>) and run everything again, or another --logs"
        )


def refuse_live_jobs(logs):
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

    ids = [
        r["job_id"]
        for r in data["steps"]
        if isinstance(r, dict) and r.get("job_id") and r.get("state") in ("pending", "running")
    ]
    live = [job for job, (name, _) in squeue_states(ids).items() if name in WAITING + RUNNING]
    if live:
        raise OltrError(
            f"{len(live)} jobs of the last submission to {logs} are still queued or running (first: "
            f"{live[0]}); wait for them (oltr sweep status {logs}) or cancel them (scancel "
            f"{' '.join(live)}), then run the sweep again"
        )
