#!/usr/bin/env bash
# Tables 3-4 of the cyclical focal loss paper: every loss through both OLTR stages, closed- and
# open-set tests, then the report. `./run_all.sh` runs the embedded Digits_LT in minutes on a CPU;
# `./run_all.sh ImageNet_LT Places_LT` reproduces the paper's tables when their data is present.
# Options: --seeds N, --losses L..., --recipes R..., --jobs N, --executor slurm, --dry-run, --skip-done (see --help
# and docs/sweeps.md). `oltr sweep status logs` follows a sweep.
set -euo pipefail
cd "$(dirname "$0")"
exec "${PYTHON:-python3}" -m oltr.sweep "$@"
