"""A step program for tests/test_sweep_local.py: reports what its process started with, then changes it.

``main([name, report_path])`` writes a JSON report (pid, an environment variable, torch's threads, a
random draw, the preloaded modules), then sets that variable, torch's threads, the RNG and a module
global, which a fresh process for the next step must not see.
"""

import json
import os
import sys

import torch

LEFT_BEHIND = None


def main(argv):
    global LEFT_BEHIND
    name, report = argv[:2]
    print(f"probe {name}")
    facts = {
        "pid": os.getpid(),
        "leak_before": os.environ.get("OLTR_PROBE_LEAK"),
        "global_before": LEFT_BEHIND,
        "threads_before": torch.get_num_threads(),
        "rand": torch.rand(2).tolist(),
        "cuda_visible_devices": os.environ.get("CUDA_VISIBLE_DEVICES"),
        "omp": os.environ.get("OMP_NUM_THREADS"),
        "preloaded": sorted(m for m in ("torch", "torchvision", "sklearn", "oltr.cli") if m in sys.modules),
    }
    with open(report, "w") as handle:
        json.dump(facts, handle)
    os.environ["OLTR_PROBE_LEAK"] = name
    torch.set_num_threads(1 if torch.get_num_threads() > 1 else 2)
    torch.manual_seed(123)
    LEFT_BEHIND = name
    if len(argv) > 2:  # hold on, so that the other steps run beside this one
        import time

        time.sleep(float(argv[2]))
    return 0
