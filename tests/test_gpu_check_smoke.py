"""benchmarks/gpu_check.py off a GPU: the one-line refusal without CUDA, the preflight (one line per piece,
exit 2 when one is missing), and its CPU dry run (--device cpu --quick) of the stage-1/2 rows.

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


def test_the_preflight_has_a_line_per_piece_and_stops_on_a_missing_one(capsys, monkeypatch):
    check = load_check()
    assert check.main(["--device", "cpu", "--quick", "--preflight"]) == 0
    out = capsys.readouterr().out
    assert "## 1. Preflight" in out and "## 2. Device" not in out
    for piece in ("ok: torch ", "/dev/shm ", " GiB free in "):
        assert sum(piece in line for line in out.splitlines()) == 1, piece
    import gpu_check_parts

    usage = gpu_check_parts.shutil.disk_usage
    monkeypatch.setattr(gpu_check_parts.shutil, "disk_usage", lambda path: usage(path)._replace(free=2**20))
    assert check.main(["--device", "cpu", "--quick"]) == 2
    out = capsys.readouterr().out
    missing = [line for line in out.splitlines() if "MISSING" in line]
    assert len(missing) == 2 and any("GiB free in" in line and "TMPDIR" in line for line in missing)
    assert any("/dev/shm" in line for line in missing) and "## 2. Device" not in out


@pytest.mark.slow
def test_cpu_quick_without_the_demo(capsys, monkeypatch):
    monkeypatch.chdir(REPO)
    check = load_check()
    code = check.main(["--device", "cpu", "--quick", "--skip-demo", "--workers", "0"])
    out = capsys.readouterr().out
    assert code == 0
    assert "## 2. Device" in out and "CPU cores" in out
    names = [
        "ours stage 1, not cached, fp32",
        "ours stage 1, not cached, bf16 + channels_last",
        "ours stage 1, cached, bf16 + channels_last",
        "original OLTR loop (PIL, fp32)",
        "ours stage 2, centroids",
    ]
    for name in names:
        row = next(line for line in out.splitlines() if line.startswith(f"| {name}"))
        assert float(row.split("|")[2].replace(",", "")) > 0  # images/s
        assert re.search(r"\| [0-9.]+ ms \|", row)  # data wait per step
    assert re.search(r"images/s [0-9.]+x the original loop", out)
    assert not (REPO / "logs" / "runs").exists()
