"""Tables 3-4 of the cyclical focal loss paper from our results files, plus plots.

    python -m oltr.report RESULTS_DIR... [--out results] [--format md,csv,tex] [--no-plots]

Finds every ``results_test_closed.json`` / ``results_test_open.json`` under the given
directories, groups them by dataset, and writes one table per dataset in the layout of
Tables 3 (ImageNet-LT) and 4 (Places-LT): rows OLTR, OLTR + FL, OLTR + ASL, OLTR + CFL, OLTR + CASL (then
any other loss), columns closed-set many/medium/few/average top-1 and open-set
many/medium/few top-1 and F-measure. Several seeds give mean +- sample std. For
ImageNet_LT and Places_LT the paper's published rows and our difference sit under ours.
"""
import argparse
import csv
import inspect
import io
import json
import math
import re
import statistics
import sys
from pathlib import Path

RESULT_FILES = {"results_test_closed.json": "closed", "results_test_open.json": "open"}
FORMATS = ("md", "csv", "tex")
CYCLICAL_LOSSES = ("cfl", "casl")
DEFAULT_XI_POINTS = 10

# Row order and names of Tables 3-4; other losses follow as "OLTR + <NAME>".
LOSS_ORDER = ("softmax", "focal", "asl", "cfl", "casl")
LOSS_LABELS = {"softmax": "OLTR", "focal": "OLTR + FL", "asl": "OLTR + ASL", "cfl": "OLTR + CFL", "casl": "OLTR + CASL"}

# (key, header, setting, results key, percent?) -- accuracies shown in %, F-measure as is.
COLUMNS = (
    ("closed_many", "Closed many", "closed", "many_shot_top1", True),
    ("closed_medium", "Closed medium", "closed", "medium_shot_top1", True),
    ("closed_few", "Closed few", "closed", "few_shot_top1", True),
    ("closed_average", "Closed avg", "closed", "overall_top1", True),
    ("open_many", "Open many", "open", "many_shot_top1", True),
    ("open_medium", "Open medium", "open", "medium_shot_top1", True),
    ("open_few", "Open few", "open", "few_shot_top1", True),
    ("open_f_measure", "Open F", "open", "f_measure", False),
)

# Published numbers, in COLUMNS order: Table 3 (ImageNet-LT) and Table 4 (Places-LT) of
# the cyclical focal loss paper (Smith 2022). Accuracies in %, F-measure in [0, 1].
PUBLISHED = {
    "ImageNet_LT": {
        "source": "Table 3 of the cyclical focal loss paper (ImageNet-LT)",
        "rows": {
            "softmax": (43.2, 35.1, 18.5, 32.3, 41.9, 33.9, 17.4, 0.474),
            "focal": (46.7, 36.5, 16.0, 33.1, 45.2, 34.8, 15.1, 0.446),
            "asl": (45.8, 37.6, 18.5, 33.9, 44.2, 36.3, 17.5, 0.450),
            "cfl": (42.6, 37.7, 23.3, 34.5, 40.0, 35.4, 21.7, 0.445),
            "casl": (42.5, 37.4, 22.8, 34.2, 39.8, 35.1, 21.2, 0.441),
        },
    },
    "Places_LT": {
        "source": "Table 4 of the cyclical focal loss paper (Places-LT)",
        "rows": {
            "softmax": (44.7, 37.0, 25.3, 35.9, 44.6, 36.8, 25.2, 0.464),
            "focal": (43.4, 39.7, 27.1, 36.7, 43.3, 39.4, 26.8, 0.493),
            "asl": (44.4, 39.9, 28.4, 37.6, 44.2, 39.5, 27.9, 0.499),
            "cfl": (43.0, 40.7, 30.8, 38.2, 42.5, 40.2, 30.0, 0.502),
            "casl": (43.7, 39.8, 31.9, 38.5, 43.4, 39.3, 31.3, 0.503),
        },
    },
}


def _warn(message):
    print(f"warning: {message}", file=sys.stderr)


# ---------------------------------------------------------------- reading results

def _load_result(path, warn):
    """One results file as a dict, or None (with one warning line naming the file)."""
    try:
        with open(path, encoding="utf-8") as handle:
            result = json.load(handle)
    except json.JSONDecodeError as error:
        warn(f"skipping {path}: malformed JSON at line {error.lineno} column {error.colno} ({error.msg})")
        return None
    except (OSError, UnicodeDecodeError) as error:
        warn(f"skipping {path}: cannot read it ({error})")
        return None
    if not isinstance(result, dict):
        warn(f"skipping {path}: expected a JSON object, found {type(result).__name__}")
        return None
    for key in ("dataset", "loss"):
        if not isinstance(result.get(key), str) or not result[key]:
            warn(f"skipping {path}: key {key!r} is missing or not a string")
            return None
    result = dict(result)
    result["setting"] = RESULT_FILES[Path(path).name]  # the file name decides, whatever the body says
    result["_source"] = str(path)
    return result


def collect_results(dirs, warn=_warn):
    """Every readable results_test_{closed,open}.json under ``dirs`` (searched recursively).

    Each dict is the file's content plus ``setting`` (from the file name) and ``_source``
    (its path). Unreadable files are skipped with a warning.
    """
    results, seen = [], set()
    for directory in dirs:
        root = Path(directory)
        if not root.is_dir():
            warn(f"skipping {root}: not a directory")
            continue
        for path in sorted(root.rglob("results_test_*.json")):
            if path.name not in RESULT_FILES or path.resolve() in seen:
                continue
            seen.add(path.resolve())
            result = _load_result(path, warn)
            if result is not None:
                results.append(result)
    return results


def datasets_of(results):
    return sorted({result["dataset"] for result in results})


# ---------------------------------------------------------------- building the table

def _stage_of(result):
    """'1', '2', ... from 1, '2', 'stage_2'; None when not recorded."""
    stage = result.get("stage")
    if stage is None:
        return None
    digits = re.findall(r"\d+", str(stage))
    return digits[-1] if digits else str(stage)


def _loss_label(loss):
    return LOSS_LABELS.get(loss, f"OLTR + {loss.upper()}")


def _loss_sort_key(loss):
    return (LOSS_ORDER.index(loss), "") if loss in LOSS_ORDER else (len(LOSS_ORDER), loss)


def _published_for(dataset):
    """The paper's rows for a dataset name, tolerant of 'ImageNet-LT' vs 'ImageNet_LT'."""
    wanted = re.sub(r"[^a-z0-9]", "", dataset.lower())
    for name, table in PUBLISHED.items():
        if re.sub(r"[^a-z0-9]", "", name.lower()) == wanted:
            return table
    return None


def _number(value):
    return value if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value) else None


def _aggregate(runs, results_key, percent):
    """Cell over seeds: None (no run: a gap), or {mean, std, n} with mean None for 'n/a'."""
    if not runs:
        return None
    scale = 100.0 if percent else 1.0
    values = [scale * value for value in (_number(run.get(results_key)) for run in runs) if value is not None]
    if not values:
        return {"mean": None, "std": None, "n": 0}
    std = statistics.stdev(values) if len(values) > 1 else None  # sample std, ddof=1
    return {"mean": statistics.fmean(values), "std": std, "n": len(values)}


def _group_runs(results, dataset):
    """{(loss, stage): {"closed": [...], "open": [...]}} for one dataset, in table order."""
    groups = {}
    for result in results:
        if result["dataset"] != dataset:
            continue
        key = (result["loss"], _stage_of(result))
        groups.setdefault(key, {"closed": [], "open": []})[result["setting"]].append(result)
    order = sorted(groups, key=lambda key: (_loss_sort_key(key[0]), key[1] or ""))
    return {key: groups[key] for key in order}


def _warn_mixed_params(runs, label, warn):
    params = {json.dumps(run.get("loss_params"), sort_keys=True, default=str) for run in runs}
    if len(params) > 1:
        warn(f"{label}: averaging runs with different loss_params: {', '.join(sorted(params))}")


def build_table(results, dataset, warn=_warn):
    """Rows of the Tables 3-4 layout for ``dataset``.

    Each row: {kind: "ours" | "paper" | "diff", label, loss, stage, cells, num_closed, num_open};
    cells maps each COLUMNS key to None (no results: a gap), or {mean, std, n} in display
    units (accuracies in %), mean None meaning "n/a" (e.g. an empty shot group).
    Paper and difference rows follow our row of the same loss; differences are ours - paper,
    for stage-2 (or stage-less) results only, since the paper's tables are of full OLTR.
    """
    groups = _group_runs(results, dataset)
    published = _published_for(dataset)
    paper_rows = published["rows"] if published else {}
    several_stages = len({stage for _, stage in groups}) > 1
    rows, losses_shown = [], set()

    def paper_row(loss):
        cells = {key: {"mean": value, "std": None, "n": 1}
                 for (key, *_), value in zip(COLUMNS, paper_rows[loss])}
        return {"kind": "paper", "label": f"{_loss_label(loss)} (paper)", "loss": loss, "stage": None,
                "cells": cells, "num_closed": 0, "num_open": 0}

    for (loss, stage), runs in groups.items():
        label = _loss_label(loss) + (f" (stage {stage})" if several_stages and stage else "")
        _warn_mixed_params(runs["closed"] + runs["open"], f"{dataset} {label}", warn)
        cells = {key: _aggregate(runs[setting], results_key, percent)
                 for key, _, setting, results_key, percent in COLUMNS}
        ours = {"kind": "ours", "label": label, "loss": loss, "stage": stage, "cells": cells,
                "num_closed": len(runs["closed"]), "num_open": len(runs["open"])}
        rows.append(ours)
        if loss in paper_rows and stage in (None, "2"):
            if loss not in losses_shown:
                rows.append(paper_row(loss))
                losses_shown.add(loss)
            rows.append(_difference_row(ours, paper_row(loss)))
    # the paper's rows we have no comparable result for, still shown as the reference
    for loss in sorted(set(paper_rows) - losses_shown, key=_loss_sort_key):
        insert_at = _insert_position(rows, loss)
        rows.insert(insert_at, paper_row(loss))
    return rows


def _difference_row(ours, paper):
    cells = {}
    for key, *_ in COLUMNS:
        mine, theirs = ours["cells"][key], paper["cells"][key]
        if mine is None or mine["mean"] is None:
            cells[key] = None if mine is None else {"mean": None, "std": None, "n": 0}
        else:
            cells[key] = {"mean": mine["mean"] - theirs["mean"], "std": None, "n": mine["n"]}
    return {"kind": "diff", "label": f"{ours['label']} (ours - paper)", "loss": ours["loss"],
            "stage": ours["stage"], "cells": cells, "num_closed": ours["num_closed"],
            "num_open": ours["num_open"]}


def _insert_position(rows, loss):
    """After every row of losses that come earlier in the table order."""
    for index, row in enumerate(rows):
        if _loss_sort_key(row["loss"]) > _loss_sort_key(loss):
            return index
    return len(rows)


# ---------------------------------------------------------------- formatting

def _decimals(percent):
    return 1 if percent else 3


def _format_cell(cell, percent, kind, plus_minus="±"):
    if cell is None:
        return "-"
    if cell["mean"] is None:
        return "n/a"
    digits = _decimals(percent)
    if kind == "diff":
        return f"{round(cell['mean'], digits) + 0.0:+.{digits}f}"  # + 0.0: no "-0.0"
    text = f"{cell['mean']:.{digits}f}"
    if cell["std"] is not None:
        text += f" {plus_minus} {cell['std']:.{digits}f}"
    return text


def _runs_text(row):
    return f"{row['num_closed']}/{row['num_open']}" if row["kind"] == "ours" else ""


def shot_group_notes(results, dataset):
    """Distinct shot-group descriptions (rule and size) found in a dataset's results."""
    notes = []
    for result in results:
        groups = result.get("shot_groups")
        if result["dataset"] != dataset or not isinstance(groups, dict):
            continue
        parts = []
        for name in ("many", "medium", "few"):
            group = groups.get(name) if isinstance(groups.get(name), dict) else {}
            parts.append(f"{name} {group.get('rule', '?')} ({group.get('num_classes', '?')} classes)")
        note = ", ".join(parts)
        if note not in notes:
            notes.append(note)
    return notes


def format_markdown(rows, dataset, results=()):
    header = ["Method"] + [title for _, title, *_ in COLUMNS] + ["Runs (closed/open)"]
    lines = [f"## {dataset}", "", "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in rows:
        cells = [_format_cell(row["cells"][key], percent, row["kind"]) for key, _, _, _, percent in COLUMNS]
        lines.append("| " + " | ".join([row["label"]] + cells + [_runs_text(row)]) + " |")
    lines += ["", "Top-1 accuracy in %, open F-measure as OLTR defines it; mean ± sample std over seeds; "
              "'-' = no results file, 'n/a' = empty shot group."]
    for note in shot_group_notes(results, dataset):
        lines.append(f"Shot groups by training count: {note}.")
    published = _published_for(dataset)
    if published:
        lines.append(f"Paper rows: {published['source']}; differences are ours - paper (stage-2 results).")
    return "\n".join(lines) + "\n"


def format_csv(rows):
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    header = ["method", "kind", "loss", "stage"]
    for key, *_ in COLUMNS:
        header += [key, f"{key}_std"]
    writer.writerow(header + ["runs_closed", "runs_open"])
    for row in rows:
        line = [row["label"], row["kind"], row["loss"], row["stage"] or ""]
        for key, _, _, _, percent in COLUMNS:
            cell = row["cells"][key]
            digits = _decimals(percent) + 2  # a little more precision than the printed table
            mean = "" if cell is None or cell["mean"] is None else round(cell["mean"], digits)
            std = "" if cell is None or cell["std"] is None else round(cell["std"], digits)
            line += [mean, std]
        writer.writerow(line + [row["num_closed"], row["num_open"]])
    return buffer.getvalue()


_LATEX_SPECIAL = {"&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_", "{": r"\{", "}": r"\}",
                  "~": r"\textasciitilde{}", "^": r"\textasciicircum{}", "\\": r"\textbackslash{}"}


def _latex_escape(text):
    return "".join(_LATEX_SPECIAL.get(char, char) for char in text)


def format_latex(rows, dataset):
    lines = [
        f"% {_latex_escape(dataset)}: top-1 accuracy (%) and open-set F-measure; mean $\\pm$ std over seeds",
        r"\begin{tabular}{l" + "r" * len(COLUMNS) + "}",
        r"\hline",
        r" & \multicolumn{4}{c}{Closed set} & \multicolumn{4}{c}{Open set} \\",
        r"Method & Many & Medium & Few & Avg & Many & Medium & Few & F \\",
        r"\hline",
    ]
    for row in rows:
        cells = [_format_cell(row["cells"][key], percent, row["kind"], plus_minus=r"$\pm$")
                 for key, _, _, _, percent in COLUMNS]
        lines.append(" & ".join([_latex_escape(row["label"])] + cells) + r" \\")
    lines += [r"\hline", r"\end{tabular}"]
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------- plots

def _per_class_series(runs):
    """(class_counts, mean per-class accuracy over seeds) of closed-set runs, or None."""
    import numpy as np

    curves, counts = [], None
    for run in runs:
        per_class, run_counts = run.get("per_class_top1"), run.get("class_counts")
        if not isinstance(per_class, list) or not isinstance(run_counts, list) or len(per_class) != len(run_counts):
            continue
        counts = np.asarray(run_counts, dtype=float) if counts is None else counts
        if len(run_counts) == counts.size:
            curves.append([np.nan if value is None else value for value in per_class])
    if not curves:
        return None
    curves = np.asarray(curves, dtype=float)
    present = ~np.isnan(curves).all(axis=0) & (counts > 0)  # log axis: no zero counts
    return counts[present], np.nanmean(curves[:, present], axis=0)


def plot_per_class_accuracy(results, dataset, path):
    """Per-class closed-set accuracy vs training count (log x), one series per loss."""
    import numpy as np
    from matplotlib.figure import Figure  # no pyplot: no global backend state

    figure = Figure(figsize=(7, 4.5))
    axes = figure.add_subplot()
    plotted = 0
    groups = _group_runs(results, dataset)
    several_stages = len({stage for _, stage in groups}) > 1
    for (loss, stage), runs in groups.items():
        series = _per_class_series(runs["closed"])
        if series is None:
            continue
        counts, accuracy = series
        label = _loss_label(loss) + (f" (stage {stage})" if several_stages and stage else "")
        points = axes.scatter(counts, 100 * accuracy, s=8, alpha=0.35)
        # binned means on a log scale make the trend readable where points pile up
        edges = np.unique(np.geomspace(counts.min(), counts.max() + 1, 11))
        which = np.clip(np.digitize(counts, edges) - 1, 0, len(edges) - 2)
        sizes = np.bincount(which, minlength=len(edges) - 1)
        filled = sizes > 0
        means = np.bincount(which, weights=accuracy, minlength=len(edges) - 1)[filled] / sizes[filled]
        centres = np.sqrt(edges[:-1] * edges[1:])[filled]
        axes.plot(centres, 100 * means, marker="o", color=points.get_facecolor()[0][:3], label=label)
        plotted += 1
    if not plotted:
        return False
    axes.set_xscale("log")
    axes.set_xlabel("training images of the class (log scale)")
    axes.set_ylabel("closed-set top-1 accuracy of the class (%)")
    axes.set_title(f"{dataset}: per-class accuracy vs training count")
    axes.grid(True, which="both", alpha=0.3)
    axes.legend(fontsize="small")
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    return True


def _loss_default(loss, name):
    """A registered loss's constructor default for ``name``, or None."""
    try:
        from losses import get_loss_class

        default = inspect.signature(get_loss_class(loss)).parameters[name].default
    except Exception:  # unregistered loss, no such parameter: no default to offer
        return None
    return None if default is inspect.Parameter.empty else default


def _xi_curve(run, schedule_module):
    """(label, xi per epoch) of one cfl/casl run as its loss computed it, or None."""
    params = run.get("loss_params") if isinstance(run.get("loss_params"), dict) else {}
    factor = params.get("cyclical_factor", _loss_default(run["loss"], "cyclical_factor"))
    if _number(factor) is None:
        return None
    epochs = run.get("num_epochs", params.get("num_epochs"))
    epochs = int(epochs) if _number(epochs) is not None and epochs >= 1 else DEFAULT_XI_POINTS
    label = f"{_loss_label(run['loss'])}, f = {factor:g}, {epochs} epochs"
    if params.get("schedule") == "reference":
        # the published code's xi: 1-based epoch over a loss-local epoch count
        local_epochs = params.get("epochs") or epochs
        xi = [schedule_module.reference_xi(epoch, local_epochs, factor) for epoch in range(1, epochs + 1)]
        return f"{label}, reference (E = {local_epochs})", xi
    # epoch granularity: progress t = epoch_index / (num_epochs - 1), as the trainer sets it
    progress = [index / (epochs - 1) for index in range(epochs)] if epochs > 1 else [0.0]
    return label, [schedule_module.cyclical_xi(t, factor) for t in progress]


def plot_xi_schedule(results, dataset, path, warn=_warn):
    """xi over training (CFL paper Eq. 8) for each cfl/casl run's cyclical factor and epoch count."""
    try:
        from losses import schedule as schedule_module
    except ImportError:
        warn("losses.schedule is not available; xi_schedule.png not written")
        return False
    from matplotlib.figure import Figure

    curves = {}
    for run in results:
        if run["dataset"] != dataset or run["loss"] not in CYCLICAL_LOSSES:
            continue
        try:
            curve = _xi_curve(run, schedule_module)
        except Exception as error:  # a schedule we cannot replay must not sink the report
            curve = None
            warn(f"{run.get('_source', run['loss'])}: cannot compute its xi schedule ({error})")
        if curve is None:
            warn(f"{run.get('_source', run['loss'])}: no usable cyclical_factor; left out of xi_schedule.png")
        else:
            curves.setdefault(curve[0], curve[1])
    if not curves:
        return False
    figure = Figure(figsize=(6, 4))
    axes = figure.add_subplot()
    for label, xi in sorted(curves.items()):
        axes.plot(range(1, len(xi) + 1), xi, marker="o", label=label)
    axes.set_xlabel("epoch")
    axes.set_ylabel("xi (weight of the high-confidence term)")
    axes.set_title(f"{dataset}: cyclical schedule xi (CFL paper Eq. 8)")
    axes.grid(True, alpha=0.3)
    axes.legend(fontsize="small")
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    return True


def _matplotlib_available():
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return False
    return True


# ---------------------------------------------------------------- command line

def _formats(text):
    chosen = [part.strip() for part in text.split(",") if part.strip()]
    unknown = sorted(set(chosen) - set(FORMATS))
    if unknown or not chosen:
        raise argparse.ArgumentTypeError(f"--format takes a comma list of {', '.join(FORMATS)}; got {text!r}")
    return chosen


def _parser():
    parser = argparse.ArgumentParser(
        prog="python -m oltr.report",
        description="Tables 3-4 (Markdown, CSV, LaTeX) and plots from results_test_{closed,open}.json files.",
    )
    parser.add_argument("dirs", nargs="+", metavar="RESULTS_DIR", help="directories searched recursively")
    parser.add_argument("--out", default="results", help="output directory (default: results)")
    parser.add_argument("--format", type=_formats, default=list(FORMATS),
                        help="comma list of table files to write: md,csv,tex (default: all)")
    parser.add_argument("--no-plots", action="store_true", help="do not draw the PNG plots")
    return parser


def _safe_name(dataset):
    return re.sub(r"[^\w.-]", "_", dataset)


def write_dataset_report(results, dataset, out_dir, formats=FORMATS, plots=True, warn=_warn):
    """Write table.{md,csv,tex} (and plots) for one dataset; returns the Markdown."""
    rows = build_table(results, dataset, warn=warn)
    target = Path(out_dir) / _safe_name(dataset)
    target.mkdir(parents=True, exist_ok=True)
    markdown = format_markdown(rows, dataset, results)
    writers = {"md": lambda: markdown, "csv": lambda: format_csv(rows), "tex": lambda: format_latex(rows, dataset)}
    for extension in formats:
        (target / f"table.{extension}").write_text(writers[extension](), encoding="utf-8")
    if plots:
        plot_per_class_accuracy(results, dataset, target / "per_class_accuracy.png")
        plot_xi_schedule(results, dataset, target / "xi_schedule.png", warn=warn)
    return markdown


def main(argv=None):
    args = _parser().parse_args(argv)
    results = collect_results(args.dirs)
    if not results:
        print(f"error: no usable results_test_closed.json or results_test_open.json under "
              f"{', '.join(args.dirs)}", file=sys.stderr)
        return 1
    plots = not args.no_plots and _matplotlib_available()
    if not args.no_plots and not plots:
        _warn("matplotlib is not installed; plots skipped (pip install matplotlib)")
    for dataset in datasets_of(results):
        print(write_dataset_report(results, dataset, args.out, args.format, plots))
    print(f"tables written under {args.out}/")
    return 0


if __name__ == "__main__":
    sys.exit(main())
