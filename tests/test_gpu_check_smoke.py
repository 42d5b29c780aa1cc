"""benchmarks/gpu_check.py off a GPU: the one-line refusal without CUDA, and its stage-1/2 path on a CPU.

The demo part (four main.py processes, about 30 s on 2 cores) is left to a manual
``benchmarks/gpu_check.sh --device cpu --quick``; here it is skipped so the test stays short.
Timings are never asserted.
"""

import importlib.util
import re
import sys
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[1]


def load_check():
    sys.path[:0] = [str(REPO / "benchmarks")]
    spec = importlib.util.spec_from_file_location("gpu_check", REPO / "benchmarks" / "gpu_check.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_without_cuda_it_says_so_and_exits_2(capsys, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    check = load_check()
    assert check.main([]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert len(captured.err.strip().splitlines()) == 1 and "no CUDA device" in captured.err


@pytest.mark.slow
def test_cpu_quick_without_the_demo(capsys, monkeypatch):
    monkeypatch.chdir(REPO)
    check = load_check()
    code = check.main(["--device", "cpu", "--quick", "--skip-demo", "--modes", "fp32", "--workers", "0"])
    out = capsys.readouterr().out
    assert code == 0
    assert "## 1. Device" in out and "CPU cores" in out
    for name in ("ours config", "ours fp32", "original (OLTR's loop)", "ours stage 2 (config)"):
        row = next(line for line in out.splitlines() if line.startswith(f"| {name} |"))
        assert float(row.split("|")[2].replace(",", "")) > 0  # images/s
        assert re.search(r"\| [0-9.]+ ms \|", row)  # data wait per step
    assert re.search(r"images/s ratio ours/original [0-9.]+x \(target >= 3x", out)
    assert not (REPO / "logs" / "runs").exists()
