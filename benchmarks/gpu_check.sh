#!/usr/bin/env bash
# The GPU check: device, the Digits_LT demo on --device, and ImageNet-LT stage-1/2 throughput on
# synthetic JPEGs against OLTR's original loop (see benchmarks/gpu_check.py). Under 8 minutes on one GPU.
#   benchmarks/gpu_check.sh                      # the first CUDA device; exits 2 when there is none
#   benchmarks/gpu_check.sh --device cpu --quick # the CPU smoke run, under a minute
set -euo pipefail
cd "$(dirname "$0")/.."
exec "${PYTHON:-python3}" benchmarks/gpu_check.py "$@"
