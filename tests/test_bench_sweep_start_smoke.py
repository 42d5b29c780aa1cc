"""A smoke run of benchmarks/bench_sweep_start.py: both ways of starting a step run the command to its
one-line error, and the table and ratio are printed (the numbers themselves are the benchmark's)."""

import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


@pytest.mark.slow
def test_one_round_prints_the_table_and_the_ratio():
    process = subprocess.run(
        [sys.executable, "benchmarks/bench_sweep_start.py", "--repeats", "1"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert process.returncode == 0, process.stderr
    out = process.stdout
    assert "| fork server |" in out and "| cold python main.py |" in out
    assert "cold / fork server: " in out and "does not exist" in out
