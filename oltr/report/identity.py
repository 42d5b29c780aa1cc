"""Which runs the report counts: every run once, identified by its results, never a run moved aside.

A results file is identified by (dataset, setting, loss, loss_params, recipe, stage, seed) and the
SHA-256 of the weights it tested (``weights_sha256``). The report reads:

* no run under a directory moved aside: ``<log_dir>.old-<timestamp>`` (``--overwrite``) -- those
  are kept for the user, not for the tables;
* no results file without an integer ``seed`` (it cannot be told apart from another seed);
* one run per identity: the same weights found twice (a copied run) count once; two runs of one seed
  with different weights (an earlier sweep's seed-less folder beside ``<run>_seed0``, a re-run) are
  never averaged -- the newest results file counts and the others are named in a warning.

Each case is one warning line naming the files, so the "n/m runs" of a row is what it says.
"""

import json
import os
import re
from pathlib import Path

from .layout import table_recipe

MOVED_ASIDE = re.compile(r"\.old-\d{8}-\d{6}(-\d+)?$")


def moved_aside(path):
    """The folder of ``path`` that was moved aside (``<name>.old-<timestamp>``), else None."""
    for part in Path(path).parent.parts:
        if MOVED_ASIDE.search(part):
            return part
    return None


def _seed(result):
    seed = result.get("seed")
    return seed if isinstance(seed, int) and not isinstance(seed, bool) else None


def run_key(result):
    """What makes two results files the same seed of the same row."""
    return (
        result["dataset"],
        result["setting"],
        result["loss"],
        json.dumps(result.get("loss_params"), sort_keys=True, default=str),
        table_recipe(result),
        str(result.get("stage")),
        _seed(result),
    )


def _written(result):
    try:
        return os.stat(result["_source"]).st_mtime_ns
    except (OSError, KeyError):
        return 0


def identified_runs(results, warn):
    """``results`` less moved-aside runs, unidentifiable ones and repeats of an identity (with warnings)."""
    kept, aside = [], []
    for result in results:
        folder = moved_aside(result["_source"])
        if folder is not None:
            aside.append(result["_source"])
        elif _seed(result) is None:
            warn(
                f"skipping {result['_source']}: key 'seed' is {result.get('seed')!r}, not an integer; "
                "the run cannot be told apart from another seed"
            )
        else:
            kept.append(result)
    if aside:
        warn(
            f"left out {len(aside)} results file{'s' if len(aside) > 1 else ''} of runs moved aside "
            f"(<log_dir>.old-<timestamp>): {', '.join(sorted(aside))}"
        )
    by_key = {}
    for result in kept:
        by_key.setdefault(run_key(result), []).append(result)
    unique = []
    for key, group in by_key.items():
        newest = max(group, key=lambda result: (_written(result), result["_source"]))
        unique.append(newest)
        if len(group) == 1:
            continue
        others = sorted(result["_source"] for result in group if result is not newest)
        hashes = {result.get("weights_sha256") for result in group}
        what = f"{key[0]} {key[2]} ({key[1]}) seed {key[6]}"
        if len(hashes) == 1:
            warn(
                f"{what}: the same run (same weights) found {len(group)} times; counted once, from "
                f"{newest['_source']} (also in {', '.join(others)})"
            )
        else:
            warn(
                f"{what}: {len(group)} runs of one seed with different weights; never averaged: counted the "
                f"newest, {newest['_source']}, left out {', '.join(others)} (move them out of the report's "
                "directories, or give them other seeds)"
            )
    order = {id(result): index for index, result in enumerate(results)}
    return sorted(unique, key=lambda result: order[id(result)])
