"""Reading what runs left in their log directories: results files and the per-epoch metrics log.

Every readable ``results_test_{closed,open}.json`` under the given directories becomes one
result dict; ``metrics.jsonl`` beside it (one JSON record per finished epoch, written by
the trainer) gives what the run logged while training, such as the cyclical losses' xi.
A file that cannot be read is skipped with one warning line; a missing metrics log is a gap.
Runs moved aside and repeats of one run are left out (identity.py), each with a warning.
"""

import json
import math
import sys
from pathlib import Path

from ..common.run_files import METRICS_LOG, RESULTS_FILES


def print_warning(message):
    print(f"warning: {message}", file=sys.stderr)


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
    problem = implausible_value(result)
    if problem:
        warn(f"skipping {path}: {problem}")
        return None
    result = dict(result)
    result["setting"] = RESULTS_FILES[Path(path).name]  # the file name decides, whatever the body says
    result["_source"] = str(path)
    return result


# Values a results file holds as fractions in [0, 1] (or null: an empty group); anything else cannot be what it claims.
FRACTION_KEYS = (
    "overall_top1",
    "many_shot_top1",
    "medium_shot_top1",
    "few_shot_top1",
    "top5",
    "macro_f1",
    "ece",
    "f_measure",
    "open_auroc",
    "fpr_at_95_tpr",
    "open_rejection_acc",
)
FRACTION_LISTS = ("per_class_top1",)


def _is_fraction(value):
    return (
        isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value) and 0.0 <= value <= 1.0
    )


# Other keys the tables, pairs and plots read, by the JSON types they may have (None: absent or null).
_INT, _STR = ("an integer", (int,)), ("a string", (str,))
TYPED_KEYS = {
    "seed": _INT,
    "num_samples": _INT,
    "stage": ("an integer or a string", (int, str)),
    "recipe": _STR,
    "weights_sha256": _STR,
    "loss_params": ("an object", (dict,)),
    "ci95": ("an object", (dict,)),
    "shot_groups": ("an object", (dict,)),
    "reliability_bins": ("an object", (dict,)),
    "class_counts": ("a list of image counts", (list,)),
}


def wrong_type(result):
    """'key 'seed' is '0', not an integer' for the first value of the wrong type, else None."""
    for key, (what, types) in TYPED_KEYS.items():
        value = result.get(key)
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, types):
            return f"key {key!r} is {value!r:.60}, not {what}"
    counts = result.get("class_counts")
    if counts is not None and not all(isinstance(n, int) and not isinstance(n, bool) and n >= 0 for n in counts):
        return f"key 'class_counts' is {counts!r:.60}, not a list of image counts (integers >= 0)"
    return None


def implausible_value(result):
    """'key 'overall_top1' is 1.7, not a number in [0, 1]' for the first such value (or one of the wrong
    type), else None."""
    problem = wrong_type(result)
    if problem:
        return problem
    for key in FRACTION_KEYS:
        value = result.get(key)
        if value is not None and not _is_fraction(value):
            return f"key {key!r} is {value!r}, not a number in [0, 1]"
    for key in FRACTION_LISTS:
        values = result.get(key)
        if values is None:
            continue
        if not isinstance(values, list):
            return f"key {key!r} is {values!r}, not a list of numbers in [0, 1]"
        for index, value in enumerate(values):
            if value is not None and not _is_fraction(value):
                return f"key {key!r}[{index}] is {value!r}, not a number in [0, 1]"
    return None


def collect_results(dirs, warn=print_warning):
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
        for path in sorted(path for name in RESULTS_FILES for path in root.rglob(name)):
            if path.resolve() in seen:
                continue
            seen.add(path.resolve())
            result = _load_result(path, warn)
            if result is not None:
                results.append(result)
    from .identity import identified_runs  # imports layout (the recipes); collect.py itself stays light

    return identified_runs(results, warn)


def datasets_of(results):
    return sorted({result["dataset"] for result in results})


def log_dir_of(result):
    """The run directory a result was read from (its results file's folder)."""
    return Path(result["_source"]).parent


def read_metrics_log(log_dir, warn=print_warning):
    """The per-epoch records of ``<log_dir>/metrics.jsonl``; [] when there is none.

    Lines that are not a JSON object (a run killed mid-write) are left out, with one
    warning for the file.
    """
    path = Path(log_dir) / METRICS_LOG
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        return []
    except (OSError, UnicodeDecodeError) as error:
        warn(f"skipping {path}: cannot read it ({error})")
        return []
    records, bad = [], 0
    for line in filter(str.strip, lines):
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            record = None
        if isinstance(record, dict):
            records.append(record)
        else:
            bad += 1
    if bad:
        warn(f"{path}: left out {bad} line{'s' if bad > 1 else ''} that {'are' if bad > 1 else 'is'} not a JSON object")
    return records


def logged_xi(records):
    """(epochs, xi) the trainer logged, from the records that carry a numeric ``xi``; None if none do."""
    epochs, values = [], []
    for index, record in enumerate(records):
        xi = record.get("xi")
        if isinstance(xi, (int, float)) and not isinstance(xi, bool):
            epoch = record.get("epoch")
            epochs.append(epoch if isinstance(epoch, int) and not isinstance(epoch, bool) else index + 1)
            values.append(float(xi))
    return (epochs, values) if values else None
