"""The Tables 3-4 sweep behind ``./run_all.sh``: every loss, both stages, both tests, then the report.

Each run is the documented command line (``python main.py --config ... --opts ...``)
in its own process, writing into its own log_dir, so a user can re-run any step by hand.
"""
import argparse
import shlex
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from .config import load_config
from .errors import OltrError

LOSSES = ("softmax", "focal", "asl", "cfl", "casl")
DEFAULT_DATASETS = ("Digits_LT",)

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

    def text(self):
        return " ".join(shlex.quote(part) for part in self.command)


def config_paths(dataset, loss):
    root = Path("config") / dataset
    if loss == "softmax":
        return root / "stage_1.py", root / "stage_2_meta_embedding.py"
    return root / f"stage_1_{loss}.py", root / f"stage_2_{loss}_meta_embedding.py"


def plan(dataset, loss, seed, num_seeds, python=sys.executable, logs_root="logs"):
    """The four steps of one (dataset, loss, seed), with per-seed log dirs when several seeds run."""
    stage1_config, stage2_config = config_paths(dataset, loss)
    for path in (stage1_config, stage2_config):
        if not path.is_file():
            raise OltrError(f"{dataset} has no config {path} for loss {loss!r}; add it or drop {loss!r} from --losses")
    run_root = Path(logs_root) / dataset / (f"seed{seed}" if num_seeds > 1 else "")
    stage1_dir, stage2_dir = run_root / f"stage1_{loss}", run_root / f"stage2_{loss}"
    common = [f"seed={seed}"]
    stage1_opts = common + [f"training_opt.log_dir={stage1_dir}"]
    stage2_opts = common + [f"training_opt.log_dir={stage2_dir}", f"training_opt.stage1_log_dir={stage1_dir}"]
    main = [python, "main.py"]
    return [
        Step(dataset, loss, seed, "stage1", main + ["--config", str(stage1_config), "--opts", *stage1_opts],
             stage1_dir, stage1_dir / "final_model_checkpoint.pth"),
        Step(dataset, loss, seed, "stage2", main + ["--config", str(stage2_config), "--opts", *stage2_opts],
             stage2_dir, stage2_dir / "final_model_checkpoint.pth"),
        Step(dataset, loss, seed, "test", main + ["--config", str(stage2_config), "--test", "--opts", *stage2_opts],
             stage2_dir, stage2_dir / "results_test_closed.json"),
        Step(dataset, loss, seed, "test_open",
             main + ["--config", str(stage2_config), "--test_open", "--opts", *stage2_opts],
             stage2_dir, stage2_dir / "results_test_open.json"),
    ]


def check_data_present(dataset):
    """Stop with what to download, and where to put it, when a dataset's files are missing."""
    stage1_config, _ = config_paths(dataset, "softmax")
    if not stage1_config.is_file():
        known = sorted(p.name for p in Path("config").iterdir() if p.is_dir())
        raise OltrError(f"unknown dataset {dataset!r}: no {stage1_config}; datasets with configs: {', '.join(known)}")
    training_opt = load_config(stage1_config)["training_opt"]
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


def run_step(step):
    """Run one step, its output teed into its log_dir; returns (ok, seconds, last lines of output)."""
    step.log_dir.mkdir(parents=True, exist_ok=True)
    log_path = step.log_dir / f"{step.phase}.out"
    started = time.perf_counter()
    with open(log_path, "w", encoding="utf-8") as log:
        process = subprocess.run(step.command, stdout=log, stderr=subprocess.STDOUT)
    seconds = time.perf_counter() - started
    tail = log_path.read_text(encoding="utf-8", errors="replace").strip().splitlines()[-5:]
    return process.returncode == 0, seconds, tail


def build_parser():
    parser = argparse.ArgumentParser(
        prog="run_all.sh",
        description="Train every loss through both OLTR stages, test closed- and open-set, and print the "
                    "paper's Tables 3-4 with our numbers. With no dataset it runs the embedded Digits_LT.")
    parser.add_argument("datasets", nargs="*", default=list(DEFAULT_DATASETS),
                        help="datasets with configs under config/ (default: Digits_LT)")
    parser.add_argument("--seeds", type=int, default=1, help="repeat every run with seeds 0..N-1 (default: 1)")
    parser.add_argument("--losses", nargs="+", default=list(LOSSES), metavar="LOSS",
                        help=f"a subset of {', '.join(LOSSES)} (default: all)")
    parser.add_argument("--dry-run", action="store_true", help="print the commands without running them")
    parser.add_argument("--skip-done", action="store_true",
                        help="skip steps whose checkpoint or results file already exists")
    parser.add_argument("--logs", default="logs", help="root of the runs' log dirs (default: logs)")
    parser.add_argument("--out", default="results", help="where the report writes its tables (default: results)")
    return parser


def sweep(args):
    if args.seeds < 1:
        raise OltrError(f"--seeds must be at least 1, got {args.seeds}")
    steps = []
    for dataset in args.datasets:
        if not args.dry_run:
            check_data_present(dataset)
        for seed in range(args.seeds):
            for loss in args.losses:
                steps.extend(plan(dataset, loss, seed, args.seeds, logs_root=args.logs))
    report = [sys.executable, "-m", "oltr.report", *[str(Path(args.logs) / d) for d in args.datasets],
              "--out", args.out]
    if args.dry_run:
        for step in steps:
            print(step.text())
        print(" ".join(shlex.quote(part) for part in report))
        return 0
    started, skipped = time.perf_counter(), 0
    for number, step in enumerate(steps, 1):
        label = f"[{number}/{len(steps)}] {step.dataset} {step.loss} seed {step.seed} {step.phase}"
        if args.skip_done and step.done_marker.is_file():
            print(f"{label}: done already, skipped", flush=True)
            skipped += 1
            continue
        ok, seconds, tail = run_step(step)
        if not ok:
            print(f"{label}: FAILED after {seconds:.0f}s\n  command: {step.text()}\n  output ({step.log_dir}/"
                  f"{step.phase}.out), last lines:\n    " + "\n    ".join(tail), file=sys.stderr)
            return 1
        print(f"{label}: {seconds:.0f}s", flush=True)
    print(f"ran {len(steps) - skipped} of {len(steps)} steps in {time.perf_counter() - started:.0f}s"
          + (f" ({skipped} done already)" if skipped else "") + "; the report:", flush=True)
    return subprocess.run(report).returncode


def main(argv=None):
    args = build_parser().parse_args(argv)
    unknown = sorted(set(args.losses) - set(LOSSES))
    if unknown:
        print(f"error: unknown loss(es) {', '.join(unknown)} for --losses; choose from {', '.join(LOSSES)}",
              file=sys.stderr)
        return 2
    try:
        return sweep(args)
    except OltrError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
