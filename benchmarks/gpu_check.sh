#!/usr/bin/env bash
# The GPU check, one prepared command (under 8 minutes on one H100): preflight, device, the Digits_LT
# demo, and ImageNet-LT stage-1/2 throughput on synthetic JPEGs against OLTR's original loop, in one
# pasteable table (see benchmarks/gpu_check.py). Everything is written under one temporary directory.
#   benchmarks/gpu_check.sh                        # the first CUDA device; exits 2 when there is none
#   benchmarks/gpu_check.sh --preflight            # versions, CUDA, /dev/shm, free disk; nothing else
#   benchmarks/gpu_check.sh --device cpu --quick   # the CPU dry run, about a minute
set -euo pipefail
cd "$(dirname "$0")/.."
exec "${PYTHON:-python3}" benchmarks/gpu_check.py "$@"
