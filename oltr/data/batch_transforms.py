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

For a GPU the transform is cut in two (``prepare`` and ``finish``): the loader's workers draw
the parameters, crop and resize to the output size and ship one uint8 (B, 3, S, S) tensor
with the per-sample parameters packed in one small float tensor (``pack``); the device flips,
jitters and normalises the whole batch with a fixed number of kernels, reading the parameters
from one upload, and never reads anything back to the host.
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
    return _resize_batch(image[None, :, top : top + height, left : left + width], size)[0]


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
        group = torch.stack(
            [images[k][:, boxes[k][0] : boxes[k][0] + height, boxes[k][1] : boxes[k][1] + width] for k in members]
        )
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
    aspect = np.exp(log_lo + (log_hi - log_lo) * uniforms[:, CROP_TRIES : 2 * CROP_TRIES])
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
    return (
        _GRAY_WEIGHTS[0] * images[:, 0] + _GRAY_WEIGHTS[1] * images[:, 1] + _GRAY_WEIGHTS[2] * images[:, 2]
    ).unsqueeze(1)


def _blend(images, other, factors):
    return (factors * images + (1.0 - factors) * other).clamp_(0.0, 1.0)


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


# pack(): one float32 row per sample: flip, the four jitter factors, the order of the active operations
FLIP, FACTORS, ORDER = 0, slice(1, 5), 5
PACKED_COLUMNS = 5 + len(JITTER_OPS)


def pack(params):
    """A batch's per-sample parameters as one float32 (B, 9) tensor: flip (0/1), the factors of
    JITTER_OPS, then the active operations in each sample's order (-1 past the last): one upload."""
    count = params.flips.shape[0]
    packed = torch.full((count, PACKED_COLUMNS), -1.0)
    packed[:, FLIP] = params.flips.float()
    packed[:, FACTORS] = params.factors.float()
    packed[:, ORDER : ORDER + params.orders.shape[1]] = params.orders.float()
    return packed


def _hue_batch(batch, shifts):
    """adjust_hue with one shift per sample (a host list: no read of the device)."""
    return torch.stack([TF.adjust_hue(image, shift) for image, shift in zip(batch, shifts)])


class BatchTransform:
    """``transform(images, generator)`` -> float32 (B, 3, S, S), normalised.

    ``images``: a list of uint8 (3, H, W) tensors (sizes may differ) or one uint8 (B, 3, H, W)
    tensor, on any device; the output is on the same device. ``generator``: a CPU
    ``torch.Generator`` the training transform draws its parameters from (eval ignores it).
    """

    def __init__(
        self,
        train,
        input_size=224,
        resize_size=256,
        color_jitter=(0.4, 0.4, 0.4, 0),
        mean=IMAGENET_MEAN,
        std=IMAGENET_STD,
        horizontal_flip=True,
        crop_scale=(0.08, 1.0),
    ):
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
        flips = (
            torch.rand(count, generator=generator) < 0.5
            if self.horizontal_flip
            else torch.zeros(count, dtype=torch.bool)
        )
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

    def prepare(self, images, generator=None):
        """The workers' half: ``(uint8 (B, 3, S, S), packed parameters or None)`` for ``finish``.

        Training draws the parameters (as ``sample``) and crops and resizes each image to the output
        size; evaluation resizes and centre-crops. What crosses to the device is S x S per image.
        """
        if not self.train:
            return self.resize_center_crop(images), None
        params = self.sample([tuple(image.shape[-2:]) for image in images], generator)
        size = [self.input_size, self.input_size]
        return torch.stack(_resized_crops(images, params.boxes, size, on_cpu=True)), pack(params)

    def finish(self, batch, packed=None):
        """The device's half: flip, jitter and normalise a uint8 (B, 3, S, S) batch on its device.

        ``packed`` (``pack``; training): uploaded once, non-blocking from pinned memory. Each step is
        one whole-batch operation, selected per sample with ``torch.where``: no kernel per image
        (except for a hue shift, which ColorJitter applies image by image) and no read of the device.
        """
        batch = batch.float().div_(255.0)
        if packed is None:
            return self.normalize(batch, already_float=True)
        host = packed
        packed = packed.to(batch.device, non_blocking=True)
        if self.horizontal_flip:
            batch = torch.where(packed[:, FLIP].view(-1, 1, 1, 1) > 0.5, batch.flip(-1), batch)
        active = sum(r is not None for r in self.ranges)
        hue_shifts = host[:, FACTORS][:, 3].tolist() if self.ranges[3] is not None else None
        for position in range(active):  # the position-th operation of every sample, in its own order
            op = packed[:, ORDER + position].long()
            factor = packed[:, FACTORS].gather(1, op.clamp(min=0).view(-1, 1)).view(-1, 1, 1, 1)
            op = op.view(-1, 1, 1, 1)
            # brightness, contrast and saturation are blends with black, the mean grey level, the grey image
            gray = _gray(batch)
            other = torch.where(op == 1, gray.mean(dim=(1, 2, 3), keepdim=True), gray).mul_((op != 0).to(gray.dtype))
            blended = _blend(batch, other, factor)
            if hue_shifts is not None:
                blended = torch.where(op == 3, _hue_batch(batch, hue_shifts), blended)
            batch = blended
        return self.normalize(batch, already_float=True)

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
            return self.finish(torch.stack(crops), pack(params))
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
