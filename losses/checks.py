"""Checks and reductions shared by every loss in the registry."""

import contextlib
import math
import threading

import torch

REDUCTIONS = ("mean", "sum", "none")
_trusted = threading.local()


@contextlib.contextmanager
def targets_checked():
    """Inside it the losses do not read the targets' values: their caller checked them already.

    Reading a CUDA tensor's min and max waits for the GPU (a host sync per loss per step); a
    trainer checks its labels on the CPU before copying them to the device, then computes its
    losses in this context. Shapes and dtypes are still checked.
    """
    previous = getattr(_trusted, "on", False)
    _trusted.on = True
    try:
        yield
    finally:
        _trusted.on = previous


def check_reduction(reduction):
    if reduction not in REDUCTIONS:
        raise ValueError(f"reduction must be one of {REDUCTIONS}, got {reduction!r}")
    return reduction


def check_non_negative(name, value):
    if not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(value) or value < 0:
        raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")
    return float(value)


def check_in_unit_interval(name, value):
    """``value`` in [0, 1): the range of label_smoothing and of CB's beta."""
    if not isinstance(value, (int, float)) or isinstance(value, bool) or not 0.0 <= value < 1.0:
        raise ValueError(f"{name} must be in [0, 1), got {value!r}")
    return float(value)


def check_class_counts(class_counts, num_classes=None):
    """Per-class training counts as a float64 CPU vector; ValueError naming the first bad class.

    Every count must be finite and > 0 (the losses divide by or take the log of it); with
    ``num_classes`` the length must match.
    """
    if class_counts is None:
        raise ValueError(
            "class_counts is required for this loss: pass the per-class training counts "
            "(the pipeline passes them as context)"
        )
    try:
        counts = torch.as_tensor(class_counts, dtype=torch.float64).detach().cpu()
    except (TypeError, ValueError, RuntimeError):
        raise ValueError(f"class_counts must be a sequence of numbers, got {class_counts!r}") from None
    if counts.dim() != 1 or counts.numel() == 0:
        raise ValueError(f"class_counts must be a non-empty 1-D sequence, got shape {tuple(counts.shape)}")
    bad = (~torch.isfinite(counts) | (counts <= 0)).nonzero()
    if bad.numel():
        index = int(bad[0])
        raise ValueError(
            f"class_counts must all be finite and > 0, but class {index} has {counts[index].item():g} "
            "(a class with no training image cannot be weighted; give it images or drop it from the split)"
        )
    if num_classes is not None and counts.numel() != num_classes:
        raise ValueError(f"class_counts has {counts.numel()} entries but num_classes is {num_classes}")
    return counts


def check_logits_and_targets(logits, targets, num_classes=None, classes_from="num_classes", name="logits"):
    """Tensors of shapes (B, C) and (B,): floating-point ``logits`` (or features, ``name``), integer
    targets in [0, C) (C: ``num_classes`` when given, else the logits' width).

    With ``num_classes``, logits must have exactly that many columns; ``classes_from`` says where
    the loss took it (``"class_counts"`` or ``"num_classes"``), for the message.
    """
    for argument, value in ((name, logits), ("targets", targets)):
        if not isinstance(value, torch.Tensor):
            raise ValueError(f"{argument} must be a torch.Tensor, got {type(value).__name__}")
    if not logits.dtype.is_floating_point:
        raise ValueError(
            f"{name} must be a floating-point tensor (float16/bfloat16/float32/float64), got dtype {logits.dtype}"
        )
    if logits.dim() != 2:
        raise ValueError(
            f"{name} must have shape (batch, {'features' if name != 'logits' else 'classes'}), "
            f"got {tuple(logits.shape)}"
        )
    if targets.dim() != 1 or targets.shape[0] != logits.shape[0]:
        raise ValueError(f"targets must have shape ({logits.shape[0]},) to match {name}, got {tuple(targets.shape)}")
    if num_classes is not None and name == "logits" and logits.shape[1] != num_classes:
        source = (
            f"class_counts has {num_classes} entries"
            if classes_from == "class_counts"
            else (f"num_classes is {num_classes}")
        )
        raise ValueError(f"logits have {logits.shape[1]} classes but {source}")
    if targets.dtype.is_floating_point or targets.dtype == torch.bool:
        raise ValueError(f"targets must be integer class indices, got dtype {targets.dtype}")
    classes = logits.shape[1] if num_classes is None else num_classes
    if getattr(_trusted, "on", False):
        return
    if targets.numel() and (int(targets.min()) < 0 or int(targets.max()) >= classes):
        raise ValueError(
            f"targets must be in [0, {classes}), got values from {int(targets.min())} to {int(targets.max())}"
        )


def compute_dtype_logits(logits):
    """Half-precision logits promoted to float32 (the math runs there); float32/float64 as they are."""
    if logits.dtype in (torch.float16, torch.bfloat16):
        return logits.float()
    return logits


def reduce_loss(per_sample, reduction):
    if reduction == "mean":
        return per_sample.mean()
    if reduction == "sum":
        return per_sample.sum()
    return per_sample
