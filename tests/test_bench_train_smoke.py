"""Smoke run of benchmarks/bench_train.py at its smallest settings: it runs end to end and prints its tables.

Timings are never asserted (they depend on the machine and its load); only that every
section reports, that the ratios are positive numbers and that nothing lands in logs/.
"""

import importlib.util
import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def load_bench():
    spec = importlib.util.spec_from_file_location("bench_train", REPO / "benchmarks" / "bench_train.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow
def test_smallest_run_prints_every_table(capsys, monkeypatch):
    monkeypatch.chdir(REPO)
    bench = load_bench()
    code = bench.main(
        [
            "--quick",
            "--sections",
            "overhead,loss,config,realistic",
            "--steps",
            "2",
            "--repeats",
            "1",
            "--epoch-repeats",
            "1",
            "--warmup",
            "1",
            "--modes",
            "fp32,bf16",
            "--real-size",
            "32",
            "--real-batch",
            "2",
            "--real-steps",
            "1",
            "--real-repeats",
            "1",
            "--threads",
            "1",
        ]
    )
    out = capsys.readouterr().out
    assert code == 0
    for title in (
        "### Trainer overhead",
        "### Performance loss inside our trainer",
        "### Modes on Digits_LT",
        "### Modes on a realistic shape",
    ):
        assert title in out
    assert "avx512_bf16" in out and "load average" in out
    step_row = next(line for line in out.splitlines() if line.startswith("| train_step"))
    ratio = float(step_row.split("|")[4])
    assert ratio > 0
    mode_rows = [line for line in out.splitlines() if re.match(r"\| (fp32|bf16) \|", line)]
    assert len(mode_rows) == 4  # fp32 and bf16, on the config and on the realistic shape
    assert "Fastest safe mode" in out or "No mode ran safely" in out
    # The benchmark's runs log into its temporary directory, never under logs/.
    assert not [p for p in (REPO / "logs").glob("**/*") if p.name in ("overhead", "config_fp32", "loss_cfl")]


@pytest.mark.slow
def test_oltr_section_compares_ours_with_the_original_loop(capsys, monkeypatch):
    monkeypatch.chdir(REPO)
    bench = load_bench()
    code = bench.main(
        [
            "--quick",
            "--sections",
            "oltr",
            "--oltr-images",
            "8",
            "--oltr-batch",
            "4",
            "--oltr-size",
            "32",
            "--oltr-repeats",
            "1",
            "--oltr-workers",
            "1",
        ]
    )
    out = capsys.readouterr().out
    assert code == 0
    assert "### Ours vs OLTR's original loop (config/ImageNet_LT/stage_1.py" in out
    assert "vector ISA" in out
    ratio_line = next(line for line in out.splitlines() if line.startswith("- ratio ours/original time per epoch"))
    ratio = float(re.search(r"epoch: ([0-9.]+) \(min", ratio_line).group(1))
    assert ratio > 0 and "target <= " in ratio_line
    assert re.search(r"images/s median \(min-max\): ours [0-9,]+ .*original [0-9,]+", out)
    assert not [p for p in (REPO / "logs").glob("**/oltr_ours")]


def test_unknown_mode_is_refused():
    bench = load_bench()
    with pytest.raises(SystemExit, match="unknown mode 'fp8'"):
        bench.main(["--modes", "fp32,fp8"])
