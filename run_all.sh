#!/usr/bin/env bash
# Tables 3-4 of the cyclical focal loss paper: every loss through both OLTR stages, closed- and
# open-set tests, then the report. `./run_all.sh` runs the embedded Digits_LT in minutes on a CPU;
# `./run_all.sh ImageNet_LT Places_LT` reproduces the paper's tables when their data is present.
# Options: --seeds N, --losses L... (any registry loss), --replay-published, --dry-run, --skip-done, --isolate
# (see --help).
set -euo pipefail
cd "$(dirname "$0")"
exec "${PYTHON:-python3}" -m oltr.sweep "$@"
