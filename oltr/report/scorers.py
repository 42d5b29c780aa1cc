"""The open-set scorers of one dataset: a row per method and scorer, over the seeds of its open-set runs.

Columns: AUROC, FPR95 (known positive), AUPR-in, OSCR, the AUROC of each shot group's known images
against the open set, then the validation threshold's F-measure and open-set top-1. Each cell is the
mean ± sample std over the runs that recorded it (results files of ``--test_open`` with ``open_scorers``).
"""

import csv
import io
import statistics

from .aggregate import finite_number, recipe_groups
from .formats import format_cell

# (key, header, percent?, how to read it from one scorer's results)
SCORER_COLUMNS = (
    ("auroc", "AUROC", True, lambda entry: entry.get("auroc")),
    ("fpr95", "FPR95", True, lambda entry: entry.get("fpr95")),
    ("aupr_in", "AUPR-in", True, lambda entry: entry.get("aupr_in")),
    ("oscr", "OSCR", True, lambda entry: entry.get("oscr")),
    ("auroc_many", "AUROC many", True, lambda entry: (entry.get("auroc_by_shot") or {}).get("many")),
    ("auroc_medium", "AUROC medium", True, lambda entry: (entry.get("auroc_by_shot") or {}).get("medium")),
    ("auroc_few", "AUROC few", True, lambda entry: (entry.get("auroc_by_shot") or {}).get("few")),
    ("f_at_val", "F @val", False, lambda entry: (entry.get("at_val") or {}).get("f_measure")),
    ("top1_at_val", "Open top-1 @val", True, lambda entry: (entry.get("at_val") or {}).get("overall_top1")),
)


def _cell(values, percent):
    """{mean, std} over the runs in display units, as the main table's cells; mean None: "n/a"."""
    values = [value * (100 if percent else 1) for value in values if finite_number(value) is not None]
    if not values:
        return {"mean": None, "std": None}
    return {"mean": statistics.fmean(values), "std": statistics.stdev(values) if len(values) > 1 else None}


def scorer_rows(results, dataset):
    """[{label, scorer, scorer_label, runs, cells}] in table order: methods as the main table, scorers as run."""
    rows = []
    for label, _, _, _, runs in recipe_groups(results, dataset):
        entries = [run["open_scorers"] for run in runs["open"] if isinstance(run.get("open_scorers"), dict)]
        names = list(dict.fromkeys(name for entry in entries for name in entry))
        for name in names:
            mine = [entry[name] for entry in entries if isinstance(entry.get(name), dict)]
            cells = {key: _cell([read(one) for one in mine], percent) for key, _, percent, read in SCORER_COLUMNS}
            rows.append(
                {
                    "label": label,
                    "scorer": name,
                    "scorer_label": mine[0].get("scorer", name),
                    "runs": len(mine),
                    "cells": cells,
                }
            )
    return rows


def format_scorer_markdown(rows, dataset):
    """The Markdown table, or "" without scorer results."""
    if not rows:
        return ""
    header = ["Method", "Scorer"] + [title for _, title, _, _ in SCORER_COLUMNS] + ["Runs"]
    lines = [
        f"### {dataset}: open-set scorers",
        "",
        "| " + " | ".join(header) + " |",
        "|" + "---|" * len(header),
    ]
    for row in rows:
        cells = [format_cell(row["cells"][key], percent, "ours") for key, _, percent, _ in SCORER_COLUMNS]
        lines.append("| " + " | ".join([row["label"], row["scorer_label"], *cells, str(row["runs"])]) + " |")
    lines += [
        "",
        "Known images are the positives (AUROC, FPR95 at 95% of them accepted, AUPR-in); AUROC many/medium/few: "
        "that shot group's known images against the open set; @val: at the threshold accepting "
        "`evaluation.val_accept_rate` (95%) of the validation split's known images. Mean ± std over seeds.",
        "",
    ]
    return "\n".join(lines)


def format_scorer_csv(rows):
    """The same rows as CSV, two more decimals, empty for n/a."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(
        ["method", "scorer", *(f"{key}{suffix}" for key, *_ in SCORER_COLUMNS for suffix in ("", "_std")), "runs"]
    )
    for row in rows:
        values = []
        for key, _, percent, _ in SCORER_COLUMNS:
            cell = row["cells"][key]
            digits = 3 if percent else 5
            values += (
                ["", ""]
                if cell["mean"] is None
                else [
                    f"{cell['mean']:.{digits}f}",
                    "" if cell["std"] is None else f"{cell['std']:.{digits}f}",
                ]
            )
        writer.writerow([row["label"], row["scorer"], *values, row["runs"]])
    return buffer.getvalue()


def plot_auroc_by_shot(rows, dataset, path):
    """auroc_by_shot.png: one panel per scorer, the AUROC of each shot group against the open set, a line
    per method. Returns False (nothing written) without scorer results."""
    if not rows:
        return False
    from matplotlib.figure import Figure

    scorers = list(dict.fromkeys(row["scorer"] for row in rows))
    columns = min(3, len(scorers))
    lines = -(-len(scorers) // columns)
    figure = Figure(figsize=(4.2 * columns, 3.4 * lines), layout="constrained")
    axes = figure.subplots(lines, columns, squeeze=False).ravel()
    groups = ("auroc_many", "auroc_medium", "auroc_few")
    for axis, scorer in zip(axes, scorers):
        for row in (row for row in rows if row["scorer"] == scorer):
            cells = [row["cells"][key] for key in groups]
            means = [float("nan") if cell["mean"] is None else cell["mean"] for cell in cells]
            errors = [cell["std"] or 0.0 for cell in cells]
            axis.errorbar(range(3), means, yerr=errors, marker="o", capsize=3, label=row["label"])
        axis.set_xticks(range(3), ["many", "medium", "few"])
        axis.set_title(scorer)
        axis.set_ylabel("AUROC vs open set (%)")
        axis.axhline(50, color="grey", linewidth=0.8, linestyle=":")
    for axis in axes[len(scorers) :]:
        axis.set_visible(False)
    axes[0].legend(fontsize="small")
    figure.suptitle(f"{dataset}: tail against unknown, by shot group")
    figure.savefig(path, dpi=110)
    return True
