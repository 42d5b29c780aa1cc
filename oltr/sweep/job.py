"""What one SLURM job of the sweep runs (``StepJob``), kept light: submitit unpickles it in every job, and
importing it pays for nothing but the standard library (the step's own ``main.py`` imports torch)."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

# What main.py exits with when a stop signal ended its training at a safe point (128 + the signal).
STOPPED_BY = tuple(128 + getattr(signal, name) for name in ("SIGTERM", "SIGUSR1", "SIGUSR2"))


class StepFailed(RuntimeError):
    """The step's command exited non-zero (the job then fails, and SLURM cancels its dependents)."""


class StepJob:
    """What one SLURM job runs: the step's command, in the sweep's folder, its output appended to its .out."""

    def __init__(self, label, command, cwd, out_file, grace_s=60):
        self.label, self.command, self.cwd = label, list(command), str(cwd)
        self.out_file, self.grace_s = str(out_file), grace_s
        self._child = None

    def _environment(self):
        import submitit

        env, job = dict(os.environ), submitit.JobEnvironment()
        if job.num_tasks > 1:  # DDP across the job's tasks, one per GPU, over env://
            env.update(
                RANK=str(job.global_rank),
                WORLD_SIZE=str(job.num_tasks),
                LOCAL_RANK=str(job.local_rank),
                MASTER_ADDR=job.hostnames[0],
                MASTER_PORT=str(20000 + int(job.raw_job_id) % 20000),
            )
        return env, job.global_rank

    def __call__(self):
        env, rank = self._environment()
        out = Path(self.out_file) if rank == 0 else Path(f"{self.out_file}.rank{rank}")
        out.parent.mkdir(parents=True, exist_ok=True)
        with open(out, "ab") as log:  # appended: a requeued job keeps the output of its earlier attempts
            log.write(
                f"--- {time.strftime('%Y-%m-%d %H:%M:%S')} job {os.environ.get('SLURM_JOB_ID')} on "
                f"{os.uname().nodename}: {' '.join(self.command)}\n".encode()
            )
            log.flush()
            self._child = subprocess.Popen(self.command, cwd=self.cwd, stdout=log, stderr=subprocess.STDOUT, env=env)
            # Polled, not waited for: checkpoint() reaps the child from the signal handler.
            while self._child.poll() is None:
                time.sleep(0.5)
        code = self._child.returncode
        if code in STOPPED_BY and rank == 0 and os.environ.get("SLURM_JOB_ID"):
            # SIGTERM (a preemption, or the time limit without --signal) reached the step but not submitit's
            # own handler: the step kept its last finished epoch, so requeue the job as submitit would.
            subprocess.run(["scontrol", "requeue", os.environ["SLURM_JOB_ID"]], capture_output=True)
            sys.exit(-1)  # not an error: no result is written, and SLURM runs the job again
        if code != 0:
            raise StepFailed(f"{self.label} exited with exit code {code}; output: {out}")
        return code

    def checkpoint(self, *args, **kwargs):
        """SLURM's time limit or a preemption: let the step stop at a safe point, then requeue this job."""
        import submitit

        child = self._child
        if child is not None and child.poll() is None:
            child.send_signal(signal.SIGUSR2)  # SLURM has signalled it too: one stop request either way
            try:
                child.wait(timeout=self.grace_s)
            except subprocess.TimeoutExpired:
                child.kill()
        return submitit.helpers.DelayedSubmission(
            StepJob(self.label, self.command, self.cwd, self.out_file, self.grace_s)
        )
