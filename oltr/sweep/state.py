"""``<logs>/sweep.json``: the plan with each step's state, kept current while the sweep runs.

    {"version": 1, "executor": "local" | "slurm", "argv": [...], "logs": ..., "out": ...,
     "created": ..., "updated": ...,
     "steps": [{"id", "phase", "label", "command", "log_dir", "out_file", "done_marker", "needs",
                "after_any", "state", "job_id", "exit_code", "signal", "started", "ended", "seconds",
                "note"}, ...]}

States: ``pending`` (not started; on SLURM: submitted and waiting), ``running``, ``done``,
``failed`` (its exit code or signal, and its output file, say why), ``skipped`` (a step it needs
failed). Only the sweep's own process writes the file (atomically), so a reader never sees half of it.
"""

import json
import time
from pathlib import Path

from ..common.atomic import write_json_atomic
from ..common.errors import OltrError

SWEEP_FILE = "sweep.json"
STATES = ("pending", "running", "done", "failed", "skipped")
TERMINAL = ("done", "failed", "skipped")


def _now():
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime())


class SweepState:
    """The steps' states, written to ``<logs>/sweep.json`` on every change."""

    def __init__(self, path, steps, executor, argv=(), python="python", out=None):
        self.path = Path(path)
        self.header = {
            "version": 1,
            "executor": executor,
            "argv": list(argv),
            "logs": str(self.path.parent),
            "out": None if out is None else str(out),
            "created": _now(),
        }
        self.records = {step.id: self._record(step, python) for step in steps}

    @classmethod
    def from_file(cls, path, data):
        """The state a sweep wrote (``load_state``'s path and dict), to bring up to date and write back."""
        state = cls.__new__(cls)
        state.path = Path(path)
        state.header = {key: value for key, value in data.items() if key != "steps"}
        state.records = {record["id"]: record for record in data["steps"]}
        return state

    def as_dict(self):
        return {**self.header, "steps": list(self.records.values())}

    @staticmethod
    def _record(step, python):
        return {
            "id": step.id,
            "phase": step.phase,
            "label": step.label(),
            "command": step.text(python),
            "log_dir": str(step.log_dir),
            "out_file": str(step.out_file),
            "done_marker": None if step.done_marker is None else str(step.done_marker),
            "needs": list(step.needs),
            "after_any": step.after_any,
            "state": "pending",
            "job_id": None,
            "exit_code": None,
            "signal": None,
            "started": None,
            "ended": None,
            "seconds": None,
            "note": None,
        }

    def __getitem__(self, step_id):
        return self.records[step_id]

    def state(self, step_id):
        return self.records[step_id]["state"]

    def set(self, step_id, state, **fields):
        assert state in STATES, state
        record = self.records[step_id]
        record.update(state=state, **fields)
        if state == "running":
            record.update(started=_now(), ended=None)
        if state in TERMINAL and record["started"] and not record["ended"]:
            record["ended"] = _now()
        self.save()

    def save(self):
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.header["updated"] = _now()
        write_json_atomic(self.path, self.as_dict(), indent=1)

    def counts(self):
        counted = {state: 0 for state in STATES}
        for record in self.records.values():
            counted[record["state"]] += 1
        return counted


def load_state(logs):
    """The dict of ``<logs>/sweep.json`` (or of the file itself); a one-line OltrError when it cannot be read."""
    path = Path(logs)
    path = path / SWEEP_FILE if path.is_dir() else path
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise OltrError(
            f"no {SWEEP_FILE} in {logs}; name the --logs folder of a sweep (./run_all.sh writes <logs>/{SWEEP_FILE})"
        ) from None
    except (OSError, ValueError) as error:
        raise OltrError(
            f"cannot read {path}: {error}; it is written by ./run_all.sh, rerun the sweep with "
            "--skip-done to write it again"
        ) from None
    if not isinstance(data, dict) or not isinstance(data.get("steps"), list):
        raise OltrError(
            f"{path} is not a sweep file (no list of steps); rerun the sweep with --skip-done to write it again"
        )
    return path, data


def signal_name(code):
    """'SIGKILL' for an exit status a signal explains (-9, or 137 = 128 + 9 as a shell reports it), else None."""
    import signal

    if not isinstance(code, int) or isinstance(code, bool):
        return None
    number = -code if code < 0 else code - 128 if 128 < code < 128 + 65 else None
    try:
        return signal.Signals(number).name if number else None
    except ValueError:
        return None
