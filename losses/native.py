"""Fused CPU kernels for the focal family and the sigmoid focal losses, compiled on first use.

The C++ sources are in ``losses/csrc``. Each kernel computes a row's loss and its
gradient in one pass over the logits, with ATen's vectorised math and thread pool;
eager PyTorch needs a pass per elementwise op (the focal family's target is 1.5x
``F.cross_entropy``, label smoothing included). ``losses/fast/dispatch.py`` calls them on
CPU float32/float64 logits and the PyTorch Functions in every other case (CUDA, no compiler).

Built once per torch version, CPU capability and source version, with
``torch.utils.cpp_extension`` (a C++ compiler and ninja), into
``$TORCH_EXTENSIONS_DIR/oltr_losses`` (default ``~/.cache/torch_extensions/oltr_losses``);
later processes only load the library. ``OLTR_NATIVE_LOSSES`` chooses:

* ``auto`` (default): build or load on first use; if that fails, warn once and use the
  PyTorch implementation (same numbers, slower);
* ``off``: never build, always PyTorch;
* ``require``: a failed build is an error (CI sets this, so the fast path cannot vanish).

``python -m losses --build`` builds now (before a distributed run, say) and reports.
"""
import contextlib
import hashlib
import logging
import os
import re
import shutil
import sys
import tempfile
import threading
import time
import warnings
from pathlib import Path

import torch

__all__ = [
    "MODE_VARIABLE",
    "MODES",
    "NativeKernelsUnavailable",
    "cpu_kernels",
    "describe",
    "kernels",
    "library_path",
    "load",
    "mode",
    "summarize_error",
]

MODE_VARIABLE = "OLTR_NATIVE_LOSSES"
MODES = ("auto", "off", "require")
LIBRARY_NAMESPACE = "oltr_losses"
SOURCE_DIR = Path(__file__).resolve().parent / "csrc"
KERNEL_DTYPES = (torch.float32, torch.float64)

# Compiler flags per torch CPU capability: the same vector width torch's own kernels use here.
_CAPABILITY_FLAGS = {
    "AVX512": ["-mavx512f", "-mavx512bw", "-mavx512vl", "-mavx512dq", "-mfma", "-DCPU_CAPABILITY_AVX512"],
    "AVX2": ["-mavx2", "-mfma", "-DCPU_CAPABILITY_AVX2"],
}

_lock = threading.Lock()
# ops: the loaded namespace; error: why the one attempt under auto/require failed (None before it).
_state = {"ops": None, "error": None, "warned": False}


class NativeKernelsUnavailable(RuntimeError):
    """The fused kernels could not be built or loaded (raised under OLTR_NATIVE_LOSSES=require)."""


def mode():
    """The current OLTR_NATIVE_LOSSES value (read on every call, so it can change at run time)."""
    value = os.environ.get(MODE_VARIABLE, "auto").strip().lower() or "auto"
    if value not in MODES:
        raise ValueError(f"{MODE_VARIABLE} must be one of {', '.join(MODES)}, got {value!r}")
    return value


def _capability():
    capability = torch.backends.cpu.get_cpu_capability()
    return capability if capability in _CAPABILITY_FLAGS else "DEFAULT"


def _compile_flags(capability):
    flags = ["-O3", *_CAPABILITY_FLAGS.get(capability, []), f"-DCPU_CAPABILITY={capability}"]
    ldflags = []
    # at::parallel_for's OpenMP body is inline in ATen's headers: without -fopenmp it runs on
    # one thread. The library then shares the libgomp torch has loaded (same soname).
    if "parallel backend: OpenMP" in torch.__config__.parallel_info():
        flags.append("-fopenmp")
        ldflags.append("-fopenmp")
    return flags, ldflags


def _sources():
    return sorted(SOURCE_DIR.glob("*.cpp"))


def _cache_root():
    root = os.environ.get("TORCH_EXTENSIONS_DIR") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "torch_extensions"
    )
    return Path(root) / LIBRARY_NAMESPACE


def library_path():
    """Where the library for this torch, CPU capability and source version lives (built or not)."""
    capability = _capability()
    flags, ldflags = _compile_flags(capability)
    digest = hashlib.sha256()
    for part in (torch.__version__, str(torch.version.git_version), " ".join(flags + ldflags)):
        digest.update(part.encode() + b"\0")
    for source in sorted(SOURCE_DIR.iterdir()):
        digest.update(source.name.encode() + b"\0" + source.read_bytes())
    name = f"{LIBRARY_NAMESPACE}_{capability.lower()}_{digest.hexdigest()[:16]}"
    return _cache_root() / name / f"{name}.so"


@contextlib.contextmanager
def _exclusive(lock_file):
    """An inter-process lock, so that concurrent ranks build once and the rest wait and load."""
    try:
        import fcntl
    except ImportError:  # not POSIX: builds may duplicate, the atomic rename keeps them safe
        yield
        return
    with open(lock_file, "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _build(target):
    """Compile into a private directory, then move the library into place atomically."""
    # Imported only to build: it is slow, and on a CPU-only machine it logs a CUDA_HOME guess
    # that has nothing to do with these kernels.
    extension_logger = logging.getLogger("torch.utils.cpp_extension")
    level = extension_logger.level
    extension_logger.setLevel(logging.ERROR)
    try:
        from torch.utils import cpp_extension
    finally:
        extension_logger.setLevel(level)

    capability = _capability()
    flags, ldflags = _compile_flags(capability)
    print(
        f"oltr-lt: compiling the fused CPU loss kernels ({capability}) into {target.parent}; "
        "once per torch version, about half a minute",
        file=sys.stderr,
        flush=True,
    )
    started = time.perf_counter()
    scratch = Path(tempfile.mkdtemp(prefix="build-", dir=target.parent))
    try:
        name = target.stem
        # is_python_module=False registers the operators (torch.ops.oltr_losses) by loading it.
        cpp_extension.load(
            name,
            [str(source) for source in _sources()],
            extra_cflags=flags,
            extra_ldflags=ldflags,
            build_directory=str(scratch),
            is_python_module=False,
            verbose=False,
        )
        os.replace(scratch / f"{name}.so", target)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    print(f"oltr-lt: built in {time.perf_counter() - started:.0f} s", file=sys.stderr, flush=True)


def _register_fake_kernels():
    """Shape-only kernels, so that torch.compile and FakeTensor tracing can see through the ops."""
    register = getattr(torch.library, "register_fake", None)
    if register is None:  # torch < 2.4: the ops still run eagerly
        return

    def per_sample_and_grad(logits, with_grad):
        loss = logits.new_empty(logits.shape[:1])
        return loss, logits.new_empty(logits.shape if with_grad else (0, 0))

    @register(f"{LIBRARY_NAMESPACE}::softmax_focal")
    def _softmax_focal(logits, targets, gamma_pos, gamma_neg, gamma_hc, xi, eps, with_grad):
        return per_sample_and_grad(logits, with_grad)

    @register(f"{LIBRARY_NAMESPACE}::sigmoid_focal")
    def _sigmoid_focal(logits, targets, gamma, class_gamma, pos_weight, neg_weight, with_grad):
        return per_sample_and_grad(logits, with_grad)

    @register(f"{LIBRARY_NAMESPACE}::scale_rows_collect")
    def _scale_rows_collect(grad, upstream, targets):
        return grad.new_empty(grad.shape), grad.new_empty(grad.shape[:1]), grad.new_empty(grad.shape[1:])


def load():
    """Build if needed and load the kernels; return ``torch.ops.oltr_losses``. Raises on failure."""
    with _lock:
        if _state["ops"] is not None:
            return _state["ops"]
        target = library_path()
        target.parent.mkdir(parents=True, exist_ok=True)
        with _exclusive(target.parent / "lock"):
            if target.exists():
                torch.ops.load_library(str(target))
            else:
                _build(target)
        _register_fake_kernels()
        _state["ops"] = getattr(torch.ops, LIBRARY_NAMESPACE)
        _state["error"] = None
        return _state["ops"]


_CAUSE = re.compile(r"\berror\b|not found|no such file|permission denied|cannot", re.IGNORECASE)


def summarize_error(error):
    """One line: the error's type and, from a build log, the compiler's complaint.

    A failed build's message is the whole ninja log (command lines, "FAILED: x.o", the
    compiler's output, "ninja: build stopped"); its first line that says what went wrong
    ("error: ...", "c++: not found") is the useful one, else the last line.
    """
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    if not lines:
        return type(error).__name__
    causes = [
        line for line in lines[1:]
        if _CAUSE.search(line) and not line.startswith(("FAILED:", "[")) and len(line) < 400
    ]
    return f"{type(error).__name__}: {(causes or lines)[0 if causes else -1]}"


def kernels():
    """``torch.ops.oltr_losses`` when the kernels are (or can be made) available, else None.

    One attempt per process; under ``auto`` a failure warns once and returns None, under
    ``require`` it raises NativeKernelsUnavailable, under ``off`` nothing is attempted.
    """
    current = mode()
    if current == "off":
        return None
    if _state["ops"] is None and _state["error"] is None:  # not attempted yet
        try:
            load()
        except Exception as error:  # a compiler, ninja or file-system failure: fall back
            _state["error"] = summarize_error(error)
    if _state["ops"] is None:
        if current == "require":
            raise NativeKernelsUnavailable(
                f"the fused CPU loss kernels are required ({MODE_VARIABLE}=require) but could not be "
                f"built or loaded: {_state['error']}"
            )
        if not _state["warned"]:
            _state["warned"] = True
            warnings.warn(
                f"oltr-lt: the fused CPU loss kernels could not be built ({_state['error']}); the losses "
                f"use their PyTorch implementation (same values, slower). Set {MODE_VARIABLE}=off to "
                "skip the attempt, or run 'python -m losses --build' to see the build error.",
                RuntimeWarning,
                stacklevel=3,
            )
    return _state["ops"]


def cpu_kernels(logits):
    """The kernels if they apply to ``logits`` (a CPU float32/float64 tensor), else None."""
    if logits.device.type != "cpu" or logits.dtype not in KERNEL_DTYPES:
        return None
    return kernels()


def describe():
    """Lines saying how the kernels are chosen and where the library is, for ``python -m losses``."""
    target = library_path()
    return [
        f"fused CPU kernels: {MODE_VARIABLE}={mode()}, CPU capability {_capability()}, torch {torch.__version__}",
        f"library: {target} ({'built' if target.exists() else 'not built yet'})",
    ]
