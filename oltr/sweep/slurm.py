"""The SLURM executor (``--executor slurm``), on submitit: one job per step, the plan's order handed to SLURM.

Each step is one job (``sbatch`` through submitit). A stage-2 job waits for its stage-1 job with
``afterok``, a test for its training, and the report for every test with ``afterany``; with
``--kill-on-invalid-dep=yes`` SLURM cancels the dependents of a failed job at once, and they are
``skipped``. A training job may span ``--nodes-per-step`` nodes with ``--gpus-per-step`` GPUs each:
one task per GPU, each running ``main.py`` with RANK, WORLD_SIZE, LOCAL_RANK and MASTER_ADDR set
from SLURM's job environment (DDP over env://).

Time limits and preemption: SLURM sends SIGUSR2 ``--signal-delay`` seconds before the kill. The step
(``main.py``) stops at its next training step, keeping its last finished epoch; submitit then calls
``StepJob.checkpoint``, which waits for it, and requeues the job, which continues with ``--resume``
(every training command of the plan carries it). A SIGTERM that reaches only the step (a preemption) ends it the same
way, and ``job.StepJob`` requeues the job itself.

The sweep follows the jobs (``squeue``) and keeps ``sweep.json`` current until every job has ended;
``--detach`` returns after submitting, and ``oltr sweep status <logs>`` follows them later.
"""

import contextlib
import io
import pickle
import re
import shutil
import subprocess
import time
from pathlib import Path

from ..common.errors import OltrError
from .job import StepJob
from .plan import dependents
from .state import signal_name

SUBMITIT_FOLDER = ".slurm"  # under --logs: submitit's pickles and the jobs' own logs
WAITING = (
    "PENDING",
    "CONFIGURING",
    "REQUEUED",
    "REQUEUE_HOLD",
    "REQUEUE_FED",
    "RESV_DEL_HOLD",
    "SUSPENDED",
    "PREEMPTED",
    "RESIZING",
)
RUNNING = ("RUNNING", "COMPLETING", "STAGE_OUT", "SIGNALING")


def check_slurm():
    """The SLURM client commands are here; a one-line OltrError naming the fix otherwise."""
    missing = [name for name in ("sbatch", "squeue", "scancel", "srun") if shutil.which(name) is None]
    if missing:
        raise OltrError(
            f"--executor slurm: {', '.join(missing)} not found on PATH; run the sweep on a SLURM login "
            "node (or install the SLURM client), or use --executor local"
        )
    try:
        import submitit  # noqa: F401
    except ImportError:
        raise OltrError(
            "--executor slurm needs submitit: pip install -e '.[slurm]' (or pip install submitit)"
        ) from None


def _sbatch_error(error):
    """The line of sbatch's refusal in a submitit error (or its last line)."""
    text = str(error)
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    found = [line for line in lines if "sbatch: error:" in line]
    line = (found or lines or [type(error).__name__])[-1]
    return line[line.index("sbatch: error:") :] if "sbatch: error:" in line else line


class SlurmExecutor:
    """Submits the plan's steps as SLURM jobs with their dependencies, then follows them (unless detached)."""

    name = "slurm"

    def __init__(
        self,
        logs,
        python,
        partition=None,
        account=None,
        qos=None,
        time_min=1440,
        gpus_per_step=0,
        cpus_per_step=None,
        mem_gb=None,
        nodes_per_step=1,
        tasks_per_node=None,
        sbatch_args=None,
        signal_delay_s=120,
        max_timeouts=10,
        poll_s=10.0,
        detach=False,
        echo=print,
    ):
        check_slurm()
        self.folder = Path(logs) / SUBMITIT_FOLDER
        self.python, self.echo, self.poll_s, self.detach = python, echo, poll_s, detach
        self.gpus_per_step, self.nodes_per_step = gpus_per_step, nodes_per_step
        self.tasks_per_node = tasks_per_node or max(gpus_per_step, 1)
        self.common = {
            key: value
            for key, value in dict(
                partition=partition,
                account=account,
                qos=qos,
                time=time_min,
                signal_delay_s=signal_delay_s,
                mem=None if mem_gb is None else f"{mem_gb}GB",
                cpus_per_task=None if cpus_per_step is None else max(1, cpus_per_step // self.tasks_per_node),
            ).items()
            if value is not None
        }
        self.extra = {"kill-on-invalid-dep": "yes", **(sbatch_args or {})}
        self.max_timeouts = max_timeouts

    def _parameters(self, step, dependency):
        """sbatch parameters of one step: training spans the nodes and GPUs; a test takes one GPU; the report none."""
        nodes, tasks, gpus = 1, 1, (1 if self.gpus_per_step else 0)
        if step.trains:
            nodes, tasks, gpus = self.nodes_per_step, self.tasks_per_node, self.gpus_per_step
        elif step.phase == "report":
            gpus = 0
        parameters = dict(
            self.common,
            job_name=f"oltr-{step.phase}",
            nodes=nodes,
            ntasks_per_node=tasks,
            additional_parameters=dict(self.extra),
            stderr_to_stdout=True,
        )
        if gpus:
            parameters["gpus_per_node"] = gpus
        if dependency:
            parameters["dependency"] = dependency
        return parameters

    def submit(self, steps, state):
        """Submit every step not done, in plan order; returns {step id: job id}. Nothing stays queued on a refusal."""
        import submitit

        jobs = {}
        for step in steps:
            if state.state(step.id) == "done":
                continue
            needed = [jobs[need] for need in step.needs if need in jobs]
            dependency = f"{'afterany' if step.after_any else 'afterok'}:{':'.join(needed)}" if needed else None
            executor = submitit.SlurmExecutor(folder=self.folder, python=self.python, max_num_timeout=self.max_timeouts)
            try:
                executor.update_parameters(**self._parameters(step, dependency))
                with contextlib.redirect_stderr(io.StringIO()):  # submitit prints sbatch's refusal; it is in the error
                    job = executor.submit(
                        StepJob(step.label(), step.command(self.python), Path.cwd(), step.out_file.resolve())
                    )
            except Exception as error:  # sbatch's refusal comes as submitit's error, its text inside
                self.cancel(list(jobs.values()))
                for step_id in jobs:
                    state.set(step_id, "pending", job_id=None, note="cancelled: sbatch refused a later step")
                raise OltrError(
                    f"sbatch refused the job of {step.label()}: {_sbatch_error(error)}; check "
                    "--partition, --account, --qos, --time and --sbatch-arg (nothing of this sweep was "
                    "left queued)"
                ) from None
            jobs[step.id] = job.job_id
            state.set(
                step.id,
                "pending",
                job_id=job.job_id,
                exit_code=None,
                signal=None,
                ended=None,
                note="submitted" + (f", {dependency}" if dependency else ""),
            )
            self.echo(f"[{step.label()}] job {job.job_id}" + (f" ({dependency})" if dependency else ""))
        return jobs

    @staticmethod
    def cancel(job_ids):
        if job_ids:
            subprocess.run(["scancel", *job_ids], capture_output=True)

    def run(self, steps, state):
        """Submit, then follow until every job has ended: 0 when all succeeded, 1 when some failed."""
        jobs = self.submit(steps, state)
        if self.detach:
            self.echo(f"submitted {len(jobs)} jobs; follow them with: oltr sweep status {state.path.parent}")
            return 0
        try:
            while True:
                refresh(state, self.folder)
                if all(state.state(step_id) in ("done", "failed", "skipped") for step_id in jobs):
                    break
                time.sleep(self.poll_s)
        except KeyboardInterrupt:
            self.echo(
                f"stopped following; the jobs go on in SLURM. Follow them with: oltr sweep status "
                f"{state.path.parent}; stop them with: scancel {' '.join(jobs.values())}"
            )
            return 130
        for step in steps:  # what SLURM cancelled after a failure is skipped, whatever squeue said
            if state.state(step.id) == "failed":
                for dependent in dependents(steps, step.id):
                    if state.state(dependent) != "done":
                        state.set(dependent, "skipped", note=f"{step.id} failed")
        return 1 if any(state.state(step_id) in ("failed", "skipped") for step_id in jobs) else 0


# ----------------------------------------------------------------------------- following jobs


def squeue_states(job_ids):
    """{job id: (SLURM state, reason)} of the jobs squeue still knows (ended ones for MinJobAge)."""
    if not job_ids:
        return {}
    result = subprocess.run(
        ["squeue", "-h", "-t", "all", "-j", ",".join(job_ids), "-o", "%i|%T|%r"], capture_output=True, text=True
    )
    states = {}
    for line in result.stdout.splitlines():
        parts = line.strip().split("|")
        if len(parts) == 3:
            states[parts[0]] = (parts[1], parts[2])
    return states


def _job_outcome(folder, job_id):
    """(outcome, exit code) from submitit's result file of the job: ("success"|"error"|None, int|None)."""
    path = Path(folder) / f"{job_id}_0_result.pkl"
    try:
        with open(path, "rb") as handle:
            outcome, value = pickle.load(handle)
    except (OSError, EOFError, pickle.UnpicklingError, ValueError, TypeError):
        return None, None
    code = re.search(r"exit code (-?\d+)", str(value)) if outcome == "error" else None
    return outcome, (int(code.group(1)) if code else (0 if outcome == "success" else None))


def verdict(record, slurm_state, folder):
    """(state, fields) of a submitted step from SLURM's state of its job and the files it left."""
    done_marker = record["done_marker"]
    finished = done_marker is None or Path(done_marker).is_file()
    if slurm_state is not None:
        name, reason = slurm_state
        if name in WAITING:
            return "pending", {"note": f"SLURM {name}" + (f" ({reason})" if reason not in ("None", "") else "")}
        if name in RUNNING:
            return "running", {"note": f"SLURM {name}"}
        if name == "CANCELLED" and "Dependency" in reason:
            return "skipped", {"note": "SLURM cancelled it: a job it needs failed"}
    outcome, code = _job_outcome(folder, record["job_id"])
    if finished and outcome != "error" and (slurm_state is None or slurm_state[0] == "COMPLETED"):
        return "done", {"exit_code": 0, "note": None}
    ended = f"SLURM {slurm_state[0]}" if slurm_state else "the job left SLURM"
    if outcome is None and not finished:
        return "failed", {"exit_code": code, "note": f"{ended} without a result (cancelled, or killed?)"}
    return "failed", {
        "exit_code": code,
        "signal": signal_name(code),  # status and the summary then read "killed by SIGKILL"
        "note": ended + ("" if finished else f"; {Path(done_marker).name} not written"),
    }


def refresh(state, folder):
    """Bring the submitted, unfinished steps of ``state`` (a SweepState) up to date with SLURM."""
    open_records = [r for r in state.records.values() if r["job_id"] and r["state"] in ("pending", "running")]
    slurm = squeue_states([r["job_id"] for r in open_records])
    for record in open_records:
        new_state, fields = verdict(record, slurm.get(record["job_id"]), folder)
        if new_state != record["state"] or fields.get("note") != record["note"]:
            state.set(record["id"], new_state, **fields)
