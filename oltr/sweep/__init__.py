"""The sweep behind ``./run_all.sh``: a plan of commands, then an executor that runs it.

    plan.py    every step (stage 1, each recipe's stage 2, its tests, the report) with its exact command,
               log dir, done marker and the steps it waits for
    state.py   <logs>/sweep.json: the plan and each step's state, kept current
    local.py   the local executor: --jobs N steps at a time, each a fresh process forked from a server
               that imported torch once; GPUs shared out by CUDA_VISIBLE_DEVICES, torchrun for several
    job.py     StepJob, what one SLURM job runs (light: every job imports it)
    slurm.py   the SLURM executor on submitit: one job per step, dependencies handed to SLURM, requeue
               on time limits and preemption
    checks.py  what is checked before anything runs: losses, recipes, data, runs and jobs already there
    status.py  ``oltr sweep status LOGS``: the table of steps, states and job ids
    options.py the options (./run_all.sh --help)
    cli.py     the command line (./run_all.sh, python -m oltr.sweep): checks, plan, executor, summary

The sweep only calls commands (``python main.py ...``, ``python -m oltr.report ...``): nothing of a
step runs in the sweep's own process.
"""


def main(argv=None):
    """``./run_all.sh``'s entry point (``oltr.sweep.cli.main``), imported on first call: the package itself
    stays light, since every SLURM job imports it to unpickle its ``job.StepJob``."""
    from .cli import main as cli_main

    return cli_main(argv)


__all__ = ["main"]
