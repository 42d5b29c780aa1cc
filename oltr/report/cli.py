"""The report's command line.

    python -m oltr.report RESULTS_DIR... [--out results] [--format md,csv,tex] [--no-plots]

Also ``oltr report ...`` (oltr/cli.py hands its arguments to ``main``). Writes, per dataset,
``<out>/<dataset>/table.{md,csv,tex}``, the open-set scorers' table (in table.md and ``scorers.csv``) and
the plots, and prints each Markdown table.
"""

import argparse
import hashlib
import json
import re
import sys
from pathlib import Path

from ..common.run_files import RESULTS_CLOSED, RESULTS_OPEN
from .aggregate import build_table
from .collect import collect_results, datasets_of, print_warning
from .formats import format_csv, format_latex, format_markdown, format_sentences
from .html import write_html_report
from .paired import DEFAULT_RESAMPLES, DEFAULT_SEED, closing_sentences, paired_rows, paired_sentences
from .plots import matplotlib_available, plot_per_class_accuracy, plot_xi_schedule
from .plots_rigor import plot_f_measure_curves, plot_reliability
from .scorers import format_scorer_csv, format_scorer_markdown, plot_auroc_by_shot, scorer_rows

FORMATS = ("md", "csv", "tex")


def _formats(text):
    chosen = [part.strip() for part in text.split(",") if part.strip()]
    unknown = sorted(set(chosen) - set(FORMATS))
    if unknown or not chosen:
        raise argparse.ArgumentTypeError(f"--format takes a comma list of {', '.join(FORMATS)}; got {text!r}")
    return chosen


def _parser():
    parser = argparse.ArgumentParser(
        prog="python -m oltr.report",
        description=f"Tables 3-4 (Markdown, CSV, LaTeX) and plots from {RESULTS_CLOSED} and {RESULTS_OPEN} files.",
    )
    parser.add_argument("dirs", nargs="+", metavar="RESULTS_DIR", help="directories searched recursively")
    parser.add_argument("--out", default="results", help="output directory (default: results)")
    parser.add_argument(
        "--format",
        type=_formats,
        default=list(FORMATS),
        help="comma list of table files to write: md,csv,tex (default: all)",
    )
    parser.add_argument("--no-plots", action="store_true", help="do not draw the PNG plots")
    parser.add_argument(
        "--ci-resamples",
        type=int,
        default=DEFAULT_RESAMPLES,
        help=f"paired-bootstrap resamples of the differences to the baseline rows (default: {DEFAULT_RESAMPLES})",
    )
    parser.add_argument(
        "--ci-seed", type=int, default=DEFAULT_SEED, help=f"seed of the paired bootstrap (default: {DEFAULT_SEED})"
    )
    parser.add_argument("--no-html", action="store_true", help="do not write <out>/report.html")
    parser.add_argument(
        "--sweep",
        metavar="SWEEP_JSON",
        help="a sweep's sweep.json: name the planned runs whose tests have no results (yet)",
    )
    return parser


def _safe_name(dataset):
    return re.sub(r"[^\w.-]", "_", dataset)


def dataset_folders(datasets, warn=print_warning):
    """{dataset: folder under --out}: its safe name, made unique where two datasets share one ("My LT", "My_LT")."""
    folders, owner = {}, {}
    for dataset in sorted(datasets):
        folder = _safe_name(dataset)
        if folder in owner:
            unique = f"{folder}-{hashlib.sha256(dataset.encode()).hexdigest()[:8]}"
            warn(
                f"datasets {owner[folder]!r} and {dataset!r} make one folder name, {folder}; "
                f"{dataset!r} goes to {unique}"
            )
            folder = unique
        owner[folder] = dataset
        folders[dataset] = folder
    return folders


def write_dataset_report(
    results,
    dataset,
    out_dir,
    formats=FORMATS,
    plots=True,
    warn=print_warning,
    resamples=DEFAULT_RESAMPLES,
    seed=DEFAULT_SEED,
    folder=None,
):
    """Write table.{md,csv,tex} (and plots) for one dataset into ``<out_dir>/<folder>`` (default: its safe name);
    returns {dataset, rows, sentences, markdown, images}."""
    rows = build_table(results, dataset, warn=warn)
    paired, notes = paired_rows(results, dataset, resamples, seed)
    rows = rows + paired
    sentences = paired_sentences(paired) + notes + closing_sentences(paired)
    target = Path(out_dir) / (folder or _safe_name(dataset))
    target.mkdir(parents=True, exist_ok=True)
    markdown = format_markdown(rows, dataset, results) + ("\n" + format_sentences(sentences) if sentences else "")
    scorers = scorer_rows(results, dataset)
    if scorers:
        markdown += "\n" + format_scorer_markdown(scorers, dataset)
        if "csv" in formats:
            (target / "scorers.csv").write_text(format_scorer_csv(scorers), encoding="utf-8")
    writers = {
        "md": lambda: markdown,
        "csv": lambda: format_csv(rows),
        "tex": lambda: format_latex(rows, dataset, sentences),
    }
    for extension in formats:
        (target / f"table.{extension}").write_text(writers[extension](), encoding="utf-8")
    images = {}
    if plots:
        drawers = {
            "per_class_accuracy.png": lambda path: plot_per_class_accuracy(results, dataset, path),
            "xi_schedule.png": lambda path: plot_xi_schedule(results, dataset, path, warn=warn),
            "f_measure_curve.png": lambda path: plot_f_measure_curves(results, dataset, path),
            "reliability.png": lambda path: plot_reliability(results, dataset, path),
            "auroc_by_shot.png": lambda path: plot_auroc_by_shot(scorers, dataset, path),
        }
        images = {name: target / name for name, draw in drawers.items() if draw(target / name)}
    return {
        "dataset": dataset,
        "rows": rows,
        "sentences": sentences,
        "markdown": markdown,
        "images": images,
        "scorers": scorers,
    }


def main(argv=None):
    args = _parser().parse_args(argv)
    missing = [directory for directory in args.dirs if not Path(directory).is_dir()]
    if missing:
        print(
            f"error: RESULTS_DIR {missing[0]} is not a directory; name the log directories of your runs "
            "(e.g. logs/Digits_LT)",
            file=sys.stderr,
        )
        return 2
    results = collect_results(args.dirs)
    if not results:
        print(
            f"error: no usable {RESULTS_CLOSED} or {RESULTS_OPEN} under {', '.join(args.dirs)}; test a run "
            "first (python main.py --config ... --test)",
            file=sys.stderr,
        )
        return 2
    plots = not args.no_plots and matplotlib_available()
    if not args.no_plots and not plots:
        print_warning("matplotlib is not installed; plots skipped (pip install matplotlib)")
    if args.ci_resamples < 1:
        print(f"error: --ci-resamples must be at least 1, got {args.ci_resamples}", file=sys.stderr)
        return 2
    reports = []
    try:
        folders = dataset_folders(datasets_of(results))
        for dataset in datasets_of(results):
            reports.append(
                write_dataset_report(
                    results,
                    dataset,
                    args.out,
                    args.format,
                    plots,
                    resamples=args.ci_resamples,
                    seed=args.ci_seed,
                    folder=folders[dataset],
                )
            )
            print(reports[-1]["markdown"])
        if not args.no_html:
            print(f"wrote {write_html_report(reports, Path(args.out) / 'report.html')}")
    except OSError as error:
        print(f"error: cannot write {error.filename or args.out}: {error.strerror or error}", file=sys.stderr)
        return 2
    print(f"tables written under {args.out}/")
    for line in missing_runs(args.sweep) if args.sweep else ():
        print(line)
    return 0


def missing_runs(sweep_file):
    """One line per test step of the sweep whose results are not there: the report does not cover those runs."""
    try:
        steps = json.loads(Path(sweep_file).read_text(encoding="utf-8"))["steps"]
        tests = [(s["label"], s["log_dir"], s["done_marker"], s["state"]) for s in steps if s["phase"] == "test"]
    except (OSError, ValueError, KeyError, TypeError) as error:
        return [f"warning: cannot read the runs planned in {sweep_file} ({error}); the missing runs are not named"]
    missing = [
        f"missing: {label} ({log_dir}): {state}"
        for label, log_dir, marker, state in tests
        if not Path(marker).is_file()
    ]
    if missing:
        missing.insert(
            0, f"{len(missing)} of the {len(tests)} planned runs have no results; the tables leave them out:"
        )
    return missing
