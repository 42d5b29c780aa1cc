"""From a validated ``training_opt`` to a run's data: split lines, datasets, samplers and loaders.

prepare_data       a dataset that builds itself (Digits_LT, CIFAR-LT) on first use
load_samples       one split's (path, label) lines, checked
build_dataset      the tensor pipeline (uint8 store + batch transforms) or OLTR's PIL one
build_train_loader / build_eval_loader   the loaders of training and of one-pass scoring
"""

import os
from pathlib import Path

import numpy as np
import torch

from losses.registry import Registry

from ..common.errors import ConfigError, DataError
from .batch_transforms import BatchTransform
from .batches import SeededBatchSampler, TensorLoader
from .dataset import SplitDataset, UInt8SplitDataset
from .digits_lt import ensure_digits_lt
from .image_store import default_cache_dir, estimated_bytes, open_or_build
from .samplers import ClassAwareSampler, ClassPriorSampler, EpochShuffleSampler, seeded_generator
from .split_file import find_image_root, read_split, split_path
from .transforms import build_transform


def export_cifar_lt_once(data_root, which):
    """CIFAR-{10,100}-LT (imbalance factor 100, exponential profile) exported into ``data_root`` on first use.

    torchvision's archive is downloaded into ``<data_root>/../cifar`` (the default of
    ``python -m oltr.data cifar-lt``). Split files already there (an export of your own) are kept.
    """
    from .cifar_lt import VARIANTS, export_cifar_lt, load_cifar

    _, dataset, _, _, archive, folder = VARIANTS[which]
    data_root = Path(data_root)
    if all((data_root / f"{dataset}_{split}.txt").is_file() for split in ("train", "val", "test")):
        return data_root
    archive_root = data_root.parent / "cifar"
    try:
        load_cifar(which, archive_root, train=True, download=True)
    except DataError as error:
        raise DataError(
            f"{dataset} is exported on first use from {archive}, which is not in {archive_root}/ and "
            f"could not be downloaded ({error.__context__}); download it into {archive_root}/ (or "
            f"extract it there as {archive_root / folder}/) and rerun (see data/README.md)"
        ) from None
    export_cifar_lt(archive_root, data_root, which=which, imbalance_factor=100, download=False)
    return data_root


# Datasets that can be created on first use, when their split files are absent: name -> preparer(data_root).
PREPARERS = Registry("dataset preparer", error=DataError)
PREPARERS.register("Digits_LT", ensure_digits_lt)
PREPARERS.register("CIFAR10_LT", lambda data_root: export_cifar_lt_once(data_root, "cifar10"))
PREPARERS.register("CIFAR100_LT", lambda data_root: export_cifar_lt_once(data_root, "cifar100"))


def prepare_data(training_opt):
    """Create a dataset that builds itself (the embedded default) if it is not there yet."""
    if training_opt["dataset"] in PREPARERS:
        PREPARERS.get(training_opt["dataset"])(training_opt["data_root"])


def load_samples(training_opt, split):
    """The (path, label) list of one split, checked line by line."""
    split_dir, dataset = training_opt["split_dir"], training_opt["dataset"]
    path = split_path(split_dir, dataset, split)
    if not path.is_file():  # say which config keys to fix, which read_split cannot know
        raise DataError(
            f"split file {path} does not exist; set training_opt.split_dir (now {split_dir}) to the folder "
            f"holding {dataset}_{{train,val,test,open}}.txt and training_opt.data_root to the folder their "
            f"image paths start from ('python -m oltr.data check' verifies both)"
        )
    root = training_opt["data_root"]
    if split == "open" and path.is_file():
        # OLTR ships its open-set images beside the split files, not under the data root.
        root = find_image_root(path, [root, Path(split_dir) / f"{dataset}_open", split_dir])
    return read_split(path, root, training_opt["num_classes"], allow_open=(split == "open"))


def class_counts_of(samples, num_classes):
    labels = np.fromiter((label for _, label in samples), dtype=np.int64, count=len(samples))
    return np.bincount(labels, minlength=num_classes).tolist()


def check_every_class_trains(training_opt, class_counts):
    """A known class without a training image is a defect (as ``python -m oltr.data check`` says): refuse it."""
    empty = [label for label, count in enumerate(class_counts) if count == 0]
    if empty:
        path = split_path(training_opt["split_dir"], training_opt["dataset"], "train")
        shown = ", ".join(map(str, empty[:10])) + (", ..." if len(empty) > 10 else "")
        raise DataError(
            f"{path}: {len(empty)} of the {len(class_counts)} known classes have no training image "
            f"(class {shown}); add images of them, or renumber the labels and lower "
            "training_opt.num_classes"
        )


def build_dataset(training_opt, samples, train, like=None):
    """The dataset of ``samples`` for ``training_opt.data_pipeline``.

    tensor: uint8 images (from the decoded store when ``cache_images`` allows one), with the batch
    transform the loaders apply in ``.batch_transform``; pil: OLTR's per-image PIL transforms.
    ``like``: a dataset of the same samples (the training set, for a pass with test-time transforms)
    whose store serves this one too, instead of hashing and checking every file again.
    """
    if training_opt["data_pipeline"] == "pil":
        return SplitDataset(samples, build_transform(train, **training_opt["transforms"]))
    store = like.store if isinstance(like, UInt8SplitDataset) else image_store_for(training_opt, samples)
    return UInt8SplitDataset(
        samples,
        store=store,
        encoded_jpegs=training_opt["gpu_decode"],
        batch_transform=BatchTransform(train, **training_opt["transforms"]),
    )


def image_store_for(training_opt, samples):
    """The decoded store of ``samples`` (built on first use), or None when ``cache_images`` says not to."""
    policy = training_opt["cache_images"]
    if policy == "never" or not samples:
        return None
    paths = [path for path, _ in samples]
    if policy == "auto" and estimated_bytes(paths) > training_opt["cache_images_max_gb"] * 2**30:
        return None
    cache_dir = training_opt["cache_dir"] or default_cache_dir()
    return open_or_build(
        paths,
        cache_dir,
        f"{training_opt['dataset']}-{len(paths)}",
        num_workers=resolve_num_workers(training_opt["num_workers"], "cuda"),
    )  # all cores but 2


def resolve_num_workers(value, device):
    """``training_opt.num_workers``: a number as it is; ``auto`` is the usable cores minus 2 on CUDA
    (the main process and the pin-memory thread keep theirs; ImageNet JPEGs take 2-3 ms each to
    decode), and min(4, cores) elsewhere."""
    if value != "auto":
        return value
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    return max(cores - 2, 1) if torch.device(device).type == "cuda" else min(4, cores)


def check_gpu_decode(training_opt, device):
    """``gpu_decode`` decodes on a CUDA device: on any other it is refused in one line."""
    if training_opt["gpu_decode"] and torch.device(device).type != "cuda":
        raise ConfigError(
            f"training_opt.gpu_decode is true but this run's device is {device}: JPEGs are decoded "
            "on the GPU only; set training_opt.gpu_decode to false (the workers decode on the CPU)"
        )


def build_train_loader(training_opt, dataset, seed, ctx):
    """The training loader: shuffled, class-aware, or distributed; reseeded per epoch (trainer.start_epoch)."""
    check_gpu_decode(training_opt, ctx.device)
    workers = resolve_num_workers(training_opt["num_workers"], ctx.device)
    sampler = build_sampler(training_opt, dataset.labels, seed, ctx)
    batch_size = _per_rank_batch(training_opt["batch_size"], ctx)
    if hasattr(sampler, "global_stream"):  # each rank: its contiguous chunk of every global batch
        sampler.batch_size = batch_size
    if training_opt["data_pipeline"] == "pil":
        return torch.utils.data.DataLoader(
            dataset,
            batch_size=batch_size,
            sampler=sampler,
            num_workers=workers,
            drop_last=True,
            pin_memory=ctx.device.type == "cuda",
            # Workers are re-created every epoch from a reseeded generator, so a
            # resumed run replays the same augmentations (persistent workers would not).
            worker_init_fn=_seed_worker,
            generator=seeded_generator(seed),
        )
    # Augmentations follow the batch seeds of SeededBatchSampler, not the workers: they may persist.
    return TensorLoader(
        dataset,
        dataset.batch_transform,
        ctx.device,
        batch_sampler=SeededBatchSampler(sampler, batch_size, drop_last=True),
        num_workers=workers,
        persistent_workers=training_opt["persistent_workers"],
        generator=seeded_generator(seed),
        worker_init_fn=_seed_worker,
    )


def build_sampler(training_opt, labels, seed, ctx):
    """``training_opt.sampler.type`` (a null sampler is ``instance``: plain shuffling), split across ranks."""
    sampler_cfg = training_opt["sampler"]
    kind = "instance" if sampler_cfg is None else sampler_cfg["type"]
    shard = dict(seed=seed, rank=ctx.rank, world_size=ctx.world_size)
    if kind == "instance":
        return EpochShuffleSampler(len(labels), **shard)
    if kind == "class_aware":
        return ClassAwareSampler(labels, num_samples_cls=sampler_cfg["num_samples_cls"], **shard)
    try:
        return ClassPriorSampler(
            labels, kind, num_classes=training_opt["num_classes"], num_epochs=training_opt["num_epochs"], **shard
        )
    except ValueError as error:
        raise DataError(f"training_opt.sampler.type {kind!r}: {error}") from None


def build_eval_loader(training_opt, dataset, ctx, passes="many"):
    """An in-order loader; under DDP each rank takes a strided share, gathered later.

    ``passes="one"`` (a test, the centroids, a recipe's fit): its workers are not kept for another pass.
    """
    check_gpu_decode(training_opt, ctx.device)
    workers = resolve_num_workers(training_opt["num_workers"], ctx.device)
    indices = list(range(ctx.rank, len(dataset), ctx.world_size))
    subset = torch.utils.data.Subset(dataset, indices) if ctx.distributed else dataset
    batch_size = training_opt["eval_batch_size"] or training_opt["batch_size"]
    if training_opt["data_pipeline"] == "pil":
        return torch.utils.data.DataLoader(
            subset, batch_size=batch_size, shuffle=False, num_workers=workers, pin_memory=ctx.device.type == "cuda"
        )
    return TensorLoader(
        subset,
        dataset.batch_transform,
        ctx.device,
        batch_size=batch_size,
        num_workers=workers,
        persistent_workers=training_opt["persistent_workers"] and passes == "many",
    )


def _per_rank_batch(batch_size, ctx):
    if batch_size % ctx.world_size:
        raise ConfigError(
            f"training_opt.batch_size ({batch_size}) must be divisible by the number of processes ({ctx.world_size})"
        )
    return batch_size // ctx.world_size


def _seed_worker(worker_id):
    # Each worker's torch seed is already derived from the loader's generator;
    # give NumPy and random the same so augmentations are reproducible.
    import random

    seed = torch.initial_seed() % 2**32
    np.random.seed(seed)
    random.seed(seed)
