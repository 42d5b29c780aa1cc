"""Class-aware sampling, as OLTR's stage 2 (Liu et al., CVPR 2019; Shen et al., ECCV 2016).

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
With ``world_size > 1`` the global stream is cut ``rank::world_size`` so the
ranks' shares are disjoint and together are the stream a single process sees.
"""
import numpy as np
import torch
from torch.utils.data import Sampler

from oltr.seeding import mix_seed


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


class ClassAwareSampler(Sampler):
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

    def set_epoch(self, epoch):
        self.epoch = int(epoch)

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

    def __iter__(self):
        return iter(self.global_stream()[self.rank :: self.world_size])

    def __len__(self):
        return self.total_size // self.world_size

    def state_dict(self):
        return {"seed": self.seed, "epoch": self.epoch}

    def load_state_dict(self, state):
        self.seed = int(state["seed"])
        self.epoch = int(state["epoch"])
