"""The report's PNG plots, drawn when matplotlib is installed (the ``plot`` extra).

- per_class_accuracy.png: closed-set accuracy of each class against its training count (log x), binned
  means with error bars (std across seeds) where a loss has several seeds.
- xi_schedule.png: the cyclical losses' xi over training, as each run's trainer logged it in
  ``<log_dir>/metrics.jsonl`` (so it is right whatever ``training_opt.progress_granularity``,
  schedule or epoch count the run had). Runs that logged no xi have no curve.

matplotlib is imported inside the functions, through its Figure API (no pyplot, no global backend).
"""

from .aggregate import finite_number, labelled_groups
from .collect import log_dir_of, logged_xi, print_warning, read_metrics_log


def matplotlib_available():
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return False
    return True


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
    if not present.any():  # every class without training images (or accuracy): nothing to draw
        return None
    return counts[present], np.nanmean(curves[:, present], axis=0), curves[:, present]


def plot_per_class_accuracy(results, dataset, path):
    """Per-class closed-set accuracy vs training count (log x), one series per loss."""
    import numpy as np
    from matplotlib.figure import Figure  # no pyplot: no global backend state

    figure = Figure(figsize=(7, 4.5))
    axes = figure.add_subplot()
    plotted = 0
    for label, _, _, runs in labelled_groups(results, dataset):
        series = _per_class_series(runs["closed"])
        if series is None:
            continue
        counts, accuracy, per_seed = series
        points = axes.scatter(counts, 100 * accuracy, s=8, alpha=0.35)
        # binned means on a log scale make the trend readable where points pile up
        edges = np.unique(np.geomspace(counts.min(), counts.max() + 1, 11))
        which = np.clip(np.digitize(counts, edges) - 1, 0, len(edges) - 2)
        sizes = np.bincount(which, minlength=len(edges) - 1)
        filled = sizes > 0
        means = np.bincount(which, weights=accuracy, minlength=len(edges) - 1)[filled] / sizes[filled]
        centres = np.sqrt(edges[:-1] * edges[1:])[filled]
        colour = points.get_facecolor()[0][:3]
        if per_seed.shape[0] > 1:  # error bars: std across seeds of each bin's mean
            seed_means = np.stack(
                [
                    np.bincount(which, weights=np.nan_to_num(seed), minlength=len(edges) - 1)[filled]
                    / np.maximum(np.bincount(which, weights=~np.isnan(seed), minlength=len(edges) - 1)[filled], 1)
                    for seed in per_seed
                ]
            )
            axes.errorbar(
                centres,
                100 * means,
                yerr=100 * seed_means.std(axis=0, ddof=1),
                marker="o",
                color=colour,
                capsize=3,
                label=f"{label} (± std over {per_seed.shape[0]} seeds)",
            )
        else:
            axes.plot(centres, 100 * means, marker="o", color=colour, label=label)
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


def _xi_label(row, run, epochs):
    params = run.get("loss_params") if isinstance(run.get("loss_params"), dict) else {}
    factor = finite_number(params.get("cyclical_factor"))
    return (
        row
        + (f", f = {factor:g}" if factor is not None else "")
        + f", {len(epochs)} epochs"
        + (", reference schedule" if params.get("schedule") == "reference" else "")
    )


def xi_curves(results, dataset, warn=print_warning):
    """{label: (epochs, xi)} of every run of ``dataset`` whose metrics.jsonl logged xi.

    One run (log directory) gives one curve however many results files it wrote; seeds with
    the same schedule share a curve. A run without metrics.jsonl, or without xi in it, has none.
    """
    curves, read = {}, set()
    for row, _, _, runs in labelled_groups(results, dataset):
        for run in runs["closed"] + runs["open"]:
            log_dir = log_dir_of(run)
            if log_dir in read:
                continue
            read.add(log_dir)
            logged = logged_xi(read_metrics_log(log_dir, warn))
            if logged is None:
                continue
            label = _xi_label(row, run, logged[0])
            if curves.get(label, logged) != logged:  # same label, another schedule: tell them apart
                label = f"{label} ({log_dir.name})"
            curves.setdefault(label, logged)
    return curves


def plot_xi_schedule(results, dataset, path, warn=print_warning):
    """xi over training (CFL paper Eq. 8), per epoch as the trainer logged it, for every run that logged one."""
    curves = xi_curves(results, dataset, warn)
    if not curves:
        return False
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    figure = Figure(figsize=(6, 4))
    axes = figure.add_subplot()
    for label, (epochs, xi) in sorted(curves.items()):
        axes.plot(epochs, xi, marker="o", label=label)
    axes.set_xlabel("epoch")
    axes.xaxis.set_major_locator(MaxNLocator(integer=True))
    axes.set_ylabel("xi (weight of the high-confidence term)")
    axes.set_title(f"{dataset}: cyclical schedule xi (CFL paper Eq. 8)")
    axes.grid(True, alpha=0.3)
    axes.legend(fontsize="small")
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    return True
