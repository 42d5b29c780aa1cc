"""From results dicts to the rows of one dataset's table: mean +- sample std over seeds, paper rows, differences.

Runs are grouped by (loss, recipe, stage) (recipe None: the meta-embedding); a cell is None (no results file: a gap) or
{mean, std, n} in display units (accuracies in %), mean None meaning "n/a".
"""

import json
import math
import re
import statistics

from ..evaluation.uncertainty import t_interval
from .collect import print_warning
from .layout import COLUMNS, loss_label, loss_sort_key, published_for, recipe_sort_key, row_label, table_recipe


def stage_of(result):
    """'1', '2', ... from 1, '2', 'stage_2'; None when not recorded."""
    stage = result.get("stage")
    if stage is None:
        return None
    digits = re.findall(r"\d+", str(stage))
    return digits[-1] if digits else str(stage)


def finite_number(value):
    """``value`` if it is a finite int or float (not a bool), else None."""
    return value if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value) else None


def aggregate(runs, results_key, percent):
    """Cell over seeds: None (no run: a gap), or {mean, std, n} with mean None for 'n/a'."""
    if not runs:
        return None
    scale = 100.0 if percent else 1.0
    kept = [run for run in runs if finite_number(run.get(results_key)) is not None]
    values = [scale * run[results_key] for run in kept]
    if not values:
        return {"mean": None, "std": None, "n": 0}
    std = statistics.stdev(values) if len(values) > 1 else None  # sample std, ddof=1
    return {
        "mean": statistics.fmean(values),
        "std": std,
        "n": len(values),
        **interval_of(kept, values, results_key, scale),
    }


def interval_of(runs, values, results_key, scale):
    """{"ci": [low, high], "ci_kind": "t" | "bootstrap"} or {}: over seeds the t-interval of the mean,
    for a single run its own bootstrap interval (results' ci95), when the file has one. Every key the
    table shows is a fraction (times ``scale``), so the interval is clipped to [0, scale]."""
    if len(values) > 1:
        low, high = t_interval(values)
        # the metric's range bounds the interval: a t-interval of accuracies can pass 100%
        return {"ci": [max(low, 0.0), min(high, scale)], "ci_kind": "t"}
    bounds = runs[0].get("ci95") if isinstance(runs[0].get("ci95"), dict) else {}
    pair = bounds.get(results_key)
    if isinstance(pair, list) and len(pair) == 2 and all(finite_number(value) is not None for value in pair):
        return {"ci": [scale * pair[0], scale * pair[1]], "ci_kind": "bootstrap"}
    return {}


def group_runs(results, dataset):
    """{(loss, recipe, stage): {"closed": [...], "open": [...]}} for one dataset, in table order."""
    groups = {}
    for result in results:
        if result["dataset"] != dataset:
            continue
        key = (result["loss"], table_recipe(result), stage_of(result))
        groups.setdefault(key, {"closed": [], "open": []})[result["setting"]].append(result)
    order = sorted(groups, key=lambda key: (recipe_sort_key(key[1]), loss_sort_key(key[0]), key[2] or ""))
    return {key: groups[key] for key in order}


def recipe_groups(results, dataset):
    """[(label, loss, recipe, stage, runs)] of group_runs, each labelled as its table row is."""
    groups = group_runs(results, dataset)
    several_stages = len({stage for _, recipe, stage in groups if recipe is None}) > 1
    return [
        (row_label(loss, stage, several_stages, recipe), loss, recipe, stage, runs)
        for (loss, recipe, stage), runs in groups.items()
    ]


def labelled_groups(results, dataset):
    """[(label, loss, stage, runs)] of group_runs, each labelled as its table row is."""
    return [(label, loss, stage, runs) for label, loss, _, stage, runs in recipe_groups(results, dataset)]


def _warn_mixed_params(runs, label, warn):
    params = {json.dumps(run.get("loss_params"), sort_keys=True, default=str) for run in runs}
    if len(params) > 1:
        warn(f"{label}: averaging runs with different loss_params: {', '.join(sorted(params))}")


def build_table(results, dataset, warn=print_warning):
    """Rows of the Tables 3-4 layout for ``dataset``.

    Each row: {kind: "ours" | "paper" | "diff", label, loss, stage, cells, num_closed, num_open};
    cells maps each COLUMNS key to None (no results: a gap), or {mean, std, n} in display
    units (accuracies in %), mean None meaning "n/a" (e.g. an empty shot group).
    Paper and difference rows follow our row of the same loss; differences are ours - paper,
    for stage-2 (or stage-less) results only, since the paper's tables are of full OLTR.
    """
    published = published_for(dataset)
    paper_rows = published["rows"] if published else {}
    rows, losses_shown = [], set()

    def paper_row(loss):
        cells = {key: None for key, *_ in COLUMNS}  # a column the paper does not report stays a gap
        cells.update({key: {"mean": value, "std": None, "n": 1} for (key, *_), value in zip(COLUMNS, paper_rows[loss])})
        return {
            "kind": "paper",
            "label": f"{loss_label(loss)} (paper)",
            "loss": loss,
            "recipe": None,
            "stage": None,
            "cells": cells,
            "num_closed": 0,
            "num_open": 0,
        }

    for label, loss, recipe, stage, runs in recipe_groups(results, dataset):
        _warn_mixed_params(runs["closed"] + runs["open"], f"{dataset} {label}", warn)
        cells = {
            key: aggregate(runs[setting], results_key, percent) for key, _, setting, results_key, percent in COLUMNS
        }
        ours = {
            "kind": "ours",
            "label": label,
            "loss": loss,
            "recipe": recipe,
            "stage": stage,
            "cells": cells,
            "num_closed": len(runs["closed"]),
            "num_open": len(runs["open"]),
        }
        rows.append(ours)
        if loss in paper_rows and stage in (None, "2") and recipe is None:
            if loss not in losses_shown:
                rows.append(paper_row(loss))
                losses_shown.add(loss)
            rows.append(_difference_row(ours, paper_row(loss)))
    # the paper's rows we have no comparable result for, still shown as the reference
    for loss in sorted(set(paper_rows) - losses_shown, key=loss_sort_key):
        rows.insert(_insert_position(rows, loss), paper_row(loss))
    return rows


def _difference_row(ours, paper):
    cells = {}
    for key, *_ in COLUMNS:
        mine, theirs = ours["cells"][key], paper["cells"][key]
        if theirs is None:
            cells[key] = None
        elif mine is None or mine["mean"] is None:
            cells[key] = None if mine is None else {"mean": None, "std": None, "n": 0}
        else:
            cells[key] = {"mean": mine["mean"] - theirs["mean"], "std": None, "n": mine["n"]}
    return {
        "kind": "diff",
        "label": f"{ours['label']} (ours - paper)",
        "loss": ours["loss"],
        "recipe": None,
        "stage": ours["stage"],
        "cells": cells,
        "num_closed": ours["num_closed"],
        "num_open": ours["num_open"],
    }


def _insert_position(rows, loss):
    """After every row of losses that come earlier in the table order (the meta-embedding's rows)."""
    for index, row in enumerate(rows):
        if (recipe_sort_key(row.get("recipe")), loss_sort_key(row["loss"])) > (
            recipe_sort_key(None),
            loss_sort_key(loss),
        ):
            return index
    return len(rows)
