"""Every row against its baseline row: paired bootstrap differences per shot group, and of the open-set
F-measure and AUROC (oltr.evaluation.paired_open).

The baseline of a loss is the softmax row of the same stage-2 recipe (OLTR, softmax through the
meta-embedding, for the meta-embedding rows; "CE + cRT" for the cRT rows...), so a paired row
isolates the loss; a decoupled recipe's softmax row ("CE + cRT") is paired with OLTR's, which
isolates the recipe.

Both models' per-image predictions come from the ``predictions_test_{closed,open}.npz`` their tests
saved beside the results files. Runs are paired by seed (same test images, same resamples for both),
and the differences are pooled over the seeds both rows have (oltr.evaluation.uncertainty.pooled_paired_difference).
A row whose runs lack the files, or whose test images differ from the baseline's, gets no paired row;
``paired_rows`` says why in its notes.
"""

import numpy as np

from ..common.run_files import predictions_path
from ..evaluation.metrics import SHOT_GROUPS
from ..evaluation.paired_open import pooled_paired_open_difference
from ..evaluation.uncertainty import pooled_paired_difference
from .aggregate import recipe_groups
from .collect import log_dir_of
from .layout import COLUMNS

BASELINE_LOSS = "softmax"
DEFAULT_RESAMPLES, DEFAULT_SEED = 1000, 0
_PAIRED_COLUMNS = {f"{setting}_{name}": f"{name}_shot_top1" for setting in ("closed", "open") for name in SHOT_GROUPS}
_PAIRED_COLUMNS.update({"closed_average": "overall_top1"})


def load_predictions(result):
    """(labels, correct, class_group) of a result's known test images from its predictions npz, or a string:
    why the file cannot be paired (absent, unreadable, or not of this result's checkpoint or test)."""
    path = predictions_path(log_dir_of(result), result["setting"] == "open")
    if not path.is_file():
        return f"has no {path.name}"
    try:
        with np.load(path) as saved:
            labels, predictions = saved["labels"].astype(np.int64), saved["predictions"].astype(np.int64)
            class_group = saved["class_group"].astype(np.int64)
            stamped = str(saved["weights_sha256"]) if "weights_sha256" in saved.files else None
    except KeyError as error:
        return f"has {path}, which lacks the array {error}; test the run again"
    except Exception as error:  # a truncated or foreign file: zipfile, pickle and numpy each raise their own
        return f"has {path}, which cannot be read ({type(error).__name__}: {str(error)[:80]}); test the run again"
    if labels.ndim != 1 or predictions.shape != labels.shape or class_group.ndim != 1:
        return f"has {path}, which holds {labels.size} labels but {predictions.size} predictions; test the run again"
    expected = result.get("num_samples")
    if isinstance(expected, int) and not isinstance(expected, bool) and expected != labels.size:
        return (
            f"has {path}, which holds {labels.size} images but its results ({result['_source']}) count {expected}; "
            "they are not of one test: test the run again"
        )
    if stamped is not None and isinstance(result.get("weights_sha256"), str) and stamped != result["weights_sha256"]:
        return f"has {path}, which is of another checkpoint than its results {result['_source']}; test the run again"
    if labels.size and (labels.max() >= class_group.size or labels.min() < -1):
        return f"has {path}, which has labels outside its {class_group.size} classes; test the run again"
    known = labels >= 0
    return labels[known], predictions[known] == labels[known], class_group


def load_open_predictions(result):
    """(labels, predictions, confidence) of every image of an open-set test, open ones included, or None
    when the file fails load_predictions' checks (whose note _pairs gives) or lacks a confidence per image."""
    if isinstance(load_predictions(result), str):
        return None
    try:
        with np.load(predictions_path(log_dir_of(result), True)) as saved:
            arrays = tuple(
                saved[key].astype(dtype)
                for key, dtype in (("labels", np.int64), ("predictions", np.int64), ("confidence", np.float64))
            )
    except Exception:  # read a moment ago: only a file replaced since, or without "confidence", lands here
        return None
    return arrays if arrays[2].shape == arrays[0].shape else None


def _open_pairs(runs, baseline_runs):
    """[(labels, predictions_a, predictions_b, confidence_a, confidence_b)] by seed, same images only."""
    baseline_by_seed = {run.get("seed"): run for run in baseline_runs}
    pairs = []
    for run in runs:
        other = baseline_by_seed.get(run.get("seed"))
        mine, theirs = load_open_predictions(run), other and load_open_predictions(other)
        if mine is None or theirs is None or not np.array_equal(mine[0], theirs[0]):
            continue  # _pairs has said why
        pairs.append((mine[0], mine[1], theirs[1], mine[2], theirs[2]))
    return pairs


def _open_cells(runs, baseline_runs, resamples, seed):
    """{open_f_measure, open_auroc: paired cell} (F in its units, AUROC in points), or {}."""
    pairs = _open_pairs(runs, baseline_runs)
    summary = pooled_paired_open_difference(pairs, resamples, seed) if pairs else None
    if summary is None:
        return {}
    cells = {}
    for column, key, scale in (("open_f_measure", "f_measure", 1.0), ("open_auroc", "open_auroc", 100.0)):
        cell = summary[key]
        cells[column] = {
            "mean": scale * cell["mean"],
            "low": scale * cell["low"],
            "high": scale * cell["high"],
            "significant": cell["significant"],
            "n": len(pairs),
        }
    return cells


def _pairs(runs, baseline_runs):
    """[(labels, correct_row, correct_baseline)] by seed, the class groups, and why pairs are missing."""
    baseline_by_seed = {run.get("seed"): run for run in baseline_runs}
    pairs, groups, problems = [], None, []
    for run in runs:
        other = baseline_by_seed.get(run.get("seed"))
        if other is None:
            problems.append(f"seed {run.get('seed')} has no baseline run")
            continue
        mine, theirs = load_predictions(run), load_predictions(other)
        why = [loaded for loaded in (mine, theirs) if isinstance(loaded, str)]
        if why:
            problems.append(f"seed {run.get('seed')} {why[0]}")
            continue
        if mine[0].shape != theirs[0].shape or not np.array_equal(mine[0], theirs[0]):
            problems.append(f"seed {run.get('seed')} was tested on other images than the baseline")
            continue
        pairs.append((mine[0], mine[1], theirs[1]))
        groups = {name: mine[2] == index for index, name in enumerate(SHOT_GROUPS)}
    return pairs, groups, problems


def paired_rows(results, dataset, resamples=DEFAULT_RESAMPLES, seed=DEFAULT_SEED):
    """(rows of kind "paired", notes): one row per non-baseline row of the table, differences in points.

    A cell is None (not compared) or {mean, low, high, significant, n} with n the number of seeds
    pooled. notes: one sentence per row that could not be compared.
    """
    labelled = recipe_groups(results, dataset)
    baselines = {
        (recipe, stage): (label, runs) for label, loss, recipe, stage, runs in labelled if loss == BASELINE_LOSS
    }
    rows, notes = [], []
    for label, loss, recipe, stage, runs in labelled:
        if loss == BASELINE_LOSS and recipe is None:
            continue  # OLTR itself
        # a loss against softmax of its recipe; a decoupled recipe's softmax against OLTR
        baseline_key = (recipe, stage) if loss != BASELINE_LOSS else (None, stage)
        if baseline_key not in baselines:
            notes.append(
                f"{label}: no paired comparison, there is no {BASELINE_LOSS} run of the same "
                f"{'recipe and ' if loss != BASELINE_LOSS else ''}stage."
            )
            continue
        base_label, base_runs = baselines[baseline_key]
        cells, problems, seeds = {key: None for key, *_ in COLUMNS}, [], 0
        for setting in ("closed", "open"):
            pairs, groups, missing = _pairs(runs[setting], base_runs[setting])
            problems += [f"{setting}: {text}" for text in missing]
            if not pairs:
                continue
            seeds = max(seeds, len(pairs))
            summary = pooled_paired_difference(pairs, groups, resamples, seed)
            for column, key in _PAIRED_COLUMNS.items():
                if column.startswith(setting) and summary.get(key) is not None:
                    cell = summary[key]
                    cells[column] = {
                        "mean": 100 * cell["mean"],
                        "low": 100 * cell["low"],
                        "high": 100 * cell["high"],
                        "significant": cell["significant"],
                        "n": len(pairs),
                    }
            if setting == "open":
                cells.update(_open_cells(runs["open"], base_runs["open"], resamples, seed))
        if all(cell is None for cell in cells.values()):
            why = "; ".join(problems) or "no closed or open runs"
            notes.append(f"{label} vs {base_label}: no paired row ({why}).")
            continue
        rows.append(
            {
                "kind": "paired",
                "label": f"{label} - {base_label} (paired)",
                "loss": loss,
                "stage": stage,
                "versus": base_label,
                "of": label,
                "cells": cells,
                "num_closed": seeds,
                "num_open": seeds,
                "problems": problems,
            }
        )
    return rows, notes


_COLUMN_WORDS = {
    "closed_many": "closed many-shot",
    "closed_medium": "closed medium-shot",
    "closed_few": "closed few-shot",
    "closed_average": "closed overall",
    "open_many": "open many-shot",
    "open_medium": "open medium-shot",
    "open_few": "open few-shot",
    "open_f_measure": "open F-measure",
    "open_auroc": "open AUROC",
}


def _difference_text(column, cell):
    if column == "open_f_measure":  # F in its own units, not points
        return f"{_COLUMN_WORDS[column]} {cell['mean']:+.3f} [{cell['low']:+.3f}, {cell['high']:+.3f}]"
    return f"{_COLUMN_WORDS[column]} {cell['mean']:+.1f} points [{cell['low']:+.1f}, {cell['high']:+.1f}]"


def paired_sentences(rows):
    """One sentence per paired row: which differences hold (interval excludes zero), else the largest one."""
    sentences = []
    for row in rows:
        compared = [(column, cell) for column, cell in row["cells"].items() if cell is not None]
        real = [(column, cell) for column, cell in compared if cell["significant"]]
        seeds = f"{row['num_closed']} seed{'s' if row['num_closed'] != 1 else ''}"
        head = f"{row['of']} vs {row['versus']} ({seeds}, paired bootstrap over the same test images)"
        if real:
            sentences.append(
                f"{head}: "
                + "; ".join(_difference_text(c, cell) for c, cell in real)
                + f"; the other {len(compared) - len(real)} differences cannot be told from zero."
            )
        else:
            column, cell = max(compared, key=lambda item: abs(item[1]["mean"]))
            sentences.append(
                f"{head}: no difference can be told from zero (largest: {_difference_text(column, cell)})."
            )
    return sentences


def closing_sentences(rows):
    """What the table can and cannot tell, in one sentence over all paired rows."""
    cells = [(row, column, cell) for row in rows for column, cell in row["cells"].items() if cell is not None]
    if not cells:
        return []
    real = [f"{row['of']} {_COLUMN_WORDS[column]}" for row, column, cell in cells if cell["significant"]]
    if not real:
        return [
            f"None of the {len(cells)} paired differences to the baselines excludes zero: on this test set "
            "the rows cannot be told apart."
        ]
    return [
        f"{len(real)} of the {len(cells)} paired differences to the baselines exclude zero "
        f"({', '.join(real)}); the rest cannot be told from noise on this test set."
    ]
