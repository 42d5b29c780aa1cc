"""Samplers beyond plain shuffling: class-aware (OLTR) and the class-prior samplers of Kang et al.

``ClassAwareSampler``: class-aware sampling, as OLTR's stage 2 (Liu et al., CVPR 2019; Shen et al., ECCV 2016).

The stream cycles through the classes in a shuffled order (the order is
reshuffled each time every class has had its turn) and takes
``num_samples_cls`` consecutive samples of the chosen class from that class's
own shuffled list (reshuffled whenever it runs out). Every class therefore
appears equally often whatever its size: rare images repeat, frequent ones are
subsampled.

Unlike the original, whose iterators kept Python's global ``random`` state
across epochs, the stream here is a pure function of ``(seed, epoch)`` drawn
from a private ``torch.Generator``: the trainer calls ``set_epoch`` each epoch
(as with ``DistributedSampler``), and resuming from ``state_dict`` replays it.
With ``world_size > 1`` the ranks' shares are disjoint and together are the stream a
single process sees; given the per-rank ``batch_size`` (the loaders pass it), each rank takes
its contiguous chunk of every global batch of ``batch_size * world_size``, so a DDP step sees
the single process's global batch with a class's consecutive samples on one rank (and in one
BatchNorm batch), as one process would see them; without it, ``rank::world_size``.

``ClassPriorSampler`` (``class_balanced``, ``square_root``, ``progressive``; Kang et al.,
"Decoupling Representation and Classifier for Long-Tailed Recognition", ICLR 2020) draws
each sample's class from a distribution over classes, with the same seeding and sharding.
"""

import math

import numpy as np
import torch
from torch.utils.data import Sampler

from ..common.seeding import mix_seed


class _ShuffledCycle:
    """Endless walk over ``items`` in shuffled passes; reshuffled at the start of every pass."""

    def __init__(self, items, generator):
        self.items = items
        self.generator = generator
        self.order = []
        self.position = 0

    def take(self, count):
        taken = []
        while len(taken) < count:
            if self.position == len(self.order):
                permutation = torch.randperm(len(self.items), generator=self.generator).tolist()
                self.order = [self.items[i] for i in permutation]
                self.position = 0
            step = min(count - len(taken), len(self.order) - self.position)
            taken.extend(self.order[self.position : self.position + step])
            self.position += step
        return taken


def rank_share(stream, rank, world_size, batch_size=None):
    """This rank's part of ``stream`` (its length a multiple of ``world_size``).

    With ``batch_size`` (per rank): the rank-th contiguous chunk of every global batch of
    ``batch_size * world_size`` (a last, shorter global batch is cut into equal contiguous
    chunks), so the ranks' n-th batches together are a single process's n-th global batch.
    Without: every ``world_size``-th index from ``rank``.
    """
    if world_size == 1:
        return list(stream)
    if batch_size is None:
        return list(stream[rank::world_size])
    size = batch_size * world_size
    whole = len(stream) // size * size
    share = []
    for start in range(rank * batch_size, whole, size):
        share.extend(stream[start : start + batch_size])
    tail = len(stream) - whole
    share.extend(stream[whole + rank * tail // world_size : whole + (rank + 1) * tail // world_size])
    return share


class _EpochStreamSampler(Sampler):
    """What the epoch-seeded samplers share: a ``global_stream()`` that is a function of
    (seed, epoch), this rank's share of it, and the (seed, epoch) state that resume restores."""

    def set_epoch(self, epoch):
        self.epoch = int(epoch)

    batch_size = None  # per rank; set by the loaders (the split into contiguous chunks of each global batch)

    def __iter__(self):
        return iter(rank_share(self.global_stream(), self.rank, self.world_size, self.batch_size))

    def __len__(self):
        return self.total_size // self.world_size

    def state_dict(self):
        return {"seed": self.seed, "epoch": self.epoch}

    def load_state_dict(self, state):
        self.seed = int(state["seed"])
        self.epoch = int(state["epoch"])


class ClassAwareSampler(_EpochStreamSampler):
    """Balanced-by-class index stream for a dataset with integer ``labels``.

    Args:
        labels: the training labels (class ids >= 0); classes with no sample are skipped.
        num_samples_cls: consecutive samples taken from a class per turn (OLTR: 4).
        num_samples: length of the global stream per epoch (default ``len(labels)``).
        seed, rank, world_size: the stream is a function of (seed, epoch); each rank
            yields every ``world_size``-th index starting at ``rank``.
    """

    def __init__(self, labels, num_samples_cls=4, num_samples=None, seed=0, rank=0, world_size=1):
        labels = np.asarray(labels, dtype=np.int64).reshape(-1)
        if labels.size == 0:
            raise ValueError("ClassAwareSampler needs at least one label")
        if labels.min() < 0:
            raise ValueError("ClassAwareSampler got a negative (open-set) label; train labels must be >= 0")
        if not isinstance(num_samples_cls, int) or num_samples_cls < 1:
            raise ValueError(f"num_samples_cls must be a positive integer, got {num_samples_cls!r}")
        if not isinstance(world_size, int) or world_size < 1 or not isinstance(rank, int) or not 0 <= rank < world_size:
            raise ValueError(f"need 0 <= rank < world_size, got rank={rank!r}, world_size={world_size!r}")
        num_samples = len(labels) if num_samples is None else num_samples
        if not isinstance(num_samples, int) or num_samples < 1:
            raise ValueError(f"num_samples must be a positive integer, got {num_samples!r}")
        order = np.argsort(labels, kind="stable")
        classes, starts = np.unique(labels[order], return_index=True)
        self.class_members = [part.tolist() for part in np.split(order, starts[1:])]
        self.classes = classes.tolist()
        self.num_samples_cls = num_samples_cls
        self.rank = rank
        self.world_size = world_size
        # Round up so every rank gets the same count (DataLoader batches must line up across ranks).
        self.total_size = -(-num_samples // world_size) * world_size
        self.seed = int(seed)
        self.epoch = 0

    def global_stream(self):
        """All ``total_size`` indices of this epoch, before the split across ranks."""
        generator = torch.Generator().manual_seed(mix_seed(self.seed, self.epoch))
        class_cycle = _ShuffledCycle(list(range(len(self.classes))), generator)
        member_cycles = [_ShuffledCycle(members, generator) for members in self.class_members]
        stream = []
        while len(stream) < self.total_size:
            (turn,) = class_cycle.take(1)
            count = min(self.num_samples_cls, self.total_size - len(stream))
            stream.extend(member_cycles[turn].take(count))
        return stream


# ----------------------------------------------------------------------------- class-prior samplers

CLASS_PRIOR_SAMPLERS = ("class_balanced", "square_root", "progressive")


def class_sampling_probabilities(kind, class_counts, progress=0.0):
    """p_j, the chance that a draw comes from class j (Kang et al., ICLR 2020, Sec. 3 and Eq. 1).

        class_balanced  p_j = 1 / C                                  (each class equally likely)
        square_root     p_j = n_j^(1/2) / sum_k n_k^(1/2)
        progressive     p_j = (1 - t) n_j / sum_k n_k + t / C        (t: training progress in [0, 1])

    A class with no training image but p_j > 0 cannot be drawn: a ValueError names it.
    """
    counts = np.asarray(class_counts, dtype=np.float64).reshape(-1)
    if counts.size == 0 or (counts < 0).any() or counts.sum() <= 0:
        raise ValueError(f"class counts must be >= 0 with a positive total, got {counts.tolist()}")
    num_classes = counts.size
    if kind == "class_balanced":
        probabilities = np.full(num_classes, 1.0 / num_classes)
    elif kind == "square_root":
        probabilities = np.sqrt(counts) / np.sqrt(counts).sum()
    elif kind == "progressive":
        t = float(progress)
        if not 0.0 <= t <= 1.0:
            raise ValueError(f"progress must be in [0, 1], got {progress!r}")
        probabilities = (1.0 - t) * counts / counts.sum() + t / num_classes
    else:
        raise ValueError(f"unknown class-prior sampler {kind!r}; choose from {', '.join(CLASS_PRIOR_SAMPLERS)}")
    empty = np.flatnonzero((counts == 0) & (probabilities > 0))
    if empty.size:
        raise ValueError(
            f"the {kind} sampler draws class {int(empty[0])}, which has no training image "
            f"(class counts {counts.astype(int).tolist()}); fix the training split or num_classes, "
            "or use the instance or class_aware sampler"
        )
    return probabilities


class ClassPriorSampler(_EpochStreamSampler):
    """Draw a class from p_j (``class_sampling_probabilities``), then one of its images.

    Each draw's class is independent (``torch.multinomial`` with replacement); within a class
    the images come from the class's own shuffled list, reshuffled whenever it runs out, so
    a class's images repeat only after all have been seen. As ``ClassAwareSampler``: the
    stream is a pure function of (seed, epoch) (``set_epoch``, ``state_dict``), cut
    ``rank::world_size`` across processes. ``progressive`` moves from instance-balanced
    (t = 0, first epoch) to class-balanced (t = 1, last epoch), t = epoch / (num_epochs - 1).

    Args:
        labels: the training labels (class ids in [0, num_classes)).
        kind: ``class_balanced``, ``square_root`` or ``progressive``.
        num_classes: C (default: max label + 1); a class without images must have p_j = 0.
        num_samples: length of the global stream per epoch (default ``len(labels)``).
        num_epochs: for ``progressive``'s t.
    """

    def __init__(self, labels, kind, num_classes=None, num_samples=None, num_epochs=1, seed=0, rank=0, world_size=1):
        labels = np.asarray(labels, dtype=np.int64).reshape(-1)
        if labels.size == 0:
            raise ValueError("ClassPriorSampler needs at least one label")
        if labels.min() < 0:
            raise ValueError("ClassPriorSampler got a negative (open-set) label; train labels must be >= 0")
        if not isinstance(world_size, int) or world_size < 1 or not isinstance(rank, int) or not 0 <= rank < world_size:
            raise ValueError(f"need 0 <= rank < world_size, got rank={rank!r}, world_size={world_size!r}")
        num_classes = int(labels.max()) + 1 if num_classes is None else int(num_classes)
        if labels.max() >= num_classes:
            raise ValueError(f"label {int(labels.max())} is outside [0, {num_classes})")
        num_samples = len(labels) if num_samples is None else num_samples
        if not isinstance(num_samples, int) or num_samples < 1:
            raise ValueError(f"num_samples must be a positive integer, got {num_samples!r}")
        self.kind = kind
        self.class_counts = np.bincount(labels, minlength=num_classes)
        self.num_epochs = max(int(num_epochs), 1)
        for t in (0.0, 1.0):  # every p the epochs will use is valid (an empty class fails here, not mid-run)
            class_sampling_probabilities(kind, self.class_counts, t)
        order = np.argsort(labels, kind="stable")
        self.class_members = [part.tolist() for part in np.split(order, np.cumsum(self.class_counts)[:-1])]
        self.rank = rank
        self.world_size = world_size
        self.total_size = -(-num_samples // world_size) * world_size
        self.seed = int(seed)
        self.epoch = 0

    def progress(self):
        return min(self.epoch / max(self.num_epochs - 1, 1), 1.0)

    def probabilities(self):
        """This epoch's p_j."""
        return class_sampling_probabilities(self.kind, self.class_counts, self.progress())

    def global_stream(self):
        """All ``total_size`` indices of this epoch, before the split across ranks."""
        generator = torch.Generator().manual_seed(mix_seed(self.seed, self.epoch))
        weights = torch.as_tensor(self.probabilities(), dtype=torch.float64)
        classes = torch.multinomial(weights, self.total_size, replacement=True, generator=generator).numpy()
        stream = np.empty(self.total_size, dtype=np.int64)
        for label, members in enumerate(self.class_members):
            positions = np.flatnonzero(classes == label)
            if positions.size:
                stream[positions] = _ShuffledCycle(members, generator).take(positions.size)
        return stream.tolist()


def seeded_generator(seed):
    generator = torch.Generator()
    generator.manual_seed(seed)
    return generator


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
        return iter(order[self.rank :: self.world_size].tolist())

    def state_dict(self):
        return {"seed": self.seed, "epoch": self.epoch}

    def load_state_dict(self, state):
        self.seed, self.epoch = state["seed"], state["epoch"]
