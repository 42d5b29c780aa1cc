"""``<out>/report.html``: every dataset's table, its sentences and its plots in one self-contained file.

Written with the standard library only (html.escape, base64): the PNGs the report drew are inlined
as ``data:image/png;base64`` URIs, so the file opens anywhere, offline, moved or mailed.
"""

import base64
import html
from pathlib import Path

from ..common.atomic import write_text_atomic
from .formats import CI_NOTE, format_cell
from .layout import COLUMNS
from .scorers import SCORER_COLUMNS

_STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em; color: #222; }
table { border-collapse: collapse; margin: 1em 0; font-size: 0.9em; }
th, td { border: 1px solid #bbb; padding: 0.3em 0.6em; text-align: right; }
th:first-child, td:first-child { text-align: left; }
tr.paper td { color: #666; } tr.diff td { color: #666; font-style: italic; }
tr.paired td { background: #f4f7fb; } td.significant { font-weight: bold; }
img { max-width: 100%; border: 1px solid #ddd; margin: 0.5em 0; }
figure { margin: 1em 0; } figcaption { color: #555; font-size: 0.9em; }
"""

_CAPTIONS = {
    "per_class_accuracy.png": (
        "Per-class closed-set accuracy against training count (log x); error bars: std over seeds."
    ),
    "f_measure_curve.png": "OLTR's F-measure against the rejection threshold; the dashed line is the configured one.",
    "reliability.png": "Reliability diagram (15 bins, closed set) beside each loss's ECE.",
    "xi_schedule.png": "The cyclical losses' xi as each run logged it.",
    "auroc_by_shot.png": "AUROC of each shot group's known test images against the open set, per scorer.",
}


def _scorer_table(rows):
    """The open-set scorers' table (report/scorers.py rows) as HTML, or "" without any."""
    if not rows:
        return ""
    head = "".join(f"<th>{html.escape(title)}</th>" for _, title, _, _ in SCORER_COLUMNS)
    lines = [
        f"<h3>Open-set scorers</h3><table><thead><tr><th>Method</th><th>Scorer</th>{head}<th>Runs</th></tr>"
        "</thead><tbody>"
    ]
    for row in rows:
        texts = [format_cell(row["cells"][key], percent, "ours") for key, _, percent, _ in SCORER_COLUMNS]
        cells = "".join(f"<td>{html.escape(text)}</td>" for text in texts)
        lines.append(
            f"<tr><td>{html.escape(row['label'])}</td><td>{html.escape(row['scorer_label'])}</td>{cells}"
            f"<td>{row['runs']}</td></tr>"
        )
    lines.append("</tbody></table>")
    return "\n".join(lines)


def _table(rows):
    head = "".join(f"<th>{html.escape(title)}</th>" for _, title, *_ in COLUMNS)
    lines = [f"<table><thead><tr><th>Method</th>{head}<th>Runs (closed/open)</th></tr></thead><tbody>"]
    for row in rows:
        cells = []
        for key, _, _, _, percent in COLUMNS:
            cell = row["cells"][key]
            marked = row["kind"] == "paired" and cell is not None and cell.get("significant")
            text = format_cell(cell, percent, row["kind"], ci=True)
            attribute = ' class="significant"' if marked else ""
            cells.append(f"<td{attribute}>{html.escape(text)}</td>")
        runs = f"{row['num_closed']}/{row['num_open']}" if row["kind"] == "ours" else ""
        lines.append(
            f'<tr class="{row["kind"]}"><td>{html.escape(row["label"])}</td>{"".join(cells)}<td>{runs}</td></tr>'
        )
    lines.append("</tbody></table>")
    return "\n".join(lines)


def _image(path):
    encoded = base64.b64encode(Path(path).read_bytes()).decode("ascii")
    caption = _CAPTIONS.get(Path(path).name, Path(path).name)
    return (
        f'<figure><img alt="{html.escape(Path(path).stem)}" src="data:image/png;base64,{encoded}">'
        f"<figcaption>{html.escape(caption)}</figcaption></figure>"
    )


def render_html(reports):
    """The page for ``reports``: [{dataset, rows, sentences, images}] as write_dataset_report returns them."""
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        "<title>OLTR report</title>",
        f"<style>{_STYLE}</style></head><body>",
        "<h1>OLTR report</h1>",
    ]
    for report in reports:
        parts.append(f"<section><h2>{html.escape(report['dataset'])}</h2>")
        parts.append(_table(report["rows"]))
        parts.append(f"<p>{html.escape(CI_NOTE)}</p>")
        if report["sentences"]:
            parts.append("<ul>" + "".join(f"<li>{html.escape(text)}</li>" for text in report["sentences"]) + "</ul>")
        parts.append(_scorer_table(report.get("scorers")))
        parts += [_image(path) for path in report["images"].values()]
        parts.append("</section>")
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"


def write_html_report(reports, path):
    """Write render_html(reports) to ``path``; returns the path."""
    return write_text_atomic(path, render_html(reports))
