"""The table of one dataset as Markdown, CSV and LaTeX, from aggregate.build_table's rows.

Accuracies show 1 decimal (in %), the F-measure 3; the CSV keeps 2 more. A cell prints
"-" when no results file gave it (a gap) and "n/a" when its shot group was empty.
"""

import csv
import io

from .layout import COLUMNS, published_for


def _decimals(percent):
    return 1 if percent else 3


def _signed(value, digits):
    return f"{round(value, digits) + 0.0:+.{digits}f}"  # + 0.0: no "-0.0"


def format_cell(cell, percent, kind, plus_minus="±", ci=False, mark="*"):
    """One cell as printed: "-" (gap), "n/a", "41.0 ± 1.4", a signed difference "+0.7", and with
    ``ci`` the 95% interval "41.0 ± 1.4 [38.3, 43.7]". A paired difference always shows its
    interval, "+2.1 [+0.4, +3.8]*", marked when the interval excludes zero."""
    if cell is None:
        return "-"
    if cell["mean"] is None:
        return "n/a"
    digits = _decimals(percent)
    if kind == "paired":
        return f"{_signed(cell['mean'], digits)} [{_signed(cell['low'], digits)}, {_signed(cell['high'], digits)}]" + (
            mark if cell["significant"] else ""
        )
    if kind == "diff":
        return _signed(cell["mean"], digits)
    text = f"{cell['mean']:.{digits}f}"
    if cell["std"] is not None:
        text += f" {plus_minus} {cell['std']:.{digits}f}"
    if ci and cell.get("ci"):
        text += f" [{cell['ci'][0]:.{digits}f}, {cell['ci'][1]:.{digits}f}]"
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


CI_NOTE = (
    "[low, high] = 95% interval: over several seeds the t-interval of the mean, for one seed the run's "
    "stratified bootstrap over test images; paired rows: difference in points (the F-measure in its own "
    "units) to the softmax row of the same stage-2 recipe (OLTR for the meta-embedding; a decoupled "
    "recipe's softmax row to OLTR), paired bootstrap pooled over seeds, * = the interval excludes zero."
)


def format_sentences(sentences):
    """The sentences under a table (paired comparisons, what is missing), as Markdown lines."""
    return "".join(f"- {sentence}\n" for sentence in sentences)


def format_markdown(rows, dataset, results=()):
    header = ["Method"] + [title for _, title, *_ in COLUMNS] + ["Runs (closed/open)"]
    lines = [f"## {dataset}", "", "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in rows:
        cells = [format_cell(row["cells"][key], percent, row["kind"], ci=True) for key, _, _, _, percent in COLUMNS]
        lines.append("| " + " | ".join([row["label"]] + cells + [_runs_text(row)]) + " |")
    lines += [
        "",
        "Top-1 accuracy in %, open F-measure as OLTR defines it, open AUROC in % (max softmax probability, known "
        "images positive; the paper has none); mean ± sample std over seeds; "
        "'-' = no results file, 'n/a' = empty shot group.",
        CI_NOTE,
    ]
    for note in shot_group_notes(results, dataset):
        lines.append(f"Shot groups by training count: {note}.")
    published = published_for(dataset)
    if published:
        lines.append(f"Paper rows: {published['source']}; differences are ours - paper (stage-2 results).")
    return "\n".join(lines) + "\n"


def format_csv(rows):
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    header = ["method", "kind", "loss", "stage"]
    for key, *_ in COLUMNS:
        header += [key, f"{key}_std", f"{key}_low", f"{key}_high", f"{key}_significant"]
    writer.writerow(header + ["runs_closed", "runs_open"])
    for row in rows:
        line = [row["label"], row["kind"], row["loss"], row["stage"] or ""]
        for key, _, _, _, percent in COLUMNS:
            cell = row["cells"][key]
            digits = _decimals(percent) + 2  # a little more precision than the printed table
            number = lambda value: "" if value is None else round(value, digits)  # noqa: E731
            mean = "" if cell is None or cell["mean"] is None else round(cell["mean"], digits)
            std = "" if cell is None or cell.get("std") is None else round(cell["std"], digits)
            low, high = (cell.get("ci") or [cell.get("low"), cell.get("high")]) if cell else (None, None)
            significant = "" if cell is None or "significant" not in cell else int(cell["significant"])
            line += [mean, std, number(low), number(high), significant]
        writer.writerow(line + [row["num_closed"], row["num_open"]])
    return buffer.getvalue()


_LATEX_SPECIAL = {
    "&": r"\&",
    "%": r"\%",
    "$": r"\$",
    "#": r"\#",
    "_": r"\_",
    "{": r"\{",
    "}": r"\}",
    "~": r"\textasciitilde{}",
    "^": r"\textasciicircum{}",
    "\\": r"\textbackslash{}",
}


def _latex_escape(text):
    return "".join(_LATEX_SPECIAL.get(char, char) for char in text)


def format_latex(rows, dataset, sentences=()):
    lines = [
        f"% {_latex_escape(dataset)}: top-1 accuracy (%) and open-set F-measure; mean $\\pm$ std over seeds",
        r"\begin{tabular}{l" + "r" * len(COLUMNS) + "}",
        r"\hline",
        r" & \multicolumn{4}{c}{Closed set} & \multicolumn{4}{c}{Open set} \\",
        r"Method & Many & Medium & Few & Avg & Many & Medium & Few & F \\",
        r"\hline",
    ]
    for row in rows:
        cells = [
            format_cell(row["cells"][key], percent, row["kind"], plus_minus=r"$\pm$", ci=True, mark="$^*$")
            for key, _, _, _, percent in COLUMNS
        ]
        lines.append(" & ".join([_latex_escape(row["label"])] + cells) + r" \\")
    lines += [r"\hline", r"\end{tabular}"]
    lines += ["", _latex_escape(CI_NOTE.replace("*", "(*)"))] if any(row["kind"] == "paired" for row in rows) else []
    lines += [_latex_escape(sentence) + r" \par" for sentence in sentences]
    return "\n".join(lines) + "\n"
