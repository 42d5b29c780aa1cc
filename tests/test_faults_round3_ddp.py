"""Issue 20: killing one rank of a DDP run leaves the other with one line, not gloo's 40-line traceback.

Two processes of a 2-rank gloo run of main.py on CPU (as torchrun would start them); rank 1 kills itself
with SIGKILL when its first epoch starts, while rank 0 goes on into the epoch's collectives.
"""

import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import tiny_opts

REPO = Path(__file__).resolve().parents[1]

RANK = """
import os, signal, sys
sys.path.insert(0, {repo!r})
from oltr.runs import trainer
real = trainer._run_epoch
def run_epoch(run, *args):
    if os.environ["RANK"] == "1":
        os.kill(os.getpid(), signal.SIGKILL)
    return real(run, *args)
trainer._run_epoch = run_epoch
from oltr.cli import main
sys.exit(main(sys.argv[1:]))
"""


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.mark.slow
def test_the_rank_left_behind_prints_one_line(tiny_digits_root, tmp_path):
    argv = ["--config", "config/Digits_LT/stage_1.py", "--device", "cpu", "--opts"]
    argv += tiny_opts(tiny_digits_root, tmp_path / "run", **{"training_opt.num_epochs": 2})
    port, processes = free_port(), []
    for rank in (0, 1):
        env = {
            **os.environ,
            "RANK": str(rank),
            "LOCAL_RANK": str(rank),
            "WORLD_SIZE": "2",
            "MASTER_ADDR": "127.0.0.1",
            "MASTER_PORT": str(port),
            "OMP_NUM_THREADS": "1",
        }
        command = [sys.executable, "-c", RANK.format(repo=str(REPO)), *map(str, argv)]
        processes.append(
            subprocess.Popen(command, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        )
    (out0, err0), (_, _) = (process.communicate(timeout=300) for process in processes)
    assert processes[1].returncode == -signal.SIGKILL
    assert processes[0].returncode == 1, err0
    lines = err0.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err0, err0
    assert (
        lines[0].startswith("error: rank 0: another process of this distributed run ended") and "--resume" in lines[0]
    )
