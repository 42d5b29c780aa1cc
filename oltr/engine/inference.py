"""Forward passes without gradients: logits for evaluation, class centroids for stage 2."""

import contextlib

import torch

from .distributed import all_reduce_sum_, gather_rows
from .precision import resolve_amp

AMP_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


def autocast(device, amp):
    """Autocast context for ``amp`` in {"auto", "off", "bf16", "fp16"}; bf16 works on CPUs too."""
    amp = resolve_amp(amp, device)
    if amp == "off":
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=AMP_DTYPES[amp])


def to_device(images, device, channels_last=False):
    memory_format = torch.channels_last if channels_last else torch.contiguous_format
    return images.to(device, non_blocking=True, memory_format=memory_format)


@torch.no_grad()
def collect_logits(network, loader, centroids, ctx, amp="off", channels_last=False, progress=None, with_features=False):
    """(logits float32, labels, dataset indices) over ``loader``, gathered from every rank in dataset order;
    ``with_features``: the feature model's output (float32) too, as a fourth item."""
    network.eval()
    all_logits, all_labels, all_indices, all_features = [], [], [], []
    for images, labels, indices in progress(loader) if progress else loader:
        with autocast(ctx.device, amp):
            logits, features = network(to_device(images, ctx.device, channels_last), centroids)
        all_logits.append(logits.float())
        all_labels.append(labels.to(ctx.device))
        all_indices.append(indices.to(ctx.device))
        if with_features:
            all_features.append(features.float())
    # A rank whose share is empty (fewer images than ranks) still joins the gathers.
    logits = gather_rows(_cat_or_empty(all_logits, torch.float32, ctx.device), ctx)
    labels = gather_rows(_cat_or_empty(all_labels, torch.int64, ctx.device), ctx)
    indices = gather_rows(_cat_or_empty(all_indices, torch.int64, ctx.device), ctx)
    order = torch.argsort(indices)
    if with_features:
        features = gather_rows(_cat_or_empty(all_features, torch.float32, ctx.device), ctx)
        return logits[order].cpu(), labels[order].cpu(), indices[order].cpu(), features[order].cpu()
    return logits[order].cpu(), labels[order].cpu(), indices[order].cpu()


@torch.no_grad()
def compute_centroids(feat_model, loader, num_classes, ctx, amp="off", channels_last=False, progress=None):
    """Mean feature of every class in one vectorised pass (OLTR's centroids_cal).

    Summed per class with index_add and reduced across ranks; a class with no
    sample keeps a zero centroid.
    """
    feat_model.eval()
    sums, counts = None, torch.zeros(num_classes, device=ctx.device, dtype=torch.float64)
    if getattr(feat_model, "feature_dim", None) is not None:
        # Allocated up front so a rank without a batch still joins the all-reduce with the right shape.
        sums = torch.zeros(num_classes, feat_model.feature_dim, device=ctx.device, dtype=torch.float64)
    for images, labels, _ in progress(loader) if progress else loader:
        with autocast(ctx.device, amp):
            features, _ = feat_model(to_device(images, ctx.device, channels_last))
        features = features.double()
        labels = labels.to(ctx.device)
        if sums is None:
            sums = torch.zeros(num_classes, features.shape[1], device=ctx.device, dtype=torch.float64)
        sums.index_add_(0, labels, features)
        counts.index_add_(0, labels, torch.ones_like(labels, dtype=counts.dtype))  # CUDA's bincount syncs
    all_reduce_sum_(sums, ctx)
    all_reduce_sum_(counts, ctx)
    return (sums / counts.clamp(min=1).unsqueeze(1)).float()


def _cat_or_empty(parts, dtype, device):
    return torch.cat(parts) if parts else torch.empty(0, dtype=dtype, device=device)
