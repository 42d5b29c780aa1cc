"""What a sweep step costs before it does any work: a fresh process from the fork server against ``python main.py``.

    python benchmarks/bench_sweep_start.py [--repeats 7]

Both candidates run the same command, ``main.py --config config/Digits_LT/stage_1.py --test --opts
training_opt.log_dir=<an empty folder>``: it loads the config, imports everything a test imports
(torch, torchvision, the models, the data pipeline, the metrics) and stops at once with "no
checkpoint" (exit 2). So the time from start to exit is the start-up a step pays before its first
real work. "fork server" is the local executor's way (oltr/sweep/local.py: a child of a server that
imported torch, torchvision, scikit-learn and the package once); "cold" is ``python main.py`` as a
new interpreter, what each step cost before the sweep ran in one process. Rounds are interleaved
(harness.time_interleaved); the ratio is the median of the per-round ratios. Nothing is written
outside a temporary folder.
"""

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from harness import log, machine_lines, paired_ratio, print_table, time_interleaved  # noqa: E402


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7, help="interleaved rounds (default: 7)")
    args = parser.parse_args(argv)
    import torch

    from oltr.sweep import local
    from oltr.sweep.plan import Step

    os.chdir(REPO)
    with tempfile.TemporaryDirectory() as tmp:
        argv_ = [
            "--config",
            "config/Digits_LT/stage_1.py",
            "--test",
            "--opts",
            f"training_opt.log_dir={tmp}/empty",
            f"training_opt.data_root={tmp}/data/Digits_LT",
            f"training_opt.split_dir={tmp}/data/Digits_LT",
        ]
        step = Step("probe", "test", "main", argv_, Path(tmp) / "run")
        executor = local.LocalExecutor(jobs=1, echo=lambda line: None)
        log("starting the fork server (its imports are paid once, here)")
        started = time.perf_counter()
        executor.start(step).handle.join()
        server_start = time.perf_counter() - started

        def fork_server(_units):
            running = executor.start(step)
            running.handle.join()
            assert running.exit_code() == 2, step.out_file.read_text()

        def cold(_units):
            process = subprocess.run([sys.executable, "main.py", *argv_], capture_output=True, text=True)
            assert process.returncode == 2, process.stderr

        seconds = time_interleaved(
            {"fork server": fork_server, "cold python main.py": cold}, args.repeats, 1, sync=lambda: None
        )
        out = step.out_file.read_text().strip().splitlines()[-1]
    median = {name: sorted(times)[len(times) // 2] for name, times in seconds.items()}
    print("## Start-up of one sweep step (until it can work)\n")
    print("\n".join(machine_lines(torch.device("cpu"))))
    print(f"- command: python main.py {' '.join(argv_[:4])} training_opt.log_dir=<empty> (ends: {out!r})")
    print(f"- fork server's own start, once per sweep: {server_start:.2f} s\n")
    rows = [(name, f"{median[name]:.3f}", f"{min(times):.3f}..{max(times):.3f}") for name, times in seconds.items()]
    print_table(("way", "median s", "min..max s"), rows)
    ratio = paired_ratio(seconds["fork server"], seconds["cold python main.py"])  # time(cold) / time(fork server)
    print(f"\ncold / fork server: {ratio:.1f}x (median of {args.repeats} paired rounds)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
