"""Tables 3-4 of the cyclical focal loss paper from our results files, plus plots.

    python -m oltr.report RESULTS_DIR... [--out results] [--format md,csv,tex] [--no-plots]

Finds every ``results_test_closed.json`` / ``results_test_open.json`` under the given
directories, groups them by dataset, and writes one table per dataset in the layout of
Tables 3 (ImageNet-LT) and 4 (Places-LT): rows OLTR, OLTR + FL, OLTR + ASL, OLTR + CFL, OLTR + CASL (then
any other loss), columns closed-set many/medium/few/average top-1 and open-set
many/medium/few top-1, F-measure and AUROC. Several seeds give mean +- sample std. For
ImageNet_LT and Places_LT the paper's published rows and our difference sit under ours.

What lives where, in the order data flows:

    layout.py     the tables' columns, row order and labels, and the paper's published numbers
    collect.py    reading run directories: results_test_{closed,open}.json, metrics.jsonl (xi)
    identity.py   which runs count: none moved aside, each identity (seed, weights) once, never averaged
    aggregate.py  grouping runs by (loss, stage), mean +- std over seeds, paper and difference rows
    paired.py     every row against OLTR: paired bootstrap over the runs' predictions npz, and the sentences
    formats.py    a table as Markdown, CSV or LaTeX
    plots.py      per_class_accuracy.png and xi_schedule.png (matplotlib, the ``plot`` extra)
    plots_rigor.py  f_measure_curve.png and reliability.png
    scorers.py    the open-set scorers' table (scorers.csv, under table.md) and auroc_by_shot.png
    html.py       <out>/report.html: tables, sentences and plots in one self-contained file
    cli.py        the command line (also ``oltr report ...``) and writing one dataset's files
"""

from .aggregate import build_table, group_runs, stage_of
from .cli import FORMATS, main, write_dataset_report
from .collect import collect_results, datasets_of, logged_xi, read_metrics_log
from .formats import format_cell, format_csv, format_latex, format_markdown, shot_group_notes
from .layout import COLUMNS, LOSS_LABELS, LOSS_ORDER, PUBLISHED, loss_label, published_for
from .paired import paired_rows, paired_sentences
from .plots import plot_per_class_accuracy, plot_xi_schedule, xi_curves
from .plots_rigor import plot_f_measure_curves, plot_reliability

__all__ = [
    "COLUMNS",
    "FORMATS",
    "LOSS_LABELS",
    "LOSS_ORDER",
    "PUBLISHED",
    "build_table",
    "collect_results",
    "datasets_of",
    "format_cell",
    "format_csv",
    "format_latex",
    "format_markdown",
    "group_runs",
    "logged_xi",
    "loss_label",
    "main",
    "paired_rows",
    "paired_sentences",
    "plot_f_measure_curves",
    "plot_reliability",
    "plot_per_class_accuracy",
    "plot_xi_schedule",
    "published_for",
    "read_metrics_log",
    "shot_group_notes",
    "stage_of",
    "write_dataset_report",
    "xi_curves",
]
