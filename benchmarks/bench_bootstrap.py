"""The results' bootstrap intervals at ImageNet-LT size: 50,000 test images of 1,000 classes, plus
ImageNet-LT's 10,000 open images for the open-set test (F-measure and AUROC intervals too).

    python benchmarks/bench_bootstrap.py [--resamples 1000] [--threads 1]

Prints seconds per call (the issue's budget is 10 s on one core); it never asserts a timing.
"""

import argparse
import os
import platform
import time


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--resamples", type=int, default=1000)
    parser.add_argument("--threads", type=int, default=1, help="BLAS/OpenMP threads (default 1: one core)")
    args = parser.parse_args()
    for variable in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[variable] = str(args.threads)
    import numpy as np

    from oltr.evaluation.metrics import shot_groups
    from oltr.evaluation.uncertainty import run_intervals

    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(1000), 50)
    groups = shot_groups(rng.integers(5, 1280, 1000))
    predictions = np.where(rng.random(labels.size) < 0.35, labels, (labels + 1) % 1000)
    confidence = rng.random(labels.size)
    open_labels = np.r_[labels, -np.ones(10000, dtype=int)]
    open_predictions = np.r_[np.where(confidence < 0.1, -1, predictions), rng.integers(-1, 1000, 10000)]
    open_confidence = np.r_[confidence, rng.random(10000) * 0.8]
    cpu = platform.processor() or platform.machine()
    try:
        cpu = next(line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    print(f"{cpu}, numpy {np.__version__}, {args.threads} thread(s), {args.resamples} resamples")
    for name, case in (
        ("closed (50,000 images)", (labels, predictions, confidence)),
        ("open (50,000 + 10,000 images)", (open_labels, open_predictions, open_confidence)),
    ):
        started = time.perf_counter()
        run_intervals(*case, groups, resamples=args.resamples, seed=0)
        print(f"  {name:<32} {time.perf_counter() - started:6.2f} s")


if __name__ == "__main__":
    main()
