"""OLTR's transforms on uint8 image tensors, a batch at a time, on the CPU or on the GPU.

The same distributions as ``transforms.py`` (torchvision's PIL transforms, OLTR's
``data_transforms``), drawn per sample from one generator per batch:

    train: RandomResizedCrop(input_size, scale=crop_scale, ratio=(3/4, 4/3))   torchvision's rule:
           10 tries of area ~ U(scale) * H * W and log-aspect ~ U(log 3/4, log 4/3), else a
           central crop clamped to the ratio range
           + horizontal flip with probability 1/2
           + ColorJitter(brightness, contrast, saturation, hue): each factor ~ U(max(0, 1 - v), 1 + v)
             (hue ~ U(-h, h)), applied in a uniformly random order per sample
           + ToTensor + Normalize
    eval:  Resize(resize_size) of the shorter side + CenterCrop(input_size) + ToTensor + Normalize

Crop and resize run on uint8 (antialiased bilinear, rounded to uint8 as PIL does); the colour
operations and normalisation run in float32 in [0, 1], clamped after each operation as PIL's
are (PIL also rounds to uint8 after each one; this does not, a difference under 1/255 per
operation), image by image in place on a CPU and on the whole batch on a GPU (``apply``).
Parameters are drawn on the CPU from the batch's generator, so a batch gets the same
augmentation whichever device applies it.
"""
import math
from dataclasses import dataclass

import numpy as np
import torch
from torchvision.transforms.v2 import functional as TF

from .transforms import IMAGENET_MEAN, IMAGENET_STD

RATIO = (3.0 / 4.0, 4.0 / 3.0)  # RandomResizedCrop's default aspect range, as OLTR uses it
CROP_TRIES = 10  # torchvision's RandomResizedCrop.get_params
JITTER_OPS = ("brightness", "contrast", "saturation", "hue")
SMALL_IMAGES = 64  # output side below which whole-batch operations beat image-by-image ones on a CPU


def _resized_crop(image, top, left, height, width, size, on_cpu):
    """uint8 crop resized with antialiased bilinear interpolation (PIL's), rounded to uint8.

    On a CPU, ``interpolate`` has a uint8 kernel (what ``TF.resized_crop`` calls there too, minus its
    dispatch: a third of the time on tiny images); elsewhere TF converts to float and back.
    """
    if not on_cpu:
        return TF.resized_crop(image, top, left, height, width, size, antialias=True)
    return _resize_batch(image[None, :, top:top + height, left:left + width], size)[0]


def _resize_batch(crops, size):
    return torch.nn.functional.interpolate(crops, size=size, mode="bilinear", align_corners=False, antialias=True)


def _resized_crops(images, boxes, size, on_cpu):
    """Every image's crop resized to ``size``; on a CPU, crops of one size are resized in one call
    (small images repeat crop sizes often, and one call per crop costs more than the pixels)."""
    boxes = boxes.tolist()
    if not on_cpu:
        return [_resized_crop(image, *box, size, on_cpu) for image, box in zip(images, boxes)]
    out = [None] * len(images)
    by_size = {}
    for k, (image, box) in enumerate(zip(images, boxes)):
        by_size.setdefault((box[2], box[3], tuple(image.shape[:-2])), []).append(k)
    for (height, width, _), members in by_size.items():
        if len(members) == 1:
            out[members[0]] = _resized_crop(images[members[0]], *boxes[members[0]], size, on_cpu)
            continue
        group = torch.stack([images[k][:, boxes[k][0]:boxes[k][0] + height, boxes[k][1]:boxes[k][1] + width]
                             for k in members])
        for k, crop in zip(members, _resize_batch(group, size)):
            out[k] = crop
    return out


@dataclass
class AugmentParams:
    """Per-sample parameters of one training batch (B samples)."""

    boxes: torch.Tensor  # (B, 4) int64: top, left, height, width of the crop
    flips: torch.Tensor  # (B,) bool
    factors: torch.Tensor  # (B, 4) float64: brightness, contrast, saturation factors and hue shift
    orders: torch.Tensor  # (B, k) int64: the active jitter operations (indices into JITTER_OPS) in order


def sample_crop_boxes(heights, widths, scale, ratio, generator):
    """(B, 4) crop boxes drawn as ``RandomResizedCrop.get_params`` draws them, for all samples at once.

    One ``torch.rand`` call draws every uniform; the arithmetic runs in NumPy (float64), whose
    small-array operations cost a fraction of torch's per call.
    """
    heights = np.asarray(heights, dtype=np.float64)
    widths = np.asarray(widths, dtype=np.float64)
    count = heights.size
    uniforms = torch.rand(count, 2 * CROP_TRIES + 2, generator=generator, dtype=torch.float64).numpy()
    area = (heights * widths)[:, None]
    target_area = area * (scale[0] + (scale[1] - scale[0]) * uniforms[:, :CROP_TRIES])
    log_lo, log_hi = math.log(ratio[0]), math.log(ratio[1])
    aspect = np.exp(log_lo + (log_hi - log_lo) * uniforms[:, CROP_TRIES:2 * CROP_TRIES])
    crop_w = np.round(np.sqrt(target_area * aspect))  # half to even, as Python's round()
    crop_h = np.round(np.sqrt(target_area / aspect))
    fits = (crop_w > 0) & (crop_w <= widths[:, None]) & (crop_h > 0) & (crop_h <= heights[:, None])
    first = np.argmax(fits, axis=1)  # the first try that fits
    found = fits.any(axis=1)
    rows = np.arange(count)
    h, w = crop_h[rows, first], crop_w[rows, first]
    # No try fits: the whole image, cut to the nearest allowed aspect ratio, centred.
    in_ratio = widths / heights
    fallback_w = np.where(in_ratio > ratio[1], np.round(heights * ratio[1]), widths)
    fallback_h = np.where(in_ratio < ratio[0], np.round(widths / ratio[0]), heights)
    h = np.where(found, h, fallback_h)
    w = np.where(found, w, fallback_w)
    # top ~ randint(0, H - h + 1): uniform over the positions where the crop fits
    top = np.where(found, np.floor(uniforms[:, -2] * (heights - h + 1)), (heights - h) // 2)
    left = np.where(found, np.floor(uniforms[:, -1] * (widths - w + 1)), (widths - w) // 2)
    return torch.from_numpy(np.stack([top, left, h, w], axis=1).astype(np.int64))


def jitter_ranges(color_jitter):
    """[(low, high) or None] per operation of JITTER_OPS, as ColorJitter reads its arguments."""
    if color_jitter is None:
        return [None] * 4
    ranges = []
    for name, value in zip(JITTER_OPS, color_jitter):
        if value == 0:
            ranges.append(None)
        elif name == "hue":
            ranges.append((-float(value), float(value)))
        else:
            ranges.append((max(0.0, 1.0 - float(value)), 1.0 + float(value)))
    return ranges


_GRAY_WEIGHTS = (0.2989, 0.587, 0.114)  # ITU-R 601-2 luma, as torchvision's rgb_to_grayscale and PIL's convert('L')


def _gray(images):
    return (_GRAY_WEIGHTS[0] * images[:, 0] + _GRAY_WEIGHTS[1] * images[:, 1]
            + _GRAY_WEIGHTS[2] * images[:, 2]).unsqueeze(1)


def _blend(images, other, factors):
    return (factors * images + (1.0 - factors) * other).clamp_(0.0, 1.0)


def _apply_jitter_op(op, images, factors):
    """One ColorJitter operation with a factor per sample; ``images`` float (b, 3, H, W) in [0, 1]."""
    f = factors.to(images.device, images.dtype).view(-1, 1, 1, 1)
    if op == 0:  # brightness: blend with black
        return (images * f).clamp_(0.0, 1.0)
    if op == 1:  # contrast: blend with the mean grey level of the image
        return _blend(images, _gray(images).mean(dim=(1, 2, 3), keepdim=True), f)
    if op == 2:  # saturation: blend with the grey image
        return _blend(images, _gray(images), f)
    return torch.stack([TF.adjust_hue(image, float(shift)) for image, shift in zip(images, factors)])


def _jitter_in_place(op, image, factor):
    """One ColorJitter operation on one float (3, H, W) image in [0, 1], in place. A blend with
    factor <= 1 stays in [0, 1] (a convex combination), so only a larger factor needs the clamp."""
    if op == 3:
        image.copy_(TF.adjust_hue(image, factor))
        return
    if op == 0:  # brightness: blend with black
        image.mul_(factor)
    elif op == 1:  # contrast: blend with the mean grey level
        mean = sum(weight * image[c].mean() for c, weight in enumerate(_GRAY_WEIGHTS))
        image.mul_(factor).add_(mean * (1.0 - factor))
    else:  # saturation: blend with the grey image
        gray = torch.mul(image[0], _GRAY_WEIGHTS[0])
        gray.add_(image[1], alpha=_GRAY_WEIGHTS[1]).add_(image[2], alpha=_GRAY_WEIGHTS[2])
        image.mul_(factor).add_(gray, alpha=1.0 - factor)
    if factor > 1.0:
        image.clamp_(0.0, 1.0)


class BatchTransform:
    """``transform(images, generator)`` -> float32 (B, 3, S, S), normalised.

    ``images``: a list of uint8 (3, H, W) tensors (sizes may differ) or one uint8 (B, 3, H, W)
    tensor, on any device; the output is on the same device. ``generator``: a CPU
    ``torch.Generator`` the training transform draws its parameters from (eval ignores it).
    """

    def __init__(self, train, input_size=224, resize_size=256, color_jitter=(0.4, 0.4, 0.4, 0),
                 mean=IMAGENET_MEAN, std=IMAGENET_STD, horizontal_flip=True, crop_scale=(0.08, 1.0)):
        self.train = train
        self.input_size = int(input_size)
        self.resize_size = int(resize_size)
        self.crop_scale = tuple(float(s) for s in crop_scale)
        self.horizontal_flip = horizontal_flip
        self.ranges = jitter_ranges(color_jitter)
        self.mean = torch.tensor(mean, dtype=torch.float32).view(1, 3, 1, 1)
        self.std = torch.tensor(std, dtype=torch.float32).view(1, 3, 1, 1)

    # ------------------------------------------------------------------ parameters

    def sample(self, sizes, generator):
        """AugmentParams for images of ``sizes`` [(H, W), ...]."""
        count = len(sizes)
        heights = [h for h, _ in sizes]
        widths = [w for _, w in sizes]
        boxes = sample_crop_boxes(heights, widths, self.crop_scale, RATIO, generator)
        flips = torch.rand(count, generator=generator) < 0.5 if self.horizontal_flip else torch.zeros(count, dtype=torch.bool)
        factors = torch.zeros(count, 4, dtype=torch.float64)
        active = [op for op, r in enumerate(self.ranges) if r is not None]
        for op in active:
            low, high = self.ranges[op]
            factors[:, op] = low + (high - low) * torch.rand(count, generator=generator, dtype=torch.float64)
        if active:  # a uniformly random order of the active operations per sample
            ranks = torch.argsort(torch.rand(count, len(active), generator=generator), dim=1)
            orders = torch.tensor(active, dtype=torch.int64)[ranks]
        else:
            orders = torch.zeros(count, 0, dtype=torch.int64)
        return AugmentParams(boxes, flips, factors, orders)

    # ------------------------------------------------------------------ applying

    def __call__(self, images, generator=None):
        if self.train:
            sizes = [tuple(image.shape[-2:]) for image in images]
            return self.apply(images, self.sample(sizes, generator))
        return self.normalize(self.resize_center_crop(images))

    def apply(self, images, params, batched=None):
        """Crop, flip, jitter and normalise ``images`` with ``params``.

        ``batched`` (default: on a GPU, or for images under SMALL_IMAGES pixels a side): each
        operation on the whole batch, a few large kernels; otherwise image by image, in place (on
        a CPU each image's floats then stay in the cache between operations: 3.5x faster at
        224 px). The two agree to float rounding.
        """
        on_cpu = images[0].device.type == "cpu"
        if batched is None:  # tiny images (the embedded default's 16 px): a few calls beat many
            batched = not on_cpu or self.input_size < SMALL_IMAGES
        size = [self.input_size, self.input_size]
        crops = _resized_crops(images, params.boxes, size, on_cpu)
        if batched:
            return self._finish_batch(torch.stack(crops), params)
        out = torch.empty(len(crops), 3, *size, dtype=torch.float32, device=crops[0].device)
        mean, std = self.mean.view(3).tolist(), self.std.view(3).tolist()
        for k, crop in enumerate(crops):
            image = out[k]
            torch.mul(crop.flip(-1) if params.flips[k] else crop, 1.0 / 255.0, out=image)
            for op in params.orders[k].tolist():
                _jitter_in_place(op, image, float(params.factors[k, op]))
            for channel in range(3):
                image[channel].sub_(mean[channel]).mul_(1.0 / std[channel])
        return out

    def _finish_batch(self, batch, params):
        batch = batch.float().div_(255.0)
        device = batch.device
        if params.flips.any():
            flips = params.flips.to(device)
            batch = torch.where(flips.view(-1, 1, 1, 1), batch.flip(-1), batch)
        if params.orders.shape[1]:
            batch = self._jitter(batch, params)
        return self.normalize(batch, already_float=True)

    def _jitter(self, batch, params):
        """Each sample's operations in its own order: samples sharing an order go together."""
        orders, inverse = torch.unique(params.orders, dim=0, return_inverse=True)
        out = torch.empty_like(batch)
        for group, order in enumerate(orders):
            members = torch.nonzero(inverse == group).squeeze(1)
            part = batch[members.to(batch.device)]
            for op in order.tolist():
                part = _apply_jitter_op(op, part, params.factors[members, op])
            out[members.to(batch.device)] = part
        return out

    def resize_center_crop(self, images):
        """Resize(resize_size) then CenterCrop(input_size), uint8; images of one size are resized together."""
        if isinstance(images, torch.Tensor):
            images = list(images)
        out = [None] * len(images)
        by_size = {}
        for position, image in enumerate(images):
            by_size.setdefault(tuple(image.shape), []).append(position)
        crop = [self.input_size, self.input_size]
        for positions in by_size.values():
            group = torch.stack([images[p] for p in positions])
            group = TF.center_crop(TF.resize(group, [self.resize_size], antialias=True), crop)
            for p, image in zip(positions, group):
                out[p] = image
        return torch.stack(out)

    def normalize(self, batch, already_float=False):
        if not already_float:
            batch = batch.float().div_(255.0)
        mean, std = self.mean.to(batch.device), self.std.to(batch.device)
        return batch.sub_(mean).div_(std)
