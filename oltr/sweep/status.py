"""``oltr sweep status LOGS``: a sweep's steps, states and job ids, from its sweep.json (brought up to date
from SLURM for a SLURM sweep, and written back).
"""

import argparse
import sys

from ..common.errors import OltrError
from .state import STATES, SWEEP_FILE, SweepState, load_state


def status_main(argv):
    parser = argparse.ArgumentParser(
        prog="oltr sweep status",
        description=f"The steps of a sweep, their states and job ids, from <LOGS>/{SWEEP_FILE} "
        "(brought up to date from SLURM for a SLURM sweep).",
    )
    parser.add_argument("logs", help=f"the sweep's --logs folder (or its {SWEEP_FILE})")
    args = parser.parse_args(argv)
    path, data = load_state(args.logs)
    if data.get("executor") == "slurm":
        data = _refreshed(path, data)
    print(format_status(data))
    return 0


def _refreshed(path, data):
    """The SLURM sweep's states brought up to date (and written back)."""
    from .slurm import SUBMITIT_FOLDER, check_slurm, refresh

    try:
        check_slurm()
    except OltrError as error:
        print(f"note: states as last written ({error})", file=sys.stderr)
        return data
    state = SweepState.from_file(path, data)
    refresh(state, path.parent / SUBMITIT_FOLDER)
    return state.as_dict()


def format_status(data):
    rows = [("step", "state", "job", "exit", "seconds", "note")]
    for record in data["steps"]:
        code = record.get("signal") or ("" if record.get("exit_code") is None else str(record["exit_code"]))
        seconds = "" if record.get("seconds") is None else f"{record['seconds']:.0f}"
        rows.append(
            (
                record.get("label") or record["id"],
                record["state"],
                record.get("job_id") or "",
                code,
                seconds,
                record.get("note") or "",
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(5)]
    lines = ["  ".join(cell.ljust(width) for cell, width in zip(row[:5], widths)) + "  " + row[5] for row in rows]
    counts = {name: sum(record["state"] == name for record in data["steps"]) for name in STATES}
    lines.append(
        f"{data.get('executor', '?')} sweep, updated {data.get('updated', '?')}: "
        + ", ".join(f"{count} {name}" for name, count in counts.items() if count)
    )
    return "\n".join(line.rstrip() for line in lines)
