"""The report's plots of the open-set picture and of calibration (matplotlib, the ``plot`` extra).

- f_measure_curve.png: OLTR's F-measure against the rejection threshold, one curve per loss (the mean
  over seeds of the open-set results' ``f_measure_curve``), the configured threshold marked.
- reliability.png: the reliability diagram (accuracy against confidence in the ECE's 15 bins, from
  the closed-set results' ``reliability_bins``), one panel per loss, its ECE in the title.

Results files without those keys (older runs) draw nothing; a plot with nothing to draw is not written.
"""

import numpy as np

from .aggregate import finite_number, labelled_groups


def _curves(runs):
    """(thresholds, mean F over runs, configured thresholds) of the runs that recorded a curve, or None."""
    curves, thresholds, configured = [], None, set()
    for run in runs:
        curve = run.get("f_measure_curve")
        if not isinstance(curve, dict) or not isinstance(curve.get("f_measure"), list):
            continue
        if thresholds is None:
            thresholds = curve.get("thresholds")
        if curve.get("thresholds") != thresholds:
            continue
        curves.append(curve["f_measure"])
        if finite_number(run.get("threshold")) is not None:
            configured.add(run["threshold"])
    if not curves:
        return None
    return np.asarray(thresholds, float), np.mean(np.asarray(curves, float), axis=0), sorted(configured)


def plot_f_measure_curves(results, dataset, path):
    """F-measure vs rejection threshold, one curve per loss; True when written."""
    series = [(label, _curves(runs["open"])) for label, _, _, runs in labelled_groups(results, dataset)]
    series = [(label, curve) for label, curve in series if curve is not None]
    if not series:
        return False
    from matplotlib.figure import Figure

    figure = Figure(figsize=(6.5, 4))
    axes = figure.add_subplot()
    marked = set()
    for label, (thresholds, f_measure, configured) in series:
        (line,) = axes.plot(thresholds, f_measure, label=label)
        for threshold in configured:
            at = f_measure[np.argmin(np.abs(thresholds - threshold))]
            axes.plot([threshold], [at], marker="o", color=line.get_color())
            if threshold not in marked:
                axes.axvline(
                    threshold, color="grey", linestyle="--", linewidth=1, label=f"configured threshold {threshold:g}"
                )
                marked.add(threshold)
    axes.set_xlabel("rejection threshold on the max softmax probability")
    axes.set_ylabel("OLTR F-measure")
    axes.set_title(f"{dataset}: open-set F-measure vs threshold")
    axes.set_xlim(0, 1)
    axes.grid(True, alpha=0.3)
    axes.legend(fontsize="small")
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    return True


def _reliability(runs):
    """(edges, accuracy per bin, confidence per bin, count per bin, mean ECE) pooled over runs, or None."""
    counts, hits, sums, edges, eces = None, None, None, None, []
    for run in runs:
        bins = run.get("reliability_bins")
        if not isinstance(bins, dict) or not isinstance(bins.get("count"), list):
            continue
        count = np.asarray(bins["count"], float)
        accuracy = np.asarray([0.0 if value is None else value for value in bins["accuracy"]], float)
        confidence = np.asarray([0.0 if value is None else value for value in bins["confidence"]], float)
        if counts is None:
            counts, hits, sums, edges = np.zeros_like(count), np.zeros_like(count), np.zeros_like(count), bins["edges"]
        if count.size != counts.size:
            continue
        counts += count
        hits += accuracy * count
        sums += confidence * count
        if finite_number(run.get("ece")) is not None:
            eces.append(run["ece"])
    if counts is None:
        return None
    filled = np.maximum(counts, 1)
    return np.asarray(edges, float), hits / filled, sums / filled, counts, (np.mean(eces) if eces else None)


def plot_reliability(results, dataset, path):
    """Reliability diagram per loss (15 bins, closed set) beside its ECE; True when written."""
    panels = [(label, _reliability(runs["closed"])) for label, _, _, runs in labelled_groups(results, dataset)]
    panels = [(label, panel) for label, panel in panels if panel is not None]
    if not panels:
        return False
    from matplotlib.figure import Figure

    figure = Figure(figsize=(3.2 * len(panels), 3.4))
    for index, (label, (edges, accuracy, confidence, counts, ece)) in enumerate(panels):
        axes = figure.add_subplot(1, len(panels), index + 1)
        centres, width = (edges[:-1] + edges[1:]) / 2, edges[1] - edges[0]
        filled = counts > 0
        axes.bar(centres[filled], accuracy[filled], width=width, edgecolor="black", linewidth=0.5, label="accuracy")
        axes.bar(
            centres[filled],
            (confidence - accuracy)[filled],
            bottom=accuracy[filled],
            width=width,
            color="salmon",
            alpha=0.5,
            label="gap to confidence",
        )
        axes.plot([0, 1], [0, 1], color="grey", linestyle="--", linewidth=1)
        axes.set_xlim(0, 1)
        axes.set_ylim(0, 1)
        axes.set_xlabel("confidence (max probability)")
        if index == 0:
            axes.set_ylabel("accuracy")
            axes.legend(fontsize="x-small", loc="upper left")
        ece_text = "n/a" if ece is None else f"{100 * ece:.1f}%"
        axes.set_title(f"{label}\nECE {ece_text} ({edges.size - 1} bins)", fontsize="small")
    figure.suptitle(f"{dataset}: reliability (closed set)", fontsize="medium")
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    return True
