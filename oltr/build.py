"""Build a run's objects from a validated config: data, networks, losses, optimizers.

Each function takes plain values and returns plain objects; nothing here trains.
"""
import math
from pathlib import Path
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn as nn

import losses as loss_registry
from losses.registry import Registry

from .data import (ClassAwareSampler, ClassPriorSampler, SplitDataset, build_transform, ensure_digits_lt,
                   find_image_root, read_split, split_path)
from .data.batch_transforms import BatchTransform
from .data.batches import SeededBatchSampler, TensorLoader
from .data.dataset import UInt8SplitDataset
from .data.image_store import default_cache_dir, estimated_bytes, open_or_build
from .engine.checkpoint import load_checkpoint
from .errors import CheckpointError, ConfigError, DataError
from .models import build_classifier, build_feature_model
from .run_files import FINAL_CHECKPOINT
from .seeding import mix_seed


def export_cifar_lt_once(data_root, which):
    """CIFAR-{10,100}-LT (imbalance factor 100, exponential profile) exported into ``data_root`` on first use.

    torchvision's archive is downloaded into ``<data_root>/../cifar`` (the default of
    ``python -m oltr.data cifar-lt``). Split files already there (an export of your own) are kept.
    """
    from .data.cifar_lt import VARIANTS, export_cifar_lt, load_cifar
    from .errors import DataError

    _, dataset, _, _, archive, folder = VARIANTS[which]
    data_root = Path(data_root)
    if all((data_root / f"{dataset}_{split}.txt").is_file() for split in ("train", "val", "test")):
        return data_root
    archive_root = data_root.parent / "cifar"
    try:
        load_cifar(which, archive_root, train=True, download=True)
    except DataError as error:
        raise DataError(f"{dataset} is exported on first use from {archive}, which is not in {archive_root}/ and "
                        f"could not be downloaded ({error.__context__}); download it into {archive_root}/ (or "
                        f"extract it there as {archive_root / folder}/) and rerun (see data/README.md)") from None
    export_cifar_lt(archive_root, data_root, which=which, imbalance_factor=100, download=False)
    return data_root


# Datasets that can be created on first use, when their split files are absent: name -> preparer(data_root).
PREPARERS = Registry("dataset preparer", error=DataError)
PREPARERS.register("Digits_LT", ensure_digits_lt)
PREPARERS.register("CIFAR10_LT", lambda data_root: export_cifar_lt_once(data_root, "cifar10"))
PREPARERS.register("CIFAR100_LT", lambda data_root: export_cifar_lt_once(data_root, "cifar100"))


# ----------------------------------------------------------------------------- data

def prepare_data(training_opt):
    """Create a dataset that builds itself (the embedded default) if it is not there yet."""
    if training_opt["dataset"] in PREPARERS:
        PREPARERS.get(training_opt["dataset"])(training_opt["data_root"])


def load_samples(training_opt, split):
    """The (path, label) list of one split, checked line by line."""
    split_dir, dataset = training_opt["split_dir"], training_opt["dataset"]
    path = split_path(split_dir, dataset, split)
    if not path.is_file():  # say which config keys to fix, which read_split cannot know
        raise DataError(f"split file {path} does not exist; set training_opt.split_dir (now {split_dir}) to the folder "
                        f"holding {dataset}_{{train,val,test,open}}.txt and training_opt.data_root to the folder their "
                        f"image paths start from ('python -m oltr.data check' verifies both)")
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
        raise DataError(f"{path}: {len(empty)} of the {len(class_counts)} known classes have no training image "
                        f"(class {shown}); add images of them, or renumber the labels and lower "
                        "training_opt.num_classes")


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
    return UInt8SplitDataset(samples, store=store, encoded_jpegs=training_opt["gpu_decode"],
                             batch_transform=BatchTransform(train, **training_opt["transforms"]))


def image_store_for(training_opt, samples):
    """The decoded store of ``samples`` (built on first use), or None when ``cache_images`` says not to."""
    policy = training_opt["cache_images"]
    if policy == "never" or not samples:
        return None
    paths = [path for path, _ in samples]
    if policy == "auto" and estimated_bytes(paths) > training_opt["cache_images_max_gb"] * 2**30:
        return None
    cache_dir = training_opt["cache_dir"] or default_cache_dir()
    return open_or_build(paths, cache_dir, f"{training_opt['dataset']}-{len(paths)}",
                         num_workers=training_opt["num_workers"])


def seeded_generator(seed):
    generator = torch.Generator()
    generator.manual_seed(seed)
    return generator


def build_train_loader(training_opt, dataset, seed, ctx):
    """The training loader: shuffled, class-aware, or distributed; reseeded per epoch (trainer.start_epoch)."""
    sampler = build_sampler(training_opt, dataset.labels, seed, ctx)
    batch_size = _per_rank_batch(training_opt["batch_size"], ctx)
    if training_opt["data_pipeline"] == "pil":
        return torch.utils.data.DataLoader(
            dataset, batch_size=batch_size, sampler=sampler, num_workers=training_opt["num_workers"],
            drop_last=True, pin_memory=ctx.device.type == "cuda",
            # Workers are re-created every epoch from a reseeded generator, so a
            # resumed run replays the same augmentations (persistent workers would not).
            worker_init_fn=_seed_worker, generator=seeded_generator(seed),
        )
    # Augmentations follow the batch seeds of SeededBatchSampler, not the workers: they may persist.
    return TensorLoader(dataset, dataset.batch_transform, ctx.device,
                        batch_sampler=SeededBatchSampler(sampler, batch_size, drop_last=True),
                        num_workers=training_opt["num_workers"],
                        persistent_workers=training_opt["persistent_workers"],
                        generator=seeded_generator(seed), worker_init_fn=_seed_worker)


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
        return ClassPriorSampler(labels, kind, num_classes=training_opt["num_classes"],
                                 num_epochs=training_opt["num_epochs"], **shard)
    except ValueError as error:
        raise DataError(f"training_opt.sampler.type {kind!r}: {error}") from None


def build_eval_loader(training_opt, dataset, ctx, passes="many"):
    """An in-order loader; under DDP each rank takes a strided share, gathered later.

    ``passes="one"`` (a test, the centroids, a recipe's fit): its workers are not kept for another pass.
    """
    indices = list(range(ctx.rank, len(dataset), ctx.world_size))
    subset = torch.utils.data.Subset(dataset, indices) if ctx.distributed else dataset
    batch_size = training_opt["eval_batch_size"] or training_opt["batch_size"]
    if training_opt["data_pipeline"] == "pil":
        return torch.utils.data.DataLoader(subset, batch_size=batch_size, shuffle=False,
                                           num_workers=training_opt["num_workers"],
                                           pin_memory=ctx.device.type == "cuda")
    return TensorLoader(subset, dataset.batch_transform, ctx.device, batch_size=batch_size,
                        num_workers=training_opt["num_workers"],
                        persistent_workers=training_opt["persistent_workers"] and passes == "many")


def _per_rank_batch(batch_size, ctx):
    if batch_size % ctx.world_size:
        raise ConfigError(f"training_opt.batch_size ({batch_size}) must be divisible by the number of "
                          f"processes ({ctx.world_size})")
    return batch_size // ctx.world_size


def _seed_worker(worker_id):
    # Each worker's torch seed is already derived from the loader's generator;
    # give NumPy and random the same so augmentations are reproducible.
    import random
    seed = torch.initial_seed() % 2**32
    np.random.seed(seed)
    random.seed(seed)


class EpochShuffleSampler(torch.utils.data.Sampler):
    """Plain shuffling whose order is a function of (seed, epoch), split across ranks.

    Unlike RandomSampler, resuming at epoch k replays exactly the order an
    uninterrupted run would have used.
    """

    def __init__(self, num_samples, seed=0, rank=0, world_size=1):
        self.num_samples = num_samples
        self.seed = seed
        self.rank = rank
        self.world_size = world_size
        self.epoch = 0

    def set_epoch(self, epoch):
        self.epoch = epoch

    def __len__(self):
        return math.ceil(self.num_samples / self.world_size)

    def __iter__(self):
        order = torch.randperm(self.num_samples, generator=seeded_generator(mix_seed(self.seed, self.epoch)))
        total = len(self) * self.world_size
        order = torch.cat([order, order[: total - self.num_samples]])  # pad so ranks get equal shares
        return iter(order[self.rank::self.world_size].tolist())

    def state_dict(self):
        return {"seed": self.seed, "epoch": self.epoch}

    def load_state_dict(self, state):
        self.seed, self.epoch = state["seed"], state["epoch"]


# ----------------------------------------------------------------------------- networks

class OLTRNetwork(nn.Module):
    """Feature model followed by classifier: images -> (logits, features)."""

    def __init__(self, feat_model, classifier):
        super().__init__()
        self.feat_model = feat_model
        self.classifier = classifier

    def forward(self, images, centroids=None):
        features, _ = self.feat_model(images)
        logits, _ = self.classifier(features, centroids)
        return logits, features


def build_network(config, for_training=True):
    """Feature model + classifier from ``config['networks']``.

    ``for_training=False`` skips downloads of pretrained weights: a checkpoint
    will overwrite them anyway.
    """
    networks, training_opt = config["networks"], config["training_opt"]
    feat_cfg, cls_cfg = networks["feat_model"], networks["classifier"]
    feat_params = dict(feat_cfg["params"])
    feat_params.setdefault("input_size", training_opt["transforms"]["input_size"])
    feat_params.setdefault("feature_dim", training_opt["feature_dim"])
    if not for_training:
        feat_params["pretrained"] = None
    feat_model = _named_build("networks.feat_model", build_feature_model, feat_cfg["type"], feat_params)
    if feat_model.feature_dim != training_opt["feature_dim"]:
        raise ConfigError(
            f"training_opt.feature_dim is {training_opt['feature_dim']} but the feature model "
            f"{feat_cfg['type']!r} produces {feat_model.feature_dim}-d features; set them equal "
            "(or use networks.feat_model.params.use_fc to project)"
        )
    cls_params = dict(cls_cfg["params"])
    cls_params.setdefault("in_dim", feat_model.feature_dim)
    cls_params.setdefault("num_classes", training_opt["num_classes"])
    classifier = _named_build("networks.classifier", build_classifier, cls_cfg["type"], cls_params)
    return OLTRNetwork(feat_model, classifier)


def _named_build(key, builder, type_name, params):
    """``builder(type_name, **params)``, its ConfigError prefixed with the config key it came from."""
    try:
        return builder(type_name, **params)
    except ConfigError as error:
        raise ConfigError(f"{key}: {error}") from None


def load_stage1_weights(network, config):
    """Copy stage-1 weights into the networks that ask for them; returns a short report."""
    networks = config["networks"]
    wanted = [name for name in ("feat_model", "classifier") if networks[name]["stage1_weights"]]
    if not wanted:
        return []
    # config.validate made sure stage1_log_dir is set whenever a network wants stage-1 weights
    path = Path(config["training_opt"]["stage1_log_dir"]) / FINAL_CHECKPOINT
    if not path.is_file():
        raise CheckpointError(f"stage 2 needs the stage-1 checkpoint {path}, which does not exist; "
                              "train stage 1 first (python main.py --config <its stage_1 config>)")
    stage1 = load_checkpoint(path, what="stage-1 checkpoint", required=("networks",))["networks"]
    report = []
    if "feat_model" in wanted:
        report.append(_load_matching(network.feat_model, stage1["feat_model"], "feat_model"))
    if "classifier" in wanted:
        classifier = network.classifier
        if hasattr(classifier, "init_from_stage1"):
            classifier.init_from_stage1(stage1["classifier"])
            report.append("classifier: stage-1 classifier copied into fc_hallucinator")
        else:
            report.append(_load_matching(classifier, stage1["classifier"], "classifier"))
    return report


def _load_matching(module, state, name):
    """Load the tensors whose names and shapes match; layers new in stage 2 keep their init."""
    own = module.state_dict()
    usable = {k: v for k, v in state.items() if k in own and own[k].shape == v.shape}
    module.load_state_dict(usable, strict=False)
    fresh = sorted({k.split(".")[0] for k in own if k not in usable})
    return f"{name}: {len(usable)}/{len(own)} tensors from stage 1" + (f"; new: {', '.join(fresh)}" if fresh else "")


def freeze_fixed_networks(network, config):
    """OLTR's ``fix: true``, for every network that sets it (as OLTR's run_networks.py does for any network)."""
    for name in ("feat_model", "classifier"):
        if config["networks"][name]["fix"]:
            freeze_for_fix(getattr(network, name))


def freeze_for_fix(module):
    """Freeze ``module`` but for the parts it names in ``TRAINABLE_WHEN_FIXED``.

    The feature model names its modulated attention and fc_add, which OLTR's Places-LT stage 2
    trains on a frozen trunk; a classifier names nothing, so ``fix`` freezes all of it.
    """
    trainable = getattr(module, "TRAINABLE_WHEN_FIXED", ())
    for name, param in module.named_parameters():
        if not any(part in name for part in trainable):
            param.requires_grad_(False)


# ----------------------------------------------------------------------------- losses

@dataclass(frozen=True)
class Criterion:
    """One configured loss: the module and the weight its value is multiplied by in the total loss."""

    module: nn.Module
    weight: float


def build_criterions(config, class_counts):
    """{'PerformanceLoss': Criterion, 'FeatureLoss': Criterion (stage 2)}, built with the pipeline context."""
    training_opt = config["training_opt"]
    context = {
        "num_classes": training_opt["num_classes"],
        "num_epochs": training_opt["num_epochs"],
        "class_counts": list(class_counts),
        "feat_dim": training_opt["feature_dim"],
    }
    criterions = {}
    for key, cfg in config["criterions"].items():
        if cfg is None:
            continue
        try:
            module = loss_registry.build_loss(cfg["loss"], **cfg["loss_params"], **context)
        except (ValueError, TypeError) as e:
            raise ConfigError(f"criterions.{key}: {e}") from None
        criterions[key] = Criterion(module, cfg["weight"])
    return criterions


# ----------------------------------------------------------------------------- optimizers

def build_optimizers(network, criterions, config):
    """One SGD per network (own lr), plus one for trainable loss parameters (the centroids)."""
    optimizers = {}
    for name in ("feat_model", "classifier"):
        params = [p for p in getattr(network, name).parameters() if p.requires_grad]
        if params:
            optimizers[name] = _sgd(params, config["networks"][name]["optim_params"])
    feature = config["criterions"].get("FeatureLoss")
    if feature is not None and "FeatureLoss" in criterions:
        params = [p for p in criterions["FeatureLoss"].module.parameters() if p.requires_grad]
        if params:
            optimizers["FeatureLoss"] = _sgd(params, feature["optim_params"])
    return optimizers


def _sgd(params, optim_params):
    options = dict(lr=optim_params["lr"], momentum=optim_params["momentum"],
                   weight_decay=optim_params["weight_decay"], nesterov=optim_params["nesterov"])
    try:
        # One fused kernel instead of a loop over parameters: about 5% of a Digits_LT step.
        return torch.optim.SGD(params, fused=True, **options)
    except (RuntimeError, TypeError):  # older torch, or a device without a fused SGD
        return torch.optim.SGD(params, **options)


def build_schedulers(optimizers, training_opt):
    """Step or cosine decay for every optimizer, the centroids' included (as OLTR's criterion scheduler)."""
    schedulers = {}
    params = training_opt["scheduler_params"]
    for name, optimizer in optimizers.items():
        if training_opt["scheduler"] == "step":
            schedulers[name] = torch.optim.lr_scheduler.StepLR(optimizer, step_size=params["step_size"],
                                                               gamma=params["gamma"])
        else:
            schedulers[name] = torch.optim.lr_scheduler.CosineAnnealingLR(
                optimizer, T_max=training_opt["num_epochs"], eta_min=params["eta_min"])
    return schedulers
