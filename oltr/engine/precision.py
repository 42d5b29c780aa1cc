"""``training_opt.amp: auto``: bf16 where the hardware computes it natively, fp32 elsewhere.

Measured by ``benchmarks/bench_train.py`` (README, "Speed"): bf16 autocast trains the
ResNet-10 recipes 2-3x faster than fp32 on CUDA and on CPUs with native bf16 (AVX-512 BF16 or
AMX), but 5-10x slower on CPUs without it, where oneDNN emulates it. fp16 is never chosen
automatically: it needs loss scaling, which OLTR's centroid update cannot follow.
"""

import functools
import os

import torch

# oneDNN's ISA names at or above the first with bf16 instructions (ONEDNN_MAX_CPU_ISA caps them)
_BF16_ISAS = (
    "AVX512_CORE_BF16",
    "AVX10_1_512",
    "AVX512_CORE_AMX",
    "AVX10_1_512_AMX",
    "AVX512_CORE_AMX_FP16",
    "AVX10_1_512_AMX_FP16",
    "AVX10_2_512",
    "AVX10_2_512_AMX_2",
    "ALL",
    "DEFAULT",
)


@functools.lru_cache(maxsize=None)
def cpu_has_native_bf16():
    """True when the CPU has bf16 instructions (AVX-512 BF16 or AMX) and oneDNN is allowed to use them."""
    if not torch.backends.mkldnn.is_available():
        return False
    capped = os.environ.get("ONEDNN_MAX_CPU_ISA", "").strip().upper()
    if capped and capped not in _BF16_ISAS:
        return False
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("flags"):
                    flags = set(line.split(":", 1)[1].split())
                    return bool({"avx512_bf16", "amx_bf16"} & flags)
    except OSError:
        pass
    return False


def resolve_amp(amp, device):
    """The autocast mode a run uses: ``amp`` itself unless it is ``auto``."""
    if amp != "auto":
        return amp
    device = torch.device(device)
    if device.type == "cuda":
        return "bf16" if torch.cuda.is_bf16_supported() else "off"
    if device.type == "cpu":
        return "bf16" if cpu_has_native_bf16() else "off"
    return "off"
