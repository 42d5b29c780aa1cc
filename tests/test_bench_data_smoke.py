"""Smoke run of benchmarks/bench_data.py at its smallest settings: every section runs and prints its table.

Timings are never asserted; only that each table is there with positive numbers and that nothing
lands in logs/ (everything goes to a temporary directory).
"""

import importlib.util
import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_quick_run_prints_every_table(capsys, monkeypatch, tmp_path):
    monkeypatch.chdir(REPO)
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    spec = importlib.util.spec_from_file_location("bench_data", REPO / "benchmarks" / "bench_data.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    logs_before = sorted((REPO / "logs").rglob("*")) if (REPO / "logs").exists() else []
    assert bench.main(["--quick", "--images", "4", "--batch", "4", "--repeats", "1"]) == 0
    out = capsys.readouterr().out
    for title in (
        "### Decode + augment, ImageNet-shaped",
        "### Data pipeline share of a Digits_LT stage-1 epoch",
        "### Loader workers across epochs",
        "### Bytes shipped per training batch to the device",
    ):
        assert title in out
    speedup = re.search(r"tensor / PIL per core: ([0-9.]+)x", out)
    assert speedup and float(speedup.group(1)) > 0
    shares = re.findall(r"\| (tensor|pil) \| \d+ \| \d+ \| ([0-9.]+)% \|", out)
    assert [name for name, _ in shares] == ["tensor", "pil"] and all(float(share) > 0 for _, share in shares)
    assert re.search(r"\| persistent \| \d+ \| [0-9.]+ \|", out)
    fewer = re.search(r"fewer bytes: ([0-9.]+)x", out)
    assert fewer and float(fewer.group(1)) >= 3.0  # 500x375 -> 224x224: 3.7x, whatever the timing
    assert (sorted((REPO / "logs").rglob("*")) if (REPO / "logs").exists() else []) == logs_before
